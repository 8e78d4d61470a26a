"""Data sets as float arrays in [0, 1], and seeded minibatches that live on the device.

    >>> from tinyvae.core.backend import get_backend
    >>> ds = load("digits")
    >>> ds.train_x.shape, ds.test_x.shape, ds.image_shape
    ((1500, 64), (297, 64), (8, 8))
    >>> batches = Batches(ds.train_x, ds.train_y, get_backend("numpy"), binarize="dynamic")
    >>> x, y = next(batches.epoch(0))          # x (100, 64) of 0s and 1s, y (100,) int64

Names: ``mnist`` (handwritten digits, 60,000 + 10,000 images of 28x28, downloaded once by
:mod:`tinyvae.tools.download`); ``fashion-mnist`` (clothing, same sizes; read from Debian's
``dataset-fashion-mnist`` package in /usr/share/datasets/fashion-mnist when installed, else
downloaded); ``digits`` (1,797 images of 8x8, bundled, no network needed; a fixed split, no
shuffling: the first 1,500 images train, the last 297 test). With ``data_dir=FOLDER`` any
four MNIST-format IDX files are read instead.

``digits.npz`` holds scikit-learn's ``load_digits()`` as ``images`` (1797, 64) uint8 grey
levels 0..16 and ``labels`` (1797,) uint8, written once with ``np.savez_compressed``: the test
part of UCI's "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak 1998), CC BY 4.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyvae.core.backend import array_module
from tinyvae.errors import DataError
from tinyvae.tools import download
from tinyvae.tools.idx import read_idx

NAMES = ("mnist", "fashion-mnist", "digits")
BINARIZE = ("none", "dynamic", "threshold")  # see binarize
NOISES = ("mask", "salt-pepper")  # see corrupt
AUGMENT_DEGREES = 10.0  # --augment: the largest turn; see augmentation
DIGITS_FILE = Path(__file__).with_name("digits.npz")
DIGITS_TRAIN = 1500  # first 1,500 digits train, the remaining 297 test
#: Folders that system packages install data sets into; used before any download.
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
#: What Fashion-MNIST's labels 0..9 stand for (the other data sets' labels are digits).
CLASS_NAMES = {"fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                 "Shirt", "Sneaker", "Bag", "Ankle boot")}  # fmt: skip
IDX_FILES = {  # what each array is called in an MNIST-format folder
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    """One data set in host memory. ``x`` arrays are (n, D) float32 in [0, 1]; ``y`` are (n,) int64.

    ``image_shape`` (H, W) with H * W = D is for plotting; ``val_x``/``val_y`` are None
    unless ``load(validation=...)`` carved a validation split out of the training set.
    """

    name: str
    train_x: np.ndarray = field(repr=False)
    train_y: np.ndarray = field(repr=False)
    test_x: np.ndarray = field(repr=False)
    test_y: np.ndarray = field(repr=False)
    image_shape: tuple
    num_classes: int
    val_x: np.ndarray | None = field(default=None, repr=False)
    val_y: np.ndarray | None = field(default=None, repr=False)
    source: str = ""  # where the data came from, for logs
    class_names: tuple = ()  # what each label means (Fashion-MNIST); empty: the label itself


def load(name="mnist", data_dir=None, validation=0, seed=0, progress=True) -> Dataset:
    """Load a data set by name, or from a folder of IDX files.

    Parameters
    ----------
    name : "mnist", "fashion-mnist" or "digits" (any label when ``data_dir`` is given)
    data_dir : folder with train-images-idx3-ubyte[.gz] and the three other MNIST-format
        files; when given it replaces the named source
    validation : images moved from train to a validation split: a count, or a fraction < 1
    seed : picks the validation images (a seeded permutation); the rest keep their order
    progress : show a progress bar while downloading
    """
    if data_dir is not None:
        arrays, source, classes = read_idx_folder(data_dir), str(data_dir), None
    elif name == "digits":
        arrays, source, classes = _digits(), str(DIGITS_FILE), 10
    elif name in ("mnist", "fashion-mnist"):
        system = SYSTEM_DIRS.get(name)
        if system is not None and system.is_dir():
            folder = system
        else:
            folder = download.fetch_dataset(name, progress=progress)
        arrays, source, classes = read_idx_folder(folder), str(folder), 10
    else:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(NAMES)}, "
                        "or give --data-dir FOLDER with MNIST-format IDX files")
    (train_x, train_y), (test_x, test_y), image_shape = arrays
    if classes is None:
        classes = int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1
    ds = Dataset(name, train_x, train_y, test_x, test_y, image_shape, classes, source=source,
                 class_names=() if data_dir else CLASS_NAMES.get(name, ()))  # fmt: skip
    if validation:
        keep, held = _validation_indices(len(train_x), validation, seed)
        ds.val_x, ds.val_y = train_x[held], train_y[held]
        ds.train_x, ds.train_y = train_x[keep], train_y[keep]
    return ds


def read_idx_folder(folder):
    """``((train_x, train_y), (test_x, test_y), (H, W))`` from a folder of four IDX files.

    Images become (n, H*W) float32 in [0, 1] (grey level / 255), labels (n,) int64.
    Accepts plain or .gz files, named as in :data:`IDX_FILES` (or with ".idx" for "-idx").
    """
    folder = Path(folder)
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DataError(
            f"data folder {folder} (data_dir / --data-dir) {problem}: give a folder holding "
            "MNIST-format IDX files, or leave it out to use the named data set"
        )
    raw = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    splits = []
    for split in ("train", "test"):
        images, labels = raw[f"{split}_x"], raw[f"{split}_y"]
        where = f"{folder}: {IDX_FILES[split + '_x']}"
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{where} holds {images.dtype} of shape {images.shape}; "
                            "expected uint8 images (n, rows, cols): is it the right file?")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{folder}: {IDX_FILES[split + '_y']} holds {labels.dtype} of shape "
                            f"{labels.shape}; expected integer labels (n,): is it the right file?")
        if len(images) != len(labels):
            raise DataError(f"{where} has {len(images)} images but its labels file has "
                            f"{len(labels)} labels: the two files must come from the same "
                            "data set; replace the one that does not belong")
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        splits.append((x, labels.astype(np.int64)))
    shape = raw["train_x"].shape[1:]
    if raw["test_x"].shape[1:] != shape:
        raise DataError(f"{folder}: train images are {shape} but test images are "
                        f"{raw['test_x'].shape[1:]}: the files must come from the same data set")
    return splits[0], splits[1], shape


def _find(folder: Path, stem: str) -> Path:
    """The file for ``stem`` in ``folder``, plain or .gz, "-idx" or ".idx" spelling."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    raise DataError(f"{folder} has no {stem}[.gz]: a data folder (data_dir / --data-dir) "
                    f"needs {', '.join(IDX_FILES.values())} (each may end in .gz)")


def _digits():
    """The bundled 8x8 digits, split as the module docstring says."""
    with np.load(DIGITS_FILE) as stored:
        x = stored["images"].astype(np.float32) / np.float32(16)  # (1797, 64) in [0, 1]
        y = stored["labels"].astype(np.int64)  # (1797,)
    return (x[:DIGITS_TRAIN], y[:DIGITS_TRAIN]), (x[DIGITS_TRAIN:], y[DIGITS_TRAIN:]), (8, 8)


def _validation_indices(n, validation, seed):
    """(kept, held-out) training indices, both sorted; ``validation`` is a count or fraction."""
    if isinstance(validation, float) and 0 < validation < 1:
        count = round(validation * n)
    elif isinstance(validation, (int, np.integer)) and 0 < validation < n:
        count = int(validation)
    else:
        raise DataError(f"validation must be a count between 1 and {n - 1} or a fraction "
                        f"between 0 and 1, got {validation!r}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[count:]), np.sort(order[:count])


class Batches:
    """Seeded minibatches of one split, held on the backend's device.

    The whole split is copied to the device once, here; each batch is then gathered on
    the device, so no data crosses between host and device during training. Epoch ``e``'s
    order, augmentation and binarization depend only on ``(seed, e)``: a run resumed at
    epoch ``e`` sees exactly the batches it would have seen.

    Parameters
    ----------
    x : (n, D) array in [0, 1];  y : (n,) integer labels
    backend : a :class:`tinyvae.core.backend.Backend`
    batch_size : images per batch (the last one may be smaller unless ``drop_last``)
    seed : non-negative int
    shuffle : False keeps the stored order (for evaluation)
    binarize : "none" (grey levels), "dynamic" (a fresh Bernoulli sample each epoch,
        pixel = 1 with probability x) or "threshold" (pixel = x > 0.5)
    shift : largest random shift in pixels (0 = off);  rotate : largest angle in degrees
    image_shape : (H, W), needed for ``shift`` and ``rotate``
    """

    def __init__(self, x, y, backend, batch_size=100, seed=0, shuffle=True, binarize="none",
                 shift=0, rotate=0.0, image_shape=None, drop_last=False):
        if binarize not in BINARIZE:
            raise DataError(f"unknown binarize {binarize!r}: choose one of {', '.join(BINARIZE)}")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise DataError(f"seed must be a non-negative integer, got {seed!r}")
        if len(x) != len(y) or len(x) == 0:
            raise DataError(f"need as many labels as images (and some), got {len(x)} and {len(y)}")
        if shift or rotate:
            if image_shape is None or math.prod(image_shape) != x.shape[1]:
                raise DataError(f"shift/rotate need image_shape (H, W) with H*W = {x.shape[1]}")
            if not 0 <= shift < min(image_shape) or not 0 <= rotate <= 180:
                raise DataError(f"shift must be 0..{min(image_shape) - 1} pixels and rotate "
                                f"0..180 degrees, got {shift} and {rotate}")
        self.backend, self.batch_size, self.seed, self.shuffle = backend, batch_size, seed, shuffle
        self.binarize, self.shift, self.rotate, self.drop_last = binarize, shift, rotate, drop_last
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.x = backend.asarray(x)  # (n, D) on the device, copied once
        self.y = backend.asarray(y, dtype=np.int64)  # (n,)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int):
        """Yield the ``(x, y)`` batches of epoch ``epoch``: (B, D) and (B,) device arrays."""
        xp, n = self.backend.xp, len(self.x)
        rng = epoch_rng(self.backend, self.seed, epoch)
        order = xp.argsort(rng.random(n)) if self.shuffle else xp.arange(n)  # (n,)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]  # (B,) on the device
            x = self.x[index]  # (B, D) gathered on the device
            if self.shift or self.rotate:
                x = augment(x, self.image_shape, rng, self.shift, self.rotate)
            yield binarize(x, self.binarize, rng), self.y[index]


def seed_for(*keys) -> int:
    """One integer seed that depends only on ``keys``: ``seed_for(seed, epoch)`` seeds an
    epoch's batches, ``seed_for(seed, epoch, stream)`` the trainer's other streams."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def epoch_rng(backend, seed: int, epoch: int):
    """A generator on ``backend``'s device that depends only on ``(seed, epoch)``."""
    if not (isinstance(epoch, (int, np.integer)) and epoch >= 0):
        raise DataError(f"epoch must be a non-negative integer, got {epoch!r}")
    return backend.rng(seed_for(seed, epoch))


def binarize(x, mode, rng=None):
    """(B, D) grey levels in [0, 1] -> (B, D), same dtype: see :class:`Batches` for ``mode``."""
    if mode == "dynamic":
        return (rng.random(x.shape, dtype=np.float32) < x).astype(x.dtype)
    if mode == "threshold":
        return (x > 0.5).astype(x.dtype)
    if mode == "none":
        return x
    raise DataError(f"unknown binarize {mode!r}: choose one of {', '.join(BINARIZE)}")


def corrupt(x, p: float, kind: str, rng):
    """Corrupt each pixel of x (B, D) with probability p: "mask" sets it to 0, "salt-pepper"
    to 0 or 1 with equal odds. Returns a new array; x is untouched."""
    hit = rng.random(x.shape, dtype=x.dtype) < p  # (B, D) which pixels to corrupt
    if kind == "mask":
        return x * ~hit
    salt = (rng.random(x.shape, dtype=x.dtype) < 0.5).astype(x.dtype)  # (B, D) 0 or 1
    return array_module(x).where(hit, salt, x)


def augment(x, image_shape, rng, shift=0, rotate=0.0):
    """Move each image by up to ``shift`` whole pixels and turn it by up to ``rotate`` degrees.

    (B, H*W) -> (B, H*W), vectorised over the batch. Each output pixel reads its source
    position in the original image by bilinear interpolation; outside the image counts
    as 0 (background). With ``rotate=0`` this is an exact shift.
    """
    xp, B, (H, W) = array_module(x), x.shape[0], image_shape
    dy = rng.integers(-shift, shift + 1, size=B).astype(x.dtype)[:, None, None]  # (B, 1, 1)
    dx = rng.integers(-shift, shift + 1, size=B).astype(x.dtype)[:, None, None]
    angle = ((rng.random(B) * 2 - 1) * math.radians(rotate)).astype(x.dtype)[:, None, None]
    cos, sin = xp.cos(angle), xp.sin(angle)
    cy, cx = (H - 1) / 2, (W - 1) / 2
    i = xp.arange(H, dtype=x.dtype)[None, :, None] - cy - dy  # (B, H, 1) around the centre
    j = xp.arange(W, dtype=x.dtype)[None, None, :] - cx - dx  # (B, 1, W)
    src_i, src_j = cos * i + sin * j + cy, cos * j - sin * i + cx  # (B, H, W) source positions
    out = xp.zeros((B, H, W), dtype=x.dtype)
    for ii in (xp.floor(src_i), xp.floor(src_i) + 1):  # the four neighbouring pixels
        for jj in (xp.floor(src_j), xp.floor(src_j) + 1):
            weight = (1 - xp.abs(src_i - ii)) * (1 - xp.abs(src_j - jj))  # (B, H, W)
            inside = (ii >= 0) & (ii < H) & (jj >= 0) & (jj < W)
            flat = xp.clip(ii, 0, H - 1) * W + xp.clip(jj, 0, W - 1)  # (B, H, W) pixel index
            pixel = xp.take_along_axis(x, flat.astype(np.int64).reshape(B, -1), axis=1)
            out += weight * inside * pixel.reshape(B, H, W)
    return xp.clip(out, 0, 1).reshape(B, H * W)
