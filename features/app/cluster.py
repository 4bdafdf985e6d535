"""Running per-photo work on a Dask cluster: chunks go out, results come back in input order.

Dask itself is imported only when a command is given ``--scheduler``.  The scheduler and the
workers must be able to import this project (the scheduler unpickles the task graph too:
``make install``, or ``pip install -e .``, on every host) and see the photos and model at the
same paths.
"""
import argparse
import socket
import struct
from collections import deque

#: Chunks submitted ahead of the one being read: keeps every worker busy, memory bounded.
AHEAD_PER_WORKER = 4
#: Seconds to reach the scheduler, and for it to greet a connection: a scheduler answers at
#: once; a machine that drops the packets leaves only the first to run out.  A refused
#: connection fails at once, where Dask's client retried it for its timeout: a scheduler
#: still starting is one line, to run again.
CONNECT_SECONDS, GREETING_SECONDS = 20, 10
#: Most bytes a scheduler's greeting says it holds (measured: 58); far more is not one.
GREETING_BYTES = 1 << 16


class ClusterError(RuntimeError):
    """A cluster that cannot run this project's code; the message says what to install where."""


def scheduler_address(text):
    """``text`` if it reads as a scheduler's address (scheme, host and port), else a usage
    error (argparse type): a client given a wrong one fails, then waits 40 s at exit for its
    own cleanup."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(text)
        get_backend(scheme)
        parse_host_port(location)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def connect(address):
    """A client of the scheduler at ``address`` (``tcp://host:8786``), or ClusterError when
    none answers there (:func:`check_scheduler`)."""
    from distributed import Client

    check_scheduler(address)
    return Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)


def check_scheduler(address):
    """ClusterError unless a Dask scheduler greets a plain TCP connection at ``address``.

    A scheduler sends its handshake first, framed as Dask's TCP messages are (its length as an
    8-byte count, a few dozen bytes).  Given another server (the dashboard's HTTP port, 8787,
    for 8786), Dask's client hangs when it says nothing and reads what it says as a length
    (a MemoryError for 3 EiB); the scheduler logs the probe as a connection closed before
    its handshake.  Only ``tcp://`` is probed: other schemes are left to Dask.
    """
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    scheme, location = parse_address(address)
    if scheme != "tcp":
        return
    try:
        probe = socket.create_connection(parse_host_port(location), timeout=CONNECT_SECONDS)
    except OSError as exc:  # refused, or timed out: a host down or behind a firewall
        raise ClusterError(f"{address}: no Dask scheduler answers ({exc.strerror or 'timed out'})") from None
    with probe:
        head = greeting(probe, address)
    if len(head) < 8 or struct.unpack("Q", head)[0] > GREETING_BYTES:
        raise ClusterError(f"{address}: not a Dask scheduler (it answered something else)")


def greeting(probe, address):
    """The first 8 bytes a connected server sends (fewer if it closes first)."""
    probe.settimeout(GREETING_SECONDS)
    head = b""
    try:
        while len(head) < 8 and (part := probe.recv(8 - len(head))):
            head += part
    except TimeoutError:
        raise ClusterError(f"{address}: not a Dask scheduler (it said nothing in {GREETING_SECONDS} s)") from None
    except OSError as exc:
        raise ClusterError(f"{address}: no Dask scheduler answers ({exc.strerror or exc})") from None
    return head


def import_failure(exc, address):
    """A :class:`ClusterError` if ``exc`` says the scheduler or a worker at ``address`` could
    not import this project's code (Dask's own message is a long deserialization error), else
    None."""
    if isinstance(exc, RuntimeError) and "deserialization of the task graph" in str(exc):
        where = "the scheduler"
    elif isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == __name__.split(".")[0]:
        where = "a worker"
    else:
        return None
    return ClusterError(f"{where} at {address} cannot import this project's code: run `make install` "
                        "(or `pip install -e .`) in the repository on every host and start dask from "
                        "its .venv (README, Scaling out on Dask)")


def result(future):
    """The future's result, or :class:`ClusterError` when the cluster cannot import the project."""
    try:
        return future.result()
    except (RuntimeError, ModuleNotFoundError) as exc:
        failure = import_failure(exc, future.client.scheduler.address)
        if failure is None:
            raise
        raise failure from None


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
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

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
            yield result(future)
        except (KilledWorker, FutureCancelledError):
            results = []
            for item in chunk:  # one at a time, so an innocent photo never shares a dying worker
                try:
                    results += result(run([item]))
                except (KilledWorker, FutureCancelledError):
                    results.append(lost(item))
            yield results
        refill()
