"""Worker utilisation of ES tuning at cluster scale, measured by simulation (issue 14).

The seed's tuning ran the ES of Salimans et al. the L2L way: 32 individuals per generation, one
per GPU, and each generation waited for its slowest member; GPU use fell to 20 % on 32 nodes.
This benchmark runs the same study shape on one machine: ``--workers`` (32) worker processes
share one Optuna study in a PostgreSQL server on loopback (``dynaforge.tune.local_postgres``:
fsync off, so storage times are a lower bound on a networked server's), each running
dynaforge's own worker loop (:func:`dynaforge.tune.loop.work_tickets`: tickets, heartbeats,
stale-trial retry) with dynaforge's ES sampler choosing every trial's parameters in the
U-Net's 5-D space. Only the training is simulated: a trial sleeps for a duration drawn from
the measured distribution of U-Net training times (``--durations``: the ``duration_s``
column of the trials.csv files a tuning run wrote; by default those of
``benchmarks/tune_samplers.py``), rescaled to a mean of ``--mean-s`` seconds, with stragglers
(each trial with probability ``--straggler-p`` takes ``--straggler-x`` times as long: an
assumption standing for slow nodes, not a measurement). One worker is killed (SIGKILL) in the
middle of a trial ``--kill-at`` seconds in; its trial is failed by the heartbeat and retried by
another worker. The same trial numbers get the same durations in both modes.

Two modes, same trials, same workers:

* ``async``: dynaforge's ES; a worker starts its next trial as soon as it is free, from the
  current mean (no generation barrier).
* ``sync``: the L2L way; the orchestrator enqueues one generation of ``population`` tickets,
  lets the workers run them, and releases the next generation only when every worker is
  done with this one (a generation waits for its slowest member, and for the retry of the
  killed one).

Reported per mode: worker utilisation (time spent in trials / worker time alive, the killed
worker counted until it died; over the whole run, and in the steady state before the study
drains), trials per minute, storage overhead per trial (the median gap between one trial's
end and the same worker's next trial's start: telling the result, claiming the next ticket,
the ES recomputing its mean from the storage; the median, because a gap that waited for work
is not storage time), and the check that exactly the requested trials completed, none lost,
the killed trial retried.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_cluster_sim.py [--workers 32]
[--generations 40] [--sync-generations 10] [--mean-s 5]`` (about 4 min async and 8 min sync at
the defaults).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import print_table

ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT_S = 1
GRACE_S = 4


def measured_durations(pattern: str) -> np.ndarray:
    """Trial durations (s) of completed trials in the trials.csv files matching ``pattern``."""
    values = []
    for path in glob.glob(pattern):
        with open(path) as f:
            for row in csv.DictReader(f):
                try:
                    d = float(row["duration_s"])
                except (KeyError, ValueError):
                    continue
                if row.get("state") == "COMPLETE" and d > 0:
                    values.append(d)
    return np.asarray(values)


def trial_duration(number: int, base: np.ndarray, args) -> float:
    """The simulated training time (s) of ticket ``number``: the same in both modes."""
    rng = np.random.default_rng([args.seed, number])
    d = float(rng.choice(base))
    if rng.random() < args.straggler_p:
        d *= args.straggler_x
    return d


class SleepObjective:
    """Sleeps for the ticket's drawn duration (the ES still chooses every parameter). Records
    the time spent in trials and the gaps between one trial's end and the next one's start
    (telling the result, claiming the next ticket, the ES recomputing its mean: the storage
    overhead)."""

    def __init__(self, space, base: np.ndarray, args, log_path: str) -> None:
        self.space, self.base, self.args, self.log_path = space, base, args, log_path
        self.busy = 0.0
        self.intervals: list[tuple[float, float]] = []  # (start, end) of each trial, epoch s
        self.gaps: list[float] = []
        self.last_end: float | None = None

    def __call__(self, trial) -> float:
        values = self.space.suggest(trial)  # the ES samples here: part of the gap
        start = time.perf_counter()
        if self.last_end is not None:
            self.gaps.append(start - self.last_end)
        attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
        ticket = attrs.get("failed_trial", trial.number)  # a retry keeps its duration
        running = self.log_path + ".running"
        Path(running).touch()  # the parent kills its victim only in the middle of a trial
        began = time.time()
        time.sleep(trial_duration(ticket, self.base, self.args))
        os.remove(running)
        self.last_end = time.perf_counter()
        self.busy += self.last_end - start
        self.intervals.append((began, time.time()))
        self._save()
        return float(np.log10(values["train.learning_rate"]) + 4.0) ** 2  # a smooth objective

    def _save(self) -> None:
        tmp = self.log_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"busy": self.busy, "gaps": self.gaps, "intervals": self.intervals}, f)
        os.replace(tmp, self.log_path)


def worker(url: str, study_name: str, index: int, mode: str, space, base, args, folder: str
           ) -> None:  # fmt: skip
    # Optuna and dynaforge's tuning modules only: 32 processes importing torch would not fit.
    import optuna

    from dynaforge.tune.es import EvolutionStrategySampler
    from dynaforge.tune.loop import work_tickets
    from dynaforge.tune.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    sampler = EvolutionStrategySampler(
        space, population=args.population, adapt_sigma=True, mean_every=0
    )
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    objective = SleepObjective(space, base, args, os.path.join(folder, f"worker{index}.json"))
    # Start together: process start-up (imports) is not what is measured.
    Path(folder, f"worker{index}.ready").touch()
    while not Path(folder, "gen0").exists():
        time.sleep(0.05)
    start = time.time()
    ran = 0
    if mode == "async":  # every ticket is there from the start: no barrier
        ran = work_tickets(study, storage, objective, poll_s=0.5)
    else:  # L2L: the orchestrator releases a generation once the previous one has finished
        for g in range(args.sync_generations):
            while not Path(folder, f"gen{g}").exists():
                time.sleep(0.05)
            objective.last_end = None  # waiting for the generation is not storage overhead
            ran += work_tickets(study, storage, objective, poll_s=0.5)
            Path(folder, f"worker{index}.gen{g}").touch()
    with open(os.path.join(folder, f"worker{index}.done.json"), "w") as f:
        json.dump({"ran": ran, "start": start, "end": time.time(), "busy": objective.busy,
                   "gaps": objective.gaps, "intervals": objective.intervals}, f)  # fmt: skip


def run_mode(url: str, mode: str, space, base: np.ndarray, args) -> dict:
    import optuna
    from optuna.trial import TrialState

    from dynaforge.tune.storage import open_storage

    name = f"sim-{mode}-{int(time.time())}"
    storage = open_storage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    generations = args.generations if mode == "async" else args.sync_generations
    n_trials = args.population * generations
    per_generation = args.population

    def enqueue(n: int) -> None:  # tickets, as `dynaforge tune` enqueues them
        for _ in range(n):
            study.enqueue_trial({}, skip_if_exists=False)

    enqueue(n_trials if mode == "async" else per_generation)
    folder = tempfile.mkdtemp(prefix=f"sim-{mode}-")
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=worker, args=(url, name, i, mode, space, base, args, folder))
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    while len(glob.glob(os.path.join(folder, "*.ready"))) < args.workers:
        time.sleep(0.1)
    go = time.time()
    Path(folder, "gen0").touch()
    killed_at, generation = None, 0
    victim = args.workers - 1
    victim_running = Path(folder, f"worker{victim}.json.running")
    while any(p.is_alive() for p in procs):
        if killed_at is None and time.time() - go > args.kill_at and victim_running.exists():
            os.kill(procs[victim].pid, signal.SIGKILL)  # a node lost in the middle of a trial
            killed_at = time.time()
        if mode == "sync" and generation + 1 < generations:
            alive = [i for i, p in enumerate(procs) if p.is_alive()]
            if all(Path(folder, f"worker{i}.gen{generation}").exists() for i in alive):
                generation += 1
                enqueue(per_generation)
                Path(folder, f"gen{generation}").touch()
        time.sleep(0.05)
    busy, alive_s, ends, gaps, intervals, lives = 0.0, 0.0, [], [], [], []
    for i in range(args.workers):
        done = Path(folder) / f"worker{i}.done.json"
        if done.is_file():
            doc = json.loads(done.read_text())
            lives.append((doc["start"], doc["end"]))
            ends.append(doc["end"])
            gaps += doc["gaps"]
        else:  # the killed worker: alive until it died, busy as far as its log shows
            partial = Path(folder) / f"worker{i}.json"
            doc = json.loads(partial.read_text()) if partial.is_file() else {"busy": 0.0}
            lives.append((go, killed_at or time.time()))
        busy += doc["busy"]
        intervals += [tuple(x) for x in doc.get("intervals", [])]
        alive_s += lives[-1][1] - lives[-1][0]
    wall = max(ends) - go
    # Steady state: until the last trial started (after that the study drains: workers run
    # out of tickets while the last trials finish, a cost paid once per study).
    last_start = max(b for b, _ in intervals)

    def overlap(a: float, b: float) -> float:
        return sum(max(0.0, min(e, b) - max(s, a)) for s, e in intervals)

    alive_steady = sum(max(0.0, min(e, last_start) - max(s, go)) for s, e in lives)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    retried = [t for t in complete if "failed_trial" in t.system_attrs]
    errors = {t.user_attrs["error"] for t in failed if "error" in t.user_attrs}
    if errors:  # a trial that raised (not the killed one, which has no error): a bug here
        print(f"{mode}: failed trials raised: {sorted(errors)[:3]}", file=sys.stderr)
    return {
        "mode": mode,
        "wall_s": wall,
        "utilisation": busy / alive_s,
        "utilisation_steady": overlap(go, last_start) / alive_steady,
        "drain_s": wall - (last_start - go),
        "trials_per_min": 60.0 * len(complete) / wall,
        # the median gap: a gap that waited for work (a generation barrier, the killed trial's
        # heartbeat running out) is not storage time
        "storage_s_per_trial": float(np.median(gaps)) if gaps else None,
        "complete": len(complete),
        "requested": n_trials,
        "failed": len(failed),
        "retried_complete": len(retried),
        "running_left": sum(t.state == TrialState.RUNNING for t in trials),
        "killed_at_s": None if killed_at is None else killed_at - go,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument(
        "--generations",
        type=int,
        default=40,
        help="async study length in generations of --population trials",
    )
    ap.add_argument("--sync-generations", type=int, default=10,
                    help="sync study length (each generation waits for its slowest member: "
                         "utilisation does not depend on how many)")  # fmt: skip
    ap.add_argument("--population", type=int, default=None,
                    help="ES population = trials per generation [default: --workers]")  # fmt: skip
    ap.add_argument("--mean-s", type=float, default=5.0)
    ap.add_argument("--straggler-p", type=float, default=0.05)
    ap.add_argument("--straggler-x", type=float, default=4.0)
    ap.add_argument("--kill-at", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="async,sync")
    ap.add_argument(
        "--durations",
        default=str(ROOT / "runs" / "bench-tune-samplers" / "*" / "trials.csv"),
        help="trials.csv files whose duration_s give the measured distribution",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.population = args.population or args.workers
    measured = measured_durations(args.durations)
    if measured.size < 5:
        sys.exit(
            f"need measured trial durations: found {measured.size} in {args.durations}; run "
            "benchmarks/tune_samplers.py first (or pass --durations)"
        )
    base = measured * (args.mean_s / measured.mean())
    cv = measured.std() / measured.mean()
    print(
        f"{measured.size} measured U-Net trials: mean {measured.mean():.1f} s, "
        f"CV {cv:.2f}; rescaled to mean {args.mean_s} s; stragglers p={args.straggler_p} "
        f"x{args.straggler_x}",
        flush=True,
    )
    from dynaforge.tune.local_postgres import local_postgres
    from dynaforge.tune.space import default_space

    space = default_space("unet")  # the U-Net's 5-D space (parsing it imports torch: here only)

    results = []
    with local_postgres(max_connections=4 * args.workers + 20) as url:
        for mode in args.modes.split(","):
            r = run_mode(url, mode, space, base, args)
            results.append(r)
            print(json.dumps(r), flush=True)
    rows = [
        [
            r["mode"],
            f"{r['utilisation']:.1%}",
            f"{r['utilisation_steady']:.1%}",
            f"{r['trials_per_min']:.1f}",
            "—" if r["storage_s_per_trial"] is None else f"{1e3 * r['storage_s_per_trial']:.0f}",
            f"{r['complete']}/{r['requested']}",
            f"{r['failed']} failed, {r['retried_complete']} retried",
            f"{r['wall_s']:.0f}",
        ]
        for r in results
    ]
    if len(results) == 2:
        a, s = results
        notes = [
            f"async / sync: utilisation {a['utilisation'] / s['utilisation']:.2f}x, "
            f"trials per minute {a['trials_per_min'] / s['trials_per_min']:.2f}x"
        ]
    else:
        notes = []
    print_table(
        f"{args.workers} workers, {args.population} trials per generation ({args.generations} "
        f"generations async, {args.sync_generations} sync), PostgreSQL on loopback, one "
        f"worker killed at {args.kill_at:g} s",
        ["mode", "utilisation", "steady state", "trials/min", "storage ms/trial (median)", "complete",
         "killed trial", "wall s"],
        rows,
        notes,
    )  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "measured_mean_s": float(measured.mean()),
                    "measured_cv": float(cv),
                    "n_measured": int(measured.size),
                    "results": results,
                    "load": os.getloadavg(),
                },
                indent=2,
            )
        )
    for r in results:
        ok = r["complete"] == r["requested"] and r["running_left"] == 0
        if not ok:
            sys.exit(f"{r['mode']}: {r['complete']} of {r['requested']} trials complete")


if __name__ == "__main__":
    main()
