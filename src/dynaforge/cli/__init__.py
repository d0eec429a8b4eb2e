"""The ``dynaforge`` command line: argv → config → the same functions a notebook calls.

One Typer app (:data:`app`, in :mod:`.common` with what every command shares); each module
registers its commands on it when imported, and this package imports them all:

- :mod:`.run`: ``simulate``, ``tasks``, ``models``, ``benchmark``, ``report``, ``acf``;
- :mod:`.discover`: ``discover``;
- :mod:`.lyapunov`: ``lyapunov``;
- :mod:`.tune`: ``tune``, ``sweep``, ``train``.

The command modules import :mod:`.common`, never this package, so there is no import circle.
"""

from __future__ import annotations

import sys

# Importing a module registers its commands, in this order in `dynaforge --help`: the way a
# user meets them (run a task, tune it, discover equations).
from dynaforge.cli import run  # isort: skip # noqa: F401
from dynaforge.cli import tune  # isort: skip # noqa: F401
from dynaforge.cli import discover  # isort: skip # noqa: F401
from dynaforge.cli import lyapunov  # isort: skip # noqa: F401
from dynaforge.cli.common import UsageError, app

__all__ = ["UsageError", "app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
