"""What the benchmark scripts share: timing calls and writing their section of RESULTS.md.

Each script in ``benchmarks/`` measures one thing, prints a table and replaces its own
``## ...`` section of ``benchmarks/RESULTS.md`` (other sections are left untouched). The
scripts run as ``python benchmarks/<name>.py``; they put the repository root on ``sys.path``
and import this module as ``benchmarks.results``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tvr.io import atomic_write_text

T = TypeVar("T")
R = TypeVar("R")

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHARED_MACHINE_NOTE = "timings on a shared machine vary by ±30-50 % between runs."


def add_results_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--results PATH`` (the markdown file to update) and ``--no-write`` to ``parser``."""
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")


def timings_ms(fn: Callable[[T], R], inputs: Sequence[T]) -> tuple[list[float], R]:
    """Wall time in ms of ``fn(x)`` for each ``x`` in ``inputs``, after one warm-up call.

    Args:
        fn: the call to time.
        inputs: one timed call per item; the warm-up call takes the first (so it must not be
            empty). Pass ``range(reps)`` to repeat a call that takes no input.

    Returns:
        The per-call times in milliseconds, in order, and the last call's result.
    """
    if not inputs:
        raise ValueError("timings_ms needs at least one input (the warm-up call takes the first)")
    result = fn(inputs[0])  # warm-up
    times = []
    for x in inputs:
        t0 = time.perf_counter()
        result = fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return times, result


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces this run, ``OMP_WAIT_POLICY`` included when it is set.

    Args:
        script: the script as run from the repository root, e.g. ``benchmarks/x.py``.
        argv: the arguments ``main`` was given; ``None`` means ``sys.argv[1:]``.
    """
    env = os.environ.get("OMP_WAIT_POLICY")
    args = sys.argv[1:] if argv is None else argv
    return (f"OMP_WAIT_POLICY={env} " if env else "") + f"python {script}" + "".join(
        " " + a for a in args
    )


def load_note(start: float, end: float | None = None, *, detail: str = "") -> str:
    """The load-average sentence closing a section: the machine is shared, timings vary.

    Args:
        start: the 1-minute load average when the run started.
        end: the same when it ended; ``None`` when only the start was read.
        detail: text put in after "shared with other jobs" (e.g. a parenthesised setting);
            only used with ``end``.
    """
    cores = os.cpu_count()
    if end is None:
        return f"Load average when the run started: {start:.1f} on {cores} cores; " + (
            SHARED_MACHINE_NOTE
        )
    return (
        f"Load average: {start:.1f} at the start, {end:.1f} at the end, on {cores} cores shared "
        f"with other jobs{detail}; {SHARED_MACHINE_NOTE}"
    )


def update_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) the ``heading`` section of a markdown file, atomically.

    A section runs from its heading line to the next ``## `` heading (or the end of the file);
    a file that does not exist yet starts as ``# Benchmark results``.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    new = [heading, "", *body.strip("\n").splitlines(), ""]
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *new]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines[start:end] = new
    atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")


def publish(args: argparse.Namespace, heading: str, body: str) -> None:
    """Print ``body`` and, unless ``--no-write``, make it the ``heading`` section of
    ``--results`` (see :func:`add_results_args`)."""
    print(body)
    if not args.no_write:
        update_section(args.results, heading, body)
