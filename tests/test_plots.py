"""Pictures: real PNG files, written atomically like checkpoints."""

import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from tinyvae.tools import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_each_picture_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((16, 64))
    history = [dict(epoch=e, train_loss=3.0 - e, test_loss=3.1 - e, recon=2.0, kl=1.0 - e / 4)
               for e in (1, 2)]  # fmt: skip
    plots.save_grid(tmp_path / "grid.png", images, (8, 8), row_labels=[0, 1])
    plots.save_reconstructions(tmp_path / "recon.png", images[:8], images[8:], (8, 8))
    plots.save_loss_curves(tmp_path / "loss.png", history)
    plots.save_latent_scatter(tmp_path / "latent.png", rng.standard_normal((50, 2)),
                              rng.integers(0, 10, 50))  # fmt: skip
    for name in ("grid", "recon", "loss", "latent"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(os.listdir(tmp_path)) == ["grid.png", "latent.png", "loss.png", "recon.png"]


def test_a_picture_cut_short_leaves_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "samples.png"
    images = np.random.default_rng(1).random((8, 64))
    plots.save_grid(path, images, (8, 8))
    before = path.read_bytes()

    def interrupted(self, f, **options):
        f.write(PNG_SIGNATURE + b"half a picture")
        raise KeyboardInterrupt  # Ctrl-C in the middle of drawing

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plots.save_grid(path, 1 - images, (8, 8))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["samples.png"]  # no temporary file left behind
