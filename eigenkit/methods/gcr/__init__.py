"""GCR — Grassmann Class Representation (Wang, Li & Zhang, ICCV 2023): the subspace classifier head.

The geometry and the Riemannian optimisers live one floor down, in :mod:`eigenkit.manifolds`.
"""

from eigenkit.methods.gcr._head import (
    GRASSMANN_LABEL,
    GrassmannClassifier,
    GrassmannParam,
    from_official_weight,
    grassmann_labels,
    grassmann_logits,
    to_official_weight,
)

__all__ = [
    "GRASSMANN_LABEL",
    "GrassmannClassifier",
    "GrassmannParam",
    "from_official_weight",
    "grassmann_labels",
    "grassmann_logits",
    "to_official_weight",
]
