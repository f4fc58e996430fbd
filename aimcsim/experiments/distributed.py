"""Drift-study points (or any sweep of independent, seeded measurements) on Dask distributed:
one task per missing point, on a local cluster of worker processes or on a running Dask
scheduler (a real cluster).

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
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

import torch
from torch import nn

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.experiments.drift import DriftStudyConfig, Point, measure_point
from aimcsim.threads import set_compute_threads

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

#: Seconds to wait for a running scheduler to have at least one worker.
WORKER_WAIT_S = 120.0


def _distributed():
    """The ``distributed`` module, with a clear message when it is not installed."""
    try:
        import distributed
    except ImportError as err:
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


def _single_threaded(fn: Callable[..., T], item: Any, shared: dict[str, Any]) -> T:
    """``fn(item, **shared)`` with single-threaded torch and Numba: one task per worker
    thread."""
    set_compute_threads(1)
    return fn(item, **shared)


def map_on_dask(fn: Callable[..., T], items: Sequence[Any], shared: dict[str, Any],
                record: Callable[[T], None], *, name: str = "task", workers: int = 0,
                scheduler: str | None = None, client: "Client | None" = None) -> None:
    """Run ``fn(item, **shared)`` for every item as one Dask task, single-threaded, and pass
    each result to ``record`` as it arrives (in order of completion). ``fn`` must be
    importable on the workers (a module-level function); ``shared`` (networks, images) is sent
    to every worker once. The cluster is chosen as in :func:`dask_client`; ``name`` prefixes
    the task keys (readable on the Dask dashboard).

    A worker lost mid-task costs only that task: the scheduler runs it again on another
    worker (up to Dask's ``distributed.scheduler.allowed-failures`` times). An error raised by
    a task is raised here, after every result recorded so far."""
    if not items:
        return
    with dask_client(workers, scheduler, client) as dask:
        distributed = _distributed()
        names = list(shared)
        scattered = dask.scatter([shared[n] for n in names], broadcast=True)
        shared_f = dict(zip(names, scattered))
        run = uuid.uuid4().hex[:8]
        futures = [dask.submit(_single_threaded, fn, item, shared_f,
                               key=f"{name}-{i}-{run}") for i, item in enumerate(items)]
        try:
            for future in distributed.as_completed(futures):
                record(future.result())
        finally:
            dask.cancel(futures + scattered)


def _measure(point: Point, config: DriftStudyConfig, bases: dict[str, nn.Module],
             test: CifarSplit, calibration: list[torch.Tensor] | None) -> dict:
    """One drift-study point on a worker: programs the network, reads, evaluates. Dask's
    tensor serialisation drops the channels-last layout of the calibration batches, and the
    analog convolutions' float results depend on the layout (summation order), so it is
    restored here: a worker's AdaBS then matches the single process's bit for bit."""
    if calibration is not None:
        calibration = [x.contiguous(memory_format=torch.channels_last) for x in calibration]
    return measure_point(config, point, bases[point[0]], test, calibration)


def measure_on_dask(config: DriftStudyConfig, todo: list[Point], bases: dict[str, nn.Module],
                    test: CifarSplit, calibration: list[torch.Tensor] | None,
                    record: Callable[[dict], None], *, workers: int = 0,
                    scheduler: str | None = None, client: "Client | None" = None) -> None:
    """Measure the drift-study points ``todo`` as Dask tasks (:func:`map_on_dask`) and pass
    each point's record to ``record`` as it arrives. ``bases``, ``test`` and ``calibration``
    are as for :func:`~aimcsim.experiments.drift.measure_point`."""
    unknown = {p[0] for p in todo} - set(bases)
    if unknown:
        raise ValueError(f"no base network for series {sorted(unknown)}")
    map_on_dask(_measure, todo, {"config": config, "bases": bases, "test": test,
                                 "calibration": calibration}, record,
                name="drift-point", workers=workers, scheduler=scheduler, client=client)
