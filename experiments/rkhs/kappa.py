"""Study ``rkhs.kappa``: the augmentation complexity κ² depends on the masking *strategy*, not only its rate.

On binary sequences of length ``L`` (uniform ``P_X``), for each mask rate ``α``: i.i.d. masking (each token masked
with probability ``α``; κ² = (2 − α)^L by the product formula) against span masking (one contiguous block of
``m = round(α L)`` tokens at a uniform start, the same expected number of masked tokens). Both kernels are computed
exactly by enumeration (``rkhs.augmentation_kernel``), and κ² of span masking also by the Monte-Carlo estimator
(``rkhs.mc_kappa_sq``) as a check of the estimator on an augmentation without a product formula. Reported: κ² of
each, and the top eigenvalues of span masking's operator.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from eigenkit.methods import rkhs
from experiments._contract import Result, SeedSweep, markdown_table
from experiments.rkhs.train import cube

PRESETS = ("smoke", "cpu")


def get_config(preset: str) -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    c = ml_collections.ConfigDict(dict(
        description="augmentation complexity kappa^2 of i.i.d. vs span masking at equal mask rate (8-bit sequences, "
                    "exact enumeration + Monte-Carlo check)",
        expected_runtime="~20 s on 2 CPU cores", length=8, alphas=(0.25, 0.5, 0.75), n_aug=2000, seed=0))
    if preset == "smoke":
        c.update(dict(description="rkhs.kappa smoke", expected_runtime="~5 s", length=4, alphas=(0.5,), n_aug=200))
    return c


def span_augmentations(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Span masking: one block of ``m`` masked tokens at a uniform start in ``[0, L − m]``. Returns the distinct
    augmented sequences ``(n_a, L)`` and ``P[x, a] = p(a | x)``."""
    n, length = x.shape
    starts = length - m + 1
    augs = {}
    rows = []
    for xi in x:
        p = {}
        for s in range(starts):
            a = xi.copy()
            a[s:s + m] = rkhs.MASK
            key = tuple(a.tolist())
            p[key] = p.get(key, 0.0) + 1.0 / starts
            augs.setdefault(key, len(augs))
        rows.append(p)
    mat = np.zeros((n, len(augs)))
    for i, p in enumerate(rows):
        for key, v in p.items():
            mat[i, augs[key]] = v
    return np.array(list(augs), dtype=np.int64), mat


def train_and_evaluate(config, workdir: str) -> Result:
    import pathlib

    x = cube(int(config.length))
    length = x.shape[1]
    sweep, rows, extras = SeedSweep(), [], {}
    for alpha in config.alphas:
        m = int(round(float(alpha) * length))
        with jax.enable_x64(True):
            _, p_iid = rkhs.masking_augmentations(x, float(alpha))
            k_iid = rkhs.augmentation_kernel(jnp.asarray(p_iid))
            _, p_span = span_augmentations(x, m)
            k_span = rkhs.augmentation_kernel(jnp.asarray(p_span))
            kiid, kspan = float(rkhs.kappa_sq(k_iid)), float(rkhs.kappa_sq(k_span))
            lam_span = np.asarray(rkhs.kernel_spectrum(k_span)[0])
            lam_iid = np.asarray(rkhs.kernel_spectrum(k_iid)[0])

            def sample(key, xi, m=m):
                start = jax.random.randint(key, (), 0, length - m + 1)
                pos = jnp.arange(length)
                return jnp.where((pos >= start) & (pos < start + m), rkhs.MASK, xi)

            def log_p(a, xi, m=m):
                starts = jnp.arange(length - m + 1)
                pos = jnp.arange(length)
                blocks = (pos[None, :] >= starts[:, None]) & (pos[None, :] < starts[:, None] + m)
                match = jnp.all(jnp.where(blocks, a[None, :] == rkhs.MASK, a[None, :] == xi[None, :]), axis=1)
                return jnp.log(jnp.mean(match.astype(jnp.float64)))

            mc, _ = rkhs.mc_kappa_sq(sample, log_p, jnp.asarray(x), key=jax.random.key(int(config.seed)),
                                     n_aug=int(config.n_aug))
            mc = float(mc)
        seed = int(config.seed)
        sweep.add(f"kappa_sq_span_a{alpha}", kspan, seed=seed, higher_is_better=False)
        sweep.add(f"kappa_sq_iid_a{alpha}", kiid, seed=seed, baseline=True, higher_is_better=False)
        extras[f"mc_kappa_sq_span_a{alpha}"] = mc
        extras[f"iid_exact_a{alpha}"] = (2.0 - float(alpha)) ** length
        rows.append([alpha, m, kiid, (2.0 - float(alpha)) ** length, kspan, mc, float(lam_iid[1]),
                     float(lam_span[1])])
    wd = pathlib.Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "kappa.md").write_text(markdown_table(
        ["alpha", "span length", "kappa^2 iid (enumerated)", "(2 - alpha)^L", "kappa^2 span (enumerated)",
         "kappa^2 span (Monte Carlo)", "lambda_1 iid", "lambda_1 span"], rows) + "\n")
    return Result(sweep.metrics(), extras=extras, artifacts={"table": str(wd / "kappa.md")})
