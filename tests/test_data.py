"""Loading data sets and serving minibatches: shapes, ranges, errors and reproducibility."""

import hashlib
import socket
import time

import numpy as np
import pytest

from tinyvae.core.backend import get_backend
from tinyvae.tools import data, download
from tinyvae.tools.data import Batches, augment, load
from tinyvae.tools.idx import DataError, write_idx

DEBIAN = data.SYSTEM_DIRS["fashion-mnist"]


def make_folder(folder, n_train=20, n_test=6, shape=(4, 5), suffix=".gz", seed=0):
    """Write four small MNIST-format files; image i of train is filled with the value i."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = np.broadcast_to(np.arange(n_train, dtype=np.uint8)[:, None, None], (n_train, *shape))
    arrays = {
        "train-images-idx3-ubyte": train,
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        write_idx(folder / (stem + suffix), array)
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download can succeed: every mirror refuses, and the cache is empty."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = (f"http://127.0.0.1:{sock.getsockname()[1]}/",)
    for name in download.MIRRORS:
        monkeypatch.setitem(download.MIRRORS, name, dead)
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", tmp_path / "not-installed")


def test_digits_split_shapes_and_range():
    ds = load("digits")
    assert ds.train_x.shape == (1500, 64) and ds.test_x.shape == (297, 64)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int64
    assert ds.train_x.min() == 0 and ds.train_x.max() == 1 and ds.image_shape == (8, 8)
    assert ds.num_classes == 10 and set(np.unique(ds.test_y)) == set(range(10))


# SHA-256 of scikit-learn's load_digits() as uint8 bytes: .data (1797, 64), then .target
# (1797,). Taken on 2026-11-30 with scikit-learn 1.9.1, which is not a dependency:
#   hashlib.sha256(load_digits().data.astype(np.uint8).tobytes()).hexdigest()  (and .target)
SKLEARN_DIGITS_SHA256 = (
    "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3",
    "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0",
)


def test_bundled_digits_equal_scikit_learns():
    ds = load("digits")
    images = np.vstack([ds.train_x, ds.test_x]) * 16  # back to grey levels 0..16
    assert np.array_equal(images, np.round(images))
    labels = np.concatenate([ds.train_y, ds.test_y])
    got = tuple(hashlib.sha256(a.astype(np.uint8).tobytes()).hexdigest() for a in (images, labels))
    assert got == SKLEARN_DIGITS_SHA256


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError, match="mnist, fashion-mnist, digits"):
        load("cifar")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_folder_of_idx_files(tmp_path, suffix):
    ds = load("mine", data_dir=make_folder(tmp_path, suffix=suffix))
    assert ds.train_x.shape == (20, 20) and ds.test_x.shape == (6, 20) and ds.image_shape == (4, 5)
    np.testing.assert_allclose(ds.train_x[:, 0], np.arange(20) / 255, rtol=1e-6)
    assert ds.num_classes == max(ds.train_y.max(), ds.test_y.max()) + 1


def test_dotted_file_names_are_accepted(tmp_path):
    make_folder(tmp_path)
    for path in tmp_path.iterdir():
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    assert load("mine", data_dir=tmp_path).train_x.shape == (20, 20)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
        load("mnist", data_dir=tmp_path)


def test_image_and_label_counts_must_match(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="6 images but its labels file has 5 labels"):
        load("mine", data_dir=tmp_path)


def test_labels_file_in_place_of_images(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(20, np.uint8))
    with pytest.raises(DataError, match="expected uint8 images"):
        load("mine", data_dir=tmp_path)


def test_images_file_in_place_of_labels(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((20, 2, 2), np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte holds uint8 of shape"):
        load("mine", data_dir=tmp_path)


def test_validation_split_is_disjoint_seeded_and_ordered(tmp_path):
    folder = make_folder(tmp_path)
    ds = load("mine", data_dir=folder, validation=5, seed=3)
    ids, held = ds.train_x[:, 0] * 255, ds.val_x[:, 0] * 255  # image i holds the value i
    assert len(ids) == 15 and len(held) == 5 and ds.val_y.shape == (5,)
    assert sorted(np.concatenate([ids, held]).round()) == list(range(20))
    assert np.all(np.diff(ids) > 0)
    np.testing.assert_array_equal(load("x", data_dir=folder, validation=5, seed=3).val_x, ds.val_x)
    assert not np.array_equal(load("x", data_dir=folder, validation=5, seed=4).val_x, ds.val_x)
    assert load("x", data_dir=folder, validation=0.25).val_x.shape == (5, 20)


@pytest.mark.parametrize("bad", [20, -1, 1.0, "5"])
def test_bad_validation_size(tmp_path, bad):
    with pytest.raises(DataError, match="validation must be"):
        load("x", data_dir=make_folder(tmp_path), validation=bad)


def test_fashion_mnist_uses_the_system_folder_without_downloading(tmp_path, monkeypatch, offline):
    folder = make_folder(tmp_path / "debian")
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", folder)
    ds = load("fashion-mnist")
    assert ds.source == str(folder) and ds.train_x.shape == (20, 20)
    assert not (tmp_path / "empty-cache").exists()


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_offline_error_is_quick_and_names_the_alternatives(offline, name):
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load(name, progress=False)
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert "\n" not in message
    for alternative in ("digits", "--data-dir", "dataset-fashion-mnist"):
        assert alternative in message


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=f"{DEBIAN} is absent: install Debian's "
                    "dataset-fashion-mnist package to run this test on the real data")
def test_real_fashion_mnist_from_debian():
    ds = load("fashion-mnist")
    assert ds.train_x.shape == (60000, 784) and ds.test_x.shape == (10000, 784)
    assert ds.train_x.dtype == np.float32 and ds.image_shape == (28, 28)
    assert ds.train_x.min() == 0 and ds.train_x.max() == 1 and ds.test_x.max() == 1
    assert list(np.bincount(ds.train_y)) == [6000] * 10
    assert list(np.bincount(ds.test_y)) == [1000] * 10


# --- Batches ------------------------------------------------------------------------

def grey(n=50, d=36, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype=np.float32), np.arange(n)


def collect(batches, epoch):
    xs, ys = zip(*batches.epoch(epoch), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_each_epoch_is_a_permutation_on_the_backend():
    be = get_backend("numpy")
    x, y = grey()
    batches = Batches(x, y, be, batch_size=16, seed=1)
    assert len(batches) == 4 and len(Batches(x, y, be, batch_size=16, drop_last=True)) == 3
    first = next(batches.epoch(0))
    assert be.owns(first[0]) and be.owns(first[1]) and first[0].dtype == np.float32
    x0, y0 = collect(batches, 0)
    assert sorted(y0) == list(range(50)) and not np.array_equal(y0, y)
    np.testing.assert_array_equal(x0, x[y0])
    assert not np.array_equal(collect(batches, 1)[1], y0)
    np.testing.assert_array_equal(collect(Batches(x, y, be, batch_size=16, seed=1), 0)[1], y0)
    np.testing.assert_array_equal(collect(Batches(x, y, be, shuffle=False), 3)[1], y)


def test_dynamic_binarization_is_fresh_each_epoch_and_reproducible():
    be = get_backend("numpy")
    x, y = grey(400)
    batches = Batches(x, y, be, batch_size=64, seed=5, binarize="dynamic", shuffle=False)
    b0, b1 = collect(batches, 0)[0], collect(batches, 1)[0]
    assert set(np.unique(b0)) == {0.0, 1.0} and not np.array_equal(b0, b1)
    again = Batches(x, y, be, batch_size=64, seed=5, binarize="dynamic", shuffle=False)
    np.testing.assert_array_equal(collect(again, 1)[0], b1)  # a resumed run replays epoch 1
    assert abs(b0.mean() - x.mean()) < 0.01  # P(pixel = 1) = grey level


def test_threshold_binarization():
    x, y = grey()
    out = collect(Batches(x, y, get_backend("numpy"), binarize="threshold", shuffle=False), 0)[0]
    np.testing.assert_array_equal(out, (x > 0.5).astype(np.float32))


def test_shift_keeps_shape_range_and_moves_whole_pixels():
    x = np.zeros((200, 100), np.float32)
    x[:, 55] = 1.0  # one bright pixel at row 5, column 5 of a 10x10 image
    out = augment(x, (10, 10), np.random.default_rng(0), shift=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert set(np.unique(out)) == {0.0, 1.0} and np.all(out.sum(1) == 1)
    rows, cols = np.divmod(out.argmax(1), 10)
    assert set(rows) == set(cols) == {3, 4, 5, 6, 7}  # every shift in -2..2 occurs
    filled = augment(np.ones_like(x), (10, 10), np.random.default_rng(1), shift=2).sum(1)
    areas = {(10 - a) * (10 - b) for a in range(3) for b in range(3)}
    assert set(filled) == areas  # what enters from outside the image is background (0)


def test_rotation_keeps_range_and_mass():
    x, _ = grey(20, 144)
    x = (x.reshape(20, 12, 12) * np.pad(np.ones((6, 6)), 3)).reshape(20, 144)  # centred blobs
    out = augment(x, (12, 12), np.random.default_rng(0), shift=1, rotate=15)
    assert out.min() >= 0 and out.max() <= 1 and not np.allclose(out, x)
    np.testing.assert_allclose(out.sum(1), x.sum(1), rtol=0.15)


def test_augmented_batches_are_reproducible():
    be = get_backend("numpy")
    x, y = grey(30, 64)
    make = lambda: Batches(x, y, be, batch_size=8, shift=2, rotate=10, image_shape=(8, 8))
    np.testing.assert_array_equal(collect(make(), 2)[0], collect(make(), 2)[0])


@pytest.mark.parametrize("options, words", [
    (dict(binarize="yes"), "none, dynamic, threshold"),
    (dict(batch_size=0), "batch_size"),
    (dict(seed=-1), "seed"),
    (dict(shift=2), "image_shape"),
    (dict(shift=9, image_shape=(6, 6)), "shift must be"),
])
def test_bad_batch_options(options, words):
    x, y = grey()
    with pytest.raises(DataError, match=words):
        Batches(x, y, get_backend("numpy"), **options)


def test_batches_stay_on_the_device(backend):
    be = backend
    x, y = grey(100, 64)
    batches = Batches(x, y, be, batch_size=32, binarize="dynamic", shift=1, rotate=5,
                      image_shape=(8, 8))
    xb, yb = next(batches.epoch(0))
    assert be.owns(xb) and be.owns(yb) and xb.shape == (32, 64)
    again = next(Batches(x, y, be, batch_size=32, binarize="dynamic", shift=1, rotate=5,
                         image_shape=(8, 8)).epoch(0))[0]
    np.testing.assert_array_equal(be.to_host(again), be.to_host(xb))
