"""Riemannian geometry of orthonormal bases (Grassmann / Stiefel) and optax optimisers on it.

Pure functions, batch-polymorphic over leading axes ``(..., D, k)``; optimisers are optax
``GradientTransformation``s that require ``params``. See ``_grassmann.py`` and ``_optim.py``.
"""

from eigenkit.manifolds._grassmann import (
    Retraction,
    check_orthonormal,
    grassmann_dist,
    grassmann_exp,
    grassmann_exp_svd,
    grassmann_log,
    grassmann_project,
    grassmann_project_exp,
    grassmann_random_point,
    grassmann_retract,
    grassmann_transport,
    principal_angles,
    qr_orthonormalize,
    stiefel_project,
)
from eigenkit.manifolds._optim import (
    MomentumRule,
    RiemannianAdamState,
    RiemannianSGDState,
    riemannian_adam,
    riemannian_sgd,
)

__all__ = [
    "MomentumRule",
    "Retraction",
    "RiemannianAdamState",
    "RiemannianSGDState",
    "check_orthonormal",
    "grassmann_dist",
    "grassmann_exp",
    "grassmann_exp_svd",
    "grassmann_log",
    "grassmann_project",
    "grassmann_project_exp",
    "grassmann_random_point",
    "grassmann_retract",
    "grassmann_transport",
    "principal_angles",
    "qr_orthonormalize",
    "riemannian_adam",
    "riemannian_sgd",
    "stiefel_project",
]
