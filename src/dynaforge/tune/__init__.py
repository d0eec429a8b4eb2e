"""Tuning and sweeps: Optuna studies from one laptop to a cluster.

- :mod:`.space`: search spaces (defaults per model, YAML files) and the normalised unit cube;
- :mod:`.es`: the asynchronous evolution-strategy sampler;
- :mod:`.storage`: the embedded journal file or any Optuna storage URL, with heartbeats;
- :mod:`.study`: a study's metadata, its exact trial budget (tickets), samplers, pruners and
  exports (``study.json``, ``trials.csv``, ``best_config.yaml``);
- :mod:`.worker`: the objective (the task's validation metric, its primary one by default) and
  the worker processes;
- :mod:`.run`: ``dynaforge tune`` from settings to an exported study;
- :mod:`.sweep`: ``dynaforge sweep``, one hyperparameter × seeds.
"""
