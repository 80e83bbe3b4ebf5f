"""Results do not depend on the number of threads: the samples of a batch run in parallel,
each into its own buffers, and their gradients are summed in blocks fixed by the sizes
alone, so one thread and two give the same bits (no tolerance: any dependence on the
scheduling would show as a rounding difference)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_exact_networks import random_input
from test_exact_shared import shared_network
from threadpoolctl import threadpool_info, threadpool_limits

from pynn_eventprop.datasets import SpikeDataset
from pynn_eventprop.engine import threads
from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.exact.adjoint import reduction_blocks
from pynn_eventprop.engine.threads import get_threads, max_threads, set_threads
from pynn_eventprop.training import step as training_step

needs_two = pytest.mark.skipif(max_threads() < 2, reason="numba sees a single core")


@pytest.fixture(autouse=True)
def all_threads_afterwards(monkeypatch):
    # the small test networks would otherwise run on one thread whatever the setting
    monkeypatch.setattr(threads, "SERIAL_WORK", 0)
    yield
    set_threads(None)


def run_and_backward(threads, net, inp, coef, readouts, general):
    set_threads(threads)
    assert get_threads() == threads
    sim = ExactSimulation(net, 0.5, batch_size=inp.batch, readout_populations=readouts,
                          sample_adjoints=general)  # fmt: skip
    res = sim.run(80, sources={0: inp}, keep_for_backward=True)
    grads = sim.backward(res, {2: {name: coef for name in readouts.get(2, ())} | {
        "first_spike_time": coef}})  # fmt: skip
    return res, grads


@needs_two
@pytest.mark.parametrize("general", [False, True], ids=["shared path", "general path"])
@pytest.mark.parametrize("readouts", [{}, {1: ("v_max",), 2: ("v_max", "v_mean_uniform")}])
def test_one_and_two_threads_give_the_same_bits(readouts, general):
    rng = np.random.default_rng(3)
    net = shared_network(rng)
    inp = random_input(rng, 9, 5, 20.0, per_neuron=3)
    coef = rng.normal(size=(9, 3))
    runs = [run_and_backward(n, net, inp, coef, readouts, general) for n in (1, 2)]
    (res1, g1), (res2, g2) = runs
    assert all(bool(tape.get("shared")) != general for tape in res1.tape["pops"].values() if tape)
    for p in (1, 2):
        assert res1.spikes[p].times.size > 20
        np.testing.assert_array_equal(res1.spikes[p].times, res2.spikes[p].times)
        np.testing.assert_array_equal(res1.spikes[p].neurons, res2.spikes[p].neurons)
    for x, y in zip(g1.weights + g1.delays, g2.weights + g2.delays, strict=True):
        assert np.any(x != 0)
        np.testing.assert_array_equal(x, y)


def test_reduction_blocks_depend_on_sizes_only():
    assert reduction_blocks(22, 600) == 22  # small layers: one block per sample
    assert reduction_blocks(32, 784 * 350) == 2  # large ones: fewer, a power of two
    assert reduction_blocks(32, 20_000) == 32  # 2 x 20,000 x 32 elements still fit
    assert reduction_blocks(64, 20_000) == 32  # 52 would fit: the power of two below
    assert reduction_blocks(4, 1 << 30) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        set_threads(bad)


def test_more_threads_than_cores_are_reduced_with_a_warning():
    with pytest.warns(UserWarning, match=f"at most {max_threads()} threads"):
        assert set_threads(max_threads() + 6) == max_threads()
    assert get_threads() == max_threads()


def test_small_kernel_calls_run_on_one_thread(monkeypatch):
    """Below ``SERIAL_WORK`` a call runs on one thread, and the caller's count comes back."""
    import numba

    monkeypatch.setattr(threads, "SERIAL_WORK", 100)
    set_threads(max_threads())
    with threads.threads_for(99):
        assert numba.get_num_threads() == 1
    assert get_threads() == max_threads()
    with threads.threads_for(100):
        assert numba.get_num_threads() == max_threads()


def _blas_threads() -> set:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


class BlasProbe:
    """Stands in for a TrainingStep: records the BLAS thread counts of each batch."""

    def __init__(self):
        self.seen = []

    def forward(self, times, labels, context=""):
        self.seen.append(_blas_threads())
        n = len(labels)
        outcome = SimpleNamespace(loss=0.0, correct=np.zeros(n, bool), predictions=np.zeros(n))
        return SimpleNamespace(loss=outcome)

    def train(self, times, labels, learners, context=""):
        return self.forward(times, labels), {}


@pytest.mark.parametrize("loop", ["run_epoch", "evaluate", "predict"])
def test_blas_runs_on_one_thread_in_the_training_loops(monkeypatch, loop):
    """OpenBLAS threads spin after a call and take the cores from the kernels: the training
    core's loops run BLAS on one thread, and give the caller's count back afterwards."""
    for variable in threads.BLAS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    data = SpikeDataset(np.zeros((6, 2)), np.arange(6) % 2, n_classes=2, duration=1.0)
    probe = BlasProbe()
    calls = {
        "run_epoch": lambda: training_step.run_epoch(probe, data, 4, {}, np.random.default_rng(0)),
        "evaluate": lambda: training_step.evaluate(probe, data, 4),
        "predict": lambda: training_step.predict(probe, data.times, 4),
    }
    with threadpool_limits(2, user_api="blas"):
        calls[loop]()
        assert _blas_threads() == {2}
    assert probe.seen == [{1}, {1}]


def test_blas_counts_set_by_the_user_stand_those_set_for_mpi_ranks_do_not(monkeypatch):
    """A BLAS variable in the environment keeps the training loops' hands off BLAS, unless
    it was set by ``share_cores`` (for the MPI ranks of one machine)."""
    for variable in threads.BLAS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "_set_here", set())
    with threadpool_limits(2, user_api="blas"):
        with threads.blas_on_one_thread():
            assert _blas_threads() == {2}
        monkeypatch.setattr(threads, "_set_here", {"OPENBLAS_NUM_THREADS"})
        with threads.blas_on_one_thread():
            assert _blas_threads() == {1}


@pytest.mark.parametrize(
    "environ, layer, expected",
    [
        ({}, "omp", 30_000),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "omp", 30_000),
        ({"OMP_WAIT_POLICY": "active"}, "omp", 2_000),
        ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"}, "omp", 2_000),
        ({"GOMP_SPINCOUNT": "INFINITE"}, "omp", 2_000),
        ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}, "omp", 30_000),
        ({}, "tbb", 2_000),
        ({"OMP_WAIT_POLICY": "PASSIVE"}, "tbb", 2_000),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "workqueue", 30_000),
    ],
)
def test_spinning_workers_take_smaller_calls(environ, layer, expected):
    """Passive workers are slow to wake, so only large calls use them; spinning OpenMP ones
    (``GOMP_SPINCOUNT`` overrides the policy in libgomp) and TBB's are not."""
    assert threads.serial_work(environ, layer) == expected


def test_threshold_set_on_first_use(monkeypatch):
    """:data:`threads.SERIAL_WORK` comes from the layer numba runs on, once."""
    monkeypatch.setattr(threads, "SERIAL_WORK", None)
    expected = threads.serial_work(layer=threads.threading_layer())
    assert threads.serial_threshold() == expected == threads.SERIAL_WORK
    assert threads.threading_layer() in ("tbb", "omp", "workqueue")
