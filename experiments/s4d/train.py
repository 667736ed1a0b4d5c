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
        prenorm=config.prenorm, norm=Norm[config.norm.upper()],
        init=ssm.Init[config.init.upper()], discretization=ssm.Discretization[config.discretization.upper()],
        dt_min=config.dt_min, dt_max=config.dt_max, rngs=nnx.Rngs(config.seed),
    )


def loss_fn(model, batch, key):
    return train.classification_loss(model(batch["x"], rngs=nnx.Rngs(dropout=key)), batch["y"])


def metric_fn(model, batch):
    return train.classification_metrics(model(batch["x"]), batch["y"], batch["mask"])


def evaluate(state, eval_step, x, y, mesh, batch_size: int) -> dict[str, float]:
    return train.evaluate_dataset(state, eval_step, {"x": x, "y": y}, mesh, batch_size)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    mesh = train.make_mesh()
    xtr, ytr, xte, yte = load(config)
    model = make_model(config)
    params = nnx.state(model, nnx.Param)
    tx = s4d_optimizer(
        params, lr=config.lr, weight_decay=config.weight_decay, ssm_lr=config.ssm_lr,
        total_steps=config.num_steps, warmup_steps=config.warmup_steps, c_with_ssm_lr=config.c_with_ssm_lr,
    )
    state = train.TrainState.create(model, tx, mesh=mesh)
    step = train.make_train_step(loss_fn, mesh=mesh)
    eval_step = train.make_eval_step(metric_fn, mesh=mesh)
    state, _ = train.fit(
        state, step,
        batches=train.epoch_batches({"x": xtr, "y": ytr}, config.batch_size, seed=config.seed),
        num_steps=config.num_steps, workdir=workdir, config=config, mesh=mesh, seed=config.seed,
        eval_fn=lambda s: evaluate(s, eval_step, xte, yte, mesh, config.eval_batch_size),
        eval_every=config.eval_every, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
    )
    out = {"test_accuracy": evaluate(state, eval_step, xte, yte, mesh, config.eval_batch_size)["accuracy"]}
    out["num_params"] = float(sum(v.size for v in jax.tree.leaves(state.params)))
    if config.baseline:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():  # a fixed iteration budget is the point of this baseline
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(max_iter=config.baseline_max_iter).fit(xtr[..., 0], ytr)
        out["baseline_logreg_test_accuracy"] = float(clf.score(xte[..., 0], yte))
    return out
