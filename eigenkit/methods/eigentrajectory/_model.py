"""EigenTrajectory's model: the ET space as a wrapper of any interaction backbone, its Euclidean twin, and a masked
social transformer as the backbone (official ``EigenTrajectory/model.py`` ``EigenTrajectory`` and the
``baseline/*/bridge.py`` adapters; the backbone is ours).

**Backbone contract.** A backbone is an ``nnx.Module`` called as ``backbone(x, pos, mask) -> y`` on one scene:
``x (n, f_in)`` per-agent features, ``pos (n, 2)`` each agent's last observed position relative to the scene mean
(metres; what interaction layers measure distances on), ``mask`` bool ``(n,)`` (False: a padded slot, which must not
influence the real agents), ``y (n, f_out)``. Build it from ``make_backbone(f_in, f_out, rngs)`` — the wrapper
decides ``f_in`` / ``f_out``, so the *same* backbone class runs in both spaces:

* :class:`ETForecaster` (the paper): ``x = [C_obs; obs_ori]`` (``k + 2`` features, official ``model.py``), the
  backbone predicts ``S·k`` coefficient residuals added to the k-means anchors of the agent's group (moving /
  static), reconstructed with the agent's ET basis and denormalised (paper eq. 4–6, :func:`forecast`). Official
  bridges re-instantiate each backbone with the coefficient index as its time axis; ours treats the ``k + 2``
  numbers as agent features, which is the layout of the collated backbones (PECNet, LB-EBM, AgentFormer bridges).
* :class:`EuclideanForecaster` (the baseline twin, same backbone, same normalisation): ``x = [vec(norm(X)); obs_ori]``
  (``2 T_o + 2`` features), the backbone predicts ``S`` normalised futures ``(S, T_p, 2)`` directly, denormalised
  with the same per-agent parameters. Trained with best-of-S ADE + FDE (no ``L_ET``). The only difference between the
  two is the output space — low-rank coefficients around anchors vs raw coordinates — which is the paper's claim.

The fitted bases and anchors are :class:`ETConstant` variables, not ``nnx.Param``: ``eigenkit.train.TrainState``
(default ``trainable = nnx.Param``) keeps them in ``rest``, so the optimiser neither updates nor decays them (the
official ``nn.Parameter`` s are skipped by torch's AdamW only because their gradient is ``None``).

All modules take one scene; ``jax.vmap`` over scenes (:func:`scene_forecasts`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eigenkit._validate import check_array
from eigenkit.methods.eigentrajectory._anchor import ETAnchors
from eigenkit.methods.eigentrajectory._descriptor import ETBasis, ETDescriptor
from eigenkit.methods.eigentrajectory._loss import _check_mask, backbone_inputs, forecast, scene_offsets
from eigenkit.methods.eigentrajectory._normalizer import TrajNormParams, denormalize, et_norm_params, normalize
from eigenkit.metrics import best_of_ade_fde, masked_mean

if TYPE_CHECKING:
    from jaxtyping import Array, Bool, Float

__all__ = ["ETConstant", "ETForecaster", "EuclideanForecaster", "SocialTransformer", "euclidean_loss",
           "scene_forecasts"]

#: ``make_backbone(in_features, out_features, rngs) -> backbone`` (see the module docstring for the call contract).
BackboneFactory = Callable[[int, int, nnx.Rngs], nnx.Module]
_NEG = -1e9  # additive attention bias of a padded key (finite: a scene of padding only stays finite)


class ETConstant(nnx.Variable):
    """Fitted, frozen state (ET bases, anchors): not an ``nnx.Param``, so the optimiser never sees it."""


class SocialTransformer(nnx.Module):
    """A small interaction backbone: pre-LN transformer over the agents of one scene with a learned
    distance-decay attention bias per head (``bias_ij = −softplus(γ_h) · ‖pos_i − pos_j‖``; the analogue of
    Social-STGCNN's inverse-distance adjacency) and padded agents masked out as keys.

    Args:
      in_features, out_features: per-agent input / output widths.
      hidden: model width; heads: attention heads (``hidden % heads == 0``); layers: blocks; mlp_ratio: MLP width
        multiple.
      rngs: NNX random streams (``params``).
      param_dtype: parameter dtype; inputs are cast to it.

    Call: ``(x (n, in_features), pos (n, 2), mask (n,) bool | None) -> (n, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, *, hidden: int = 64, heads: int = 4, layers: int = 2,
                 mlp_ratio: int = 2, rngs: nnx.Rngs, param_dtype=jnp.float32):
        for name, v in (("in_features", in_features), ("out_features", out_features), ("hidden", hidden),
                        ("heads", heads), ("layers", layers), ("mlp_ratio", mlp_ratio)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.in_features, self.out_features, self.heads = int(in_features), int(out_features), int(heads)
        self.dtype = param_dtype
        kw = dict(rngs=rngs, param_dtype=param_dtype, dtype=param_dtype)
        self.embed = nnx.Linear(in_features, hidden, **kw)
        self.norm1 = nnx.List([nnx.LayerNorm(hidden, **kw) for _ in range(layers)])
        self.qkv = nnx.List([nnx.Linear(hidden, 3 * hidden, **kw) for _ in range(layers)])
        self.proj = nnx.List([nnx.Linear(hidden, hidden, **kw) for _ in range(layers)])
        self.norm2 = nnx.List([nnx.LayerNorm(hidden, **kw) for _ in range(layers)])
        self.fc1 = nnx.List([nnx.Linear(hidden, mlp_ratio * hidden, **kw) for _ in range(layers)])
        self.fc2 = nnx.List([nnx.Linear(mlp_ratio * hidden, hidden, **kw) for _ in range(layers)])
        # softplus(γ) starts at 1 / m for every head: a soft 1-metre-scale neighbourhood
        self.decay = nnx.Param(jnp.full((layers, heads), np.log(np.e - 1.0), param_dtype))
        self.norm_out = nnx.LayerNorm(hidden, **kw)
        self.head = nnx.Linear(hidden, out_features, **kw)

    def __call__(self, x: Float[Array, "n f"], pos: Float[Array, "n 2"], mask: Bool[Array, " n"] | None = None
                 ) -> Float[Array, "n o"]:
        x = check_array(x, "x", ndim=2, shape=(None, self.in_features), kind="floating").astype(self.dtype)
        pos = check_array(pos, "pos", ndim=2, shape=(x.shape[0], 2), kind="floating").astype(self.dtype)
        mask = _check_mask(mask, x.shape[:1])
        n, h = x.shape[0], self.heads
        diff = pos[:, None, :] - pos[None, :, :]
        sq = jnp.sum(diff * diff, axis=-1)
        dist = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1)), jnp.zeros((), sq.dtype))  # finite grad at 0
        key_bias = (jnp.zeros((n,), self.dtype) if mask is None
                    else jnp.where(mask, jnp.zeros((), self.dtype), jnp.asarray(_NEG, self.dtype)))
        z = self.embed(x)
        for i in range(len(self.qkv)):
            q, k, v = jnp.split(self.qkv[i](self.norm1[i](z)).reshape(n, 3, h, -1), 3, axis=1)
            q, k, v = q[:, 0], k[:, 0], v[:, 0]  # (n, h, d)
            d = q.shape[-1]
            logits = jnp.einsum("qhd,khd->hqk", q, k) / jnp.sqrt(jnp.asarray(d, self.dtype))
            logits = logits - jax.nn.softplus(self.decay[...][i])[:, None, None] * dist[None] + key_bias[None, None]
            att = jax.nn.softmax(logits, axis=-1)
            z = z + self.proj[i](jnp.einsum("hqk,khd->qhd", att, v).reshape(n, -1))
            z = z + self.fc2[i](jax.nn.gelu(self.fc1[i](self.norm2[i](z))))
        return self.head(self.norm_out(z))


def _constant(x, dtype) -> ETConstant:
    return ETConstant(jnp.asarray(np.asarray(x), dtype))


class ETForecaster(nnx.Module):
    """A backbone in ET space (the paper's model): ``S`` futures per agent from anchors + predicted residuals.

    Args:
      descriptor: :func:`fit_descriptor` (rank ``k``); anchors: :func:`fit_anchors` (``S`` per group).
      make_backbone: ``(in_features = k + 2, out_features = S·k, rngs) -> backbone`` (module docstring).
      rngs: NNX random streams for the backbone.
      dtype: dtype of the frozen constants (and the computation).

    Call: ``(obs (n, T_o, 2), mask (n,) | None) -> (futures (n, S, T_p, 2), coefficients (n, S, k))``.
    """

    def __init__(self, descriptor: ETDescriptor, anchors: ETAnchors, make_backbone: BackboneFactory, *,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        if not isinstance(descriptor, ETDescriptor) or not isinstance(anchors, ETAnchors):
            raise TypeError("descriptor must be an ETDescriptor (fit_descriptor) and anchors an ETAnchors "
                            f"(fit_anchors), got {type(descriptor).__name__} and {type(anchors).__name__}")
        k = descriptor.moving.u_obs.shape[1]
        s = anchors.moving.shape[0]
        if anchors.moving.shape[1] != k or anchors.static.shape != anchors.moving.shape:
            raise ValueError(f"anchors must be (S, k = {k}) per group, got {anchors.moving.shape} / "
                             f"{anchors.static.shape}")
        self.k, self.num_samples, self.dtype = int(k), int(s), dtype
        # a variable, not a Python attribute: one compiled step serves every scene (thresholds differ per scene)
        self.static_dist = ETConstant(jnp.asarray(float(descriptor.static_dist), dtype))
        self.obs_len = descriptor.moving.u_obs.shape[0] // 2
        self.pred_len = descriptor.moving.u_pred.shape[0] // 2
        self.u = nnx.Dict({f"{g}_{part}": _constant(getattr(getattr(descriptor, g), part), dtype)
                           for g in ("moving", "static") for part in ETBasis._fields})
        self.anchors = nnx.Dict({g: _constant(getattr(anchors, g), dtype) for g in ("moving", "static")})
        self.backbone = make_backbone(self.k + 2, self.num_samples * self.k, rngs)

    def descriptor(self) -> ETDescriptor:
        """The frozen descriptor as arrays (for :func:`et_project` and friends)."""
        basis = {g: ETBasis(*(self.u[f"{g}_{p}"][...] for p in ETBasis._fields)) for g in ("moving", "static")}
        return ETDescriptor(basis["moving"], basis["static"], self.static_dist[...])

    def anchor_set(self) -> ETAnchors:
        return ETAnchors(self.anchors["moving"][...], self.anchors["static"][...])

    def __call__(self, obs: Float[Array, "n to 2"], mask: Bool[Array, " n"] | None = None
                 ) -> tuple[Float[Array, "n s tp 2"], Float[Array, "n s k"]]:
        obs = check_array(obs, "obs", ndim=3, shape=(None, self.obs_len, 2), kind="floating").astype(self.dtype)
        desc = self.descriptor()
        x = backbone_inputs(obs, desc, mask)
        residual = self.backbone(x, x[:, self.k:], mask).reshape(obs.shape[0], self.num_samples, self.k)
        return forecast(obs, residual.astype(self.dtype), desc, self.anchor_set())


class EuclideanForecaster(nnx.Module):
    """The Euclidean twin of :class:`ETForecaster`: the same backbone predicting ``S`` normalised futures directly
    (same ET normalisation, moving / static split by ``static_dist``; no descriptor, no anchors).

    Args:
      static_dist: the scene's moving / static threshold (as the descriptor's).
      make_backbone: ``(in_features = 2 T_o + 2, out_features = S·T_p·2, rngs) -> backbone``.
      num_samples: ``S``; obs_len, pred_len: ``T_o``, ``T_p``.

    Call: ``(obs (n, T_o, 2), mask (n,) | None) -> futures (n, S, T_p, 2)``.
    """

    def __init__(self, static_dist: float, make_backbone: BackboneFactory, *, num_samples: int = 20,
                 obs_len: int = 8, pred_len: int = 12, rngs: nnx.Rngs, dtype=jnp.float32):
        self.num_samples, self.dtype = int(num_samples), dtype
        self.static_dist = ETConstant(jnp.asarray(float(static_dist), dtype))  # traced: one compile for all scenes
        self.obs_len, self.pred_len = int(obs_len), int(pred_len)
        self.backbone = make_backbone(2 * self.obs_len + 2, self.num_samples * self.pred_len * 2, rngs)

    def __call__(self, obs: Float[Array, "n to 2"], mask: Bool[Array, " n"] | None = None
                 ) -> Float[Array, "n s tp 2"]:
        obs = check_array(obs, "obs", ndim=3, shape=(None, self.obs_len, 2), kind="floating").astype(self.dtype)
        mask = _check_mask(mask, obs.shape[:1])
        params, _ = et_norm_params(obs, self.static_dist[...])
        ori = scene_offsets(params.origin, mask)
        x = jnp.concatenate([normalize(obs, params).reshape(obs.shape[0], -1), ori], axis=-1)
        y = self.backbone(x, ori, mask).astype(self.dtype).reshape(obs.shape[0], self.num_samples, self.pred_len, 2)
        per_sample = TrajNormParams(params.origin[:, None, :], params.rotation[:, None], params.scale[:, None])
        return denormalize(y, per_sample)


def euclidean_loss(futures: Float[Array, "n s tp 2"], gt: Float[Array, "n tp 2"], mask: Bool[Array, " n"] | None = None
                   ) -> tuple[Float[Array, ""], dict[str, jax.Array]]:
    """The Euclidean twin's loss: ``L_ADE + L_FDE`` (best-of-S, independent minima; :func:`eigentrajectory_loss`
    without ``L_ET``), means over the real agents; NaN → 0 as the official trainer."""
    futures = check_array(futures, "futures", ndim=4, shape=(None, None, None, 2), kind="floating")
    gt = check_array(gt, "gt", ndim=3, shape=(futures.shape[0], futures.shape[2], 2), kind="floating")
    mask = _check_mask(mask, futures.shape[:1])
    if mask is not None:
        futures = jnp.where(mask[:, None, None, None], futures, jnp.zeros((), futures.dtype))
        gt = jnp.where(mask[:, None, None], gt, jnp.zeros((), gt.dtype))
    ade, fde = best_of_ade_fde(futures, gt)
    l_ade, l_fde = masked_mean(ade, mask), masked_mean(fde, mask)
    total = l_ade + l_fde
    return jnp.where(jnp.isnan(total), jnp.zeros((), total.dtype), total), {"ade": l_ade, "fde": l_fde}


def scene_forecasts(model: ETForecaster | EuclideanForecaster, obs: Float[Array, "b n to 2"],
                    mask: Bool[Array, "b n"]) -> Float[Array, "b n s tp 2"]:
    """``S`` futures for every agent of a batch of padded scenes (``jax.vmap`` of the one-scene model)."""
    obs = check_array(obs, "obs", ndim=4, shape=(None, None, None, 2), kind="floating")
    mask = check_array(mask, "mask", ndim=2, shape=obs.shape[:2], kind="bool")

    def one(o, m):
        out = model(o, m)
        return out[0] if isinstance(out, tuple) else out

    return jax.vmap(one)(obs, mask)
