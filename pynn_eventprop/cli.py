"""Command line: ``pynn-eventprop train yin-yang [...]``, ``pynn-eventprop validate [...]``."""

from __future__ import annotations

import argparse
import sys

TASKS = {"yin-yang": "pynn_eventprop.tasks.yin_yang"}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="pynn-eventprop",
        description="EventProp training of PyNN networks, SpiNNaker2 model, Brian2 validation.",
    )
    parser.add_argument("command", choices=("train", "validate"))
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the command")
    args = parser.parse_args(argv[:1])
    rest = argv[1:]
    if args.command == "train":
        if not rest or rest[0] not in TASKS:
            parser.error(f"train needs a task: one of {sorted(TASKS)}")
        module = __import__(TASKS[rest[0]], fromlist=["main"])
        module.main(rest[1:])
    else:
        from .crossvalidation.validate import main as validate

        return validate(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
