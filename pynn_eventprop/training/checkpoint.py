"""Atomic checkpoints of training state (weights, optimiser state, history, random state).

A checkpoint is one ``.npz`` file: numpy arrays under their own keys and everything else as one
JSON document.  It is written to a temporary file in the same directory, flushed to disk and
then renamed over the target, so a crash at any moment leaves either the old checkpoint or the
new one, never a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _split(obj, arrays, prefix):
    """Replace numpy arrays in a nested structure by references ``{"__array__": key}``."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split(v, arrays, f"{prefix}/{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (nested dicts/lists of JSON values and numpy arrays) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    document = json.dumps(_split(state, arrays, "state"))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, __document__=np.array(document), **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__document__"}
        document = json.loads(str(data["__document__"]))
    return _join(document, arrays)
