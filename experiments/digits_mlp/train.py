"""Train/evaluate an MLP on sklearn digits with eigenkit.train (data parallel, Orbax resume)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
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
    logits = model(batch["x"], rngs=nnx.Rngs(dropout=key))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    acc = jnp.mean((jnp.argmax(logits, -1).astype(batch["y"].dtype) == batch["y"]).astype(jnp.float32))
    return loss, {"accuracy": acc}


def metric_fn(model, batch):
    logits = model(batch["x"])
    correct = (jnp.argmax(logits, -1).astype(batch["y"].dtype) == batch["y"]).astype(jnp.float32)
    return {"accuracy": jnp.sum(correct), "count": jnp.asarray(correct.shape[0], jnp.float32)}


def make_state(config, mesh, tx: optax.GradientTransformation | None = None):
    model = MLP(config.hidden, config.dropout, rngs=nnx.Rngs(config.seed))
    if tx is None:
        tx = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    return train.TrainState.create(model, tx, mesh=mesh)


def make_batches(x, y, batch_size: int, seed: int):
    """batch(step) = a pure function of the step: epoch-wise seeded permutations, drop-last."""
    per_epoch = len(x) // batch_size

    def batches(step: int):
        epoch, i = divmod(step, per_epoch)
        perm = np.random.default_rng([seed, epoch]).permutation(len(x))
        idx = perm[i * batch_size:(i + 1) * batch_size]
        return {"x": x[idx], "y": y[idx]}

    return batches


def evaluate(state, eval_step, x, y, mesh, batch_size: int) -> dict[str, float]:
    """Exact accuracy over all of (x, y): full batches plus a zero-weight padded last batch."""
    n_dev = mesh.devices.size
    bs = max(n_dev, (batch_size // n_dev) * n_dev)
    sums = []
    for i in range(0, len(x), bs):
        xb, yb = x[i:i + bs], y[i:i + bs]
        pad = (-len(xb)) % n_dev
        if pad:  # pad to a multiple of the device count and subtract the padding's contribution below
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.full((pad,), -1, yb.dtype)])  # label -1 never counts as correct
        m = eval_step(state, train.shard_batch({"x": xb, "y": yb}, mesh))
        m = dict(m, count=m["count"] - pad)
        sums.append(m)
    return train.accumulate(sums)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """Train, evaluate on the held-out digits, and compare with a logistic-regression baseline."""
    mesh = train.make_mesh()
    xtr, ytr, xte, yte = load_split(config)
    state = make_state(config, mesh)
    step = train.make_train_step(loss_fn, mesh=mesh)
    eval_step = train.make_eval_step(metric_fn, mesh=mesh)
    state, _ = train.fit(
        state, step,
        batches=make_batches(xtr, ytr, config.batch_size, config.seed),
        num_steps=config.num_steps, workdir=workdir, config=config, mesh=mesh, seed=config.seed,
        eval_fn=lambda s: evaluate(s, eval_step, xte, yte, mesh, config.batch_size),
        eval_every=config.eval_every, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
    )
    test = evaluate(state, eval_step, xte, yte, mesh, config.batch_size)
    out = {"test_accuracy": test["accuracy"]}
    try:  # baseline in the same run: multinomial logistic regression on the same split
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
        out["baseline_logreg_test_accuracy"] = float(clf.score(xte, yte))
    except ImportError:
        pass
    return out
