"""Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or raw.

Layout (all integers big-endian): two zero bytes, a type byte, the number of dimensions ``k``,
then ``k`` 32-bit unsigned sizes, then the data in C order.  Type bytes: 0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type byte -> numpy dtype (big-endian)."""

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzip detected from its first bytes, not its name).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        Array of the stored shape, in native byte order (``uint8`` for (Fashion-)MNIST).

    Raises
    ------
    ValueError
        If the header is malformed or the data length does not match the header.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (must start with two zero bytes)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise ValueError(
            f"{path}: unknown IDX type byte 0x{type_code:02X}; allowed: "
            + ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw)} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
