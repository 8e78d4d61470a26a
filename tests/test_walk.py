"""Latent walks: the paths, the smoothness measure, and ``sample --walk`` for every kind of model."""

import numpy as np
import pytest
from PIL import Image

from tinyvae.core.model import VAE
from tinyvae.sample import main as sample_main
from tinyvae.tools import pretrained, walk
from tinyvae.tools.cli import run
from tinyvae.train import main as train_main

TINY = ["--dataset", "digits", "--no-progress", "--epochs", "1", "--threads", "1"]


def test_every_point_of_a_great_circle_is_a_draw_from_the_prior():
    z = walk.great_circle(4000, 3, 8, np.random.default_rng(0))  # (8, 4000, 3)
    assert z.shape == (8, 4000, 3)
    for frame in z:  # each frame: 4,000 draws of N(0, I)
        assert np.abs(frame.mean(axis=0)).max() < 0.1
        assert np.abs(np.cov(frame.T) - np.eye(3)).max() < 0.1
    again = walk.great_circle(4000, 3, 9, np.random.default_rng(0))  # the same circle, finer
    np.testing.assert_allclose(again[0], z[0])  # both start at u


def test_the_class_path_visits_every_class_and_mixes_neighbours():
    weights = walk.class_path(10, 40)  # 4 frames per class
    np.testing.assert_allclose(weights.sum(axis=1), 1)
    assert weights.min() >= 0
    np.testing.assert_array_equal(weights[::4], np.eye(10))  # frame 4k is class k exactly
    np.testing.assert_allclose(weights[2, :2], [0.5, 0.5])  # halfway from 0 to 1
    np.testing.assert_allclose(weights[38, [9, 0]], [0.5, 0.5])  # and round again to 0


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_one_hot_weights_decode_as_the_labels_do(arch):
    model = VAE(64, hidden=(16,), latent_dim=3, num_classes=4, dtype="float64", arch=arch,
                channels=(4, 8), image_shape=(8, 8) if arch == "conv" else None)  # fmt: skip
    z = np.random.default_rng(1).standard_normal((6, 3))
    labels = np.array([0, 1, 2, 3, 2, 1])
    np.testing.assert_allclose(
        walk.decode_mixed(model, z, np.eye(4)[labels]), model.decode(z, labels), rtol=1e-12
    )


def test_the_smoothness_measure():
    """Finer walks take smaller steps; the same frames in a shuffled order take large ones."""
    model = pretrained.pretrained("digits-2d")
    coarse, fine = (walk.walk_images(model, 16, frames) for frames in (15, 120))
    largest_coarse, _ = walk.smoothness(coarse)
    largest_fine, average_fine = walk.smoothness(fine)
    assert largest_fine < 0.5 * largest_coarse  # 8 times the frames: much smaller steps
    assert average_fine <= largest_fine < 0.02  # a loose bound on a pixel's mean change
    shuffled = fine[np.random.default_rng(0).permutation(len(fine))]
    assert walk.smoothness(shuffled)[0] > 3 * largest_fine
    still = np.repeat(fine[:1], 5, axis=0)
    assert walk.smoothness(still) == (0.0, 0.0)


def frames_of(path):
    with Image.open(path) as image:
        return image.n_frames, image.size


@pytest.mark.parametrize("name", ["digits-2d", "fashion-mlp", "fashion-conv"])
def test_sample_walk_writes_a_gif_for_each_shipped_model(name, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    argv = ["--pretrained", name, "--walk", "--frames", "12", "--n", "4", "--out", str(out)]
    assert run(sample_main, argv) == 0
    assert frames_of(out)[0] == 12
    said = capsys.readouterr().out
    assert "12 frames of 4 images" in said and "smoothness: consecutive frames differ by" in said


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_a_conditional_model_walks_in_one_class_and_through_the_classes(arch, tmp_path):
    folder = tmp_path / "cvae"
    flags = ["--arch", "conv", "--channels", "8,16"] if arch == "conv" else ["--hidden", "32"]
    assert run(train_main, [*TINY, *flags, "--conditional", "--out", str(folder)]) == 0
    for label, frames in (("3", 6), ("all", 20)):
        out = tmp_path / f"walk-{label}.gif"
        argv = ["--run", str(folder), "--walk", "--label", label, "--frames", str(frames)]
        assert run(sample_main, [*argv, "--n", "2", "--out", str(out)]) == 0
        assert frames_of(out)[0] == frames


def test_a_walk_is_the_same_for_the_same_seed(tmp_path):
    model = pretrained.pretrained("digits-2d")
    a, b = (walk.walk_images(model, 3, 5, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, walk.walk_images(model, 3, 5, seed=5))


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--frames", "0"], "--frames must be an integer of at least 2, at most 1,000; got '0'"),
        (["--frames", "1"], "--frames must be an integer of at least 2"),
        (["--frames", "1000000000"], "at most 1,000; got '1000000000'"),
        (["--frames", "1e9"], "--frames must be"),
        (["--duration", "0"], "--duration must be a number above 0 and at most 600"),
        (["--duration", "nan"], "--duration must be"),
        (["--out", "walk.avi"], "cannot write an animation named walk.avi"),
        (["--out", "walk.png"], "a walk is written as .gif (or .mp4 where ffmpeg is installed)"),
        (["--n", "200", "--frames", "1000"], "asks for 200,000 images"),
        (["--label", "3"], "--label needs a conditional run"),
    ],
)
def test_bad_walks_get_one_line_and_exit_2(extra, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(sample_main, ["--pretrained", "digits-2d", "--walk", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing written


def test_walk_flags_without_a_walk_are_refused(capsys):
    assert run(sample_main, ["--pretrained", "digits-2d", "--frames", "30"]) == 2
    assert "--frames and --duration shape a walk: add --walk" in capsys.readouterr().err


def test_an_mp4_needs_ffmpeg(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(walk.animation.writers, "is_available", lambda name: name != "ffmpeg")
    argv = ["--pretrained", "digits-2d", "--walk", "--out", str(tmp_path / "w.mp4")]
    assert run(sample_main, argv) == 2
    err = capsys.readouterr().err
    assert "needs ffmpeg, which is not on the PATH here" in err and err.count("\n") == 1


@pytest.mark.skipif(not walk.animation.writers.is_available("ffmpeg"), reason="no ffmpeg here")
def test_an_mp4_where_ffmpeg_is_installed(tmp_path):
    out = tmp_path / "w.mp4"
    argv = ["--pretrained", "digits-2d", "--walk", "--frames", "10", "--out", str(out)]
    assert run(sample_main, argv) == 0 and out.stat().st_size > 1000


def test_a_walk_on_each_backend_matches_numpy(backend):
    """The same walk decoded on the GPU (or the stand-in for CuPy) as on NumPy, float32."""
    from tinyvae.tools import checkpoint

    saved = pretrained.load_checkpoint("fashion-conv")
    on_numpy, here = (checkpoint.build_model(saved, b) for b in ("numpy", backend.name))
    np.testing.assert_allclose(
        walk.walk_images(here, 3, 4), walk.walk_images(on_numpy, 3, 4), atol=1e-5
    )
    kwargs = dict(hidden=(8,), latent_dim=2, num_classes=3, seed=1)
    conditional = VAE(64, backend=backend.name, **kwargs), VAE(64, **kwargs)
    mixed = [walk.walk_images(m, 2, 6, label="all") for m in conditional]
    np.testing.assert_allclose(mixed[0], mixed[1], atol=1e-5)
