"""Ray, imported only here and only when a job runs: start or join a cluster, run shards on it.

Without an address a local Ray is started for the job, on 127.0.0.1 only, with no dashboard,
and shut down when the job ends, so nothing outlives the command. With an address
(`ray://...` or `HOST:PORT`) the job joins that cluster, whose workers must have this project
installed; it is left running. A Ray already started in this process (the tests') is reused.

Shards run through Ray Data's `map_batches` with a callable class (`ShardWorker`), so each
worker loads its model once; Ray Data restarts a worker that dies and retries its shard.
Results stream back as they finish and the driver writes each one to disk at once.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from explorer.errors import ExplorerError
from explorer.indexing.shards import ShardFolder, ShardWorker
from explorer.paths import REPO_ROOT

INSTALL_HINT = "pip install -r requirements-ray.txt"


def _ray():
    try:
        import ray
    except ImportError:
        raise ExplorerError(f"This command runs on Ray, which is not installed: {INSTALL_HINT}.") from None
    return ray


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """A Ray to run jobs on: joined at `address`, else a local one with `workers` CPUs, stopped after."""
    if not address:
        # Single-node mode: Ray then takes 127.0.0.1 as this node's address and binds its servers
        # there, instead of the address other machines would use. Read when Ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ExplorerError(f"Could not join the Ray cluster at {address!r}: {error}") from None
    else:
        # Workers import `explorer` from this checkout, as the command did.
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
            logging_level=logging.WARNING, _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": {"PYTHONPATH": path, "TOKENIZERS_PARALLELISM": "false"}},
        )
        if ray.util.get_node_ip_address() != "127.0.0.1":
            ray.shutdown()
            raise ExplorerError("The local Ray would listen beyond 127.0.0.1 (Ray was imported before this command "
                                "set it up); start it through explorer.indexing.ray_jobs.ray_session.")
    try:
        yield
    finally:
        ray.shutdown()


def run_shards(
    folder: ShardFolder,
    shards: Sequence[list],
    worker_args: dict,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    worker_class: type = ShardWorker,
) -> list[int]:
    """Compute every shard of `folder` not already on disk, on the current Ray; return those computed.

    `worker_args` are `ShardWorker`'s (task, model_id, precision, allow_local_path); `workers`
    actors run at once, one CPU each. Each shard's file is written as soon as it comes back,
    so a job stopped half-way keeps what it finished. `worker_class` is for tests (a worker
    that kills itself once).
    """
    ray = _ray()
    done = folder.done()
    pending = [i for i in range(len(shards)) if i not in done]
    report = progress or (lambda finished, total: None)
    report(len(done), len(shards))
    if not pending:
        return []
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own progress line per shard instead
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # after ray.data set up its logging
    dataset = ray.data.from_items([{"shard": i, "items": shards[i]} for i in pending])
    results = dataset.map_batches(
        worker_class, fn_constructor_kwargs=worker_args, batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(pending)))), num_cpus=1,
    )
    computed, failure = [], None
    try:
        for row in results.iter_rows():
            shard = int(row["shard"])
            if row["precision"] != folder.spec.precision or row["engine"] != folder.spec.engine:
                raise ExplorerError(
                    f"A Ray worker ran {folder.spec.model_id} as {row['precision']} ({row['engine']}), not "
                    f"{folder.spec.precision} ({folder.spec.engine}) as planned; workers must agree (give --precision fp32)."
                )
            folder.write(shard, row["payload"])
            computed.append(shard)
            report(len(done) + len(computed), len(shards))
    except Exception as error:  # a worker's own error, after Ray's retries
        # Ray's message holds the worker's traceback: its first "SomethingError: ..." line is the original error.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
        failure = (named or lines or [type(error).__name__])[0]
    if failure is not None:
        # Nothing may keep the aborted job's actors alive (a traceback would): they hold the CPUs the next job needs.
        del results, dataset
        _wait_for_idle_cpus(ray)
        raise ExplorerError(
            f"The Ray job stopped: {failure}. Its {len(done) + len(computed)} finished shard(s) of {len(shards)} are "
            f"kept in {folder.folder}; run the same command again to compute the rest."
        )
    return computed


def _wait_for_idle_cpus(ray, timeout_s: float = 60.0) -> None:
    """Wait (bounded) until Ray has released every CPU, so the next job on this Ray can start."""
    import gc
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        gc.collect()
        if ray.available_resources().get("CPU", 0) >= ray.cluster_resources().get("CPU", 0):
            return
        time.sleep(0.5)


def print_progress(what: str) -> Callable[[int, int], None]:
    """A progress callback that prints "what: done/total shards" to stderr."""
    return lambda done, total: print(f"{what}: {done}/{total} shards", file=sys.stderr, flush=True)
