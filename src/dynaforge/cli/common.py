"""What every command shares: the Typer app, the consoles, error handling, run-folder checks,
thread settings, task settings from flags, and table printing.

Every command validates its input before doing any work, turns a bad input into one clear
``error:`` line and a non-zero exit (:func:`guard`), and writes its artifacts atomically.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    # Help texts are plain text: "[default: ...]" in them must not be read as rich markup.
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Learn the dynamics of physical systems from simulation data, and say honestly how "
    "well each model does.",
)
console = Console(stderr=True)
out_console = Console()


class UsageError(Exception):
    """A problem with what the user asked for (reported without a traceback)."""


def fail(message: str) -> None:
    # Escaped: a message may hold brackets (paths, lists) that rich would read as markup; soft
    # wrap: no newline is inserted inside a long path.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


#: What a user interrupted with Ctrl-C is told, per command (the same command resumes).
RESUME_HINTS = {
    "benchmark": "run the same command again to resume: finished models are kept, training "
    "continues from its last epoch's checkpoint",
    "tune": "run the same command again to resume the study: finished trials are kept, the "
    "interrupted ones are run again",
    "sweep": "run the same command again to resume: finished runs are kept",
    "train": "run the same command again to resume from the last epoch's checkpoint",
    "discover": "run the same command again to resume: what finished (autoencoder seeds) is kept",
    "simulate": "nothing was written; run the command again",
}
#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


def guard(fn):
    """Run a command body, turning expected input problems into an error line and exit 2, and
    Ctrl-C into one line saying how to resume and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            # A second Ctrl-C while this line is written would end in a traceback instead.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            hint = RESUME_HINTS.get(fn.__name__, "nothing is lost; run the command again")
            console.print(
                f"[bold yellow]interrupted:[/] {escape(hint)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=INTERRUPTED_EXIT) from None
        except (
            UsageError,
            ValueError,
            FileNotFoundError,
            PermissionError,
            NotADirectoryError,
            IsADirectoryError,
            KeyError,
            OSError,
        ) as exc:
            fail(str(exc) if str(exc) else type(exc).__name__)

    return wrapper


def check_writable_dir(path: Path) -> bool:
    """Make sure ``path`` can hold our files; returns True when this call created it."""
    created = not path.exists()
    if path.exists() and not path.is_dir():
        raise UsageError(f"output path {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return created


def _probe_write(folder: Path, what: str) -> None:
    """Create and remove a file in ``folder``: the only check that answers for every file
    system, user and mount (permissions, read-only mounts, quotas)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".dynaforge-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{what}: {folder} is not writable ({exc.strerror or exc})") from None


def check_creatable_dir(path: Path) -> None:
    """Fail early (before any work) when ``path`` cannot become a folder we can write in;
    creates nothing (a probe file in the nearest existing folder is removed at once)."""
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"output path {path} exists and is not a folder")
        _probe_write(path, f"cannot write into output folder {path}")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create output folder {path}: {ancestor} is not a folder")
    _probe_write(ancestor, f"cannot create output folder {path}")


def check_output_file(path: Path, *, overwrite: bool, suffixes: tuple[str, ...]) -> None:
    """Fail early (before any work) when the file ``path`` cannot be written: wrong suffix,
    a missing or unwritable folder, an existing file without ``overwrite``, a folder there."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"output {path} must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise UsageError(f"output folder {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"output {path} is a folder, not a file")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; pass --overwrite to replace it")
    _probe_write(path.parent, f"cannot write {path}")


#: What every benchmark run writes into its folder (with its task's ``extra_file_names``, all
#: that --overwrite removes).
RUN_ARTIFACTS = (
    "config.json",
    "metrics.json",
    "leaderboard.csv",
    "predictions.npz",
    "report.html",
    "figures",
    "checkpoints",
)


def previous_run_config(out: Path) -> dict | None:
    """The configuration of the run in ``out``, None if there is none; fails when ``out`` holds
    a config.json that no dynaforge run wrote (so that it is never replaced)."""
    previous = out / "config.json"
    if not previous.is_file():
        return None
    try:
        doc = json.loads(previous.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if not (isinstance(doc, dict) and {"task", "models"} <= set(doc)):
        raise UsageError(
            f"{out} holds a config.json that is not from a dynaforge benchmark run; "
            "choose another --out"
        )
    return doc


def remove_run(out: Path, previous: dict, task) -> None:
    """Remove the artifacts of the previous run in ``out`` (its config ``previous``; the files
    of its task and of ``task``), and nothing else the folder holds."""
    from dynaforge.tasks import TASKS

    names = [*RUN_ARTIFACTS, *task.extra_file_names]
    # A run from before tasks had names was a Lorenz-63 run.
    before = TASKS.get(str(previous.get("task_name") or "lorenz63"))
    if before is not None:
        names += before.extra_file_names
    for name in dict.fromkeys(names):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def set_threads(threads: int | None) -> None:
    """``--threads``: torch's CPU threads (None leaves torch's default: all cores)."""
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def print_table(table: Table) -> None:
    """Print ``table`` to stdout; when stdout is a file or pipe (whose width rich takes as 80
    columns) at its natural width, so that no name or number is cut short."""
    if out_console.is_terminal:
        out_console.print(table)
        return
    width = Measurement.get(out_console, out_console.options.update_width(10_000), table).maximum
    Console(file=out_console.file, width=max(width, 80)).print(table)


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """``--set NAME=VALUE`` options → ``{NAME: value}``, values read as YAML scalars (numbers,
    true/false, null, strings)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set must look like NAME=VALUE, got {item!r}")
        try:
            out[name] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            out[name] = text
        out[name] = _number_or_same(out[name])
    return out


def _number_or_same(value: Any) -> Any:
    """YAML 1.1 reads ``1e12`` (no dot) as text; a user who types it means a number."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return (
            int(number)
            if number.is_integer() and "." not in value and "e" not in value.lower()
            else number
        )
    return value


def parse_system_params(items: list[str] | None) -> dict[str, float]:
    """``--system-param NAME=VALUE`` options → ``{NAME: number}`` (ints stay ints: a dimension
    such as Lorenz-96's ``n``). Names are checked against the system later, which lists its
    parameters."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise UsageError(f"--system-param must look like NAME=VALUE, got {item!r}")
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise UsageError(f"--system-param {name} must be a number, got {text!r}") from None
        if name in out and out[name] != value:
            raise UsageError(f"--system-param {name} is given twice, with different values")
        out[name] = value
    return out


def task_overrides(settings: list[str] | None, **flags: Any) -> dict[str, Any]:
    """The task settings given on the command line: the named flags that were set (None: not
    given), then every ``--set``; a setting given both ways must agree."""
    given = {k: v for k, v in flags.items() if v is not None}
    for name, value in parse_settings(settings).items():
        if name in given and given[name] != value:
            raise UsageError(f"task setting {name} is given twice, with different values")
        given[name] = value
    return given


def print_leaderboard(run_dir: Path) -> None:
    """The leaderboard of the benchmark run in ``run_dir``, as the task declares its table."""
    from dynaforge.report.html import task_of
    from dynaforge.tasks import leaderboard_rows

    doc = json.loads((run_dir / "metrics.json").read_text())
    task = task_of(doc)
    rows = leaderboard_rows(task, doc["models"])
    columns = task.table_columns()
    table = Table(title=task.table_title(doc))
    table.add_column("rank", justify="right")
    table.add_column("model", justify="left", no_wrap=True)
    for col in columns:
        table.add_column(col.label, justify="right" if col.numeric else "left")
    for row in rows:
        name = row["model"]
        if "error" in doc["models"][name]:
            table.add_row(
                str(row["rank"]),
                name,
                "failed: " + doc["models"][name]["error"][:60],
                *[""] * (len(columns) - 1),
            )
            continue
        table.add_row(str(row["rank"]), name, *[col.cell(row) for col in columns])
    print_table(table)
