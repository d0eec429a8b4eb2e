"""Worker processes on one machine: their threads and GPU, and a runner that starts and
awaits them.

Used by ``dynaforge tune --workers`` (one Optuna worker per process) and by
``dynaforge discover lorenz-embedded`` (one stack of autoencoder seeds per process).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

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


def run_processes(
    target: Callable[..., None],
    args: Sequence[tuple[Any, ...]],
    *,
    threads: int,
    n_gpus: int = 0,
    name: str = "dynaforge-worker",
    on_poll: Callable[[], None] | None = None,
    poll_s: float = 2.0,
) -> list[int]:
    """Run ``target(*args[i])`` in one spawned process per ``args`` entry and wait for them.

    Process ``i`` starts with :func:`worker_environment` ``(i, threads, n_gpus)``.
    ``on_poll()`` is called about every ``poll_s`` seconds while they run, and once at the end
    (a progress bar). On an interrupt or error here, the processes still alive are terminated.

    Returns:
        The processes' exit codes.
    """
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i, worker_args in enumerate(args):
        with environment(worker_environment(i, threads=threads, n_gpus=n_gpus)):
            p = ctx.Process(target=target, args=worker_args, name=f"{name}-{i}")
            p.start()
        procs.append(p)
    try:
        while any(p.is_alive() for p in procs):
            if on_poll is not None:
                on_poll()
            for p in procs:
                p.join(timeout=poll_s / max(len(procs), 1))
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    if on_poll is not None:
        on_poll()
    return [p.exitcode for p in procs]
