"""Runnable PyNN scripts shipped with the package (``pynn-eventprop train ...``)."""
