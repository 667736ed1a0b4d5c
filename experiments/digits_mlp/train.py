"""Train/evaluate an MLP on sklearn digits with eigenkit.train (data parallel, Orbax resume)."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import data, train


class MLP(nnx.Module):
    """x (B, 64) -> Linear -> BatchNorm -> ReLU -> Dropout -> Linear -> logits (B, 10)."""

    def __init__(self, hidden: int, dropout: float, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(64, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, momentum=0.9, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x, *, rngs: nnx.Rngs | None = None):
        return self.fc2(self.drop(jax.nn.relu(self.bn(self.fc1(x))), rngs=rngs))


def load_split(config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratification-free split of the 1,797 digits; features scaled to [0, 1]."""
    images, labels = data.digits()
    x = images.reshape(len(images), -1) / np.float32(16.0)
    perm = np.random.default_rng(config.seed).permutation(len(x))
    n_test = int(round(config.test_fraction * len(x)))
    test, tr = perm[:n_test], perm[n_test:]
    return x[tr], labels[tr], x[test], labels[test]


def loss_fn(model, batch, key):
    return train.classification_loss(model(batch["x"], rngs=nnx.Rngs(dropout=key)), batch["y"])


def metric_fn(model, batch):
    return train.classification_metrics(model(batch["x"]), batch["y"], batch["mask"])


def make_state(config, mesh, tx: optax.GradientTransformation | None = None):
    model = MLP(config.hidden, config.dropout, rngs=nnx.Rngs(config.seed))
    if tx is None:
        tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return train.TrainState.create(model, tx, mesh=mesh)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Train, evaluate on the held-out digits, and compare with a logistic-regression baseline."""
    mesh = train.make_mesh()
    xtr, ytr, xte, yte = load_split(config)
    state = make_state(config, mesh)
    step = train.make_train_step(loss_fn, mesh=mesh)
    eval_step = train.make_eval_step(metric_fn, mesh=mesh)
    state, _ = train.fit(
        state, step,
        batches=train.epoch_batches({"x": xtr, "y": ytr}, config.batch_size, seed=config.seed),
        num_steps=config.num_steps, workdir=workdir, config=config, mesh=mesh, seed=config.seed,
        eval_fn=lambda s: train.evaluate_dataset(s, eval_step, {"x": xte, "y": yte}, mesh, config.batch_size),
        eval_every=config.eval_every, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
    )
    test = train.evaluate_dataset(state, eval_step, {"x": xte, "y": yte}, mesh, config.batch_size)
    out = {"test_accuracy": test["accuracy"]}
    try:  # baseline in the same run: multinomial logistic regression on the same split
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
        out["baseline_logreg_test_accuracy"] = float(clf.score(xte, yte))
    except ImportError:
        pass
    return out
