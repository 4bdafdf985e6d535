"""Running per-photo work on a Dask cluster: chunks go out, results come back in input order.

Imported only when a command is given ``--scheduler``.  Workers need this repository on their
``PYTHONPATH`` and the photos and model at the same paths (a shared file system).
"""
from collections import deque

from distributed import Client
from distributed.client import FutureCancelledError
from distributed.scheduler import KilledWorker

#: Chunks submitted ahead of the one being read: keeps every worker busy, memory bounded.
AHEAD_PER_WORKER = 4


def connect(address):
    """A client of the scheduler at ``address`` (``tcp://host:8786``), or OSError."""
    return Client(address, timeout="20s", set_as_default=True)


def map_in_order(client, function, chunks, *args, lost=None):
    """Yield ``function(chunk, *args)`` for each chunk, in order, computed on the cluster.

    A chunk whose worker dies is rerun elsewhere by the scheduler (up to its
    ``distributed.scheduler.allowed-failures`` times).  If it still kills workers, its items
    are run one at a time, and an item that kills its worker again becomes ``lost(item)``:
    one poisonous photo costs only its own answer.

    Yields
    ------
    list
        The results of each chunk's items.
    """
    workers = max(1, len(client.scheduler_info()["workers"]))
    pending = deque()
    chunks = iter(chunks)

    def run(chunk):
        return client.submit(function, chunk, *args, pure=False)

    def refill():
        while len(pending) < AHEAD_PER_WORKER * workers:
            chunk = next(chunks, None)
            if chunk is None:
                return
            pending.append((chunk, run(chunk)))

    refill()
    while pending:
        chunk, future = pending.popleft()
        try:
            yield future.result()
        except (KilledWorker, FutureCancelledError):
            results = []
            for item in chunk:  # one at a time, so an innocent photo never shares a dying worker
                try:
                    results += run([item]).result()
                except (KilledWorker, FutureCancelledError):
                    results.append(lost(item))
            yield results
        refill()
