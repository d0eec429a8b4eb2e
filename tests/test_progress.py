"""Progress: a bar on a terminal, one plain line per step in a log (never carriage returns)."""

from __future__ import annotations

import io

from dynaforge.progress import LineProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_step_with_its_values():
    out = io.StringIO()
    bar = progress_bar(3, desc="lstm", unit="epoch", stream=out)
    assert isinstance(bar, LineProgress)
    for epoch in range(3):
        bar.set_postfix(train=f"{0.1 / (epoch + 1):.2e}")
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[0].startswith("lstm: epoch 1/3") and lines[0].endswith("train 1.00e-01")
    assert lines[-1].startswith("lstm: epoch 3/3") and "train 3.33e-02" in lines[-1]


def test_min_interval_throttles_but_the_last_step_is_always_shown():
    out = io.StringIO()
    bar = progress_bar(1000, desc="RK4", unit="step", min_interval=3600.0, stream=out)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first step, then (throttled) the last
    assert "1000/1000" in lines[-1]


def test_a_count_set_from_outside_is_shown_once_per_change():
    out = io.StringIO()
    bar = progress_bar(4, desc="tune", unit="trial", stream=out)
    for done in (0, 1, 1, 1, 3, 4):  # a poll loop sets n and refreshes
        bar.n = done
        bar.refresh()
    bar.close()
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "tune: trial 1/4", "tune: trial 3/4", "tune: trial 4/4"]  # fmt: skip


def test_a_terminal_gets_a_bar_and_disabled_gets_nothing():
    bar = progress_bar(2, desc="x", unit="epoch", stream=_Terminal())
    assert not isinstance(bar, LineProgress)
    bar.update(2)
    bar.close()
    assert progress_bar(2, desc="x", unit="epoch", enabled=False) is None
