"""Interleaved A/B of ``benchmarks/train_yinyang.py`` between this checkout and another one.

Each round runs one configuration of ``train_yinyang.py`` in a fresh process for this checkout
and then for the other source tree (``--other PATH``: a checkout or ``git archive`` of another
revision, put first on ``PYTHONPATH``), alternating, so that both see the same machine load.
Every process trains ``--repeats`` epochs after a warm-up and reports samples per CPU second
of the process (its ``time.perf_counter`` is replaced by ``time.process_time``, so any
revision's script can be measured unchanged); the ratio of the medians is printed.

    git archive REV | tar -x -C /tmp/rev
    python benchmarks/compare_revisions.py --other /tmp/rev [--config twin] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

#: Run in a child: load ``train_yinyang.py`` of a tree, time it in CPU seconds, print JSON.
DRIVER = """
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("ty", sys.argv[1])
ty = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ty)
ty.time.perf_counter = time.process_time
result = ty.measure(sys.argv[2], repeats=int(sys.argv[3]), **ty.CONFIGS[sys.argv[2]])
print("RESULT " + json.dumps(result))
"""


def run_tree(tree: Path, config: str, repeats: int) -> float:
    """Median samples per CPU second of one process on ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    script = tree / "benchmarks" / "train_yinyang.py"
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(script), config, str(repeats)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])["samples_per_s_median"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, type=Path, help="the other source tree")
    parser.add_argument("--config", default="twin", help="train_yinyang.py configuration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="epochs per process")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if not (args.other / "benchmarks" / "train_yinyang.py").is_file():
        parser.error(f"--other {args.other} has no benchmarks/train_yinyang.py")
    figures = {"this": [], "other": []}
    for r in range(args.rounds):
        for side, tree in (("this", HERE), ("other", args.other.resolve())):
            figures[side].append(run_tree(tree, args.config, args.repeats))
        print(f"round {r + 1}: this {figures['this'][-1]:.0f}, other {figures['other'][-1]:.0f} "
              f"samples per CPU second")  # fmt: skip
    ratios = [a / b for a, b in zip(figures["this"], figures["other"], strict=True)]
    summary = {
        "config": args.config,
        "this_median": statistics.median(figures["this"]),
        "other_median": statistics.median(figures["other"]),
        "ratio_of_medians": statistics.median(figures["this"])
        / statistics.median(figures["other"]),
        "ratio_per_round": ratios,
        **figures,
    }
    print(
        f"{args.config}: this {summary['this_median']:.0f}, other {summary['other_median']:.0f}"
        f" samples per CPU second (medians of {args.rounds} rounds); ratio "
        f"{summary['ratio_of_medians']:.2f} (per round {min(ratios):.2f}-{max(ratios):.2f})"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)
    return summary


if __name__ == "__main__":
    main()
