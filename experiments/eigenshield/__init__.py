"""EigenShield-style (reconstructed) causal-subspace filtering of an image encoder's embeddings under PGD attacks."""
