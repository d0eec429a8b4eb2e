"""The HTML report of an equation-discovery run folder (``dynaforge discover``).

:func:`build_discovery_report` reads ``discovery.json`` (and ``discovery.npz``,
``histories.npz``, ``config.json`` where present), draws the figures into ``figures/`` and
writes ``report.html``. It never refits or retrains.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dynaforge.report import discovery_plots as dplots
from dynaforge.report.page import (
    Section,
    StagedFigures,
    config_text,
    format_number,
    format_seconds,
    html_table,
    load_npz,
    read_json_object,
    render_page,
    write_text_atomic,
)

FIGURES_DIR = "figures"
REPORT_NAME = "report.html"


def build_discovery_report(run_dir: str | os.PathLike[str]) -> Path:
    """Draw the figures of the discovery run in ``run_dir`` and write its ``report.html``."""
    run_dir = Path(run_dir)
    path = run_dir / "discovery.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"discovery.json not found: {run_dir} is not a discovery run "
            "folder (run `dynaforge discover` first)"
        )
    record = read_json_object(path)
    arrays = _load_npz(run_dir / "discovery.npz")
    config = config_text(run_dir / "config.json")
    with StagedFigures(run_dir, FIGURES_DIR) as staged:
        try:
            if record.get("kind") == "sindy-autoencoder":
                title, summary, sections = _autoencoder_page(record, arrays, run_dir, staged.save)
            else:
                title, summary, sections = _sindy_page(record, arrays, staged.save)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(
                f"{path}: not the record of a dynaforge discovery run "
                f"({type(exc).__name__}: {exc})"[:600]
            ) from None
        page = render_page(title, summary, sections, config_text=config, footer=_footer(record))
        staged.commit()
    out = run_dir / REPORT_NAME
    write_text_atomic(out, page)
    return out


def _footer(record: Mapping[str, Any]) -> str:
    return " · ".join(
        x
        for x in (
            f"dynaforge {record.get('dynaforge_version', '')}".strip(),
            f"created {record['created']}" if record.get("created") else None,
            f"took {format_seconds(record.get('elapsed_s'))}" if record.get("elapsed_s") else None,
        )
        if x
    )


# --------------------------------------------------------------------------- SINDy


def _sindy_page(record: Mapping[str, Any], arrays: Mapping[str, np.ndarray], save):
    states = record["state_names"]
    features = record["feature_names"]
    coefs = np.asarray(record["coefficients"], float)
    truth = record.get("truth") or None
    true_coefs = np.asarray(truth["coefficients"], float) if truth else None
    errors = record.get("errors")
    params = record.get("model_params", {})
    data = record.get("data", {})

    summary = (
        f"SINDy ({params.get('differentiation')} derivatives, library "
        f"{params.get('library')}) found {record['n_terms']} terms from "
        f"{data.get('n_trajectories')} × {data.get('n_steps')} samples at dt = "
        f"{data.get('dt'):g} in {format_seconds(record.get('fit_time_s'))}."
    )
    if errors:
        summary += (
            " The support is exactly the true one."
            if errors["exact_support"]
            else f" The support differs from the truth: {errors['false_positives']} extra, "
            f"{errors['false_negatives']} missing terms."
        )
        summary += f" Largest relative error on the true terms: {errors['max_rel_error']:.2%}."
    blowup = (record.get("simulation") or {}).get("blowup")
    if blowup:
        summary += f" Simulating the discovered model failed: {blowup}"

    eq_html = '<div class="equations">' + "\n".join(_esc(e) for e in record["equations"]) + "</div>"
    latex = record.get("latex")
    if latex:
        eq_html += "<details><summary>LaTeX</summary><pre>" + _esc(latex) + "</pre></details>"
    sections = [Section("Discovered equations", _EQ_TEXT, html=[eq_html])]

    if true_coefs is not None:
        rel = np.asarray(record.get("relative_errors", np.full_like(coefs, np.nan)), float)
        rows = []
        for i, s in enumerate(states):
            for j, f in enumerate(features):
                if coefs[i, j] == 0 and true_coefs[i, j] == 0:
                    continue
                ok = coefs[i, j] != 0 and true_coefs[i, j] != 0
                rows.append(
                    [
                        ("model", f"d{s}/dt"),
                        ("", f),
                        ("num", f"{true_coefs[i, j]:.6g}"),
                        ("num", f"{coefs[i, j]:.6g}"),
                        (
                            "num good" if ok else "num bad",
                            f"{rel[i, j]:.3%}"
                            if ok and math.isfinite(rel[i, j])
                            else ("missing" if coefs[i, j] == 0 else "extra term"),
                        ),
                    ]
                )
        sections.append(
            Section(
                "Coefficients vs the truth",
                f"Truth: {truth.get('source') or 'known equations'}.",
                html=[html_table(["equation", "term", "true", "found", "relative error"], rows)],
            )
        )
    sections[-1].figures.append(
        save(
            dplots.plot_coefficients(coefs, features, states, truth=true_coefs),
            "coefficients",
            "Coefficient matrix (terms × equations); red outline: a term where the discovered "
            "support and the truth disagree.",
        )
    )

    sel = record.get("selection")
    if sel and len(sel.get("thresholds", [])):
        sections.append(
            Section(
                "Threshold selection",
                _SEL_TEXT.format(method=sel.get("method") or "automatic"),
                figures=[
                    save(
                        dplots.plot_threshold_path(
                            sel["thresholds"],
                            sel["scores"],
                            sel["n_terms"],
                            chosen=record.get("threshold"),
                            score_name=f"{sel.get('method') or ''} score".strip(),
                        ),
                        "threshold_path",
                        f"Chosen threshold {record.get('threshold'):.4g} (dashed).",
                    )
                ],
            )
        )
    if record.get("inclusion_probability") is not None:
        sections.append(
            Section(
                "Ensemble",
                _ENS_TEXT,
                figures=[
                    save(
                        dplots.plot_inclusion(
                            np.asarray(record["inclusion_probability"], float), features, states
                        ),
                        "inclusion",
                        "Inclusion probability of every term over the bagged models.",
                    )
                ],
            )
        )

    if "t" in arrays and "reference" in arrays:
        sim = arrays.get("simulated")
        sim = sim if sim is not None and sim.ndim == 2 else None
        sections.append(
            Section(
                "Discovered model vs data",
                _SIM_TEXT,
                figures=[
                    save(
                        dplots.plot_model_vs_data(
                            arrays["t"],
                            arrays["reference"],
                            sim,
                            states,
                            note=f"blow-up: {blowup}" if blowup else None,
                        ),
                        "model_vs_data",
                        "The data's first trajectory (black) and the discovered model "
                        "simulated from its first state (red, dashed).",
                    )
                ],
            )
        )
    return "dynaforge discover: SINDy", summary, sections


# --------------------------------------------------------------------------- autoencoder


def _autoencoder_page(
    record: Mapping[str, Any], arrays: Mapping[str, np.ndarray], run_dir: Path, save
):
    best = record["best"]
    data = record.get("data", {})
    n_lorenz, n = record.get("n_lorenz", 0), record.get("n_seeds", 0)
    summary = (
        f"SINDy autoencoder on the 128-dimensional Legendre embedding of Lorenz-63 "
        f"({data.get('n_ics')} training trajectories of {data.get('steps')} steps at "
        f"dt = {data.get('dt'):g}): {n_lorenz} of {n} seeds found a 7-term model with "
        f"Lorenz structure."
    )
    if best.get("implied"):
        imp = best["implied"]
        summary += (
            f" The selected seed {best['seed']} implies σ = {imp['sigma']:.3g}, "
            f"ρ = {imp['rho']:.3g}, β = {imp['beta']:.3g} (true 10, 28, 2.67)."
        )
    else:
        summary += f" The selected seed {best['seed']} has no Lorenz structure."

    rows = []
    for r in record["seeds"]:
        imp = r.get("implied") or {}
        rows.append(
            [
                ("num", str(r["seed"])),
                ("num", str(r["n_terms"])),
                ("flag", "✓" if r["lorenz_structure"] else "✗"),
                ("num", format_number(imp.get("sigma"))),
                ("num", format_number(imp.get("rho"))),
                ("num", format_number(imp.get("beta"))),
                ("num", f"{r['val_loss']:.3g}"),
                ("num", format_seconds(r.get("fit_time_s"))),
            ]
        )
    sections = [
        Section(
            "Seeds",
            _SEEDS_TEXT,
            html=[
                html_table(
                    [
                        "seed",
                        "terms",
                        "Lorenz structure",
                        "σ",
                        "ρ",
                        "β",
                        "validation loss",
                        "training time",
                    ],
                    rows,
                )
            ],
        )
    ]

    eq_html = '<div class="equations">' + "\n".join(_esc(e) for e in best["equations"]) + "</div>"
    amap = best.get("affine_map") or {}
    if amap:
        a_mat = np.asarray(amap["A"], float)
        b_vec = np.asarray(amap["b"], float)
        lines = [
            f"z_true{i + 1} = "
            + " ".join(f"{a_mat[i, j]:+.4g}·z{j + 1}" for j in range(3))
            + f" {b_vec[i]:+.4g}"
            for i in range(3)
        ]
        eq_html += (
            "<p>Affine map from the latent coordinates to the (scaled) Lorenz "
            f"coordinates, least squares on the validation data (R² = "
            f"{amap['r2'] if np.isscalar(amap['r2']) else np.mean(amap['r2']):.4f}):"
            "</p>" + '<div class="equations">' + _esc("\n".join(lines)) + "</div>"
        )
    sections.append(Section(f"Selected model (seed {best['seed']})", _BEST_TEXT, html=[eq_html]))
    sections[-1].figures.append(
        save(
            dplots.plot_coefficients(
                np.asarray(best["coefficients"], float),
                best["feature_names"],
                ["z1", "z2", "z3"],
                truth=np.asarray(record["true_coefficients"], float),
                title="discovered (latent coordinates) vs true Lorenz (scaled coordinates)",
            ),
            "coefficients",
            "Coefficient matrices; the latent coordinates may be permuted, "
            "flipped, scaled or shifted relative to the truth, so compare the structure.",
        )
    )
    if "z_true" in arrays and "z_mapped" in arrays:
        sections[-1].figures.append(
            save(
                dplots.plot_latent_attractor(arrays["z_true"], arrays["z_mapped"]),
                "latent_attractor",
                "A validation trajectory: the true scaled Lorenz states and the encoder's latent "
                "coordinates after the affine map.",
            )
        )
    if "z_latent" in arrays and "t" in arrays:
        sim = arrays.get("z_sim")
        sim = sim if sim is not None and sim.ndim == 2 else None
        sections[-1].figures.append(
            save(
                dplots.plot_model_vs_data(
                    arrays["t"],
                    arrays["z_latent"],
                    sim,
                    ["z1", "z2", "z3"],
                    labels=("encoded data", "discovered model"),
                    note=f"blow-up: {best['simulation_blowup']}"
                    if best.get("simulation_blowup")
                    else None,
                ),
                "model_vs_data",
                "Latent coordinates of a validation trajectory (black) and the discovered latent "
                "model simulated from its first point (red, dashed).",
            )
        )

    hist = _load_npz(run_dir / "histories.npz")
    histories: dict[str, dict[str, np.ndarray]] = {}
    for key, value in hist.items():
        name, _, field = key.partition("::")
        histories.setdefault(name, {})[field] = value
    if histories:
        sections.append(
            Section(
                "Loss curves",
                _LOSS_TEXT,
                figures=[
                    save(
                        dplots.plot_loss_curves(histories, highlight=f"seed {best['seed']}"),
                        "loss_curves",
                        "Training loss per epoch; right: the selected seed's terms and active "
                        "coefficients.",
                    )
                ],
            )
        )
    return "dynaforge discover: SINDy autoencoder", summary, sections


# --------------------------------------------------------------------------- helpers


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    return load_npz(path)


def _esc(text: str) -> str:
    from html import escape

    return escape(str(text))


_EQ_TEXT = (
    "The discovered model, one equation per state, coefficients rounded to three "
    "decimals (the exact values are in discovery.json)."
)
_SEL_TEXT = (
    "The threshold of sequentially thresholded least squares was chosen automatically "
    "({method}) along a path of candidate thresholds: larger thresholds give sparser "
    "models."
)
_ENS_TEXT = (
    "Bagging: the regression was repeated on random subsets of the rows; a term's "
    "inclusion probability is the fraction of models that kept it."
)
_SIM_TEXT = (
    "The discovered equations integrated (RK4 with substeps) from the data's first state. "
    "For a chaotic system the two separate after a few Lyapunov times even with "
    "nearly exact coefficients; the attractor's shape is what should match."
)
_SEEDS_TEXT = (
    "Every seed trains the same network on the same data. Lorenz structure means the "
    "model has the 7 terms of Lorenz-63 up to a permutation, sign and scale of the "
    "latent coordinates and a shift of the third; σ, ρ, β are the values implied by "
    "its coefficients (they do not depend on the latent scaling)."
)
_BEST_TEXT = (
    "Selected: the lowest validation loss among the seeds with 7-term Lorenz "
    "structure (among all seeds when none has it)."
)
_LOSS_TEXT = (
    "Total training loss of every seed; sequential thresholding removes small "
    "coefficients every few hundred epochs, the refinement phase then trains with the "
    "mask fixed and no L1 penalty."
)
