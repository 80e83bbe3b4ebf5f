"""The training core, free of PyNN: losses, optimisers, schedules, regularisers, the step.

:class:`TrainingStep` runs one batch on any :class:`~pynn_eventprop.engine.interface.Engine`
(forward, loss on the output readouts, backward, optimiser update); :func:`run_epoch`,
:func:`evaluate` and :func:`predict` loop over a data set.  The PyNN-facing
:class:`~pynn_eventprop.eventprop.training.Trainer` is a thin adapter around them.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import (
    CheckpointError,
    DivergenceError,
    NonFiniteError,
    SilentNetworkWarning,
    check_divergence,
    check_finite,
)
from .history import History
from .losses import (
    AverageVoltageCrossEntropy,
    Loss,
    LossResult,
    MaxVoltageCrossEntropy,
    SumVoltageCrossEntropy,
    TTFSCrossEntropy,
    softmax_cross_entropy,
)
from .optimisers import SGD, Adam, Optimiser
from .regularisers import ReviveDead
from .rule import EventPropRule
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
from .step import Forward, Learner, TrainingStep, evaluate, predict, run_epoch

__all__ = [
    "SGD",
    "Adam",
    "AverageVoltageCrossEntropy",
    "CheckpointError",
    "ConstantLR",
    "CosineDecay",
    "DivergenceError",
    "EventPropRule",
    "ExponentialDecay",
    "Forward",
    "History",
    "Learner",
    "Loss",
    "LossResult",
    "MaxVoltageCrossEntropy",
    "NonFiniteError",
    "Optimiser",
    "PerEpoch",
    "ReviveDead",
    "Schedule",
    "SilentNetworkWarning",
    "StepDecay",
    "SumVoltageCrossEntropy",
    "TTFSCrossEntropy",
    "TrainingStep",
    "as_schedule",
    "check_divergence",
    "check_finite",
    "evaluate",
    "load_checkpoint",
    "predict",
    "run_epoch",
    "save_checkpoint",
    "schedule_from_dict",
    "softmax_cross_entropy",
]
