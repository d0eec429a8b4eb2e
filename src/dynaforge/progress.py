"""Progress on long work: a bar on a terminal, one plain line per step in a log.

:func:`progress_bar` gives a ``tqdm`` bar when its stream (standard error) is a terminal, and
otherwise a :class:`LineProgress`, which writes one line per step (``lstm: epoch 3/25, train
1.2e-03, val 1.5e-03``) at most every ``min_interval`` seconds: a log file or CI output gets
readable lines, never a stream of carriage returns. Both offer the part of tqdm's interface
dynaforge uses: ``update(n)``, ``set_postfix(**values)`` (shown with the next line: call it
before ``update``), ``n``, ``refresh()`` and ``close()``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def progress_bar(
    total: int | None,
    *,
    desc: str,
    unit: str,
    enabled: bool = True,
    initial: int = 0,
    leave: bool = True,
    min_interval: float = 0.0,
    stream: TextIO | None = None,
) -> Any:
    """A progress display for ``total`` steps (None when ``enabled`` is false).

    Args:
        min_interval: least seconds between two lines in a log (a terminal bar redraws itself).
        leave: keep the finished bar on a terminal.
    """
    if not enabled:
        return None
    stream = stream if stream is not None else sys.stderr
    if _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave,
                    dynamic_ncols=True, file=stream, mininterval=0.5)  # fmt: skip
    return LineProgress(total, desc=desc, unit=unit, initial=initial,
                        min_interval=min_interval, stream=stream)  # fmt: skip


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


class LineProgress:
    """tqdm's interface, as one line per step (see the module docstring)."""

    def __init__(
        self,
        total: int | None,
        *,
        desc: str,
        unit: str,
        initial: int = 0,
        min_interval: float = 0.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.min_interval = min_interval
        self.stream = stream if stream is not None else sys.stderr
        self._postfix = ""
        self._shown = initial
        self._last = -float("inf")
        self._start = time.monotonic()

    def set_postfix(self, **values: Any) -> None:
        self._postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        self.refresh()

    def refresh(self) -> None:
        """Write a line if the count moved and ``min_interval`` has passed (or it is done)."""
        if self.n == self._shown:
            return
        now = time.monotonic()
        done = self.total is not None and self.n >= self.total
        if not done and now - self._last < self.min_interval:
            return
        self._write(now)

    def close(self) -> None:
        if self.n != self._shown:
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        line = f"{self.desc}: {self.unit} {count}, {now - self._start:.0f} s"
        if self._postfix:
            line += f", {self._postfix}"
        print(line, file=self.stream, flush=True)
        self._shown, self._last = self.n, now
