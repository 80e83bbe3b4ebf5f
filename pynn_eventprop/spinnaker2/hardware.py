"""The SpiNNaker2 hardware description as data: every figure with its unit and its source.

Every number the packet model uses lives in one of the frozen dataclasses below, never as a
scattered constant.  Each field carries, in its metadata, a unit and a source: a citation when
the figure is documented, or the word ``"assumed"`` when it is our estimate.  Users override
any figure with :meth:`Figures.replace`, which records the field as ``"user override"`` so that
reports show what was changed::

    hw = Spinnaker2Hardware().replace(sram_per_pe=96 * 1024, clock_levels_mhz=(200.0,))

:class:`Spinnaker2Hardware` holds the chip, board and memory figures;
:class:`OperationCycles` the processor cycles each operation of the four EventProp programs
costs on one PE (all assumed: no profile of such a program on SpiNNaker2 is public).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field

DATASHEET = "SpiNNaker2 datasheet v0.03 (2021), distributed with SpiNNakerManchester/SpiNNMachine"
MANCHESTER = "SpiNNakerManchester SpiNNMachine SpiNNaker2 model (code)"
ASSUMED = "assumed"
USER = "user override"


def figure(default, unit: str, source: str):
    """A dataclass field holding one figure with its ``unit`` and ``source`` as metadata."""
    return field(default=default, metadata={"unit": unit, "source": source})


@dataclass(frozen=True)
class Figures:
    """Base for frozen collections of figures with units and sources.

    Attributes
    ----------
    overrides : tuple of str
        Names of the figures that differ from their documented defaults (filled in
        automatically; reported with source ``"user override"``).
    """

    overrides: tuple[str, ...] = field(default=(), metadata={"unit": "", "source": ""})

    def __post_init__(self):
        changed = {f.name for f in self._figure_fields() if getattr(self, f.name) != f.default}
        object.__setattr__(self, "overrides", tuple(sorted(set(self.overrides) | changed)))
        for f in self._figure_fields():
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if not values:
                raise ValueError(f"{f.name} must not be empty")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
                    raise ValueError(f"{f.name} must be a number >= 0, got {value!r}")

    @classmethod
    def _figure_fields(cls):
        return [f for f in dataclasses.fields(cls) if f.name != "overrides"]

    def replace(self, **changes) -> Figures:
        """A copy with some figures changed; the changed names are marked ``"user override"``."""
        names = {f.name for f in self._figure_fields()}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no figure {unknown[0]!r}; allowed: {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)

    def source(self, name: str) -> str:
        """Where figure ``name`` comes from: a citation, ``"assumed"`` or ``"user override"``."""
        if name in self.overrides:
            return USER
        return type(self).__dataclass_fields__[name].metadata["source"]

    def figures(self) -> list[dict]:
        """Every figure as ``{"name", "value", "unit", "source"}`` (for reports)."""
        return [
            {
                "name": f.name,
                "value": list(v) if isinstance(v := getattr(self, f.name), tuple) else v,
                "unit": f.metadata["unit"],
                "source": self.source(f.name),
            }
            for f in self._figure_fields()
        ]


@dataclass(frozen=True)
class Spinnaker2Hardware(Figures):
    """Chip, board, memory, router and packet figures of the modelled SpiNNaker2 machine.

    Memory figures are bytes.  ``code_bytes``, ``runtime_bytes`` and ``receive_buffer_bytes``
    are the fixed part of every PE's SRAM budget (see ``docs/spinnaker2.md``).
    """

    pes_per_chip: int = figure(152, "PEs", DATASHEET + " (152 ARM Cortex-M4F application PEs)")
    pes_per_qpe: int = figure(4, "PEs", DATASHEET + " (38 quad-PEs of 4)")
    sram_per_pe: int = figure(128 * 1024, "bytes", DATASHEET + " (128 KB code and data)")
    dram_per_chip: int = figure(
        2 * 1024**3,
        "bytes",
        DATASHEET + " (LPDDR4, 2 GB physical; 1 GiB allocatable in " + MANCHESTER + ")",
    )
    router_entries_per_chip: int = figure(16384, "entries", DATASHEET)
    chip_links: int = figure(6, "links", DATASHEET)
    chips_per_board: int = figure(48, "chips", ASSUMED + " (a 48-chip board)")
    board_width: int = figure(8, "chips", ASSUMED + " (board laid out as 8 x 6 chips)")
    boards: int = figure(1, "boards", ASSUMED + " (the modelled machine is one board)")
    clock_levels_mhz: tuple[float, ...] = figure((150.0, 300.0), "MHz", MANCHESTER)
    key_bits: int = figure(32, "bits", ASSUMED + " (as on SpiNNaker1; unverified for SpiNNaker2)")
    payload_bits: int = figure(32, "bits", ASSUMED + " (as on SpiNNaker1; unverified for 2)")
    timer_tick_ms: float = figure(1.0, "ms", "py-spinnaker2 default timer tick (code)")
    code_bytes: int = figure(24 * 1024, "bytes", ASSUMED + " (size of the four programs)")
    runtime_bytes: int = figure(4 * 1024, "bytes", ASSUMED + " (stack, heap, system data)")
    receive_buffer_bytes: int = figure(2048, "bytes", ASSUMED + " (256 packets of 8 bytes)")
    max_neurons_per_pe: int = figure(256, "neurons", ASSUMED + " (as sPyNNaker's LIF default)")

    def __post_init__(self):
        super().__post_init__()
        for name in ("pes_per_chip", "pes_per_qpe", "chips_per_board", "board_width", "boards"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.pes_per_chip % self.pes_per_qpe:
            raise ValueError(
                f"pes_per_chip ({self.pes_per_chip}) must be a multiple of pes_per_qpe "
                f"({self.pes_per_qpe})"
            )
        if self.chips_per_board % self.board_width:
            raise ValueError(
                f"chips_per_board ({self.chips_per_board}) must be a multiple of board_width "
                f"({self.board_width}): boards are full rectangles of chips"
            )
        if not 8 <= self.key_bits <= 63:
            raise ValueError(f"key_bits must be in 8..63, got {self.key_bits!r}")

    @property
    def max_chips(self) -> int:
        return self.chips_per_board * self.boards

    @property
    def fixed_pe_bytes(self) -> int:
        """SRAM every PE spends before any neuron: code, runtime, packet receive buffer."""
        return self.code_bytes + self.runtime_bytes + self.receive_buffer_bytes

    def chip_xy(self, chip: int) -> tuple[int, int]:
        """Chip coordinates ``(x, y)`` on the hexagonal chip mesh; boards sit side by side in x."""
        board, local = divmod(int(chip), self.chips_per_board)
        return board * self.board_width + local % self.board_width, local // self.board_width

    def chip_at(self, x: int, y: int) -> int:
        """Inverse of :meth:`chip_xy`."""
        board, lx = divmod(int(x), self.board_width)
        return board * self.chips_per_board + int(y) * self.board_width + lx


@dataclass(frozen=True)
class OperationCycles(Figures):
    """Processor cycles per operation of the EventProp programs on one Cortex-M4F PE.

    All assumed (float32 arithmetic on the M4F FPU, interrupt-driven packet handling); override
    them with measured values when a profile exists.
    """

    neuron_update: float = figure(40.0, "cycles/neuron/step", ASSUMED)
    source_update: float = figure(5.0, "cycles/neuron/step", ASSUMED)
    spike_receive: float = figure(60.0, "cycles/packet", ASSUMED + " (interrupt, queue arrival)")
    synaptic_event: float = figure(8.0, "cycles/synapse", ASSUMED)
    packet_send: float = figure(20.0, "cycles/packet", ASSUMED)
    adjoint_update: float = figure(50.0, "cycles/neuron/step", ASSUMED)
    backward_synapse: float = figure(10.0, "cycles/synapse", ASSUMED + " (dL/dt of an arrival)")
    gradient_synapse: float = figure(8.0, "cycles/synapse", ASSUMED + " (grad += lambda_I)")
    error_receive: float = figure(40.0, "cycles/packet", ASSUMED)
    loss_neuron: float = figure(200.0, "cycles/neuron", ASSUMED + " (softmax, exp, log)")
    reduce_word: float = figure(30.0, "cycles/word", ASSUMED + " (receive + add)")
    weight_update: float = figure(40.0, "cycles/weight", ASSUMED + " (Adam step)")
    weight_receive: float = figure(25.0, "cycles/word", ASSUMED)
