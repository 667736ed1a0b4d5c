"""EoRA experiments: the compression x compensation table (main) and the calibration-size study."""

STUDIES = ("calibration",)
