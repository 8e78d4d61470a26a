"""Fuzzing the readers of untrusted files: IDX data files and checkpoints.

Seeded random byte strings, random truncations and bit flips of valid files, and (for
checkpoints) valid archives whose JSON description or arrays hold nonsense. Each case must
end, within a time limit, in a valid result or the project's own one-line error
(:class:`DataError`, :class:`CheckpointError`); any other exception, or a hang, is a bug in
the reader. A failure names the case, so it can be replayed.
"""

import gzip
import io
import json
import threading

import numpy as np
import pytest

from tinyvae.core.model import VAE
from tinyvae.core.optim import Adam
from tinyvae.tools import checkpoint
from tinyvae.tools.checkpoint import CheckpointError
from tinyvae.tools.idx import DataError, read_idx, write_idx

SECONDS = 10.0  # per case; a healthy case takes milliseconds


def in_time(read, *args):
    """``read(*args)`` in a thread; its result or its exception; fail if it does not end."""
    box = {}

    def target():
        try:
            box["value"] = read(*args)
        except BaseException as error:  # handed to the caller below
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SECONDS)
    if thread.is_alive():
        pytest.fail(f"{read.__name__} still running after {SECONDS} s: a hang")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def expect_clean(read, path, allowed, case: str):
    """Run one case: a result, or an ``allowed`` error whose message is one line."""
    try:
        return in_time(read, path)
    except allowed as error:
        assert "\n" not in str(error) and str(error), (case, str(error))
        return None
    except Exception as error:  # anything else is a crash of the reader
        pytest.fail(f"{case}: {type(error).__name__}: {error}")


def flip_bits(data: bytes, rng, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        i = int(rng.integers(len(out)))
        out[i] ^= 1 << int(rng.integers(8))
    return bytes(out)


# --- IDX ---------------------------------------------------------------------------------


def valid_idx(tmp_path):
    """The bytes of a small images file, plain and gzip-compressed."""
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 5), dtype=np.uint8)
    write_idx(tmp_path / "v", images)
    write_idx(tmp_path / "v.gz", images)
    return (tmp_path / "v").read_bytes(), (tmp_path / "v.gz").read_bytes()


def idx_cases(tmp_path):
    """(name, bytes) pairs: random strings, gzip-looking strings, truncations, bit flips."""
    rng = np.random.default_rng(7)
    plain, packed = valid_idx(tmp_path)
    random_bytes = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    for i in range(300):
        head = [b"", bytes([0, 0, 8, int(rng.integers(0, 5))]), bytes([0, 0, 0x0E, 3])][i % 3]
        yield f"random {i}", head + random_bytes(int(rng.integers(0, 120)))
    for i in range(150):
        yield f"gzip magic + random {i}", b"\x1f\x8b" + random_bytes(int(rng.integers(0, 120)))
    for i in range(50):
        yield f"gzip of random {i}", gzip.compress(random_bytes(int(rng.integers(0, 200))))
    for name, data in (("plain", plain), ("gzip", packed)):
        for n in sorted(set(rng.integers(0, len(data), 100).tolist())):
            yield f"{name} truncated to {n} of {len(data)} bytes", data[:n]
        for i in range(150):
            flipped = flip_bits(data, rng, int(rng.integers(1, 9)))
            yield f"{name} with bit flips {i}", flipped


def test_the_idx_reader_survives_random_truncated_and_flipped_files(tmp_path):
    path, count = tmp_path / "case-idx3-ubyte", 0
    for case, data in idx_cases(tmp_path):
        count += 1
        path.write_bytes(data)
        array = expect_clean(read_idx, path, DataError, case)
        if array is not None:  # a valid file (a flip in the pixels is undetectable)
            assert isinstance(array, np.ndarray) and array.ndim >= 1, case
    assert count > 900


# --- checkpoints ---------------------------------------------------------------------------


def valid_checkpoint(path):
    """A small trained model, its Adam state and a realistic description, saved at ``path``."""
    model = VAE(10, hidden=(6,), latent_dim=3, seed=0)
    opt = Adam(model.flat, lr=1e-2)
    x = model.backend.asarray(np.random.default_rng(0).random((4, 10)))
    for _ in range(2):
        model.loss_and_grads(x)
        opt.step()
    state = {"epoch": 1, "step": 0, "sums": None, "history": [{"epoch": 1, "train_loss": 7.0}]}
    checkpoint.save(path, model, opt, state, {"dataset": "digits", "lr": 0.01})
    return path.read_bytes()


def use(path):
    """What the tools do with a checkpoint: load it, rebuild the model, restore Adam's state."""
    ckpt = checkpoint.load(path)
    model = checkpoint.build_model(ckpt)
    checkpoint.restore(ckpt, model, Adam(model.flat))
    return model


JUNK = [None, True, -1, 0, 2**40, 1e308, float("nan"), float("inf"), "", "x", [], [1, -2], {}]


def mutate(value, rng, depth=0):
    """``value`` (a JSON tree) with one random node replaced by junk."""
    if isinstance(value, dict) and value and depth < 4 and rng.random() < 0.8:
        key = list(value)[int(rng.integers(len(value)))]
        if rng.random() < 0.1:
            return {k: v for k, v in value.items() if k != key}  # drop an entry
        return {**value, key: mutate(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and depth < 4 and rng.random() < 0.8:
        i = int(rng.integers(len(value)))
        return value[:i] + [mutate(value[i], rng, depth + 1)] + value[i + 1 :]
    return JUNK[int(rng.integers(len(JUNK)))]


def archive(arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def checkpoint_cases(tmp_path):
    rng = np.random.default_rng(11)
    data = valid_checkpoint(tmp_path / "valid.npz")
    with np.load(tmp_path / "valid.npz") as stored:
        arrays = dict(stored)
    meta = json.loads(str(arrays["meta"]))
    random_bytes = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    for i in range(200):
        head = b"PK\x03\x04" if i % 2 else b""
        yield f"random {i}", head + random_bytes(int(rng.integers(0, 400)))
    for n in sorted(set(rng.integers(0, len(data), 250).tolist())):
        yield f"truncated to {n} of {len(data)} bytes", data[:n]
    for i in range(400):
        yield f"bit flips {i}", flip_bits(data, rng, int(rng.integers(1, 9)))
    for i in range(300):
        changed = mutate(meta, rng)
        yield (
            f"description {i}: {json.dumps(changed)[:300]}",
            archive(arrays | {"meta": np.asarray(json.dumps(changed))}),
        )
    odd = [
        np.zeros(0),
        np.zeros((2, 3)),
        np.arange(len(arrays["params"])),  # integers
        np.zeros(len(arrays["params"]), dtype=complex),
        np.full(len(arrays["params"]), np.nan),
        np.asarray("text"),
        np.zeros(3, dtype=[("a", "f4")]),
    ]
    for name in ("params", "optimizer.m", "optimizer.v", "meta"):
        for i, array in enumerate(odd):
            yield f"{name} replaced by odd array {i}", archive(arrays | {name: array})
        yield f"{name} missing", archive({k: v for k, v in arrays.items() if k != name})


def test_the_checkpoint_reader_survives_random_truncated_flipped_and_odd_files(tmp_path):
    path, loaded, count = tmp_path / "checkpoint.npz", 0, 0
    for case, data in checkpoint_cases(tmp_path):
        count += 1
        path.write_bytes(data)
        model = expect_clean(use, path, CheckpointError, case)
        loaded += model is not None
    assert count > 1100
    # most flips land in the parameters and are caught by the archive's CRC-32
    assert loaded < count / 4
