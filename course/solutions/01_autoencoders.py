"""Solutions to the exercises of lesson 1 (autoencoders). Run: python course/solutions/01_autoencoders.py"""

import numpy as np


def tied_autoencoder(x, W):
    """xhat = x W W^T. W is used twice, by the encoder (z = x W) and by the decoder
    (xhat = z W^T): its gradient is the sum of the two paths' gradients."""
    B = x.shape[0]
    z = x @ W  # (B, L)
    xhat = z @ W.T  # (B, D)
    G = 2 * (xhat - x) / B  # (B, D): d loss / d xhat
    dW = G.T @ z + x.T @ (G @ W)  # decoder path (D, L) + encoder path (D, L)
    return ((xhat - x) ** 2).sum(axis=1).mean(), dW


def pca_reconstruction(x, L):
    """The best L-dimensional linear code: project the centred data on its top L directions."""
    mean = x.mean(axis=0)  # (D,)
    _, _, Vt = np.linalg.svd(x - mean, full_matrices=False)  # rows of Vt: principal directions
    V = Vt[:L].T  # (D, L); the encoder is z = (x - mean) V, the decoder mean + z V^T
    return mean + (x - mean) @ V @ V.T


def fraction_near(samples, codes, radius):
    """Share of samples whose nearest code is within radius; all pairs in one product."""
    squared = (samples**2).sum(1)[:, None] + (codes**2).sum(1)[None, :] - 2 * samples @ codes.T
    nearest = np.sqrt(np.maximum(squared.min(axis=1), 0))  # (n,)
    return float((nearest <= radius).mean())


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_01_autoencoders as C

    C.check_tied_autoencoder(tied_autoencoder, strict=True)
    C.check_pca_reconstruction(pca_reconstruction, strict=True)
    C.check_fraction_near(fraction_near, strict=True)


if __name__ == "__main__":
    check_all()
