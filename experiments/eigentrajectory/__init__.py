"""EigenTrajectory (Bae et al., ICCV 2023): ET space vs Euclidean space with the same interaction backbone on the
ETH/UCY leave-one-scene-out splits (main); parity fixtures (``make_parity_fixtures.py``)."""
