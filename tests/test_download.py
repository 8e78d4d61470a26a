"""The downloader, run for real against HTTP servers on 127.0.0.1 that these tests start."""

import gzip
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tinyvae.tools import data, download
from tinyvae.tools.idx import DataError, write_idx

PAYLOAD = gzip.compress(b"tinyvae test payload " * 1000, mtime=0)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Mirror:
    """A small HTTP server: ``files`` maps a path to bytes; ``mode`` decides how to answer."""

    def __init__(self, files, mode="ok"):
        self.files, self.mode, self.requests = files, mode, []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                if mirror.mode == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 1])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mirror.mode == "hang-up":  # promise everything, send half, close
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors():
    started = []

    def start(files=None, mode="ok"):
        started.append(Mirror({"file.gz": PAYLOAD} if files is None else files, mode))
        return started[-1]

    yield start
    for mirror in started:
        mirror.close()


def dead_url():
    """A 127.0.0.1 address where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def fetch(folder, urls, sha=SHA, timeout=2.0):
    return download.fetch("file.gz", folder, urls, sha, timeout=timeout, progress=False)


def test_success_writes_the_checked_file(tmp_path, mirrors):
    good = mirrors()
    path = fetch(tmp_path, [good.url])
    assert path == tmp_path / "file.gz" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.gz"]  # no temporary left
    fetch(tmp_path, [good.url])
    assert len(good.requests) == 1  # the cached copy is used


def test_dead_mirror_then_good_one(tmp_path, mirrors):
    missing, good = mirrors(files={}), mirrors()
    path = fetch(tmp_path, [dead_url(), missing.url, good.url])
    assert path.read_bytes() == PAYLOAD
    assert missing.requests == ["/data/file.gz"]


def test_corrupted_payload_is_never_kept(tmp_path, mirrors):
    bad, good = mirrors(mode="corrupt"), mirrors()
    assert fetch(tmp_path, [bad.url, good.url]).read_bytes() == PAYLOAD
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(tmp_path / "other", [bad.url])
    assert list((tmp_path / "other").iterdir()) == []


def test_bad_cached_file_is_removed_and_fetched_again(tmp_path, mirrors):
    good = mirrors()
    (tmp_path / "file.gz").write_bytes(b"not what we want")
    assert fetch(tmp_path, [good.url]).read_bytes() == PAYLOAD
    assert len(good.requests) == 1


def test_bad_cached_file_is_removed_even_when_offline(tmp_path):
    (tmp_path / "file.gz").write_bytes(b"not what we want")
    with pytest.raises(DataError):
        fetch(tmp_path, [dead_url()])
    assert not (tmp_path / "file.gz").exists()


def test_hang_up_mid_transfer_leaves_no_partial_file(tmp_path, mirrors):
    broken = mirrors(mode="hang-up")
    with pytest.raises(DataError, match="connection closed after"):
        fetch(tmp_path, [broken.url])
    assert list(tmp_path.iterdir()) == []


def test_all_mirrors_down_is_one_line_naming_each_and_the_alternatives(tmp_path, mirrors):
    missing = mirrors(files={})
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        fetch(tmp_path, [dead_url(), missing.url])
    message = str(info.value)
    assert time.monotonic() - start < 3
    assert "\n" not in message and "HTTP 404" in message and "refused" in message.lower()
    for alternative in ("digits", "--data-dir", "dataset-fashion-mnist"):
        assert alternative in message


def test_silent_server_times_out_quickly(tmp_path):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        start = time.monotonic()
        with pytest.raises(DataError, match="timed out"):
            fetch(tmp_path, [f"http://127.0.0.1:{silent.getsockname()[1]}/"], timeout=0.3)
        assert time.monotonic() - start < 2


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "mine"))
    assert download.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("TINYVAE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir() == tmp_path / "xdg" / "tinyvae"


def test_unwritable_cache_is_explained(tmp_path):
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(DataError, match="TINYVAE_DATA"):
        fetch(tmp_path / "a-file" / "sub", [dead_url()])


def test_known_checksums_are_well_formed():
    for name, sums in download.SHA256.items():
        assert set(sums) == set(download.FILES) and download.MIRRORS[name]
        assert all(len(s) == 64 and int(s, 16) >= 0 for s in sums.values())


def test_load_downloads_mnist_into_the_cache(monkeypatch, tmp_path, mirrors):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 30), ("t10k", 10)):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                            ("labels-idx1", rng.integers(0, 10, n, dtype=np.uint8))):
            write_idx(tmp_path / "src.gz", array)
            files[f"{prefix}-{kind}-ubyte.gz"] = (tmp_path / "src.gz").read_bytes()
    good = mirrors(files=files)
    monkeypatch.setitem(download.MIRRORS, "mnist", (dead_url(), good.url))
    monkeypatch.setitem(download.SHA256, "mnist",
                        {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "cache"))
    ds = data.load("mnist", progress=False)
    assert ds.train_x.shape == (30, 784) and ds.test_x.shape == (10, 784)
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(files)
    data.load("mnist", progress=False)
    assert len(good.requests) == 4  # the second load came from the cache
