"""SINDy autoencoder: training steps/s of dynaforge vs a per-sample autograd loop like the seed's.

Same network (the paper's 128 → 64 → 32 → 3 → 32 → 64 → 128, sigmoid, cubic library with
constant), same initial weights, same batch of snapshots from ``embedded_lorenz_data``, same
loss (paper weights 1 / 0 / 1e-4 / 1e-5) and optimiser (Adam, lr 1e-3):

* **dynaforge**: one training step of :func:`dynaforge.models.sindy_ae.train_seeds`' loop:
  ``net.losses`` (latent derivatives by ``torch.func.jvp``, the whole batch at once), backward,
  fused Adam; with and without the encoder JVP (the paper's ``λ_z = 0`` skips it), and with
  5 seeds stacked in one network (seed-steps/s);
* **per-sample loop** (the seed's pattern): ``for i in range(batch)`` encode one snapshot,
  get ``dz`` from one ``torch.autograd.grad(z[k], x, create_graph=True)`` per latent output
  and ``dx̂`` from one per decoder output (128), then the same loss, backward and Adam.

Both compute the same loss on the same weights (checked: ``loss_agreement``). Also measured:
the time to the first 7-term Lorenz model with the ``quick`` preset as ``dynaforge discover
lorenz-embedded --preset quick`` trains it (10 seeds, two processes of 5 stacked seeds on 2
cores), i.e. when a seed that ends Lorenz-structured first has its 7 terms.

The step rates use one torch thread; the ratio does not depend on it. Run alone:
``.venv/bin/python benchmarks/bench_sindy_ae.py [--quick] [--from-run DIR]`` (``--from-run``
reads a finished ``discover`` run instead of training the quick preset again, ~16 min).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from _common import fmt_rate, fmt_ratio, goal_mark, load_average, print_table
from dynaforge.discovery.structure import lorenz_structure
from dynaforge.models.sindy_ae import (
    PolynomialFeatures,
    SindyAutoencoderNet,
    get_preset,
)
from dynaforge.systems.embeddings import embedded_lorenz_data

GOAL_RATIO = 100.0
FULL = {"batch": 1024, "ours_steps": 30, "loop_steps": 1, "stacked": 5, "first_lorenz": True}
QUICK = {"batch": 64, "ours_steps": 10, "loop_steps": 1, "stacked": 2, "first_lorenz": False}


def _weights() -> torch.Tensor:
    cfg = get_preset("paper")
    return torch.tensor(
        [cfg.loss_decoder, cfg.loss_sindy_x, cfg.loss_sindy_z, cfg.loss_regularization]
    )


def _batch(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = embedded_lorenz_data(max(1, -(-batch // 250)), seed=0)
    x, dx = (torch.as_tensor(a, dtype=torch.float32)[:batch] for a in data.flat())
    return x, dx


def _per_sample_loss(
    net: SindyAutoencoderNet, x: torch.Tensor, dx: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The seed's pattern: one sample at a time, one autograd.grad per output component."""
    library = PolynomialFeatures(3, 3, True)
    xi = net.masked_coefficients()[0]
    enc = [(m.weight[0], m.bias[0]) if hasattr(m, "weight") else m for m in net.encoder]
    dec = [(m.weight[0], m.bias[0]) if hasattr(m, "weight") else m for m in net.decoder]

    def mlp(layers, h):
        for layer in layers:
            h = h @ layer[0] + layer[1] if isinstance(layer, tuple) else layer(h)
        return h

    sq_dec, sq_dx, sq_dz = [], [], []
    for i in range(x.shape[0]):
        xi_ = x[i : i + 1].clone().requires_grad_(True)
        z = mlp(enc, xi_)  # (1, 3)
        dz = torch.stack(
            [
                (torch.autograd.grad(z[0, k], xi_, create_graph=True)[0][0] * dx[i]).sum()
                for k in range(z.shape[1])
            ]
        )
        dz_sindy = (library(z) @ xi)[0]
        x_hat = mlp(dec, z)  # (1, 128)
        dx_hat = torch.stack(
            [
                (torch.autograd.grad(x_hat[0, j], z, create_graph=True)[0][0] * dz_sindy).sum()
                for j in range(x_hat.shape[1])
            ]
        )
        sq_dec.append(((x_hat[0] - x[i]) ** 2).mean())
        sq_dx.append(((dx_hat - dx[i]) ** 2).mean())
        sq_dz.append(((dz_sindy - dz) ** 2).mean())
    terms = torch.stack(
        [
            torch.stack(sq_dec).mean(),
            torch.stack(sq_dx).mean(),
            torch.stack(sq_dz).mean(),
            xi.abs().mean(),
        ]
    )
    return (terms * weights).sum()


def _time_steps(step, n: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def _ours(batch: int, n_steps: int, n_models: int, need_z: bool, x, dx) -> tuple[float, float]:
    cfg = get_preset("paper")
    net = SindyAutoencoderNet(128, cfg, [torch.Generator().manual_seed(s) for s in range(n_models)])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True)
    w = _weights()
    xb, dxb = x.expand(n_models, -1, -1), dx.expand(n_models, -1, -1)
    loss = {}

    def step():
        terms = net.losses(xb, dxb, w, need_sindy_z=need_z)
        opt.zero_grad(set_to_none=True)
        terms[:, 0].sum().backward()
        opt.step()
        loss.setdefault("first", float(terms[0, 0].detach()))

    return _time_steps(step, n_steps), loss["first"]


def _loop(batch: int, n_steps: int, x, dx) -> tuple[float, float]:
    cfg = get_preset("paper")
    net = SindyAutoencoderNet(128, cfg, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    w = _weights()
    loss = {}

    def step():
        total = _per_sample_loss(net, x, dx, w)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        loss.setdefault("first", float(total.detach()))

    seconds = _time_steps(step, n_steps) if n_steps else float("nan")
    return seconds, loss.get("first", float("nan"))


def _first_lorenz(run_dir: str | None = None) -> dict[str, Any]:
    """The quick preset as ``dynaforge discover lorenz-embedded --preset quick`` runs it (stacks
    of 5 seeds in parallel processes): the wall time until a seed first holds the 7-term
    Lorenz model it ends with. ``run_dir``: a finished run of that command, read instead of
    training again.

    A seed's time is its stack's training time × (epoch / epochs) (every stack trains in a
    process of its own from the start on 2 cores); the first thresholding that leaves 7 terms
    already has the final support, since a mask only shrinks.
    """
    import json
    import tempfile
    from pathlib import Path

    from dynaforge.discover import run_autoencoder_discovery
    from dynaforge.models.sindy_ae import load_result

    cfg = get_preset("quick")
    if run_dir is None:
        run_dir = tempfile.mkdtemp(prefix="bench-sindy-ae-")
        run_autoencoder_discovery(
            cfg, list(range(cfg.n_seeds)), run_dir, config={}, progress=False, log=lambda m: None
        )
    record = json.loads((Path(run_dir) / "discovery.json").read_text())
    total_s = record["elapsed_s"]  # data, training, analysis (not the report)
    per_seed = []
    first = None
    for row in record["seeds"]:
        r = load_result(Path(run_dir) / "seeds" / f"seed-{row['seed']}")
        match = lorenz_structure(r.coefficients, r.feature_names)
        out = {
            "seed": r.seed,
            "n_terms": r.n_terms,
            "lorenz_7": bool(match and match.n_terms == 7),
            "val_loss": r.val_losses["total"],
            "equations": r.equations(3),
        }
        if match is not None:
            out.update(sigma=match.sigma, rho=match.rho, beta=match.beta, unit=match.unit)
        if out["lorenz_7"]:
            epoch = r.history["active_terms"].index(7) + 1
            out["first_epoch_7_terms"] = epoch
            out["time_to_7_terms_s"] = r.fit_time_s * epoch / len(r.history["epoch"])
            first = (
                out["time_to_7_terms_s"] if first is None else min(first, out["time_to_7_terms_s"])
            )
        per_seed.append(out)
    return {
        "config": {
            k: getattr(cfg, k)
            for k in (
                "n_ics",
                "epochs",
                "refinement_epochs",
                "batch_size",
                "lr",
                "lr_final",
                "threshold",
                "threshold_initial",
                "threshold_every",
                "n_seeds",
            )
        },
        "run_dir": str(run_dir),
        "total_s": total_s,
        "time_to_first_lorenz_s": first,
        "seeds": per_seed,
    }


def run(quick: bool = False, from_run: str | None = None) -> dict[str, Any]:
    torch.set_num_threads(1)
    cfg = QUICK if quick else FULL
    batch = cfg["batch"]
    x, dx = _batch(batch)
    load_start = load_average()
    ours_s, ours_loss = _ours(batch, cfg["ours_steps"], 1, True, x, dx)
    ours_noz_s, _ = _ours(batch, cfg["ours_steps"], 1, False, x, dx)
    stacked_s, _ = _ours(batch, max(2, cfg["ours_steps"] // 3), cfg["stacked"], False, x, dx)
    loop_s, loop_loss = _loop(batch, cfg["loop_steps"], x, dx)
    rates = {
        "dynaforge (jvp, with dz)": 1.0 / ours_s,
        "dynaforge (jvp, λ_z = 0 skips dz)": 1.0 / ours_noz_s,
        f"dynaforge ({cfg['stacked']} seeds stacked, per seed)": cfg["stacked"] / stacked_s,
        "per-sample autograd loop (seed)": 1.0 / loop_s,
    }
    ratio = rates["dynaforge (jvp, with dz)"] / rates["per-sample autograd loop (seed)"]
    result: dict[str, Any] = {
        "name": "sindy_ae",
        "quick": quick,
        "config": cfg,
        "threads": torch.get_num_threads(),
        "steps_per_s": rates,
        "samples_per_s": {k: v * batch for k, v in rates.items()},
        "ratio_vs_per_sample_loop": ratio,
        "ratios": {k: v / rates["per-sample autograd loop (seed)"] for k, v in rates.items()},
        "loss_agreement": {
            "dynaforge": ours_loss,
            "per_sample_loop": loop_loss,
            "rel_diff": abs(ours_loss - loop_loss) / abs(loop_loss),
        },
        "goal": {"ratio": GOAL_RATIO},
        "goal_met": {"ratio": ratio >= GOAL_RATIO},
        "load_average": [load_start, load_average()],
    }
    if cfg["first_lorenz"]:
        result["first_lorenz"] = _first_lorenz(from_run)
    return result


def report(result: dict[str, Any]) -> None:
    batch = result["config"]["batch"]
    base = result["steps_per_s"]["per-sample autograd loop (seed)"]
    rows = [
        [name, fmt_rate(r), fmt_rate(r * batch), fmt_ratio(r / base)]
        for name, r in result["steps_per_s"].items()
    ]
    agree = result["loss_agreement"]
    print_table(
        f"SINDy autoencoder training steps/s (batch {batch}, float32, 1 thread)",
        ["implementation", "steps/s", "samples/s", "vs per-sample loop"],
        rows,
        [
            f"Goal: dynaforge (with dz) >= {GOAL_RATIO:.0f}x the per-sample loop: "
            f"{goal_mark(result['goal_met']['ratio'])}.",
            f"Same weights, same batch: first-step loss {agree['dynaforge']:.6g} vs "
            f"{agree['per_sample_loop']:.6g} (relative difference {agree['rel_diff']:.1e}).",
            f"Load average at start/end: {result['load_average']}.",
        ],
    )
    first = result.get("first_lorenz")
    if first:
        rows = [
            [
                r["seed"],
                r["n_terms"],
                "yes" if r["lorenz_7"] else "no",
                f"{r.get('time_to_7_terms_s', float('nan')):.0f}",
                *(f"{r[k]:.2f}" if k in r else "-" for k in ("sigma", "rho", "beta")),
            ]
            for r in first["seeds"]
        ]
        t = first["time_to_first_lorenz_s"]
        print_table(
            f"Quick preset ({first['config']}): time to the first 7-term Lorenz model",
            ["seed", "terms", "7-term Lorenz", "s to 7 terms", "sigma", "rho", "beta"],
            rows,
            [
                f"First 7-term Lorenz model after {t:.0f} s"
                if t is not None
                else "No seed found a 7-term Lorenz model.",
                f"Whole preset (data, 10 seeds in 2 processes, analysis): {first['total_s']:.0f} s "
                "(the seed reproduction: 8-9 h per paper-size run on a cloud GPU).",
            ],
        )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--from-run",
        metavar="DIR",
        help="time to the first Lorenz model from "
        "a finished `dynaforge discover lorenz-embedded --preset quick` run",
    )
    args = parser.parse_args()
    report(run(args.quick, args.from_run))


if __name__ == "__main__":
    main()
