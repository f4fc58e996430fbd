"""Drift-study points on Dask distributed: one task per missing point, on a local cluster of
worker processes or on a running Dask scheduler (a real cluster).

Every point is named by its seeds alone (programming seed from the study seed and repetition,
read seed from those and the time, :func:`aimcsim.experiments.drift.read_seed`), so a worker
that programs the network afresh for each point measures exactly what the single-process loop
measures. The driver appends each point to ``points.jsonl`` as it arrives; a worker killed
mid-point loses only that point, which the scheduler runs again elsewhere.

``distributed`` is an optional dependency (``pip install "aimcsim[dist]"``), imported on use.
Workers must be able to import ``aimcsim``; the test images, calibration images and networks
are sent to them from the driver, so they need no copy of CIFAR-10 or of the weights files.
"""
from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Callable, Iterator

import torch
from torch import nn

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.experiments.drift import DriftStudyConfig, Point, _key, measure_point

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to wait for a running scheduler to have at least one worker.
WORKER_WAIT_S = 120.0


def _distributed():
    """The ``distributed`` module, with a clear message when it is not installed."""
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('running points on Dask needs the "distributed" package: '
                          'pip install "aimcsim[dist]" (or pip install distributed)') from err
    return distributed


@contextlib.contextmanager
def dask_client(workers: int = 0, scheduler: str | None = None,
                client: "Client | None" = None) -> Iterator["Client"]:
    """A Dask client: ``client`` itself (left open), a client of the running scheduler at
    ``scheduler`` (e.g. ``tcp://host:8786``), or one of a new local cluster of ``workers``
    worker processes with one thread each (both closed on exit)."""
    if sum((workers > 0, scheduler is not None, client is not None)) != 1:
        raise ValueError("give exactly one of workers (> 0), scheduler and client; "
                         f"got workers={workers!r}, scheduler={scheduler!r}, client={client!r}")
    if client is not None:
        yield client
        return
    distributed = _distributed()
    if scheduler is not None:
        with distributed.Client(scheduler) as remote:
            remote.wait_for_workers(1, timeout=WORKER_WAIT_S)
            yield remote
        return
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as local:
        yield local


def _measure_task(config: DriftStudyConfig, point: Point, base: nn.Module, test: CifarSplit,
                  calibration: list[torch.Tensor] | None) -> dict:
    """One point on a worker: single-threaded torch and Numba (one task per worker thread),
    then :func:`~aimcsim.experiments.drift.measure_point`, which programs the network."""
    import numba
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    return measure_point(config, point, base, test, calibration)


def measure_on_dask(config: DriftStudyConfig, todo: list[Point], bases: dict[str, nn.Module],
                    test: CifarSplit, calibration: list[torch.Tensor] | None,
                    record: Callable[[dict], None], *, workers: int = 0,
                    scheduler: str | None = None, client: "Client | None" = None) -> None:
    """Measure the points ``todo`` as Dask tasks and pass each finished point's record to
    ``record`` as it arrives (in order of completion).

    ``bases``, ``test`` and ``calibration`` are as for
    :func:`~aimcsim.experiments.drift.measure_point`; they are sent to every worker once.
    The cluster is chosen as in :func:`dask_client`. A worker lost mid-point costs only that
    point: the scheduler runs it again on another worker (up to Dask's
    ``distributed.scheduler.allowed-failures`` times); an error raised by a point stops the
    study, with every point recorded so far kept."""
    unknown = {p[0] for p in todo} - set(bases)
    if unknown:
        raise ValueError(f"no base network for series {sorted(unknown)}")
    if not todo:
        return
    with dask_client(workers, scheduler, client) as dask:
        distributed = _distributed()
        shared = dask.scatter([test, calibration, *bases.values()], broadcast=True)
        test_f, calibration_f, base_fs = shared[0], shared[1], dict(zip(bases, shared[2:]))
        run = uuid.uuid4().hex[:8]
        futures = [dask.submit(_measure_task, config, p, base_fs[p[0]], test_f, calibration_f,
                               key=f"drift-point-{_key(*p)}-{run}") for p in todo]
        try:
            for future in distributed.as_completed(futures):
                record(future.result())
        finally:
            dask.cancel(futures + shared)
