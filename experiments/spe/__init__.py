"""SPE (Huang et al., ICLR 2024): GINE on MOSES molecules (penalised logP) with none / LapPE / SignNet / SPE
encodings (main), the stability study (``stability.py``) and the size-shift study (``ood.py``)."""

STUDIES = ("ood", "stability")
