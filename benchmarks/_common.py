"""Shared helpers for the performance benchmarks: threads, timing, machine facts, tables.

Every benchmark module exposes ``run(quick: bool) -> dict`` (all figures, JSON-ready) and
``report(result)`` (prints its ratio tables). Nothing here asserts on wall-clock time.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Cores of this machine; torch uses all of them (the brief: "threads = the machine's cores").
CORES = os.cpu_count() or 1


def setup_threads() -> int:
    """Set torch's intra-op threads to the machine's cores; returns the count."""
    torch.set_num_threads(CORES)
    return CORES


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (other jobs on the machine inflate every timing)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy
    import scipy

    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": CORES,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "load_average": load_average(),
    }
    try:
        import reservoirpy

        info["reservoirpy"] = reservoirpy.__version__
    except ImportError:  # pragma: no cover - the bench extra is not installed
        info["reservoirpy"] = None
    try:
        import dynaforge

        info["dynaforge"] = dynaforge.__version__
    except (ImportError, AttributeError):  # pragma: no cover
        info["dynaforge"] = None
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of ``fn`` takes, and its return value."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt_rate(x: float) -> str:
    """1.23e+07 style for rates, so big and small figures read alike."""
    return f"{x:.3g}" if x < 1e4 else f"{x:.3e}"


def fmt_ratio(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    return f"{x:.3g}x" if x < 100 else f"{x:.0f}x"


def goal_mark(met: bool) -> str:
    return "met" if met else "MISSED"


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], notes: Sequence[str] = ()
) -> None:
    """A rich table when rich is installed (it is a dynaforge dependency), else aligned text."""
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:  # pragma: no cover
        _print_plain(title, columns, rows, notes)
        return
    table = Table(title=escape(title), title_justify="left", show_lines=False)
    for i, col in enumerate(columns):
        table.add_column(escape(col), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[escape(str(c)) for c in row])
    console = Console(width=_terminal_width() if sys.stdout.isatty() else 140)
    console.print(table)
    for note in notes:
        console.print(f"  [dim]{escape(note)}[/dim]", highlight=False)
    console.print()


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


def _print_plain(title, columns, rows, notes) -> None:
    cells = [list(map(str, columns))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    print(title)
    for k, r in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            )
        )
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))
    for note in notes:
        print(f"  {note}")
    print()


def quick_flag(argv: Sequence[str] | None = None) -> bool:
    """``--quick`` on the command line of a single benchmark script."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    return parser.parse_args(argv).quick
