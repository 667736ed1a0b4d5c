"""Graph Laplacians of dense, masked (zero-padded) adjacency matrices."""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from eigenkit._validate import check_array, check_square

__all__ = ["LaplacianKind", "laplacian"]


class LaplacianKind(enum.Enum):
    """Which graph Laplacian (``A`` adjacency, ``D = diag(A 1)`` degrees).

    * ``COMBINATORIAL``: ``L = D − A``; PSD, spectrum in ``[0, 2 d_max]``.
    * ``SYM_NORM``: ``L = I − D^{-1/2} A D^{-1/2}``; PSD, spectrum in ``[0, 2]`` (Chung 1997, eq. 1.2).
      The SPE preprocessing (``torch_geometric.utils.get_laplacian(normalization="sym")``).
    * ``RANDOM_WALK``: ``L = I − D^{-1} A = D^{-1/2} L_sym D^{1/2}``; not symmetric, same spectrum as
      ``SYM_NORM``; right eigenvectors are ``D^{-1/2}`` times those of ``SYM_NORM``.
    """

    COMBINATORIAL = "combinatorial"
    SYM_NORM = "sym_norm"
    RANDOM_WALK = "random_walk"


def _check_kind(kind) -> LaplacianKind:
    if not isinstance(kind, LaplacianKind):
        raise TypeError(f"kind must be a LaplacianKind (e.g. LaplacianKind.SYM_NORM), got {kind!r}")
    return kind


def _check_mask(mask, adj: jax.Array) -> jax.Array:
    return check_array(mask, "mask", shape=adj.shape[:-1], ndim=adj.ndim - 1, kind="bool")


def _masked_adjacency(adj: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    m = mask.astype(adj.dtype)
    a = adj * m[..., :, None] * m[..., None, :]
    return a, m


def _diag_embed(d: jax.Array) -> jax.Array:
    n = d.shape[-1]
    return jnp.eye(n, dtype=d.dtype) * d[..., None, :]


def laplacian(
    adj: Float[Array, "... n n"],
    mask: Bool[Array, "... n"],
    kind: LaplacianKind = LaplacianKind.SYM_NORM,
    *,
    isolated_value: float = 1.0,
) -> Float[Array, "... n n"]:
    """Laplacian of a zero-padded dense graph; padded nodes give zero rows and columns.

    With ``m`` the node mask, the adjacency used is ``A = adj ∘ (m mᵀ)`` (entries touching padded nodes are
    ignored, so they cannot contaminate real ones), degrees ``d = A 1`` (row sums; a kept self-loop counts once):

    * ``COMBINATORIAL``: ``L = diag(d) − A``.
    * ``SYM_NORM``: ``L = diag(m) − D^{-1/2} A D^{-1/2}`` with ``D^{-1/2}_ii = 0`` when ``d_i = 0``.
    * ``RANDOM_WALK``: ``L = diag(m) − D^{-1} A`` with ``D^{-1}_ii = 0`` when ``d_i = 0``.

    **Isolated nodes** (``d_i = 0``, real node): the normalised kinds set ``L_ii = isolated_value``. The default
    ``1.0`` is the literal ``I − D^{-1/2} A D^{-1/2}`` with ``D^{-1/2} = 0`` — the convention of
    ``torch_geometric.utils.get_laplacian`` used by the SPE official preprocessing (an isolated node then adds
    eigenvalue 1, not 0). ``isolated_value=0.0`` gives Chung's / networkx's ``normalized_laplacian_matrix``
    convention (eigenvalue 0 per isolated node, so the multiplicity of 0 equals the number of components).
    ``COMBINATORIAL`` always has ``L_ii = 0`` there.

    Weights must be non-negative; a negative degree gives NaN in the normalised kinds (NaN propagates).
    Batch-polymorphic over leading axes; differentiable in ``adj`` (the ``d = 0`` branches are gradient-safe).

    Args:
      adj: ``[..., n, n]`` floating adjacency (symmetric for an undirected graph; not checked here).
      mask: ``bool[..., n]`` real-node mask.
      kind: a ``LaplacianKind``.
      isolated_value: ``L_ii`` of isolated real nodes for ``SYM_NORM`` / ``RANDOM_WALK``.

    Returns:
      ``[..., n, n]``, dtype of ``adj``.

    Example:
      >>> import jax.numpy as jnp
      >>> from eigenkit.graph import LaplacianKind, laplacian
      >>> adj = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
      >>> mask = jnp.array([True, True, False])
      >>> laplacian(adj, mask, LaplacianKind.COMBINATORIAL).tolist()
      [[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    adj = check_square(adj, "adj", kind="floating")
    mask = _check_mask(mask, adj)
    kind = _check_kind(kind)
    a, m = _masked_adjacency(adj, mask)
    d = jnp.sum(a, axis=-1)
    if kind is LaplacianKind.COMBINATORIAL:
        return _diag_embed(d) - a
    zero = d == 0
    safe = jnp.where(zero, jnp.ones((), d.dtype), d)
    diag = m * jnp.where(zero, jnp.asarray(isolated_value, d.dtype), jnp.ones((), d.dtype))
    if kind is LaplacianKind.SYM_NORM:
        dis = jnp.where(zero, jnp.zeros((), d.dtype), jax.lax.rsqrt(safe))
        return _diag_embed(diag) - dis[..., :, None] * a * dis[..., None, :]
    dinv = jnp.where(zero, jnp.zeros((), d.dtype), 1.0 / safe)
    return _diag_embed(diag) - dinv[..., :, None] * a
