"""Multicast key allocation.

A key has three fields, most significant first::

    | kind (3 bits) | PE id (pe_bits) | index (index_bits) |

``kind`` is the packet kind (:data:`KINDS`); ``PE id`` names the PE that *owns* the key block:
the sender of spike, loss, weight and norm packets, the receiver of error, gradient and label
packets (label packets come from the host; their owner is the first output PE of their
replica); ``index`` is ``local sample * slice size + neuron`` within the owner's slice (spike,
error, loss: a PE runs ``local_batch`` samples at once), the local sample (label; index
``local_batch`` carries the number of labelled samples in the whole batch), the word's position
in a stream modulo ``2**index_bits - 1`` (gradient, weight; packets on one route arrive in
order, so the receiver counts words) or the projection (norm).  The last index of every block,
``2**index_bits - 1``, is reserved for the block's end-of-phase tally packet (see
:mod:`.fabric`).  One block per (kind, PE) is matched by the mask that keeps the kind and PE
fields: ``mask = ~(2**index_bits - 1)`` within ``key_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mapping import Mapping, MappingError

KINDS = ("spike", "error", "loss", "gradient", "weight", "label", "norm")
KIND_BITS = 3


def _bits(n: int) -> int:
    """Bits needed to number ``n`` items (at least 1)."""
    return max(1, int(n - 1).bit_length())


@dataclass(frozen=True)
class KeySpace:
    """Field widths of the keys of one mapping."""

    pe_bits: int
    index_bits: int
    key_bits: int

    @property
    def used_bits(self) -> int:
        return KIND_BITS + self.pe_bits + self.index_bits

    @property
    def block_mask(self) -> int:
        """Mask matching one (kind, PE) block."""
        return ((1 << self.key_bits) - 1) & ~((1 << self.index_bits) - 1)

    def key(self, kind: str, pe, index=0):
        """Key(s) of ``kind`` owned by ``pe`` for ``index`` (arrays broadcast)."""
        k = KINDS.index(kind)
        pe, index = np.asarray(pe, np.int64), np.asarray(index, np.int64)
        if np.any(index >= (1 << self.index_bits)) or np.any(index < 0):
            raise ValueError(f"index must be in 0..{(1 << self.index_bits) - 1}")
        key = (k << (self.pe_bits + self.index_bits)) | (pe << self.index_bits) | index
        return int(key) if key.ndim == 0 else key

    def base(self, kind: str, pe: int) -> int:
        """Key of index 0 of ``kind`` owned by ``pe``: add an index (``< 2**index_bits``)."""
        return (KINDS.index(kind) << (self.pe_bits + self.index_bits)) | (
            int(pe) << self.index_bits
        )

    def block(self, kind: str, pe: int) -> tuple[int, int]:
        """``(key, mask)`` of the block of ``kind`` owned by ``pe``."""
        return self.key(kind, pe, 0), self.block_mask

    def decode(self, key: int) -> tuple[str, int, int]:
        """``(kind, pe, index)`` of a key."""
        key = int(key)
        index = key & ((1 << self.index_bits) - 1)
        pe = (key >> self.index_bits) & ((1 << self.pe_bits) - 1)
        return KINDS[key >> (self.pe_bits + self.index_bits)], pe, index


def allocate_keys(mapping: Mapping) -> KeySpace:
    """Field widths for ``mapping``: enough PE bits for every PE, index bits for the local batch
    times the largest slice (at least the local batch plus one, for the label blocks) plus the
    tally index.

    Raises
    ------
    MappingError
        If kind + PE + index bits exceed the hardware's key width.
    """
    largest = max(sl.size for per_pop in mapping.slices for sl in per_pop)
    B = mapping.local_batch  # label blocks: indices 0..B (the labels and the batch's count)
    index = _bits(max(B * largest, B + 1) + 1)
    space = KeySpace(_bits(mapping.n_pes), index, int(mapping.hardware.key_bits))
    if space.used_bits > space.key_bits:
        raise MappingError(
            "key bits",
            space.used_bits,
            space.key_bits,
            f"{KIND_BITS} kind + {space.pe_bits} PE + {space.index_bits} sample x neuron bits",
        )
    return space
