"""Atomic checkpoints of training state (weights, optimiser state, history, random state).

A checkpoint is one ``.npz`` file: numpy arrays under their own keys and everything else as one
JSON document that carries the format version.  It is written to a temporary file in the same
directory (``<name>.<random>.tmp``), flushed to disk and then renamed over the target, so a
crash at any moment leaves either the old checkpoint or the new one, never a torn file.  A
temporary file left by a write that was killed (``kill -9``, power loss) is removed by the next
:func:`save_checkpoint` or :func:`load_checkpoint` of the same path.

:func:`load_checkpoint` raises :class:`~.errors.CheckpointError` naming the file when it is
missing, unreadable, truncated, not a checkpoint or of another format version.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError

#: Version of the document layout; :func:`load_checkpoint` refuses any other.
FORMAT_VERSION = 2

_DOCUMENT = "__document__"


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


def temporary_files(path) -> list[Path]:
    """Temporary files of interrupted writes of checkpoint ``path`` (``<name>.*.tmp``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f"{path.name}.*.tmp"))


def remove_temporary_files(path) -> list[Path]:
    """Delete the temporary files that interrupted writes of ``path`` left; returns them."""
    removed = temporary_files(path)
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (nested dicts/lists of JSON values and numpy arrays) atomically.

    The document records :data:`FORMAT_VERSION` under ``"format_version"``; temporary files
    of earlier interrupted writes of ``path`` are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_temporary_files(path)
    arrays: dict = {}
    document = json.dumps({"format_version": FORMAT_VERSION, **_split(state, arrays, "state")})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{_DOCUMENT: np.array(document)}, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (the dict given to it).

    Raises
    ------
    CheckpointError
        Naming the file, if it does not exist, cannot be read, is truncated, is not a
        checkpoint or was written in another format version.
    """
    path = Path(path)
    remove_temporary_files(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _DOCUMENT not in data.files:
                raise CheckpointError(
                    f"checkpoint file {str(path)!r} is not a checkpoint (no {_DOCUMENT} entry)"
                )
            arrays = {k: data[k] for k in data.files if k != _DOCUMENT}
            document = json.loads(str(data[_DOCUMENT]))
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} cannot be read (truncated or not a checkpoint): "
            f"{type(error).__name__}: {error}"
        ) from error
    version = document.pop("format_version", None) if isinstance(document, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} has format version {version!r}; this version of "
            f"pynn_eventprop reads format_version {FORMAT_VERSION}"
        )
    try:
        return _join(document, arrays)
    except KeyError as error:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} is incomplete: array {error} is missing"
        ) from error
