"""Pieces every HTML report page shares: the style sheet, figure naming, atomic writes, the
readers of a run folder's files, staged figures and a page skeleton (title, summary,
navigation, sections of text + tables + figures, footer).

The benchmark report (:mod:`.html`), the tuning and sweep reports (:mod:`.tune`) and the
discovery reports (:mod:`.discovery`) are built from them, so every dynaforge page looks and
behaves the same: a run folder's JSON or NPZ file that cannot be read is one ValueError naming
the file (:func:`read_json_object`, :func:`load_npz`), and figures are drawn into a hidden
folder that replaces nothing until the whole page is ready (:class:`StagedFigures`), so a
report that fails half-way leaves the run folder as it was.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    file: str  # relative to the run folder, e.g. "figures/error_growth.png"
    caption: str


@dataclass
class Section:
    """One titled part of a page: a paragraph of text, raw HTML blocks (tables we built
    ourselves, already escaped) and figures."""

    title: str
    text: str = ""
    html: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


class FileNames:
    """Safe, unique figure file names from free-form stems (model names may be anything)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def unique(self, stem: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "figure"
        name, i = f"{base}.png", 1
        while name.lower() in self.used:
            i += 1
            name = f"{base}_{i}.png"
        self.used.add(name.lower())
        return name


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def html_table(
    head: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]], *, css_class: str = ""
) -> str:
    """A table from header labels and rows of ``(cell class, text)``; all text is escaped."""
    out = [f'<div class="scroll"><table class="{escape(css_class)}"><thead><tr>']
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append(
            "<tr>" + "".join(f'<td class="{escape(c)}">{escape(v)}</td>' for c, v in row) + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def render_page(
    title: str,
    summary: str,
    sections: Sequence[Section],
    *,
    config_text: str | None = None,
    footer: str = "dynaforge",
) -> str:
    """A self-contained page (inline CSS, images by relative path); every text is escaped."""
    body = [f"<h1>{escape(title)}</h1>", f'<p class="summary">{escape(summary)}</p>']
    nav = [f'<a href="#{anchor(s.title)}">{escape(s.title)}</a>' for s in sections]
    if config_text is not None:
        nav.append('<a href="#config">Configuration</a>')
    body.append("<nav>" + " · ".join(nav) + "</nav>")
    for s in sections:
        body.append(f'<section id="{anchor(s.title)}"><h2>{escape(s.title)}</h2>')
        if s.text:
            body.append(f"<p>{escape(s.text)}</p>")
        body.extend(s.html)
        for f in s.figures:
            body.append(
                f'<figure><img src="{escape(f.file)}" alt="{escape(f.caption)}" '
                f'loading="lazy"><figcaption>{escape(f.caption)}</figcaption></figure>'
            )
        body.append("</section>")
    if config_text is not None:
        body.append(
            '<section id="config"><h2>Configuration</h2><details>'
            "<summary>Resolved configuration (config.json)</summary>"
            f"<pre>{escape(config_text)}</pre></details></section>"
        )
    body.append(f"<footer>{escape(footer)}</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n"
        "</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


CSS = """
:root { --fg: #1d232a; --muted: #5b6570; --line: #dde2e7; --accent: #2b6cb0; --bg: #ffffff; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7f9; color: var(--fg);
  font: 16px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.5rem 3rem; background: var(--bg); }
h1 { font-size: 1.8rem; margin: 0 0 .8rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
p { max-width: 75ch; }
.summary { font-size: 1.05rem; }
nav { margin: 1rem 0; color: var(--muted); font-size: .95rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); }
th { text-align: left; vertical-align: bottom; background: #eef1f4; font-weight: 600; }
th small { font-weight: 400; color: var(--muted); }
td.num { text-align: right; }
td.flag { text-align: center; }
td.model { font-weight: 600; }
tr.baseline td { color: var(--muted); }
tbody tr:hover { background: #f7f9fb; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
details { margin: .8rem 0; }
summary { cursor: pointer; color: var(--accent); }
pre { background: #f3f5f7; padding: 1rem; overflow-x: auto; font-size: .85rem; }
dl.task { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
  font-size: .9rem; }
dl.task dt { color: var(--muted); }
dl.task dd { margin: 0; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; }
.equations { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f3f5f7; padding: .8rem 1rem; white-space: pre; overflow-x: auto; }
td.good { color: #276749; } td.bad { color: #c53030; }
"""


#: What a table cell shows for a missing or non-finite number.
DASH = "—"


def as_float(x: object) -> float | None:
    """``x`` as a float, or None when it is missing, empty, a bool or not a number."""
    if x is None or isinstance(x, bool) or (isinstance(x, str) and not x.strip()):
        return None
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def format_value(x: object, spec: str, *, non_finite: str | None = None) -> str:
    """``x`` formatted with ``spec``; a dash when it is missing, and ``non_finite`` (default:
    ``inf`` / ``nan`` as Python writes them) when it is not finite."""
    f = as_float(x)
    if f is None:
        return DASH
    if not math.isfinite(f):
        return str(f) if non_finite is None else non_finite
    return format(f, spec)


def load_npz(path: Path) -> dict:
    """The arrays of an ``.npz`` file (``{}`` when it does not exist); never unpickles. A file
    that is not a readable archive of numeric arrays (truncated, not a zip, arrays of pickled
    objects) is a ValueError naming it."""
    import numpy as np

    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic != b"PK":
            raise ValueError("not a zip archive")
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path} is not a readable .npz archive of arrays ({exc}); a truncated or damaged file?"
        ) from None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a file that is not UTF-8, not valid JSON (e.g. truncated)
    or not an object is a ValueError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position "
            f"{exc.start}); a damaged file?"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "a truncated or damaged file?"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(doc).__name__}")
    return doc


def check_mapping(doc: Mapping[str, Any], key: str, path: Path, *, of_mappings: bool = False):
    """``doc[key]`` (``{}`` when absent or null) checked to be a JSON object (whose values are
    objects, with ``of_mappings``); otherwise a ValueError naming the file and the entry."""
    value = doc.get(key) or {}
    bad = not isinstance(value, Mapping) or (
        of_mappings and not all(isinstance(v, Mapping) for v in value.values())
    )
    if bad:
        what = "an object of objects" if of_mappings else "an object"
        raise ValueError(f"{path}: {key!r} must be {what}, got {value!r}"[:400])
    return value


def check_list_of_mappings(doc: Mapping[str, Any], key: str, path: Path) -> list:
    """``doc[key]`` (``[]`` when absent or null) checked to be a list of JSON objects."""
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{path}: {key!r} must be a list of objects, got {value!r}"[:400])
    return value


def config_text(path: Path) -> str | None:
    """The run's ``config.json`` for the page: indented when it is valid JSON, else its text as
    it is (with undecodable bytes replaced); None when there is none. The configuration is
    shown, never used, so a damaged copy does not stop the report."""
    if not path.is_file():
        return None
    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return raw


class StagedFigures:
    """The figures of one page, drawn into a hidden folder in ``run_dir`` and moved into
    ``run_dir/figures/`` only by :meth:`commit` (once the whole page is ready); leaving the
    ``with`` block with an error removes them, so a failed report replaces no figure and
    leaves no new file."""

    def __init__(self, run_dir: Path, figures_dir: str = "figures") -> None:
        self.run_dir = run_dir
        self.figures_dir = figures_dir
        self.names = FileNames()
        self._tmp: Path | None = None

    def __enter__(self) -> StagedFigures:
        return self

    def save(self, fig, stem: str, caption: str) -> Figure:
        """Draw ``fig`` (closing it) and return its :class:`Figure` for the page."""
        from dynaforge.report.plots import save_figure

        if self._tmp is None:
            self._tmp = Path(
                tempfile.mkdtemp(dir=self.run_dir, prefix=f".{self.figures_dir}-", suffix=".tmp")
            )
        file = self.names.unique(stem)
        save_figure(fig, self._tmp / file)
        return Figure(f"{self.figures_dir}/{file}", caption)

    def commit(self) -> None:
        """Move the figures into ``figures/`` (each replacing its old version atomically)."""
        if self._tmp is None:
            return
        target = self.run_dir / self.figures_dir
        target.mkdir(exist_ok=True)
        for file in sorted(self._tmp.iterdir()):
            os.replace(file, target / file.name)
        self._tmp.rmdir()
        self._tmp = None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def format_number(x: object) -> str:
    """Four significant digits, or a dash for a missing or non-finite value."""
    f = as_float(x)
    return DASH if f is None or not math.isfinite(f) else f"{f:.4g}"


def format_seconds(s: object) -> str:
    """A duration in ms, s, min or h, or a dash."""
    f = as_float(s)
    if f is None or not math.isfinite(f):
        return DASH
    if f < 1:
        return f"{f * 1e3:.3g} ms"
    if f < 120:
        return f"{f:.3g} s"
    if f < 7200:
        return f"{f / 60:.1f} min"
    return f"{f / 3600:.1f} h"
