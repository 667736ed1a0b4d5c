"""S4D on sequential Fashion-MNIST: 784 grey-level pixels fed one at a time (L = 784, d_input = 1).

The model and optimiser follow the official ``example.py`` (encoder -> residual S4D blocks with GLU output ->
mean pooling -> decoder; AdamW with the SSM parameters (A, dt, B) on their own learning rate and zero weight decay,
cosine schedule). Baseline in the same run: multinomial logistic regression on the same pixels and split.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
from flax import nnx

from eigenkit import data, ssm, train
from eigenkit.methods.s4d import Norm, S4DModel, s4d_optimizer
from experiments._contract import Result, SeedSweep, config_enum

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics (on [0, 1])


def load(config):
    """Seeded subsets of the train / test splits as (n, 784, 1) float32 sequences."""
    xtr, ytr = data.fashion_mnist("train")
    xte, yte = data.fashion_mnist("test")
    rng = np.random.default_rng(config.seed)
    itr = rng.permutation(len(xtr))[: config.n_train]
    ite = rng.permutation(len(xte))[: config.n_test]

    def prep(x):
        return ((x.reshape(len(x), 784, 1).astype(np.float32) / 255.0) - MEAN) / STD

    return prep(xtr[itr]), ytr[itr].astype(np.int32), prep(xte[ite]), yte[ite].astype(np.int32)


def make_model(config) -> S4DModel:
    return S4DModel(
        1, 10,
        d_model=config.d_model, d_state=config.d_state, n_layers=config.n_layers, dropout=config.dropout,
        prenorm=config.prenorm, norm=config_enum(Norm, config.norm, key="norm"),
        init=config_enum(ssm.Init, config.init, key="init"),
        discretization=config_enum(ssm.Discretization, config.discretization, key="discretization"),
        dt_min=config.dt_min, dt_max=config.dt_max, rngs=nnx.Rngs(config.seed),
    )


loss_fn, metric_fn = train.classifier_fns(dropout=True)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    xtr, ytr, xte, yte = load(config)
    model = make_model(config)
    tx = s4d_optimizer(
        nnx.state(model, nnx.Param), lr=config.learning_rate, weight_decay=config.weight_decay,
        ssm_lr=config.ssm_lr, total_steps=config.num_steps, warmup_steps=config.warmup_steps,
        c_with_ssm_lr=config.c_with_ssm_lr,
    )
    state, test = train.fit_and_evaluate(model, tx, loss_fn, train_data={"x": xtr, "y": ytr}, config=config,
                                         workdir=workdir, seed=config.seed, metric_fn=metric_fn,
                                         eval_data={"x": xte, "y": yte}, desc="s4d train")
    sweep = SeedSweep()
    sweep.add("test_accuracy", test["accuracy"], seed=config.seed, higher_is_better=True)
    extras = {"num_params": int(sum(v.size for v in jax.tree.leaves(state.params)))}
    if config.baseline:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():  # a fixed iteration budget is the point of this baseline
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(max_iter=config.baseline_max_iter).fit(xtr[..., 0], ytr)
        sweep.add("logreg_test_accuracy", float(clf.score(xte[..., 0], yte)), seed=config.seed, baseline=True,
                  higher_is_better=True)
    return Result(sweep.metrics(), extras=extras)
