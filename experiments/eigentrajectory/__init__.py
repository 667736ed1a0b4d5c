"""EigenTrajectory (Bae et al., ICCV 2023): parity fixtures so far; the experiment (train.py, configs) is not written
yet, so the runner does not list it."""
