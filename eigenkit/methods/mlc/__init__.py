"""MLC — unsupervised manifold linearizing and clustering (Ding, Tong, Chan, Dai, Ma & Haeffele, ICCV 2023).

The coding rates and the Sinkhorn layer live one floor down (:mod:`eigenkit.linalg`); the clustering metrics and
spectral clustering in :mod:`eigenkit.metrics`. Official code (``tianjiaoding/mlc``) was not available; the loss and
its conventions follow the authors' follow-up ``LeslieTrue/CPP`` @ ``cb39bdc`` (parity in tests/methods/).
"""

from eigenkit.methods.mlc._loss import (
    membership,
    mlc_loss,
    mlc_loss_views,
    mlc_objective,
    sphere_normalize,
    tcr_loss,
    tcr_pretrain_loss,
)
from eigenkit.methods.mlc._model import MLCNet, copy_feature_head_to_cluster_head

__all__ = [
    "MLCNet",
    "copy_feature_head_to_cluster_head",
    "membership",
    "mlc_loss",
    "mlc_loss_views",
    "mlc_objective",
    "sphere_normalize",
    "tcr_loss",
    "tcr_pretrain_loss",
]
