"""Pieces every HTML report page shares: the style sheet, figure naming, atomic writes and a
page skeleton (title, summary, navigation, sections of text + tables + figures, footer).

The benchmark report (:mod:`.html`) and the discovery reports (:mod:`.discovery`) are built from
them, so every dynaforge page looks and behaves the same.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path


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
    """The arrays of an ``.npz`` file (``{}`` when it does not exist); never unpickles."""
    import numpy as np

    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k]) for k in data.files}


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
