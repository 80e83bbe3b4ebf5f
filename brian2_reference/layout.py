"""Where layers, samples and connections live in the Brian2 objects.

All layers of a network share **one** ``NeuronGroup`` (the model is the same for every layer,
only the per-neuron constants differ), and all projections with the same kind of source (the
input or the neurons), delay and receptor share **one** ``Synapses`` object.  Brian2's cost of
a run is mostly a fixed amount per generated code object, so this keeps the number of objects
independent of the depth of the network.

Layer ``l`` with ``n_l`` neurons occupies the block ``[B o_l, B (o_l + n_l))`` of the group
(``o_l`` = neurons of the layers before it, ``B`` = batch size); inside the block, sample ``b``
is ``b n_l .. b n_l + n_l - 1`` (batch-replicated).  Input neuron ``j`` of sample ``b`` is index
``b n_in + j`` of the input's ``SpikeGeneratorGroup``.  Synapses only connect neurons of the
same sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np

from .description import INPUT, NetworkSpec


@dataclass(frozen=True)
class Layout:
    """Index arithmetic of the network-wide group for ``spec`` and ``batch`` samples."""

    spec: NetworkSpec
    batch: int

    def start(self, name: str) -> int:
        """First index of population ``name`` (0 for the input, which has its own group)."""
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
        """Number of neurons in the group: ``B * sum_l n_l``."""
        return self.batch * sum(layer.size for layer in self.spec.layers)

    def index(self, name: str, sample, neuron) -> np.ndarray:
        """Group index of ``neuron`` of population ``name`` in ``sample``."""
        size = self.spec.size(name)
        return self.start(name) + np.asarray(sample) * size + np.asarray(neuron)

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

    def join(self, tables: dict[str, np.ndarray]) -> np.ndarray:
        """Layer name -> ``(T, B, n_l)`` -> ``(T, size)`` (inverse of :meth:`split`)."""
        return np.concatenate(
            [
                tables[layer.name].reshape(tables[layer.name].shape[0], -1)
                for layer in self.spec.layers
            ],
            axis=1,
        )


@dataclass(frozen=True)
class Pathway:
    """Projections sharing one ``Synapses`` object.

    ``from_input`` tells whether the source is the input ``SpikeGeneratorGroup``; ``delay``
    (steps) and ``suffix`` (``"E"``/``"I"``) are common to ``projections`` (indices into
    ``spec.projections``).
    """

    from_input: bool
    delay: int
    suffix: str
    projections: tuple[int, ...]


def pathways(spec: NetworkSpec) -> list[Pathway]:
    """Group the projections by (source kind, delay, receptor), in a stable order."""
    groups: dict[tuple, list[int]] = {}
    for k, proj in enumerate(spec.projections):
        groups.setdefault((proj.pre == INPUT, proj.delay, proj.suffix), []).append(k)
    return [Pathway(*key, tuple(ks)) for key, ks in groups.items()]


def connect(syn: brian2.Synapses, layout: Layout, pathway: Pathway) -> dict[int, slice]:
    """Create the synapses of every projection of ``pathway`` in ``syn`` and set ``syn.w``.

    Returns the range of synapse indices of each projection; within a range synapses are
    ordered by sample, then by ``np.nonzero(mask)`` (checked against Brian2's indices).
    """
    spec, batch = layout.spec, layout.batch
    ranges, weights, pre_all, post_all = {}, [], [], []
    count = 0
    for k in pathway.projections:
        proj = spec.projections[k]
        pre, post = np.nonzero(proj.mask)
        sample = np.repeat(np.arange(batch), len(pre))
        pre_all.append(layout.index(proj.pre, sample, np.tile(pre, batch)))
        post_all.append(layout.index(proj.post, sample, np.tile(post, batch)))
        weights.append(np.tile(proj.weights[pre, post], batch))
        ranges[k] = slice(count, count + batch * len(pre))
        count += batch * len(pre)
    i, j = np.concatenate(pre_all), np.concatenate(post_all)
    syn.connect(i=i, j=j)
    if not (np.array_equal(syn.i[:], i) and np.array_equal(syn.j[:], j)):
        raise RuntimeError("Brian2 reordered the synapses; cannot map them to projections")
    syn.w = np.concatenate(weights)
    return ranges


def projection_sum(spec: NetworkSpec, batch: int, k: int, per_synapse: np.ndarray) -> np.ndarray:
    """Sum a per-synapse quantity of projection ``k`` (its range, see :func:`connect`) over
    the batch into a ``(n_pre, n_post)`` matrix (zero where the mask is False)."""
    proj = spec.projections[k]
    out = np.zeros(proj.weights.shape)
    out[proj.mask] = np.asarray(per_synapse).reshape(batch, -1).sum(axis=0)
    return out
