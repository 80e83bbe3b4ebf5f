"""A real NIR client: the trained Yin-Yang network of ``examples/nir_client.py`` run in Norse.

Skipped without ``torch`` and ``norse`` (the ``nir-client`` extra).  Norse steps time with
forward Euler, so its predictions approach ours as its step shrinks: at ``dt = 0.01 ms`` they
agree on at least 97 % of the 1000 test samples (measured: 99.6-100 %), and more than at
``dt = 0.5 ms`` (measured: 71-86 %).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nir")
pytest.importorskip("torch")
pytest.importorskip("norse")

import pynn_eventprop as sim  # noqa: E402
from pynn_eventprop.interop import export_nir  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nir_client.py"


@pytest.mark.slow
def test_norse_predicts_like_us_on_the_test_split():
    example = runpy.run_path(str(EXAMPLE))
    trainer, test = example["train"](hidden=30, epochs=5, train_samples=1500)
    try:
        ours = trainer.predict(test.times)
        graph = export_nir()
        rows = example["compare"](graph, ours, test, trainer.duration, [0.5, 0.01])
    finally:
        sim.end()
    assert np.mean(ours == test.labels) > 0.7  # trained (chance: 1/3)
    coarse, fine = rows
    assert fine["agreement"] >= 0.97, rows
    assert fine["agreement"] > coarse["agreement"], rows
