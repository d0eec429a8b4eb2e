"""Worker processes on one machine: how many threads and which GPU each one gets.

Used by ``dynaforge tune --workers`` (one Optuna worker per process) and by
``dynaforge discover lorenz-embedded`` (one stack of autoencoder seeds per process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: Environment variables that size the thread pools of OpenMP, OpenBLAS and MKL.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_environment(index: int, *, threads: int, n_gpus: int) -> dict[str, str]:
    """Environment of worker ``index``: ``threads`` for its BLAS/OpenMP pools (NumPy's and
    torch's; without this every process starts one thread per core, and threads of different
    processes that spin-wait on each other slow everything down), and one GPU, round robin,
    when there are ``n_gpus``."""
    env = {name: str(threads) for name in THREAD_VARS}
    if n_gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(index % n_gpus)
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the block (a spawned child inherits it at its start)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
