"""Frozen-feature probes."""

from __future__ import annotations

import numpy as np


def intra_class_variability(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean within-class cosine distance / mean overall cosine distance (Kornblith et al. 2021; = 1 − R²).

    Uses the identity mean_{i,j} (1 − x̂_i·x̂_j) = 1 − ‖mean x̂‖² over all ordered pairs (incl. i = j), per class and
    overall, so it is O(n D).

    Args:
      features: ``(n, D)`` float features.
      labels: ``(n,)`` integer class labels.

    Returns:
      The variability ratio (0: every class collapsed to one direction; about 1: classes indistinguishable).

    Example:
      >>> import numpy as np
      >>> from eigenkit.metrics import intra_class_variability
      >>> f = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
      >>> round(intra_class_variability(f, np.array([0, 0, 1, 1])), 3)
      0.005

    Raises:
      ValueError: ``features`` is not 2-D or ``labels`` does not match its first axis.
    """
    f, y = np.asarray(features), np.asarray(labels)
    if f.ndim != 2 or y.shape != (f.shape[0],):
        raise ValueError(f"features must be (n, D) and labels (n,); got {f.shape} and {y.shape}")
    fh = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    overall = 1.0 - float(np.sum(fh.mean(0) ** 2))
    within = [1.0 - float(np.sum(fh[y == c].mean(0) ** 2)) for c in np.unique(y)]
    return float(np.mean(within) / max(overall, 1e-12))


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray, *, seed: int = 0, max_iter: int = 2000) -> float:
    """Test accuracy of multinomial logistic regression on standardised frozen features (scikit-learn).

    Args:
      train_features, test_features: ``(n, D)`` and ``(m, D)`` features of a frozen encoder.
      train_labels, test_labels: ``(n,)`` and ``(m,)`` integer labels.
      seed: the solver's ``random_state``.
      max_iter: solver iterations.

    Returns:
      Accuracy in ``[0, 1]``.

    Example:
      >>> import numpy as np
      >>> from eigenkit.metrics import linear_probe
      >>> x = np.random.default_rng(0).normal(size=(40, 3)); y = (x[:, 0] > 0).astype(int)
      >>> linear_probe(x, y, x, y)
      1.0

    Raises:
      ImportError: scikit-learn is missing (``pip install 'eigenkit[experiments]'``).
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("linear_probe needs scikit-learn: pip install 'eigenkit[experiments]'") from e
    sc = StandardScaler().fit(train_features)
    clf = LogisticRegression(max_iter=max_iter, random_state=seed).fit(sc.transform(train_features), train_labels)
    return float(clf.score(sc.transform(test_features), test_labels))
