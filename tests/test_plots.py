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


def test_the_latent_picture_shows_the_two_most_active_units_and_the_class_names(tmp_path):
    rng = np.random.default_rng(2)
    mu = rng.standard_normal((200, 5)) * [0.01, 0.8, 0.02, 0.5, 0.003]  # units 1 and 3 vary
    labels = rng.integers(0, 10, 200)
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot")  # fmt: skip
    fig = plots.save_latent_scatter(tmp_path / "latent.png", mu, labels, class_names=names)
    ax, bar = fig.axes
    assert ax.get_xlabel().startswith("z[1] ") and ax.get_ylabel().startswith("z[3] ")
    assert "of its 5 latent units (2 active)" in ax.get_title()
    assert [t.get_text() for t in bar.get_yticklabels()] == list(names)
    one = plots.save_latent_scatter(tmp_path / "one.png", mu[:, :1], labels)  # L = 1 works too
    assert one.axes[0].get_xlabel().startswith("z[0] ")


def test_the_manifold_says_where_in_the_latent_space_each_image_is(tmp_path):
    values = plots.manifold_values(20)
    fig = plots.save_manifold(tmp_path / "m.png", np.zeros((400, 64)), (8, 8), values)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")
    assert [t.get_text() for t in ax.get_xticklabels()][::4] == ["-1.64", "1.64"]
    assert fig.get_figwidth() >= 9  # 20 x 20 images, each large enough to read


def test_a_named_picture_format_that_cannot_be_written_is_refused(tmp_path):
    from tinyvae.errors import UserError

    assert plots.picture_format(tmp_path / "a.PDF") == "pdf"
    assert plots.picture_format(tmp_path / "noending") == "png"
    with pytest.raises(UserError, match=r"grid\.txt: pictures can be written as .*\.png"):
        plots.save_grid(tmp_path / "grid.txt", np.zeros((4, 64)), (8, 8))
    assert os.listdir(tmp_path) == []
