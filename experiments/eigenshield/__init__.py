"""EigenShield-style (reconstructed) causal-subspace filtering of an image encoder's embeddings under PGD attacks;
study ``text``: the same on MiniLM-L6 sentence embeddings under embedding-space attacks."""

STUDIES = ("text",)
