"""EventProp for PyNN scripts: the trainable synapse type and the Trainer.

:class:`~.synapses.EventPropSynapse` marks a Projection as trainable and
:class:`~.training.Trainer` trains a PyNN network; losses, optimisers and schedules are those of
the PyNN-free training core :mod:`pynn_eventprop.training`, re-exported here.  See
``docs/losses.md`` and ``docs/training.md``.
"""

from ..training import (
    SGD,
    Adam,
    AverageVoltageCrossEntropy,
    CheckpointError,
    ConstantLR,
    CosineDecay,
    DivergenceError,
    ExponentialDecay,
    Loss,
    LossResult,
    MaxVoltageCrossEntropy,
    NonFiniteError,
    Optimiser,
    PerEpoch,
    Schedule,
    SilentNetworkWarning,
    StepDecay,
    SumVoltageCrossEntropy,
    TTFSCrossEntropy,
    as_schedule,
    check_finite,
    schedule_from_dict,
    softmax_cross_entropy,
)

__all__ = [
    "SGD",
    "Adam",
    "AverageVoltageCrossEntropy",
    "CheckpointError",
    "ConstantLR",
    "CosineDecay",
    "DivergenceError",
    "ExponentialDecay",
    "Loss",
    "LossResult",
    "MaxVoltageCrossEntropy",
    "NonFiniteError",
    "Optimiser",
    "PerEpoch",
    "Schedule",
    "SilentNetworkWarning",
    "StepDecay",
    "SumVoltageCrossEntropy",
    "TTFSCrossEntropy",
    "as_schedule",
    "check_finite",
    "schedule_from_dict",
    "softmax_cross_entropy",
]
