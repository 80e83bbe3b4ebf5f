"""Interoperability: exchange networks with other neuromorphic tools.

* :mod:`pynn_eventprop.interop.nir_export`: :func:`export_nir` writes the PyNN network of the
  current simulator session (trained or not) as a NIR graph (the Neuromorphic Intermediate
  Representation, package ``nir``; Pedersen et al. 2024, Nat. Commun. 15, 8122), which
  ``nir.write`` stores in HDF5 for snnTorch, Norse, Lava, SpiNNaker2 or Xylo tool chains.
* :mod:`pynn_eventprop.interop.nir_import`: :func:`import_nir` builds PyNN populations and
  projections on this backend from a NIR graph.
* :mod:`pynn_eventprop.interop.nir_mapping`: the parameter mapping between ``IF_curr_exp``
  and ``nir.CubaLIF`` with every unit conversion.

The ``nir`` package is an optional dependency (``pip install "pynn_eventprop[nir]"``); the
modules import it when they are used.  ``docs/nir.md`` describes the conventions and every
NIR feature that is not supported.
"""

from .nir_export import export_nir, scale_for_unit_spikes
from .nir_import import ImportedNetwork, import_nir
from .nir_mapping import NIRConversionError

__all__ = [
    "ImportedNetwork",
    "NIRConversionError",
    "export_nir",
    "import_nir",
    "scale_for_unit_spikes",
]
