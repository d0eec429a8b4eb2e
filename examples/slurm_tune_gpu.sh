#!/bin/bash
# Tune a PDE surrogate on 1-D advection with evolution strategies across GPU nodes: one
# dynaforge worker per GPU, any number of nodes, all sharing one Optuna study in PostgreSQL.
#
#   1. A PostgreSQL server every node can reach, with a database for studies:
#        createdb -h db.cluster -U me studies
#   2. Put its URL in DYNAFORGE_STORAGE (or the password in ~/.pgpass) and submit:
#        DYNAFORGE_STORAGE=postgresql://me:secret@db.cluster:5432/studies sbatch examples/slurm_tune_gpu.sh
#      Environment knobs: MODEL (unet), TRIALS (2560 = 80 generations of 32), POPULATION (32),
#      GPUS_PER_NODE (4), DATA (a downloaded PDEBench file, e.g. 1D_Advection_Sols_beta4.0.hdf5;
#      default: simulate the full preset's data on each node), PRESET (full) and CONFIG (a
#      YAML file of task settings and base hyperparameters, e.g. examples/advection_tune_cpu.yaml
#      with PRESET=quick to try the script on a laptop with a stand-in srun).
#
# How it scales: srun starts one task per node; each runs `dynaforge tune --workers
# $GPUS_PER_NODE`, which starts one worker process per GPU and pins it there
# (CUDA_VISIBLE_DEVICES, round robin), with the node's CPUs shared between them. Every worker
# claims trials from the one study: the first task to arrive creates it with its TRIALS
# tickets, the others join; each ticket runs exactly once. The ES is asynchronous: a free GPU
# takes the next trial at once from the current mean, never waiting for the slowest member of
# a generation (measured by simulation: benchmarks/tune_cluster_sim.py, README "Tuning PDE
# surrogates with evolution strategies").
#
# Requeue-safe: with --requeue, a preempted or failed job is put back in the queue and, when it
# restarts, the same command rejoins the same study (same --study name): finished trials are
# kept, the trials that were running when the nodes died stop sending heartbeats and are
# failed and retried with the same parameters after 6 heartbeats (--heartbeat 60: 6 min), so
# the study still finishes exactly TRIALS trials. Resubmitting by hand does the same.
# Each node writes its view of the study (report.html, trials.csv, best_config.yaml) into its
# own folder at the end; the last to finish has every trial.
#
#SBATCH --job-name=dynaforge-tune-gpu
#SBATCH --nodes=8                  # 8 nodes x 4 GPUs = 32 workers, the seed's generation size
#SBATCH --ntasks-per-node=1        # one dynaforge tune per node; it starts one worker per GPU
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=logs/tune-gpu-%j.out

set -euo pipefail
: "${DYNAFORGE_STORAGE:?set DYNAFORGE_STORAGE=postgresql://user:password@host:5432/db}"
MODEL=${MODEL:-unet}
TRIALS=${TRIALS:-2560}
POPULATION=${POPULATION:-32}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
THREADS=$(( ${SLURM_CPUS_PER_TASK:-$GPUS_PER_NODE} / GPUS_PER_NODE ))
PRESET=${PRESET:-full}
EXTRA=()
if [[ -n "${DATA:-}" ]]; then EXTRA+=(--set "data=$DATA"); fi
if [[ -n "${CONFIG:-}" ]]; then EXTRA+=(--config "$CONFIG"); fi
mkdir -p logs
export MODEL TRIALS POPULATION GPUS_PER_NODE THREADS PRESET DYNAFORGE_STORAGE

# --objective fitness: the seed's (RMSE + nRMSE + bRMSE + cRMSE) / 4 on the validation part
# (never the test part). --pruner halving: successive halving on the per-epoch validation
# fitness, so most individuals cost a fraction of a full training; the best configuration is
# always a fully trained one. The ES adapts its sigma (cumulative step-size rule) and
# evaluates its mean once per population; --space lr gives the seed's 1-D search instead of
# the 5-D default (learning rate, StepLR gamma and step, batch size, width).
srun --kill-on-bad-exit=0 bash -c '
  .venv/bin/dynaforge tune advection --model "$MODEL" --preset "$PRESET" "$@" \
      --sampler es --population "$POPULATION" --objective fitness --pruner halving \
      --trials "$TRIALS" --storage "$DYNAFORGE_STORAGE" --study "advection-$MODEL-es" \
      --workers "$GPUS_PER_NODE" --threads "$THREADS" --heartbeat 60 \
      --out "runs/tune-gpu-$MODEL/node-$SLURM_NODEID" --no-progress
' _ "${EXTRA[@]}"
