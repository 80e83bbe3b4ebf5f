"""Command line: ``pynn-eventprop train yin-yang [...]``, ``pynn-eventprop validate [...]``.

``pynn-eventprop --help`` lists the commands; ``pynn-eventprop train --help`` the tasks;
``pynn-eventprop train yin-yang --help`` and ``pynn-eventprop validate --help`` their
arguments and defaults.  The argument types below (:func:`positive_int`, ...) reject bad
values while parsing, so a bad value ends the command with a message and exit status 2
before any data is loaded or any training starts.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

TASKS = {"yin-yang": "pynn_eventprop.tasks.yin_yang"}

TASK_HELP = {
    "yin-yang": "5-300-3 spiking network on the Yin-Yang data set (the project's main recipe)"
}


def _number(text: str, kind, allowed: str, accept) -> float | int:
    """Parse ``text`` as ``kind`` and check it with ``accept``; argparse reports the failure."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value) or not accept(value):
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, "an integer >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, "a finite number > 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, "a finite number >= 0", lambda v: v >= 0)


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    return _number(text, float, "a number in (0, 1]", lambda v: 0 < v <= 1)


def output_file(text: str) -> str:
    """argparse type: a file a script writes at its end (``--json``, ``--weights``); its
    directory is created now, before any work starts, so that a run is not lost for want of
    it.  A path that is a directory, or whose directory cannot be made, is an error."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot create the directory {str(path.parent)!r} of {text!r}: {error}"
        ) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with the ``train`` and ``validate`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="pynn-eventprop",
        description="EventProp training of PyNN networks, SpiNNaker2 model, Brian2 validation.",
        epilog="Run 'pynn-eventprop COMMAND --help' for the arguments of a command.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = commands.add_parser(
        "train",
        help="train a task's network with EventProp and write its outputs",
        description=(
            "Train a task's spiking network with exact EventProp gradients, report the test "
            "accuracy and write history, checkpoint, Neo recordings, plots and the SpiNNaker2 "
            "report.  Tasks: "
            + "; ".join(f"{name}: {text}" for name, text in TASK_HELP.items())
            + "."
        ),
        epilog="Run 'pynn-eventprop train TASK --help' for the task's arguments and defaults.",
    )
    train.add_argument("task", choices=sorted(TASKS), help="the task to train")
    train.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="the task's arguments (see TASK --help)"
    )
    commands.add_parser(
        "validate",
        add_help=False,  # --help goes to the validation's own parser
        help="convergence study: Brian2 at dt 0.1, 0.01, 0.001 ms against the exact engine",
    )
    return parser


def main(argv=None):
    """Run a command; returns its exit status (argparse exits with 2 on a bad argument)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "validate":
        from .crossvalidation.validate import main as validate

        return validate(argv[1:])
    args = parser.parse_args(argv)
    module = __import__(TASKS[args.task], fromlist=["main"])
    module.main(args.arguments, prog=f"pynn-eventprop train {args.task}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
