"""Where a run's units of work are computed: here, one after another (the default), or on a
cluster through any :class:`concurrent.futures.Executor`.

A randomization run splits into one unit per seed (:func:`sanitylib.experiments.runner.seed_maps`),
each cached on its own, so the units can run anywhere that sees the same cache folder. Dask is the
tested engine: :func:`dask_executor` starts a local cluster of worker processes (one thread
each) or joins a running scheduler, and returns its client's executor. The book and the command
pick it up from the environment (:func:`configured_executor`): ``SANITYLIB_WORKERS=N`` (``make book
WORKERS=N``, ``sanitylib check --workers N``) or ``SANITYLIB_SCHEDULER=ADDRESS`` (``--scheduler``).
A worker that dies has its units run again on another (Dask's own rule); an entry is written to
the cache atomically, so nothing half-written is ever read.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor

__all__ = ["close_executors", "configured_executor", "dask_executor"]

_CLIENTS: dict[tuple[int | None, str | None], object] = {}


def dask_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor of a Dask client: on the scheduler at ``scheduler`` (``tcp://host:8786``),
    else on a local cluster of ``workers`` processes with one thread each (Dask's nanny sets
    ``OMP_NUM_THREADS=1`` in them, so they do not oversubscribe the cores). One client per
    setting and process, closed when the process ends."""
    if (workers is None) == (scheduler is None):
        raise ValueError("give either workers (a local cluster) or scheduler (an address)")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the lock installs it
        raise ImportError("a cluster needs Dask: pip install 'dask[distributed]'") from None
    key = (workers, scheduler)
    if key not in _CLIENTS:
        if scheduler is not None:
            _CLIENTS[key] = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            _CLIENTS[key] = Client(cluster)
    return _CLIENTS[key].get_executor()  # type: ignore[attr-defined]


def _in_a_worker() -> bool:
    """Whether this process is a Dask worker (whose units run serially: no cluster in a cluster)."""
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def configured_executor() -> Executor | None:
    """The executor the environment asks for: ``SANITYLIB_SCHEDULER`` (an address) or
    ``SANITYLIB_WORKERS`` (a number of local worker processes); None (serial) without them."""
    scheduler = os.environ.get("SANITYLIB_SCHEDULER") or None
    workers = os.environ.get("SANITYLIB_WORKERS") or None
    if (scheduler is None and workers is None) or _in_a_worker():
        return None
    if scheduler is not None:
        return dask_executor(scheduler=scheduler)
    try:
        count = int(workers)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"SANITYLIB_WORKERS must be a whole number, got {workers!r}") from None
    return dask_executor(workers=count)


def close_executors() -> None:
    """Close every client :func:`dask_executor` opened in this process (and a local cluster's
    workers with it)."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        cluster = getattr(client, "cluster", None)
        client.close()  # type: ignore[attr-defined]
        if cluster is not None:
            cluster.close()
