"""MPI data parallelism: two ranks train to the weights of one process with the same batches.

The two-rank run is launched with ``mpiexec`` in a subprocess (skipped with the reason when
mpi4py or an MPI launcher is missing: ``pip install pynn_eventprop[mpi]``).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pynn_eventprop.engine import threads
from pynn_eventprop.engine.threads import BLAS_VARIABLES, max_threads
from pynn_eventprop.training.distributed import Communicator, launched_by_mpi

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from pyNN.random import NumpyRNG, RandomDistribution
    import threadpoolctl
    import pynn_eventprop as sim
    from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
    from pynn_eventprop.engine.threads import get_threads, max_threads
    from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
    from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
    from pynn_eventprop.eventprop.training import Trainer
    from pynn_eventprop.neurons import WP_NEURON

    out = sys.argv[1]
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = NumpyRNG(seed=3)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(20, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    hidden.initialize(v=0.0)
    output.initialize(v=0.0)
    rule = EventPropRule(Adam(lr=5e-3))
    delay_rule = EventPropRule(Adam(lr=5e-3), learn_delays=True, delay_lr=0.05)
    projections = [
        sim.Projection(pre, post, sim.AllToAllConnector(), EventPropSynapse(
            weight=RandomDistribution("normal", (mean, mean), rng=rng), rule=r), label=label)
        for pre, post, mean, r, label in ((inputs, hidden, 1.5, rule, "in"),
                                          (hidden, output, 1.0, delay_rule, "out"))
    ]
    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    # 97 samples in batches of 16: the last batch has one sample, so rank 1 has none
    train = yin_yang_dataset("train", code).subset(np.arange(97))
    test = yin_yang_dataset("test", code).subset(np.arange(40))
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    trainer = Trainer(inputs, output, loss, duration=40.0, batch_size=16, seed=0, progress=False)
    before = {"initial " + p.label: p.get("weight", format="array") for p in projections}
    before["initial delay out"] = projections[1].get("delay", format="array")
    history = trainer.fit(train, epochs=2, checkpoint=out + ".ckpt")
    # files: rank 0 alone writes (each rank names its own file; only rank 0's may exist)
    trainer.save_checkpoint(f"{out}.rank{sim.rank()}.ckpt")
    output.record("spikes")
    sim.run(10.0)
    output.write_data(f"{out}.rank{sim.rank()}.pkl")
    report = {
        "num_processes": sim.num_processes(),
        "ranks": trainer.communicator.allgather(sim.rank()),
        "history": history.records,
        "test": trainer.evaluate(test),
        "predictions": trainer.predict(test.times).tolist(),
        "threads": trainer.communicator.allgather((get_threads(), max_threads(), sorted(
            {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
        ))),
    }
    if sim.rank() == 0:
        np.savez(out, **before, **{p.label: p.get("weight", format="array") for p in projections},
                 **{"delay out": projections[1].get("delay", format="array")})
        with open(out + ".json", "w") as f:
            json.dump(report, f)
    """
)


def _mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), else one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


#: The run's own settings, which these tests must not inherit: the switch that turns MPI on
#: or off, and thread counts (the ranks should choose theirs).
_UNSET = ("PYNN_EVENTPROP_MPI", "NUMBA_NUM_THREADS", *BLAS_VARIABLES)


def _run(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install pynn_eventprop[mpi])")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec (pip install mpich)")
    tmp_path = tmp_path_factory.mktemp("mpi")
    (tmp_path / "train.py").write_text(SCRIPT)
    _run([sys.executable, "train.py", "one.npz"], tmp_path)
    _run([mpiexec, "-n", "2", sys.executable, "train.py", "two.npz"], tmp_path)
    loaded = {"dir": tmp_path}
    for name in ("one", "two"):
        report = json.loads((tmp_path / f"{name}.npz.json").read_text())
        loaded[name] = dict(np.load(tmp_path / f"{name}.npz")), report
    return loaded


def test_two_ranks_end_with_the_weights_of_one_process(runs):
    """Weights, and the learned delays of the output projection (whose gradients are reduced
    over the ranks only because a projection learns delays)."""
    (w1, _), (w2, _) = runs["one"], runs["two"]
    names = {"in", "out", "delay out"}
    assert set(w1) == set(w2) == names | {"initial " + name for name in names}
    for label in names:
        # The two-rank gradient is (n_0 g_0 + n_1 g_1) / n instead of one sum over n samples:
        # equal up to float64 rounding (~1e-16 relative per step); after 14 Adam steps the
        # weights agree to far below 1e-9 nA, while a lost or doubled sample moves them by
        # ~lr = 5e-3 nA (the delays: 1e-9 ms against steps of ~delay_lr = 0.05 ms).
        np.testing.assert_allclose(w2[label], w1[label], rtol=0, atol=1e-9)
        assert np.abs(w1[label] - w1["initial " + label]).max() > 1e-2  # training moved them


def test_two_ranks_report_the_global_batches(runs):
    (_, one), (_, two) = runs["one"], runs["two"]
    assert one["num_processes"] == 1 and one["ranks"] == [0]
    assert two["num_processes"] == 2 and two["ranks"] == [0, 1]
    for a, b in zip(one["history"], two["history"], strict=True):
        assert a["accuracy"] == b["accuracy"]  # counted over all 97 samples on both
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-12)
    assert two["test"]["accuracy"] == one["test"]["accuracy"]
    assert two["test"]["n"] == one["test"]["n"] == 40
    assert two["predictions"] == one["predictions"]


def test_ranks_of_one_machine_share_its_cores(runs):
    """Two ranks on one machine: each runs the kernels and BLAS on half of the cores (at least
    one), not on all of them (which on 2 cores made 2 ranks slower than 1 process)."""
    (_, one), (_, two) = runs["one"], runs["two"]
    [(threads_one, cores, _)] = one["threads"]
    assert threads_one == cores
    for threads_two, cores_two, blas in two["threads"]:
        assert cores_two == cores
        assert threads_two == max(1, cores // 2)
        assert blas == [max(1, cores // 2)]


def test_a_thread_count_fixed_in_the_environment_is_kept(monkeypatch):
    monkeypatch.setattr(threads, "_processes_per_machine", 2)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert threads.default_threads() == max(1, max_threads() // 2)
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(max_threads()))
    assert threads.default_threads() == max_threads()


def test_only_rank_0_writes_checkpoints_and_neo_files(runs):
    written = sorted(p.name for p in runs["dir"].glob("two.npz.rank*"))
    assert written == ["two.npz.rank0.ckpt", "two.npz.rank0.pkl"]


class FakeComm:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_rank_slices_cover_every_global_batch_once_in_order(size):
    for n in range(0, 12):
        parts = [Communicator(FakeComm(r, size)).part(n) for r in range(size)]
        covered = np.concatenate([np.arange(n)[p] for p in parts])
        assert covered.tolist() == list(range(n))
        local = Communicator(FakeComm(0, size)).local_batch(max(n, 1))
        assert all(p.stop - p.start <= local for p in parts)
        if n:
            assert parts[0].stop > parts[0].start  # rank 0 always has a sample


def test_mpi_is_used_only_when_a_launcher_started_the_process():
    assert not launched_by_mpi({})
    assert launched_by_mpi({"PMI_SIZE": "2"})
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})
    assert not launched_by_mpi({"PMI_SIZE": "2", "PYNN_EVENTPROP_MPI": "0"})
    assert launched_by_mpi({"PYNN_EVENTPROP_MPI": "1"})


def test_yin_yang_example_under_two_ranks_prints_and_writes_on_rank_0(tmp_path):
    """``mpiexec -n 2 python examples/yin_yang.py`` finishes: rank 0 alone prints the results
    and writes the figures; the collective steps (training, evaluation, the decision map's
    predictions) run on both ranks, or the run would hang until the timeout."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install pynn_eventprop[mpi])")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec (pip install mpich)")
    example = Path(__file__).resolve().parents[1] / "examples" / "yin_yang.py"
    args = ["--preset", "quick", "--epochs", "1", "--train-samples", "96", "--no-progress",
            "--out", str(tmp_path / "out"), "--json", str(tmp_path / "figures.json")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYNN_EVENTPROP_MPI"}
    done = subprocess.run([mpiexec, "-n", "2", sys.executable, str(example), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("test accuracy") == 1
    assert "SpiNNaker2 model report skipped under MPI" in done.stdout
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["mpi_processes"] == 2
    assert (tmp_path / "out" / "yin_yang.png").is_file()
    assert (tmp_path / "out" / "history.csv").is_file()


REDUCTION = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mpi4py import MPI
    from pynn_eventprop.training.distributed import Communicator

    comm = Communicator(MPI.COMM_WORLD)
    rng = np.random.default_rng(comm.rank)
    # 7 + 10 + 5 entries: not a multiple of the rank count; one array in float32
    arrays = [rng.normal(size=7) * 10.0 ** rng.integers(-8, 8, 7), rng.normal(size=(2, 5)),
              rng.normal(size=5).astype(np.float32)]
    weight = float(comm.rank + 1)
    reduced = comm.weighted_mean(arrays, weight, total=6.5)
    terms = comm.allgather([np.asarray(a, np.float64) * weight for a in arrays])
    expected = []
    for i, a in enumerate(arrays):
        total = terms[0][i].copy()
        for r in range(1, comm.size):  # rank order
            total = total + terms[r][i]
        expected.append((total / 6.5).astype(a.dtype))
    same = all(np.array_equal(x, y) and x.dtype == y.dtype and x.shape == y.shape
               for x, y in zip(reduced, expected))
    everywhere = comm.allgather([x.tobytes() for x in reduced])
    if comm.rank == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"same": same, "identical": all(e == everywhere[0] for e in everywhere),
                       "empty": comm.weighted_mean([], 1.0, 1.0)}, f)
    else:
        comm.weighted_mean([], 1.0, 1.0)
    """
)


@pytest.mark.parametrize("ranks", [2, 3])
def test_gradient_reduction_sums_in_rank_order_on_every_rank(ranks, tmp_path):
    """The reduce-scatter/all-gather reduction equals the plain rank-order sum bit for bit,
    on every rank, with entries of very different magnitudes (where the order of a float sum
    shows), a length that does not divide into the ranks, and a float32 array."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install pynn_eventprop[mpi])")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec (pip install mpich)")
    (tmp_path / "reduce.py").write_text(REDUCTION)
    _run([mpiexec, "-n", str(ranks), sys.executable, "reduce.py", "out.json"], tmp_path)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result == {"same": True, "identical": True, "empty": []}


@pytest.mark.parametrize("kind", ["matrix", "spike trains"])
def test_gradient_exchange_leaves_out_inputs_silent_in_the_global_batch(kind):
    """The ranks exchange only the gradient rows of input neurons that spike somewhere in the
    global batch (every rank knows the whole batch): the rows of silent ones are 0 on every
    rank.  On one process the distributed step sends 3 of the 5 input rows of each input
    projection, and its gradients equal the plain step's bit for bit (the rows left out are
    0 there too)."""
    from test_exact_shared import shared_network

    from pynn_eventprop.datasets import SpikeTrainBatch
    from pynn_eventprop.engine.exact import ExactSimulation
    from pynn_eventprop.training import TTFSCrossEntropy
    from pynn_eventprop.training.distributed import DistributedStep
    from pynn_eventprop.training.step import TrainingStep

    rng = np.random.default_rng(5)
    net = shared_network(rng)
    times = rng.uniform(0.0, 10.0, (4, 5))
    times[:, [1, 3]] = np.nan  # silent in every sample of the batch
    times[[0, 2, 3], 4] = np.nan  # spikes in one sample only: sent
    labels = np.array([0, 1, 2, 1])
    if kind == "spike trains":
        times = SpikeTrainBatch.from_matrix(times)
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=-55.0)

    def gradients(step):
        return step.gradients(step.forward(times, labels))

    def engine():
        return ExactSimulation(net, 0.5, batch_size=4, readout_populations=[2])

    plain = gradients(TrainingStep(engine(), 0, 2, loss, 80))
    step = DistributedStep(Communicator(), engine(), 0, 2, loss, 80)
    exchange, sent = step.communicator.weighted_mean, []

    def spy(arrays, weight, total):
        sent.append([np.shape(a) for a in arrays])
        return exchange(arrays, weight, total)

    step.communicator.weighted_mean = spy
    distributed = gradients(step)
    inputs = [k for k, p in enumerate(net.projections) if p.pre == 0]
    assert [sent[0][k][0] for k in inputs] == [3] * len(inputs)
    assert sent[0][len(inputs)] == net.projections[len(inputs)].mask.shape  # hidden: all rows
    for x, y in zip(distributed.weights + distributed.delays, plain.weights + plain.delays,
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(x, y)
    assert all(np.any(plain.weights[k][[0, 2, 4]] != 0) for k in inputs)
