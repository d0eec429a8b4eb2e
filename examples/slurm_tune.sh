#!/bin/bash
# Tune the ESN on Lorenz-63 across the machines of a cluster: a SLURM job array of workers,
# all sharing one Optuna study in PostgreSQL.
#
#   1. Have a PostgreSQL server every node can reach, with a database for studies:
#        createdb -h db.cluster -U me studies
#   2. Put the URL in DYNAFORGE_STORAGE (or a ~/.pgpass for the password) and submit:
#        DYNAFORGE_STORAGE=postgresql://me:secret@db.cluster:5432/studies sbatch examples/slurm_tune.sh
#
# Every array task runs the same command. The first one to arrive creates the study with its
# 200 trials; the others join it. Each trial is claimed by exactly one worker; a worker that dies
# (node failure, preemption, time limit) has its trial failed by the heartbeat and retried by
# another worker, so the study still finishes exactly 200 trials. Resubmitting the script resumes.
# Each task writes its view of the study (report.html, trials.csv, best_config.yaml) to its own
# folder at the end; the last one to finish has every trial.
#
#SBATCH --job-name=dynaforge-tune
#SBATCH --array=0-7               # 8 workers (one per task)
#SBATCH --cpus-per-task=4
#SBATCH --gres=gpu:1              # optional: each worker uses its one GPU (neural models)
#SBATCH --time=04:00:00
#SBATCH --output=logs/tune-%A_%a.out

set -euo pipefail
: "${DYNAFORGE_STORAGE:?set DYNAFORGE_STORAGE=postgresql://user:password@host:5432/db}"
MODEL=${MODEL:-esn}
mkdir -p logs
.venv/bin/dynaforge tune lorenz63 --model "$MODEL" --trials 200 --sampler tpe \
    --storage "$DYNAFORGE_STORAGE" --study "lorenz63-$MODEL-cluster" \
    --workers 1 --threads "${SLURM_CPUS_PER_TASK:-1}" --heartbeat 30 \
    --out "runs/tune-cluster-$MODEL/task-${SLURM_ARRAY_TASK_ID:-0}" --no-progress
