"""ES, TPE, random and CMA-ES tuning the advection U-Net at equal budget (issue 14).

For each sampler, each space (``lr``: the learning rate alone, the seed's search; ``5d``: the
learning rate, StepLR's gamma and step, the batch size and the U-Net's width) and each seed,
``dynaforge tune advection --model unet --objective fitness`` runs ``--trials`` trials on the
validation part (never the test part) of the CPU-sized protocol in
``examples/advection_tune_cpu.yaml``; then the best configuration of each study is trained
once more with ``dynaforge train --config best_config.yaml`` and scored on the test part,
next to PDEBench's default (learning rate 1e-3, the config file as it is). Fitness is the
seed's: (RMSE + nRMSE + bRMSE + cRMSE) / 4, minimised.

A second part (:func:`poor_starts`) starts the adapted ES from deliberately poor points (the
mean in a corner of the space, sigma 10x too small and 10x too large) and compares its best
validation score with the good start's, on the ESN tuned for Lorenz-63: its trials take
seconds, so a study gets the dozens of mean updates that step-size adaptation needs.

Every run goes through the command line, as a user's would, into ``--out`` (default
``runs/bench-tune-samplers``); a rerun resumes (finished studies are kept). Prints ratio tables
(best fitness / the default's) and writes ``--json``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_samplers.py [--trials 8]
[--seeds 0,1,2] [--samplers es,tpe,random,cmaes] [--spaces lr,5d] [--only-poor-start]``
(about 25 s per U-Net trial on one core: ~1.5 h for the comparison; ~15 min for the ESN
part).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import print_table

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "advection_tune_cpu.yaml"
CLI = str(Path(sys.executable).with_name("dynaforge"))
SPACES = {"lr": ["--space", "lr"], "5d": []}


def run(cmd: list[str], log: Path) -> None:
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def tune(out: Path, sampler: str, space: str, seed: int, trials: int, extra=(),
         config: Path = CONFIG) -> dict:  # fmt: skip
    if not (out / "study.json").is_file() or _complete(out) < trials:
        cmd = [CLI, "tune", "advection", "--model", "unet", "--preset", "quick",
               "--config", str(config), "--sampler", sampler, *SPACES[space],
               "--objective", "fitness", "--pruner", "none", "--trials", str(trials),
               "--seed", str(seed), "--population", "4", "--threads", "1",
               "--no-progress", "--out", str(out), *extra]  # fmt: skip
        run(cmd, out.parent / f"{out.name}.log")
    study = json.loads((out / "study.json").read_text())
    return study


def _complete(out: Path) -> int:
    try:
        return json.loads((out / "study.json").read_text())["counts"]["COMPLETE"]
    except (OSError, KeyError, ValueError):
        return 0


def test_fitness(config: Path, out: Path) -> float:
    if not (out / "scores.json").is_file():
        cmd = [CLI, "train", "advection", "--model", "unet", "--preset", "quick",
               "--config", str(config), "--threads", "1", "--no-progress", "--overwrite",
               "--out", str(out)]  # fmt: skip
        run(cmd, out.parent / f"{out.name}.log")
    return json.loads((out / "scores.json").read_text())["test"]["fitness"]


def best_so_far(out: Path) -> list[float]:
    """Best validation fitness after each trial (by number), from the study's trials.csv."""
    import csv

    with (out / "trials.csv").open() as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["number"]))
    values, best = [], float("inf")
    for r in rows:
        try:
            v = float(r["value"])
        except ValueError:
            v = float("nan")
        if v == v:
            best = min(best, v)
        values.append(best)
    return values


#: The ESN's default space with every parameter at its lower bound: a corner of the cube.
ESN_CORNER = {"reservoir_size": 200, "spectral_radius": 0.1, "density": 5.0e-4,
              "leak_rate": 0.1, "input_scaling": 0.01, "input_bias": 0.0, "ridge": 1.0e-14}  # fmt: skip


def poor_starts(args, seeds: list[int]) -> dict:
    """The adapted ES tuning the ESN on Lorenz-63 (7-D space, median validation VPT, maximised)
    with 10 000 training points, from its defaults with sigma 0.15 (the good start) and from a corner of the space with
    sigma 10x too small (0.015) and 10x too large (1.5). An ESN trial takes seconds, so each
    study gets enough mean updates (``--poor-trials``, population 8) to show whether the step
    size recovers; a U-Net trial on this machine takes ~25 s, too slow for that here."""
    import yaml

    corner = args.out / "esn-corner.yaml"
    corner.write_text(yaml.safe_dump({"models": {"esn": dict(ESN_CORNER)}}))
    starts = {"defaults, sigma 0.15": (None, "0.15"),
              "corner, sigma 0.015": (corner, "0.015"),
              "corner, sigma 1.5": (corner, "1.5")}  # fmt: skip
    rows, good, out = [], None, {}
    for label, (config, sigma) in starts.items():
        vals = []
        for seed in seeds:
            name = f"esn-{'corner' if config else 'default'}-sigma{sigma}-s{seed}"
            folder = args.out / name
            if _complete(folder) < args.poor_trials:
                cmd = [CLI, "tune", "lorenz63", "--model", "esn", "--preset", "quick",
                       "--sampler", "es", "--sigma", sigma, "--trials", str(args.poor_trials),
                       "--seed", str(seed), "--threads", "1", "--no-progress",
                       "--train-points", "10000", "--out", str(folder), *(["--config", str(config)] if config else [])]  # fmt: skip
                run(cmd, args.out / f"{name}.log")
            study = json.loads((folder / "study.json").read_text())
            vals.append((study.get("best") or {}).get("value", float("nan")))
            print(f"{name}: best validation VPT {vals[-1]:.3f}", flush=True)
        mean = statistics.mean(vals)
        good = mean if good is None else good
        rows.append([label, _ms(vals), f"{mean / good:.3f}"])
        out[label] = vals
    print_table(
        f"Adapted ES tuning the ESN on Lorenz-63 from poor starts: best validation VPT "
        f"(median, Lyapunov times; maximised), {args.poor_trials} trials, seeds {args.seeds}",
        ["start", "best val VPT", "/ good start"],
        rows,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samplers", default="es,tpe,random,cmaes")
    ap.add_argument("--spaces", default="lr,5d")
    ap.add_argument("--no-poor-start", action="store_true")
    ap.add_argument("--poor-trials", type=int, default=48)
    ap.add_argument("--only-poor-start", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-tune-samplers")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    if args.only_poor_start:
        results = {"poor_start": poor_starts(args, seeds)}
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    default = test_fitness(CONFIG, args.out / "default")
    results: dict = {"default_test_fitness": default, "trials": args.trials, "studies": {}}
    rows = []
    for space in args.spaces.split(","):
        for sampler in args.samplers.split(","):
            vals, tests, curves = [], [], []
            for seed in seeds:
                name = f"{space}-{sampler}-s{seed}"
                study = tune(args.out / name, sampler, space, seed, args.trials)
                best = (study.get("best") or {}).get("value")
                vals.append(best if best is not None else float("inf"))
                curves.append(best_so_far(args.out / name))
                tests.append(test_fitness(args.out / name / "best_config.yaml",
                                          args.out / f"{name}-test"))  # fmt: skip
                print(f"{name}: best validation fitness {best}, test {tests[-1]:.4g} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
            results["studies"][f"{space}-{sampler}"] = {
                "best_validation": vals, "test": tests, "best_so_far": curves,
            }  # fmt: skip
            rows.append([space, sampler, _ms(vals), _ms(tests),
                         f"{statistics.mean(tests) / default:.3f}"])  # fmt: skip
    print_table(
        f"U-Net on advection (CPU protocol), {args.trials} trials per study, seeds {args.seeds}; "
        f"PDEBench default (lr 1e-3): test fitness {default:.4g}",
        ["space", "sampler", "best val fitness", "test fitness", "test / default"],
        rows,
    )
    if not args.no_poor_start:
        results["poor_start"] = poor_starts(args, seeds)
    results["wall_s"] = time.perf_counter() - t0
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _ms(values: list[float]) -> str:
    finite = [v for v in values if v == v and v != float("inf")]
    if not finite:
        return "—"
    if len(finite) == 1:
        return f"{finite[0]:.4g}"
    return f"{statistics.mean(finite):.4g} ± {statistics.stdev(finite):.2g}"


if __name__ == "__main__":
    main()
