"""The README's Python snippet runs as written (on a slice of the data, for a few epochs).

The snippet is read from README.md and executed unchanged except for two things that only
make it fast: ``epochs=60`` becomes ``epochs=3`` and ``yin_yang_dataset`` returns the first
samples of each split.  It must learn: the test accuracy it prints beats chance, the loss
falls, and the output population spikes.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import numpy as np

import pynn_eventprop.datasets as datasets

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = {"train": 384, "validation": 64, "test": 128}


def readme_snippet() -> str:
    """The README's Python code block that trains (the one constructing a ``Trainer``)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    training = [block for block in blocks if "Trainer(" in block]
    assert len(training) == 1, "README.md should hold one Python snippet that trains"
    return training[0]


def test_readme_snippet_runs_as_written_and_learns(monkeypatch, capsys):
    snippet = readme_snippet()
    ast.parse(snippet)  # valid Python as printed
    assert "epochs=60" in snippet
    fast = snippet.replace("epochs=60", "epochs=3")
    full = datasets.yin_yang_dataset

    def first_samples(split, *args, **kwargs):
        return full(split, *args, **kwargs).subset(np.arange(SAMPLES[split]))

    monkeypatch.setattr(datasets, "yin_yang_dataset", first_samples)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # no silent-network warning
        exec(compile(fast, str(README), "exec"), namespace)
    try:
        trainer, block = namespace["trainer"], namespace["block"]
        printed = capsys.readouterr().out
        assert "'accuracy'" in printed
        losses = trainer.history["loss"]
        assert losses[-1] < losses[0]
        accuracy = trainer.evaluate(namespace["test_set"])["accuracy"]
        assert accuracy > 0.5  # three classes: chance is 1/3
        assert len(block.segments) == 1
        times = namespace["test_set"].times[:32]
        assert (trainer.predict(times) >= 0).mean() > 0.9  # the outputs spike
    finally:
        namespace["sim"].end()
