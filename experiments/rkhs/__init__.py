"""RKHS view of augmentation-based SSL (Zhai et al., ICLR 2024): the augmentation-strength sweet spot of RKHS
regression on the closed-form masking cube (train.py) and a spectral-contrastive encoder against the exact top-d
eigenspace (study ``rkhs.encoder``)."""

STUDIES = ("encoder", "kappa", "text")
