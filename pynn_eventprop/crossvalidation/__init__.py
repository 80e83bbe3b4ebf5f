"""Cross-validation of the reference engine against the independent Brian2 implementation.

The bridge between the two packages lives here (``brian2_reference`` imports nothing from
``pynn_eventprop``): :mod:`.network_bridge` converts networks, :mod:`.validate` runs both sides
and :mod:`.report` compares them against the stated tolerances (:mod:`.tolerances`).  The
command line is ``pynn-eventprop validate``.
"""
