"""MLC's network: a backbone, a shared ``pre_feature`` trunk and two normalised heads (paper §3.1; CPP ``CPPNet``).

``z = P_S(f(x))`` is the feature head (the subspace features), ``c = P_S(g(x))`` the cluster head whose Gram feeds
the Sinkhorn membership. Paper §3.1: "a few affine layers with non-linearities" as the feature head and "layers of
the same type" for the cluster head; CPP (``model/CPP_model.py``) shares ``Linear–BN–ReLU–Linear–ReLU`` between them
and ends each head with one ``Linear``. Here the trunk is CPP's and both heads are one ``Linear``, so the one-shot
initialisation of §3.2 (copy the feature head into the cluster head) makes ``c = z`` exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import nnx

from eigenkit.methods.mlc._loss import sphere_normalize

if TYPE_CHECKING:
    from jaxtyping import Array, Float

__all__ = ["MLCNet", "copy_feature_head_to_cluster_head"]


class MLCNet(nnx.Module):
    """``x -> (z, c)``: ``backbone → pre_feature (Linear–BN–ReLU–Linear–ReLU) → {feature_head, cluster_head}``, both
    heads projected onto the unit sphere.

    Args:
      backbone: an NNX module mapping inputs to ``(B, in_features)`` features (``eigenkit.nn.SmallCNN``,
        ``eigenkit.nn.ResNet`` (ResNet-18), or ``None`` when the inputs already are features, as CPP's CLIP
        features).
      in_features: the backbone's feature size.
      hidden: width of the ``pre_feature`` trunk (CPP ``--hidden_dim`` 4096).
      z_dim: dimension ``d`` of ``z`` and ``c`` (paper 128).
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from eigenkit.methods.mlc import MLCNet
      >>> net = MLCNet(None, 5, 16, 4, rngs=nnx.Rngs(0))
      >>> z, c = net(jnp.ones((3, 5)))
      >>> z.shape, c.shape
      ((3, 4), (3, 4))
    """

    def __init__(self, backbone: nnx.Module | None, in_features: int, hidden: int, z_dim: int, *, rngs: nnx.Rngs):
        self.backbone = backbone
        self.fc1 = nnx.Linear(int(in_features), int(hidden), rngs=rngs)
        self.bn = nnx.BatchNorm(int(hidden), rngs=rngs)
        self.fc2 = nnx.Linear(int(hidden), int(hidden), rngs=rngs)
        self.feature_head = nnx.Linear(int(hidden), int(z_dim), rngs=rngs)
        self.cluster_head = nnx.Linear(int(hidden), int(z_dim), rngs=rngs)

    def trunk(self, x) -> Float[Array, "B h"]:
        h = x if self.backbone is None else self.backbone(x)
        h = nnx.relu(self.bn(self.fc1(h)))
        return nnx.relu(self.fc2(h))

    def __call__(self, x) -> tuple[Float[Array, "B d"], Float[Array, "B d"]]:
        h = self.trunk(x)
        return sphere_normalize(self.feature_head(h)), sphere_normalize(self.cluster_head(h))


def copy_feature_head_to_cluster_head(model: MLCNet) -> None:
    """Paper §3.2 (CPP ``utils.update_pi_from_z``): after TCR pre-training, set the cluster head's weights to the
    feature head's, so that at the start of MLC ``c = z`` and ``Γ = P_{Ω,η}(|Z Zᵀ|)``. Updates ``model`` in place.
    """
    # real copies: shared buffers would be donated twice by a jitted train step that donates its state
    nnx.update(model.cluster_head, jax.tree.map(lambda x: jnp.array(x, copy=True), nnx.state(model.feature_head)))
