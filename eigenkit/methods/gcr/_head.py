"""The Grassmann class-representation head (GCR; Wang, Li & Zhang, ICCV 2023, arXiv 2308.01547)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx

from eigenkit._validate import check_array, check_rank_arg
from eigenkit.manifolds import check_orthonormal, grassmann_random_point

if TYPE_CHECKING:
    from jaxtyping import Array, Float

__all__ = [
    "GRASSMANN_LABEL",
    "GrassmannClassifier",
    "GrassmannParam",
    "from_official_weight",
    "grassmann_labels",
    "grassmann_logits",
    "to_official_weight",
]

GRASSMANN_LABEL = "grassmann"


class GrassmannParam(nnx.Param):
    """An ``nnx.Param`` holding a stack of orthonormal bases ``(..., D, k)``.

    Being a ``Param`` subclass it is trainable (``TrainState`` puts it in ``params``); its type is how
    :func:`grassmann_labels` routes it to a Riemannian optimiser (GCR tags its tensor with a ``geometry`` attribute
    for the same purpose).
    """


def grassmann_logits(
    x: Float[Array, "... D"], bases: Float[Array, "C D k"], gamma: float = 25.0, eps: float = 1e-12
) -> Float[Array, "... C"]:
    """GCR logits ``logit_c = γ ‖P_cᵀ x̂‖₂`` with ``x̂ = x / max(‖x‖₂, eps)`` (the paper's subspace logit, as the
    official ``GrassmannClsHead.forward`` computes it; equation numbers not checked against the paper PDF).

    Depends only on ``span(P_c)`` (invariant to ``P_c → P_c R``, R ∈ O(k)) and lies in ``[0, γ]``. The norm uses
    ``sqrt(max(s, tiny))`` so its gradient is 0, not NaN, when a feature is orthogonal to a whole subspace.

    Args:
      x: features ``(..., D)``.
      bases: orthonormal bases ``(C, D, k)``, same dtype as ``x``.
      gamma: fixed scale γ (25 in every official config).
      eps: floor of the feature norm (torch ``F.normalize`` default).

    Returns:
      logits ``(..., C)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from eigenkit.manifolds import grassmann_random_point
      >>> b = grassmann_random_point((10, 16, 4), key=jax.random.key(0))
      >>> grassmann_logits(jnp.ones((2, 16)), b).shape
      (2, 10)
    """
    x = check_array(x, "x", min_ndim=1, kind="floating")
    bases = check_array(bases, "bases", ndim=3, kind="floating")
    if bases.shape[1] != x.shape[-1]:
        raise ValueError(f"x has {x.shape[-1]} features but bases expect D = {bases.shape[1]} (shape {bases.shape})")
    if bases.dtype != x.dtype:
        raise TypeError(f"x ({x.dtype}) and bases ({bases.dtype}) must have the same dtype")
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    xh = x / jnp.maximum(norm, eps)
    proj = jnp.einsum("...d,cdk->...ck", xh, bases)
    sq = jnp.sum(proj * proj, axis=-1)
    return gamma * jnp.sqrt(jnp.maximum(sq, jnp.finfo(x.dtype).tiny))


class GrassmannClassifier(nnx.Module):
    """C classes, each a k-dimensional subspace of the D-dim feature space; ``logit_c = γ ‖P_cᵀ x̂‖``.

    The parameter ``bases`` is a :class:`GrassmannParam` of shape ``(C, D, k)`` (class c's orthonormal basis is
    ``bases[c]``); train it with :func:`eigenkit.manifolds.riemannian_sgd` routed by :func:`grassmann_labels`.
    Official layout: ``W ∈ R^{(C·k)×D}`` with rows ``c·k … c·k+k−1`` = ``bases[c]ᵀ`` (see
    :func:`to_official_weight`). Initialisation as the official ``init_weights``: Gaussian, then QR per class
    (sign-fixed here).

    Args:
      in_features: D.
      num_classes: C.
      subspace_dim: k (``1 <= k <= D``); k = 1 is a cosine-softmax head with |cos|.
      gamma: fixed logit scale (not learned), 25 as in the paper.
      init_bases: optional ``(C, D, k)`` array to start from; must be orthonormal per class (validated eagerly).
      dtype: parameter dtype.
      rngs: ``nnx.Rngs`` with a ``params`` stream (used when ``init_bases`` is None).

    Raises:
      ValueError: ``k > D``, or ``init_bases`` of the wrong shape or not orthonormal.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> head = GrassmannClassifier(16, 10, 4, rngs=nnx.Rngs(0))
      >>> head(jnp.ones((3, 16))).shape
      (3, 10)
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        subspace_dim: int,
        *,
        gamma: float = 25.0,
        init_bases: Any = None,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        d = check_rank_arg(in_features, "in_features", upper=2**31, upper_name="2**31")
        c = check_rank_arg(num_classes, "num_classes", upper=2**31, upper_name="2**31")
        k = check_rank_arg(subspace_dim, "subspace_dim", upper=d, upper_name="in_features")
        if init_bases is None:
            bases = grassmann_random_point((c, d, k), key=rngs.params(), dtype=dtype)
        else:
            bases = check_array(init_bases, "init_bases", shape=(c, d, k), ndim=3, kind="floating").astype(dtype)
        check_orthonormal(bases, "init_bases" if init_bases is not None else "bases")
        self.in_features, self.num_classes, self.subspace_dim = d, c, k
        self.gamma = float(gamma)
        self.bases = GrassmannParam(bases)

    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... C"]:
        return grassmann_logits(x, self.bases[...], self.gamma)


def grassmann_labels(params: Any, *, default: str = "euclidean", label: str = GRASSMANN_LABEL) -> Any:
    """Labels for ``optax.partition``: ``label`` for :class:`GrassmannParam` leaves, ``default`` for the rest.

    Works on an ``nnx.State`` (e.g. ``TrainState.params``) or a module's ``nnx.state(model, nnx.Param)``; the result
    is a prefix tree of ``params`` (one label per Variable), which ``optax.partition`` accepts.

    Example:
      >>> import jax, optax
      >>> from flax import nnx
      >>> from eigenkit.manifolds import riemannian_sgd
      >>> from eigenkit.methods.gcr import GrassmannClassifier, grassmann_labels
      >>> model = GrassmannClassifier(16, 10, 4, rngs=nnx.Rngs(0))
      >>> labels = grassmann_labels(nnx.state(model, nnx.Param))
      >>> tx = optax.partition({"grassmann": riemannian_sgd(0.1, 0.9), "euclidean": optax.sgd(0.1, 0.9)}, labels)
      >>> sorted(set(jax.tree.leaves(labels)))
      ['grassmann']
    """
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    return jax.tree.map(lambda v: label if isinstance(v, GrassmannParam) else default, params, is_leaf=is_var)


def to_official_weight(bases: Float[Array, "C D k"]) -> Float[Array, "Ck D"]:
    """``(C, D, k)`` bases -> the official ``fc.weight`` layout ``(C·k, D)``."""
    c, d, k = bases.shape
    return jnp.swapaxes(bases, -1, -2).reshape(c * k, d)


def from_official_weight(weight: Float[Array, "Ck D"], subspace_dim: int) -> Float[Array, "C D k"]:
    """The official ``fc.weight`` ``(C·k, D)`` -> ``(C, D, k)`` bases."""
    ck, d = weight.shape
    if ck % subspace_dim:
        raise ValueError(f"weight rows {ck} not divisible by subspace_dim {subspace_dim}")
    return jnp.swapaxes(jnp.reshape(weight, (ck // subspace_dim, subspace_dim, d)), -1, -2)
