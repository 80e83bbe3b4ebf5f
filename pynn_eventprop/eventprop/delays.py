"""Learned delays in the Trainer: which projections learn them, their bounds, checkpoints.

A projection learns its delays when its synapse type is ``EventPropSynapse`` and its rule says
``learn_delays=True``.  The delays are clamped to ``delay_bounds`` (default: the limits given
to ``setup()``, ``[min_delay, max_delay]``) after every update, so they stay >= ``min_delay``
(>= one time step), which also keeps a recurrent projection exact.
"""

from __future__ import annotations

import copy

import numpy as np

from ..training.rule import DelayLearner, check_delay_bounds


def setup_limits(state) -> tuple[float, float]:
    """``(min_delay, max_delay)`` of ``setup()`` in ms (the time step and inf when 'auto')."""
    low = state.dt if state._min_delay == "auto" else float(state._min_delay)
    high = np.inf if state._max_delay == "auto" else float(state._max_delay)
    return low, high


def check_no_delay_rule(projection):
    """Raise if a projection that cannot learn carries a rule that asks for learned delays."""
    rule = getattr(projection.synapse_type, "rule", None)
    trainable = getattr(projection.synapse_type, "trainable", False)
    if rule is not None and getattr(rule, "learn_delays", False) and not trainable:
        raise ValueError(
            f"projection '{projection.label}' has learn_delays=True but synapse type "
            f"{type(projection.synapse_type).__name__}, which does not learn: use "
            "EventPropSynapse(rule=EventPropRule(learn_delays=True))"
        )


def delay_learners(state, trainable: dict, engine, optimisers: dict) -> dict:
    """Compiled projection -> :class:`DelayLearner` for every projection learning delays.

    ``trainable`` maps PyNN projection index -> compiled index; ``optimisers`` (PyNN index ->
    delay optimiser) is filled for new ones and reused otherwise, so recompiling keeps the
    optimiser state.  Initial delays outside the bounds are refused.
    """
    for projection in state.projections:
        check_no_delay_rule(projection)
    min_delay, max_delay = setup_limits(state)
    learners = {}
    for k, c in trainable.items():
        projection = state.projections[k]
        rule = projection.synapse_type.rule
        if not rule.learn_delays:
            continue
        given = rule.delay_bounds if rule.delay_bounds is not None else (min_delay, max_delay)
        bounds = check_delay_bounds(given, min_delay, max_delay)
        mask = engine.network.projections[c].mask
        delays = engine.get_delays(c)[mask]
        outside = delays[(delays < bounds[0] * (1 - 1e-12)) | (delays > bounds[1] * (1 + 1e-12))]
        if outside.size:
            raise ValueError(
                f"projection '{projection.label}' has delay {float(outside[0])!r} ms outside "
                f"its delay_bounds {bounds} ms: set delays inside the bounds"
            )
        if k not in optimisers:
            optimisers[k] = rule.new_delay_optimiser()
        learners[c] = DelayLearner(
            optimisers[k], bounds, mask.copy(), rule.clip_delays, projection.label
        )
    return learners


def write_delays(state, trainable: dict, learners: dict, engine) -> None:
    """Copy learned delays from the engine into the PyNN projections."""
    for k, c in trainable.items():
        if c in learners:
            delays = np.where(learners[c].mask, engine.get_delays(c), np.nan)
            state.projections[k].set(delay=delays)


def checkpoint_entry(engine, c, optimiser) -> dict:
    """What a checkpoint holds about a projection's learned delays."""
    return {"delays": engine.get_delays(c), "delay_optimiser": optimiser.state_dict()}


def validated_entry(entry, label, learner, optimiser, fail):
    """``(delays, optimiser)`` restored from checkpoint ``entry`` of projection ``label``.

    ``fail(message)`` raises; checked: shape, finite and within the learner's bounds, optimiser
    state of the same kind and settings.
    """
    delays = entry.get("delays") if isinstance(entry, dict) else None
    shape = learner.mask.shape
    if not isinstance(delays, np.ndarray) or delays.shape != shape:
        fail(
            f"projection '{label}' learns delays but the checkpoint has delays of shape "
            f"{getattr(delays, 'shape', None)}, expected {shape}"
        )
    connected = delays[learner.mask]
    low, high = learner.bounds
    if (
        not np.isfinite(connected).all()
        or (connected < low * (1 - 1e-12)).any()
        or (connected > high * (1 + 1e-12)).any()
    ):
        fail(f"projection '{label}' has delays that are not finite or outside {learner.bounds}")
    restored = copy.deepcopy(optimiser)
    try:
        restored.load_state_dict(entry["delay_optimiser"])
    except (KeyError, TypeError, ValueError) as error:
        fail(f"projection '{label}': its delay optimiser state does not fit: {error}")
    for slots in restored._state.values():
        for slot, array in slots.items():
            if array.shape != shape or not np.isfinite(array).all():
                fail(f"projection '{label}': delay optimiser state '{slot}' is malformed")
    return delays, restored
