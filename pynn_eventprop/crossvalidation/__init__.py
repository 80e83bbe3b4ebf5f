"""The convergence study of Brian2 (``brian2_reference``) against the exact engine.

``brian2_reference`` solves the same continuous equations as the exact reference engine with a
different numerical method (Brian2's time grid) and imports nothing from ``pynn_eventprop``;
this package is the bridge: :mod:`.network_bridge` runs a network on the engine,
:mod:`.families` draws well-conditioned random networks, :mod:`.convergence` compares,
:mod:`.report` and :mod:`.figure` present, :mod:`.validate` is ``pynn-eventprop validate``.
"""
