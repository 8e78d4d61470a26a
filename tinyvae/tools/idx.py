"""Read and write IDX files, the format MNIST and Fashion-MNIST are published in.

An IDX file is a tiny header followed by raw numbers, all big-endian::

    bytes 0-1   0x00 0x00          always zero
    byte  2     type code          0x08 = unsigned byte (the only one MNIST uses)
    byte  3     ndim               3 for images (n, rows, cols), 1 for labels (n,)
    4 * ndim    the sizes          one unsigned 32-bit integer per dimension
    the rest    the values         exactly prod(sizes) * itemsize bytes

    >>> write_idx("labels-idx1-ubyte.gz", np.array([7, 2, 1], dtype=np.uint8))
    >>> read_idx("labels-idx1-ubyte.gz")
    array([7, 2, 1], dtype=uint8)

Files may be gzip-compressed (as they are downloaded); the reader looks at the first
two bytes, not at the name. Anything that is not a complete, valid IDX file raises
:class:`DataError` with a one-line message naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from tinyvae.errors import DataError

#: IDX type code -> NumPy dtype (big-endian, as the format stores them).
TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read one IDX file, plain or gzip-compressed.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    array : np.ndarray of the shape stored in the header, e.g. (n, 28, 28) uint8
        images or (n,) uint8 labels, in native byte order.

    Raises
    ------
    DataError
        Missing, unreadable, truncated, over-long or non-IDX file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the name and the folder") from None
    except OSError as error:  # a folder, no permission, a disk error ...
        raise DataError(
            f"{path}: cannot read ({error.strerror or error}); check that it is a file you may read"
        ) from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error, MemoryError) as error:  # BadGzipFile: OSError
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(
                f"{path}: damaged gzip data ({reason}); delete it and fetch it again"
            ) from None
    return parse_idx(raw, name=str(path))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file; ``name`` labels error messages."""
    if len(raw) < 4:
        raise DataError(f"{name}: truncated: {len(raw)} bytes is too short for an IDX header")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in TYPES:
        raise DataError(
            f"{name}: not an IDX file (starts with {raw[:4].hex(' ')}; "
            "expected 00 00 then a type code such as 08): replace it with the MNIST-format "
            "file it should be"
        )
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions; delete it and fetch it again")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated: header needs {header} bytes, got {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = TYPES[code]
    count = 1
    for size in shape:  # Python ints: a huge claimed shape cannot overflow
        count *= size
    expected = header + count * dtype.itemsize
    if len(raw) < expected:
        raise DataError(
            f"{name}: truncated: shape {shape} needs {expected} bytes, got {len(raw)}; "
            "delete it and fetch it again"
        )
    if len(raw) > expected:
        raise DataError(
            f"{name}: {len(raw) - expected} unexpected bytes after the data "
            f"(shape {shape} needs {expected} bytes, got {len(raw)}); delete it and fetch "
            "it again"
        )
    values = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or Path
    array : array_like of any shape with 1 to 255 dimensions and an IDX dtype
        (uint8, int8, int16, int32, float32 or float64).
    """
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes or not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: cannot store a {array.ndim}-d {array.dtype} array as IDX")
    header = bytes([0, 0, codes[native], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
