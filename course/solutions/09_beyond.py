"""Solutions to the exercises of lesson 9 (beyond the plain VAE). Run: python course/solutions/09_beyond.py"""

import numpy as np


def one_hot_inputs(x, labels, num_classes):
    """[x | one-hot(labels)]: (B, n) and (B,) -> (B, n + num_classes), what a CVAE's networks read."""
    one_hot = np.zeros((len(labels), num_classes), dtype=x.dtype)
    one_hot[np.arange(len(labels)), labels] = 1  # row b: a 1 in column labels[b]
    return np.concatenate([x, one_hot], axis=1)


def free_bits(mu, logvar, floor):
    """sum_u max(floor, mean_b KL_bu) and its gradient: a unit below the floor costs the
    constant floor (gradient 0); above it, its batch-mean KL (gradient 1/B of lesson 4's)."""
    B = len(mu)
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1 - logvar)  # (B, L)
    per_unit = kl.mean(axis=0)  # (L,)
    charged = (per_unit > floor) / B  # (L,): 1/B where the KL is charged, else 0
    return np.maximum(floor, per_unit).sum(), mu * charged, 0.5 * (np.exp(logvar) - 1) * charged


def importance_weights(log_w):
    """log_w (K, B) -> w_k / sum_j w_j per image (column), computed after subtracting the max,
    and the effective sample size 1 / sum_k w_k^2 of each column, (B,)."""
    shifted = np.exp(log_w - log_w.max(axis=0, keepdims=True))  # largest entry of each column: 1
    weights = shifted / shifted.sum(axis=0, keepdims=True)
    return weights, 1 / (weights**2).sum(axis=0)


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_09_beyond as C

    C.check_one_hot_inputs(one_hot_inputs, strict=True)
    C.check_free_bits(free_bits, strict=True)
    C.check_importance_weights(importance_weights, strict=True)


if __name__ == "__main__":
    check_all()
