"""Shared fixtures: a freshly set-up backend, and PyNN's own system scenarios.

PyNN's scenarios (``test/system/scenarios`` in PyNN's source distribution, not in the wheel)
are obtained with ``pip download`` into a cache directory the first time they are needed
(``$PYNN_SDIST_CACHE``, default ``~/.cache/pynn_eventprop``); nothing of PyNN is committed
here.  Without network access and without a cached copy the scenario tests are skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

PYNN_VERSION = "0.13.0"


@pytest.fixture
def sim():
    """The backend module, set up with PyNN's defaults (dt = 0.1 ms) and ended afterwards."""
    import pynn_eventprop

    pynn_eventprop.setup()
    yield pynn_eventprop
    pynn_eventprop.end()


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "pynn_eventprop"
    return Path(os.environ.get("PYNN_SDIST_CACHE", default))


def _pynn_test_dir() -> Path:
    """Directory holding PyNN's ``test`` package, downloading the sdist if necessary."""
    cache = _cache_dir()
    root = cache / f"pynn-{PYNN_VERSION}"
    if (root / "test" / "system" / "scenarios").is_dir():
        return root / "test"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"pynn-{PYNN_VERSION}.tar.gz"
    if not archive.exists():
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"pynn=={PYNN_VERSION}",
            "-d",
            str(cache),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not archive.exists():
            pytest.skip(f"cannot obtain PyNN {PYNN_VERSION} sdist: {result.stderr[-300:]}")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/test/" in m.name or m.name.endswith("/test")]
        tar.extractall(cache, members=members, filter="data")
    return root / "test"


@pytest.fixture(scope="session")
def pynn_scenarios():
    """Import function for PyNN's scenario modules: ``pynn_scenarios("test_recording")``.

    PyNN's ``test/system`` package is registered under its own name from its folder (no
    ``sys.path`` entry), so ``system.scenarios.<name>`` and its relative imports resolve.
    """
    folder = _pynn_test_dir() / "system"
    spec = importlib.util.spec_from_file_location(
        "system", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["system"] = package
    spec.loader.exec_module(package)
    try:
        yield lambda name: importlib.import_module(f"system.scenarios.{name}")
    finally:
        for name in [m for m in sys.modules if m == "system" or m.startswith("system.")]:
            del sys.modules[name]


@pytest.fixture
def restore_logging():
    """Some scenarios switch PyNN's debug logging on globally; undo that afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
