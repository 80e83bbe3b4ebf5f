"""Where layers, samples and connections live in the Brian2 objects.

All layers and all samples of a batch share **one** ``NeuronGroup`` (Brian2's cost is mostly a
fixed amount per generated code object, so the number of objects does not grow with depth or
batch).  Layer ``l`` with ``n_l`` neurons occupies the block ``[B o_l, B (o_l + n_l))``
(``o_l`` = neurons of the layers before it, ``B`` = batch size); inside the block, sample ``b``
is ``b n_l .. b n_l + n_l - 1``.  Input neuron ``j`` of sample ``b`` is index ``b n_in + j`` of
the input's ``SpikeGeneratorGroup``.  Connections only join neurons of the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .description import INPUT, NetworkSpec


@dataclass(frozen=True)
class Layout:
    """Index arithmetic of the network-wide group for ``spec`` and ``batch`` samples."""

    spec: NetworkSpec
    batch: int

    def start(self, name: str) -> int:
        """First group index of population ``name`` (0 for the input, which has its own group)."""
        if name == INPUT:
            return 0
        before = 0
        for layer in self.spec.layers:
            if layer.name == name:
                return self.batch * before
            before += layer.size
        raise KeyError(name)

    @property
    def size(self) -> int:
        """Neurons in the group: ``B * sum_l n_l``."""
        return self.batch * sum(layer.size for layer in self.spec.layers)

    def index(self, name: str, sample, neuron) -> np.ndarray:
        """Group index of ``neuron`` of population ``name`` in ``sample``."""
        return self.start(name) + np.asarray(sample) * self.spec.size(name) + np.asarray(neuron)

    def locate(self, index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inverse of :meth:`index` for group indices: ``(layer number, sample, neuron)``."""
        index = np.asarray(index)
        starts = np.array([self.start(layer.name) for layer in self.spec.layers])
        sizes = np.array([layer.size for layer in self.spec.layers])
        layer = np.searchsorted(starts, index, side="right") - 1
        offset = index - starts[layer]
        return layer, offset // sizes[layer], offset % sizes[layer]

    def per_neuron(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """``(size,)`` array from per-layer arrays ``(n_l,)``, repeated for every sample."""
        return np.concatenate(
            [np.tile(values[layer.name], self.batch) for layer in self.spec.layers]
        )

    def split(self, table: np.ndarray) -> dict[str, np.ndarray]:
        """``(T, size)`` -> layer name -> ``(T, B, n_l)``."""
        out = {}
        for layer in self.spec.layers:
            start = self.start(layer.name)
            block = table[:, start : start + self.batch * layer.size]
            out[layer.name] = block.reshape(table.shape[0], self.batch, layer.size)
        return out

    def connections(self, k: int) -> tuple[np.ndarray, ...]:
        """Connections of projection ``k`` for every sample, in the order ``(sample, then
        np.nonzero(mask))``: ``(pre index, post group index, pre neuron, post neuron)``.

        The pre index is into the input group for projections from ``"input"``, else into the
        network-wide group.
        """
        proj = self.spec.projections[k]
        pre, post = np.nonzero(proj.mask)
        sample = np.repeat(np.arange(self.batch), pre.size)
        pre_n, post_n = np.tile(pre, self.batch), np.tile(post, self.batch)
        return (
            self.index(proj.pre, sample, pre_n),
            self.index(proj.post, sample, post_n),
            pre_n,
            post_n,
        )
