"""Run every performance benchmark in one process, print the ratio tables, write results.json.

    .venv/bin/python benchmarks/run_all.py            # the measured run (make bench), 5-15 min
    .venv/bin/python benchmarks/run_all.py --quick    # smoke run with tiny sizes, ~3 min

The measured run writes ``benchmarks/results.json``; ``--quick`` writes
``benchmarks/results.quick.json`` (so a smoke run never replaces measured figures) unless
``--out`` says otherwise; ``--merge`` keeps the entries already in ``--out`` of the benchmarks
not run now (each merged entry carries the machine it ran on). Nothing asserts on wall-clock
time: a missed goal is reported, and the exit status is non-zero only when a benchmark fails to
run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import _common
import bench_advection
import bench_esn
import bench_lstm_training
import bench_particles
import bench_simulation
import bench_sindy
import bench_sindy_ae
import bench_tune

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "simulation": bench_simulation,
    "esn": bench_esn,
    "lstm_training": bench_lstm_training,
    "sindy": bench_sindy,
    "sindy_ae": bench_sindy_ae,
    "tune": bench_tune,
    "advection": bench_advection,
    "advection_inference": bench_advection.INFERENCE,
    "advection_training": bench_advection.TRAINING,
    "particles": bench_particles,
    "particles_inversion": bench_particles.INVERSION,
}


def _summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    sim = results.get("simulation")
    if sim and "error" not in sim:
        best = sim["best"]
        rows.append(
            [
                "simulation: RK4 points/s vs seed loop",
                f"{_common.fmt_rate(best['points_per_s'])} (batch {best['batch']:,})",
                _common.fmt_rate(sim["seed"]["points_per_s"]),
                _common.fmt_ratio(best["ratio_vs_seed"]),
                f">= {sim['goal']['ratio_vs_seed']:.0f}x and >= "
                f"{sim['goal']['points_per_s']:.0e}/s",
                _common.goal_mark(all(sim["goal_met"].values())),
            ]
        )
    esn = results.get("esn")
    if esn and "error" not in esn:
        t, peer = esn["timing_s"]["dynaforge (r)"], esn["timing_s"]["reservoirpy (r)"]
        vpt = esn["vpt_lyapunov_times"]
        rows.append(
            [
                "ESN fit + forecast time (s) vs ReservoirPy",
                f"{t['total']:.2f}",
                f"{peer['total']:.2f}",
                _common.fmt_ratio(esn["speedup_vs_reservoirpy"]["dynaforge (r)"]["total"]),
                f">= {esn['goal']['total_speedup']:.0f}x",
                _common.goal_mark(esn["goal_met"]["total_speedup"]),
            ]
        )
        rows.append(
            [
                "ESN median VPT (Lyapunov times), r readout",
                f"{vpt['dynaforge (r)']['median']:.2f}",
                f"{vpt['reservoirpy (r)']['median']:.2f}",
                "",
                "same accuracy",
                "",
            ]
        )
    lstm = results.get("lstm_training")
    if lstm and "error" not in lstm:
        rows_ = lstm["rows"]
        seed = rows_[0]
        dyn = next(
            r
            for r in rows_
            if r["loop"].startswith("dynaforge") and r["batch_size"] == lstm["default_batch_size"]
        )
        rows.append(
            [
                f"LSTM training samples/s (dynaforge @{dyn['batch_size']} vs seed @32, "
                f"{dyn['threads']} threads)",
                _common.fmt_rate(dyn["samples_per_s"]),
                _common.fmt_rate(seed["samples_per_s"]),
                _common.fmt_ratio(dyn["ratio_vs_seed_at_32"]),
                f">= {lstm['goal']['ratio_at_default_batch_vs_seed_at_32']:.0f}x",
                _common.goal_mark(lstm["goal_met"]["ratio_at_default_batch_vs_seed_at_32"]),
            ]
        )
        one = lstm.get("ratio_at_default_batch_vs_seed_at_32_1_thread")
        goal = lstm["goal"]["ratio_at_default_batch_vs_seed_at_32"]
        if one is not None:
            rows.append(
                [
                    "  same, 1 thread (diagnostic)",
                    "",
                    "",
                    _common.fmt_ratio(one),
                    f">= {goal:.0f}x",
                    _common.goal_mark(one >= goal),
                ]
            )
    sindy = results.get("sindy")
    if sindy and "error" not in sindy:
        one = sindy["predict"]["1"]
        rows.append(
            [
                "SINDy predict, one state (µs/call) vs PySINDy",
                f"{one['dynaforge_s'] * 1e6:.1f}",
                f"{one['pysindy_s'] * 1e6:.0f}",
                _common.fmt_ratio(one["ratio"]),
                f">= {sindy['goal']['predict_speedup_1_state']:.0f}x",
                _common.goal_mark(sindy["goal_met"]["predict_speedup_1_state"]),
            ]
        )
        sweep = sindy["sweep"]
        for eta in ("0.05", "0.1"):
            ours = sweep["dynaforge"]["weak"].get(eta)
            peer = max(
                (sweep["pysindy"][m].get(eta, {}).get("exact_support", 0), m)
                for m in sweep["pysindy"]
            )
            if ours:
                rows.append(
                    [
                        f"SINDy exact support at η = {float(eta):.0%} (of {ours['n_seeds']})",
                        f"{ours['exact_support']} (weak, auto)",
                        f"{peer[0]} (best: {peer[1]})",
                        "",
                        "",
                        "",
                    ]
                )
    adv = results.get("advection")
    if adv and "error" not in adv:
        best = adv["best"]
        rows.append(
            [
                "advection FV cell updates/s vs NumPy, one sample at a time",
                f"{_common.fmt_rate(best['cell_updates_per_s'])} ({best['dtype']}, batch "
                f"{best['batch']:,}, {best['threads']} thr.)",
                _common.fmt_rate(adv["numpy"][best["dtype"]]["cell_updates_per_s"]),
                _common.fmt_ratio(best["ratio_vs_numpy"]),
                f">= {adv['goal']['ratio_vs_numpy']:.0f}x",
                _common.goal_mark(adv["goal_met"]["ratio_vs_numpy"]),
            ]
        )
    inference = results.get("advection_inference")
    if inference and "error" not in inference:
        solver = inference["rows"][0]
        for r in inference["rows"][1:]:
            rows.append(
                [
                    f"advection {r['method']} vs FV at {bench_advection.NX} cells, ms/sample "
                    f"@{inference['n_test']} (nRMSE)",
                    f"{r['seconds_per_sample_batch'] * 1e3:.3g} ({r['nrmse']:.1e})",
                    f"{solver['seconds_per_sample_batch'] * 1e3:.3g} ({solver['nrmse']:.1e})",
                    _common.fmt_ratio(r["speedup_vs_solver_batch"]),
                    "",
                    "",
                ]
            )
    training = results.get("advection_training")
    if training and "error" not in training:
        peer, ours = training["rows"][0], training["rows"][2]
        rows.append(
            [
                "advection FNO training samples/s vs PDEBench-style loop (1 thread)",
                _common.fmt_rate(ours["samples_per_s"]),
                _common.fmt_rate(peer["samples_per_s"]),
                _common.fmt_ratio(ours["ratio_vs_pdebench"]),
                "",
                "",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results.json, or results.quick.json with --quick)",
    )
    parser.add_argument(
        "--sindy-ae-run",
        metavar="DIR",
        default=None,
        help="a finished `dynaforge discover lorenz-embedded --preset quick` run: "
        "sindy_ae reads its time to the first Lorenz model instead of "
        "training the quick preset again (~16 min)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the entries already in --out of the benchmarks not run now",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    out = args.out or HERE / ("results.quick.json" if args.quick else "results.json")

    _common.setup_threads()
    machine = _common.machine_info()
    kind = "quick" if args.quick else "measured"
    print(
        f"dynaforge benchmarks ({kind} run) on {machine['cpu']}, {machine['cores']} cores, "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), "
        f"numpy {machine['numpy']}, load average {machine['load_average']}\n"
    )

    results: dict[str, Any] = {}
    failed = False
    for name in chosen:
        module = BENCHMARKS[name]
        t0 = time.perf_counter()
        try:
            extra = (
                {"from_run": args.sindy_ae_run} if name == "sindy_ae" and args.sindy_ae_run else {}
            )
            result = module.run(quick=args.quick, **extra)
        except Exception:  # noqa: BLE001 - report and go on: one broken benchmark should not hide the others
            failed = True
            results[name] = {"error": traceback.format_exc()}
            print(f"[{name}] FAILED:\n{results[name]['error']}", file=sys.stderr)
            continue
        result["wall_seconds"] = time.perf_counter() - t0
        results[name] = result
        module.report(result)

    machine["load_average_end"] = _common.load_average()
    summary = _summary_rows(results)
    if summary:
        _common.print_table(
            "Summary",
            ["benchmark", "dynaforge", "peer", "ratio", "goal", "status"],
            summary,
            [
                f"load average start {machine['load_average']}, end "
                f"{machine['load_average_end']} (other jobs on the machine "
                "slow every figure, multi-threaded torch the most)."
            ],
        )
    payload = {"quick": args.quick, "machine": machine, "results": results}
    if args.merge and out.is_file():
        payload = json.loads(out.read_text())
        for result in results.values():
            result["machine"] = machine
        payload["results"].update(results)
    out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
