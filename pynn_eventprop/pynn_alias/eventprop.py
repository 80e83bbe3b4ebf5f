"""``pyNN.eventprop``: the pynn_eventprop backend under PyNN's own namespace.

Installing pynn_eventprop places this file at ``pyNN/eventprop.py``, next to PyNN's own
backends, so that scripts can select the backend by name like any other simulator::

    import pyNN.eventprop as sim

or, with :func:`pyNN.utility.get_simulator`, ``python script.py eventprop``.  It re-exports
the public API of :mod:`pynn_eventprop` (as PyNN's ``pyNN/spiNNaker.py`` does for sPyNNaker);
both names drive the same simulator state.
"""

from pynn_eventprop import *  # noqa: F403
