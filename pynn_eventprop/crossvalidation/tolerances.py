"""The stated tolerances of the cross-validation (float64), per compared quantity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """``criterion`` ("absolute" or "relative"), ``value`` and the ``unit`` of absolute errors."""

    criterion: str
    value: float
    unit: str


#: Stated tolerances (float64), see the module docstring.
TOLERANCES = {
    "spike_times": Tolerance("absolute", 1e-9, "ms"),
    "v": Tolerance("absolute", 1e-9, "mV"),
    "i_syn": Tolerance("absolute", 1e-9, "nA"),
    "lambda_v": Tolerance("absolute", 1e-9, "1/mV"),
    "lambda_i": Tolerance("absolute", 1e-9, "1/nA"),
    "gradients": Tolerance("relative", 1e-6, "1/nA"),
    "loss": Tolerance("relative", 1e-9, "1"),
}
QUANTITIES = tuple(TOLERANCES)
