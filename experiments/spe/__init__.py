"""SPE (Huang et al., ICLR 2024): GINE on MOSES molecules (penalised logP) with none / LapPE / SPE encodings, and the
stability experiment (``stability.py``)."""
