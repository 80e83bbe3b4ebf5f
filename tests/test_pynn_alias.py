"""``import pyNN.eventprop as sim``, and PyNN 0.13's own example scripts run by backend name.

Installing the package places ``pyNN/eventprop.py`` into PyNN's package (``setup.cfg``:
``py_modules = pyNN.eventprop``), so scripts written for any PyNN backend select this one by
name, e.g. through :func:`pyNN.utility.get_simulator`: ``python simple_script.py eventprop``.
Four examples from PyNN's source distribution (cached as for the system scenarios, see
``conftest.py``), which select the backend in the three ways PyNN's examples do
(``get_simulator``, ``import_module("pyNN.<name>")`` and ``from pyNN.<name> import *``), are
run unchanged in a subprocess, and their results checked.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import neo
import numpy as np
import pytest

import pynn_eventprop

EXAMPLES = ("current_injection", "varying_poisson", "StepCurrentSource", "inhomogeneous_network")


def test_pynn_eventprop_is_this_backend():
    import pyNN.eventprop as sim

    for name in ("setup", "run", "Population", "Projection", "IF_curr_exp", "EventPropSynapse"):
        assert getattr(sim, name) is getattr(pynn_eventprop, name), name
    sim.setup(timestep=0.1)
    cells = sim.Population(1, sim.IF_curr_exp(i_offset=1.0, v_thresh=100.0))
    cells.record("v")
    sim.run(1.0)
    assert pynn_eventprop.get_current_time() == pytest.approx(1.0)  # one simulator state
    assert cells.get_data().segments[0].analogsignals[0].shape == (11, 1)
    sim.end()


@pytest.fixture(scope="module")
def pynn_examples(pynn_scenarios, tmp_path_factory) -> Path:
    """PyNN's ``examples/`` directory, extracted from the cached source distribution."""
    test_dir = Path(pynn_scenarios("fixtures").__file__).parents[2]
    archive = test_dir.parent.with_name(test_dir.parent.name + ".tar.gz")
    if not archive.exists():
        pytest.skip(f"PyNN source distribution not cached at {archive}")
    target = tmp_path_factory.mktemp("pynn")
    with tarfile.open(archive) as tar:
        wanted = [m for m in tar.getmembers() if Path(m.name).stem in EXAMPLES]
        tar.extractall(target, members=wanted, filter="data")
    return target / test_dir.parent.name / "examples"


def run_example(examples: Path, name: str, workdir: Path, *options: str) -> str:
    """Run ``examples/<name>.py eventprop <options>`` in ``workdir``; return its stdout."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, str(examples / f"{name}.py"), "eventprop", *options]
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def saved_block(workdir: Path, name: str) -> neo.Block:
    """The Neo block an example saved to ``Results/<date>/<name>_eventprop_<time>.pkl``."""
    (data_file,) = workdir.glob(f"Results/*/{name}_eventprop_*.pkl")
    return neo.io.PickleIO(str(data_file)).read_block()


def value_at(signal, time: float) -> np.ndarray:
    """Values of ``signal`` at the sample nearest to ``time`` (ms)."""
    t = signal.times.rescale("ms").magnitude
    return signal.magnitude[np.argmin(np.abs(t - time))]


def printed_list(stdout: str, label: str) -> np.ndarray:
    """The list printed after ``label:`` (numpy scalars such as ``np.int64(3)`` unwrapped)."""
    line = next(x for x in stdout.splitlines() if x.startswith(label))
    text = re.sub(r"np\.\w+\((.*?)\)", r"\1", line.split(":", 1)[1])
    return np.array(ast.literal_eval(text.strip()), dtype=float)


def test_current_injection_example(pynn_examples, tmp_path):
    """Four neurons, one source each; the DC neuron settles at v_rest + R I = -65 + 5 mV."""
    run_example(pynn_examples, "current_injection", tmp_path, "--plot-figure")
    assert list(tmp_path.glob("Results/*/current_injection_eventprop_*.png"))
    v = saved_block(tmp_path, "current_injection").segments[0].filter(name="v")[0]
    assert value_at(v, 40.0)[0] == pytest.approx(-65.0)
    rest_plus_r_i = -65.0 + 10.0 * 0.5  # R = tau_m / cm = 10 MOhm, I = 0.5 nA
    assert value_at(v, 300.0)[0] == pytest.approx(rest_plus_r_i, abs=1e-6)
    noisy = v.magnitude[v.times.rescale("ms").magnitude > 60.0, 3]
    assert np.ptp(noisy) > 0.5


def test_varying_poisson_example(pynn_examples, tmp_path):
    """Poisson rates changed by callbacks during one run: counts within five deviations."""
    stdout = run_example(pynn_examples, "varying_poisson", tmp_path, "--plot-figure")
    assert list(tmp_path.glob("Results/*/varying_poisson_eventprop_*.png"))
    actual = printed_list(stdout, "Actual spike counts")
    expected = printed_list(stdout, "Expected mean spike counts")
    assert np.all(np.abs(actual - expected) <= 5 * np.sqrt(expected) + 2), (actual, expected)


def test_step_current_source_example(pynn_examples, tmp_path):
    """``from pyNN.eventprop import *`` and the procedural API; 0.4 nA from 50 ms on."""
    run_example(pynn_examples, "StepCurrentSource", tmp_path)
    v = saved_block(tmp_path, "StepCurrentSource").segments[0].filter(name="v")[0]
    assert value_at(v, 49.0)[0] == pytest.approx(-65.0)
    charging = -65.0 + 20.0 * 0.4 * (1.0 - np.exp(-59.0 / 20.0))  # R = 20 MOhm, 59 ms
    assert value_at(v, 109.0)[0] == pytest.approx(charging, abs=0.05)
    t = v.times.rescale("ms").magnitude
    firing = v.magnitude[(t > 110.0) & (t < 150.0), 0]  # 0.6 nA: above threshold, fires
    assert firing.max() > -55.5 and firing.min() < -64.0 and v.magnitude.max() <= -55.0


def test_inhomogeneous_network_example(pynn_examples, tmp_path):
    """Per-neuron parameters and initial values given as functions of the index."""
    stdout = run_example(pynn_examples, "inhomogeneous_network", tmp_path)
    segment = saved_block(tmp_path, "inhomogeneous_network").segments[0]
    v = segment.filter(name="v")[0]
    np.testing.assert_allclose(value_at(v, 0.0), -60.0 - np.arange(9))
    rate = float(stdout.split("Mean firing rate:")[1].split()[0])
    assert rate == pytest.approx(1000.0 * sum(len(s) for s in segment.spiketrains) / 9 / 100.0)
    assert rate > 0.0
