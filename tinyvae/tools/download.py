"""Fetch MNIST and Fashion-MNIST once, check them, and keep them in a cache folder.

Each file is tried on several mirrors in turn (as torchvision does). A download is
written to a temporary file in the cache folder, checked against its known SHA-256,
flushed to disk, and only then renamed to its real name, so an interrupted or corrupt
download never leaves a file that looks complete. A cached file whose checksum is
wrong is deleted and fetched again.

    >>> folder = fetch_dataset("mnist")     # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())[:1]    # doctest: +SKIP
    ['t10k-images-idx3-ubyte.gz']

The cache folder is ``$TINYVAE_DATA`` if set, else ``$XDG_CACHE_HOME/tinyvae``, else
``~/.cache/tinyvae``; each data set gets its own subfolder.

Behind a firewall, or with a copy of the files on a local server, set ``$TINYVAE_MIRRORS``
to base URLs (separated by spaces or commas) to use instead of the built-in mirrors;
``{name}`` in a URL becomes the data set's name. The checksums are checked all the same::

    TINYVAE_MIRRORS=http://mirror.lab.example/{name}/ python -m tinyvae.train ...
    TINYVAE_MIRRORS=file:///srv/datasets/{name}/ python -m tinyvae.train ...
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from tinyvae.errors import DataError
from tinyvae.tools.files import atomic_write, remove_stale_temporaries

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Mirrors per data set, tried in this order. Any of them may be down on a given day.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

#: SHA-256 of each published .gz file. Plain-HTTP mirrors are safe because of these.
SHA256 = {
    "mnist": dict(zip(FILES, (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ), strict=True)),
    "fashion-mnist": dict(zip(FILES, (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ), strict=True)),
}

#: Seconds to wait for a connection or for the next bytes; offline fails fast.
TIMEOUT = 3.0

ALTERNATIVES = (
    "to work offline use the bundled 'digits' data set, --data-dir FOLDER with your own "
    "IDX files, or (for fashion-mnist) Debian's dataset-fashion-mnist package; or copy the "
    "four published files ({files}) into {folder} by hand, or set TINYVAE_MIRRORS to a server "
    "that has them"
)

FAILURES = (OSError, http.client.HTTPException, ValueError)  # URLError is an OSError


def cache_dir() -> Path:
    """The folder downloads are kept in: ``$TINYVAE_DATA``, else the user's cache folder."""
    if os.environ.get("TINYVAE_DATA"):
        return Path(os.environ["TINYVAE_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinyvae"


def mirrors_for(name) -> tuple:
    """Base URLs to fetch ``name`` from: ``$TINYVAE_MIRRORS`` if set, else ``MIRRORS[name]``."""
    text = os.environ.get("TINYVAE_MIRRORS", "").strip()
    if not text:
        return MIRRORS[name]
    urls = (url.replace("{name}", name) for url in text.replace(",", " ").split())
    return tuple(url if url.endswith("/") else url + "/" for url in urls)


def sha256_of(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_dataset(name, folder=None, mirrors=None, checksums=None, timeout=TIMEOUT,
                  progress=True) -> Path:
    """Make sure the four IDX files of ``name`` are in ``folder``; return the folder.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist"
    folder : where to keep the files (default: ``cache_dir() / name``)
    mirrors : base URLs ending in "/", tried in order (default: :func:`mirrors_for`)
    checksums : {file name: SHA-256} (default: ``SHA256[name]``); its keys are the files
    timeout, progress : passed to :func:`fetch`
    """
    folder = Path(folder) if folder is not None else cache_dir() / name
    mirrors = mirrors_for(name) if mirrors is None else mirrors
    checksums = SHA256[name] if checksums is None else checksums
    for filename, sha256 in checksums.items():
        fetch(filename, folder, mirrors, sha256, timeout=timeout, progress=progress)
    return folder


def fetch(filename, folder, mirrors, sha256, timeout=TIMEOUT, progress=True) -> Path:
    """Return ``folder / filename`` with the right SHA-256, downloading it if needed.

    Raises :class:`DataError` (one line: what each mirror did, then the offline
    alternatives) when no mirror delivers a file with the expected checksum.
    """
    folder = Path(folder)
    target = folder / filename
    remove_stale_temporaries(target)  # left by a download that was killed
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        target.unlink()  # a file that fails its checksum is never used
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the data folder {folder} ({error.strerror or error}); "
            "set TINYVAE_DATA to a folder you can write to"
        ) from None
    problems = []
    for mirror in mirrors:
        url = mirror + filename
        try:
            _download(url, target, sha256, timeout, progress)
            return target
        except (*FAILURES, MirrorFailed) as error:
            problems.append(f"{urlsplit(url).netloc or url}: {_reason(error)}")
    where = " from $TINYVAE_MIRRORS" if os.environ.get("TINYVAE_MIRRORS", "").strip() else ""
    raise DataError(
        f"could not download {filename}{where} ({'; '.join(problems) or 'no mirrors given'}); "
        + ALTERNATIVES.format(files=", ".join(FILES), folder=folder)
    )


class MirrorFailed(Exception):
    """This mirror did not deliver the file (the network, or wrong bytes): try the next."""


def _download(url, target: Path, sha256, timeout, progress) -> None:
    """Stream ``url`` into ``target`` with :func:`atomic_write`: the real name appears only
    once the whole file is on disk with the right checksum."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None

        def write(out):
            digest, received = hashlib.sha256(), 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                      disable=not progress) as bar:  # fmt: skip
                while chunk := _read(response):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise MirrorFailed(f"connection closed after {received} of {total} bytes")
            if digest.hexdigest() != sha256:
                raise MirrorFailed(f"checksum mismatch (sha256 {digest.hexdigest()[:12]}...)")

        atomic_write(target, write)


def _read(response) -> bytes:
    """The next 64 KiB of a download; a network failure is the mirror's, not the disk's."""
    try:
        return response.read(1 << 16)
    except (OSError, http.client.HTTPException) as error:
        raise MirrorFailed(_reason(error)) from error


def _reason(error) -> str:
    """A short, one-line description of why a download failed."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason
    text = str(error) or type(error).__name__
    return " ".join(text.split())
