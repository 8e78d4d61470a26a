"""Solutions to the exercises of lesson 9 (beyond the plain VAE). Run: python course/solutions/09_beyond.py"""

import numpy as np


def one_hot_inputs(x, labels, num_classes):
    """[x | one-hot(labels)]: (B, n) and (B,) -> (B, n + num_classes), what a CVAE's networks read."""
    one_hot = np.zeros((len(labels), num_classes), dtype=x.dtype)
    one_hot[np.arange(len(labels)), labels] = 1  # row b: a 1 in column labels[b]
    return np.concatenate([x, one_hot], axis=1)


def count_active_units(mu, threshold=0.01):
    """mu (n, L): units whose posterior mean varies across the n images, Var > threshold."""
    return int((mu.var(axis=0) > threshold).sum())


def importance_weights(log_w):
    """log_w (K, B) -> w_k / sum_j w_j per image (column), computed after subtracting the max."""
    shifted = np.exp(log_w - log_w.max(axis=0, keepdims=True))  # largest entry of each column: 1
    return shifted / shifted.sum(axis=0, keepdims=True)


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import lesson_checks_more as C

    C.check_one_hot_inputs(one_hot_inputs, strict=True)
    C.check_count_active_units(count_active_units, strict=True)
    C.check_importance_weights(importance_weights, strict=True)


if __name__ == "__main__":
    check_all()
