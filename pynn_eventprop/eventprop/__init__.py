"""EventProp training: losses on output populations, optimisers and learning-rate schedules.

Pure numpy, independent of the PyNN layer; see ``docs/losses.md``.
"""

from .errors import NonFiniteError, check_finite
from .losses import (
    AverageVoltageCrossEntropy,
    Loss,
    LossResult,
    MaxVoltageCrossEntropy,
    TTFSCrossEntropy,
    softmax_cross_entropy,
    time_to_phase_gradient,
)
from .optimisers import SGD, Adam, Optimiser
from .schedules import (
    ConstantLR,
    CosineDecay,
    ExponentialDecay,
    PerEpoch,
    Schedule,
    StepDecay,
    as_schedule,
    schedule_from_dict,
)

__all__ = [
    "SGD",
    "Adam",
    "AverageVoltageCrossEntropy",
    "ConstantLR",
    "CosineDecay",
    "ExponentialDecay",
    "Loss",
    "LossResult",
    "MaxVoltageCrossEntropy",
    "NonFiniteError",
    "Optimiser",
    "PerEpoch",
    "Schedule",
    "StepDecay",
    "TTFSCrossEntropy",
    "as_schedule",
    "check_finite",
    "schedule_from_dict",
    "softmax_cross_entropy",
    "time_to_phase_gradient",
]
