"""Train/evaluate an MLP on sklearn digits with eigenkit.train (data parallel, Orbax resume)."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import optax
from flax import nnx

from eigenkit import data, train
from experiments._contract import Result, SeedSweep


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


loss_fn, metric_fn = train.classifier_fns(dropout=True)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Train, evaluate on the held-out digits, and compare with a logistic-regression baseline."""
    xtr, ytr, xte, yte = load_split(config)
    model = MLP(config.hidden, config.dropout, rngs=nnx.Rngs(config.seed))
    tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    _, test = train.fit_and_evaluate(model, tx, loss_fn, train_data={"x": xtr, "y": ytr}, config=config,
                                     workdir=workdir, seed=config.seed, metric_fn=metric_fn,
                                     eval_data={"x": xte, "y": yte}, desc="digits_mlp train")
    sweep = SeedSweep()
    sweep.add("test_accuracy", test["accuracy"], seed=config.seed, higher_is_better=True)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)  # baseline in the same run, same split
    sweep.add("logreg_test_accuracy", float(clf.score(xte, yte)), seed=config.seed, baseline=True,
              higher_is_better=True)
    return Result(sweep.metrics())
