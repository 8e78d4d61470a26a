"""The IDX reader: valid files round-trip; every kind of broken file gets a clear DataError."""

import gzip
import os

import numpy as np
import pytest

from tinyvae.errors import UserError
from tinyvae.tools.idx import DataError, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / f"data-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_header_is_the_published_format(tmp_path):
    write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    raw = (tmp_path / "labels").read_bytes()
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def test_gzip_is_detected_by_content_not_name(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((2, 2), np.uint8))
    os.rename(tmp_path / "a.gz", tmp_path / "plain-name")
    assert read_idx(tmp_path / "plain-name").shape == (2, 2)


def test_data_error_is_a_user_error():
    assert issubclass(DataError, UserError)


def expect_error(path, *words):
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message
    return message


def test_truncated_file_says_expected_and_actual_bytes(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    expect_error(path, "truncated", str(len(raw)), str(len(raw) - 100))


def test_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    expect_error(path, "truncated", "16 bytes", "got 6")


def test_extra_bytes_after_the_data(tmp_path):
    path = tmp_path / "long"
    write_idx(path, np.zeros(5, np.uint8))
    path.write_bytes(path.read_bytes() + b"xx")
    expect_error(path, "2 unexpected bytes")


FOREIGN = [b"\x00\x01\x08\x01", b"\x00\x00\x07\x01", b"<htm", b"PK\x03\x04"]


@pytest.mark.parametrize("start", FOREIGN)
def test_wrong_magic_is_not_an_idx_file(tmp_path, start):
    path = tmp_path / "foreign"
    path.write_bytes(start + b"\x00" * 20)
    expect_error(path, "not an IDX file", start[:4].hex(" "))


def test_zero_dimensions(tmp_path):
    path = tmp_path / "scalar"
    path.write_bytes(bytes([0, 0, 8, 0, 1]))
    expect_error(path, "0 dimensions")


def test_damaged_gzip(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:1000])
    expect_error(path, "damaged gzip", "fetch it again")


def test_gzip_of_something_else(tmp_path):
    path = tmp_path / "other.gz"
    path.write_bytes(gzip.compress(b"hello, world"))
    expect_error(path, "not an IDX file")


def test_missing_file_and_folder(tmp_path):
    expect_error(tmp_path / "absent", "no such file")
    expect_error(tmp_path, "cannot read")


def test_huge_claimed_shape_fails_without_allocating():
    raw = bytes([0, 0, 0x0E, 3]) + b"\xff" * 12 + b"\x00" * 8
    with pytest.raises(DataError, match="truncated"):
        parse_idx(raw)


def test_random_bytes_never_crash():
    rng = np.random.default_rng(1)
    for _ in range(3000):
        raw = rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8).tobytes()
        if rng.random() < 0.5:  # often a plausible header, to reach the deeper checks
            raw = bytes([0, 0, 8, rng.integers(0, 4)]) + raw
        try:
            parse_idx(raw)
        except DataError:
            pass


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="cannot store"):
        write_idx(tmp_path / "x", np.zeros(3, np.complex64))
