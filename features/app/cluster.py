"""Running per-photo work on a Dask cluster: chunks go out, results come back in input order.

Dask itself is imported only when a command is given ``--scheduler``.  The scheduler and the
workers must be able to import this project (the scheduler unpickles the task graph too:
``make install``, or ``pip install -e .``, on every host) and see the photos and model at the
same paths.
"""
import argparse
import asyncio
import logging
import socket
import struct
import time
from collections import deque

#: Chunks submitted ahead of the one being read, per worker thread: keeps every thread busy,
#: memory bounded.
AHEAD_PER_THREAD = 4
#: Seconds to reach the scheduler, and for it to greet a connection: a scheduler answers at
#: once; a machine that drops the packets leaves only the first to run out.  A refused
#: connection fails at once, where Dask's client retried it for its timeout: a scheduler
#: still starting is one line, to run again.
CONNECT_SECONDS, GREETING_SECONDS = 20, 10
#: Most bytes a scheduler's greeting says it holds (measured: 58); far more is not one.
GREETING_BYTES = 1 << 16
#: Seconds to wait for a first worker: a cluster still starting gets them in a few; a
#: scheduler without any would otherwise keep the run waiting, silent, for ever.
WORKERS_SECONDS = 30
#: Seconds between looks at the cluster's workers while a chunk is awaited: a run whose every
#: worker left waits on its chunk for ever; a look is one small message to the scheduler.
WATCH_SECONDS = 1
#: Seconds for the scheduler to answer such a look: it answers at once unless it went away.
LOOK_SECONDS = 2
#: Addresses named in one line when many servers run other code (a whole cluster after an update).
NAMED = 3
#: Seconds without a heartbeat after which a worker that did not answer is named as stuck:
#: workers send one every 0.5-2 s up to 200 workers (Dask's ``heartbeat_interval``), and an
#: event loop stuck since before the client asked has sent none for CONNECT_SECONDS.
SILENT_SECONDS = CONNECT_SECONDS // 2
#: Dask's loggers with a handler of their own (they do not pass records up to "distributed"),
#: and the event loop's, through which Dask's loop reports a callback that failed (a wait that
#: Ctrl-C broke leaves one, which the client's close then runs).
QUIET_LOGGERS = ("distributed", "distributed.client", "distributed.gc", "tornado.application")
#: What to do about a server that runs other code than the client.
RESTART = "update to the client's code and restart (README, Scaling out on Dask)"
#: What a server with other network files than the client's runs (its answers would differ).
OTHER_NETWORKS = "other networks (the files in features/vision/models) than this client"


class ClusterError(RuntimeError):
    """A cluster that cannot run this project's code; the message says what to install where."""


def scheduler_address(text):
    """``text`` if it reads as a scheduler's TCP address (host and port), else a usage error
    (argparse type): a client given a wrong one fails, then waits 40 s at exit for its own
    cleanup.  Other schemes need settings this tool does not take (``tls://``: certificates)
    or packages it does not install (``ucx://``), and ``inproc://`` is one process's own."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(text)
        _, port = parse_host_port(location)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if scheme != "tcp":
        raise argparse.ArgumentTypeError(f"{scheme}:// is not supported: give the scheduler's tcp:// address")
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not from 1 to 65535")
    return text


def connect(address):
    """A client of the scheduler at ``address`` (``tcp://host:8786``), or ClusterError when
    none answers there (:func:`check_scheduler`) or no worker joins it."""
    from distributed import Client

    check_scheduler(address)
    # Dask's own log lines (a lost scheduler's traceback, its reconnection attempts, a client
    # closed after it) would come beside the one line that says what happened
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    client = Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except TimeoutError:
        client.close()
        raise ClusterError(f"{address}: the scheduler has no workers (none joined in {WORKERS_SECONDS} s)") from None
    try:
        check_code(client, address)
    except BaseException:
        client.close()
        raise
    return client


def running_code():
    """``(fingerprint, networks)``: the hash of this process's Python code
    (:data:`features.CODE_FINGERPRINT`) and of its network files
    (:func:`~features.vision.networks.networks_key`), both of which decide its answers."""
    from features import CODE_FINGERPRINT
    from features.vision.networks import networks_key

    return CODE_FINGERPRINT, networks_key()


def fingerprint_probe():
    """A function that says which code of this project runs where it is called, as
    ``(fingerprint, networks, error)``: :func:`running_code` (a fingerprint of "" and networks
    of None where it is too old to say; None and None where the project cannot be imported),
    and why importing it failed otherwise (a checkout half updated: a SyntaxError), in words,
    which travel whole where the exception would not.  Nested, so that Dask sends it by value,
    not by name: a worker with older code, or without the project, runs it all the same."""
    def fingerprint():  # by value: it can use none of the project's helpers
        try:
            import features
            try:
                from features.app.cluster import running_code
            except ImportError:  # older code, which its fingerprint tells
                return getattr(features, "CODE_FINGERPRINT", ""), None, None
            return (*running_code(), None)
        except ImportError:
            return None, None, None
        except Exception as exc:
            return None, None, f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return fingerprint


def check_code(client, address):
    """ClusterError unless the scheduler and every worker run this client's code and networks.

    A worker imports the project once: one started before an update (a ``git pull``), or on a
    host with another checkout, answers with other code, and nothing else notices.  Workers
    that join later are checked by each task (:func:`checked_task`).
    """
    code, networks = running_code()
    probe = fingerprint_probe()
    found = {"scheduler": answer_in_time(client.run_on_scheduler, probe, address, lambda: "the scheduler"),
             **answer_in_time(client.run, probe, address, lambda: silent_workers(client))}
    for where, (fingerprint, _, error) in found.items():
        server = f"the scheduler at {address}" if where == "scheduler" else f"the worker at {where}"
        if error:
            raise ClusterError(f"{server} cannot import this project's code ({error}): {RESTART}")
        if fingerprint is None:
            raise ClusterError(cannot_import(server))
    if other := [where for where, (fingerprint, _, _) in found.items() if fingerprint != code]:
        raise ClusterError(f"{address}: {servers(other)} {runs(other)} other code than this client: {RESTART}")
    # the scheduler runs no network: only the workers need the client's
    if other := [where for where, (_, theirs, _) in found.items() if where != "scheduler" and theirs != networks]:
        raise ClusterError(f"{address}: {servers(other)} {runs(other)} {OTHER_NETWORKS}: {RESTART}")


def answer_in_time(ask, probe, address, who):
    """``ask(probe)`` (Dask's ``run_on_scheduler`` or ``run``), or ClusterError naming
    ``who()`` when an answer does not come in :data:`CONNECT_SECONDS`: an event loop is stuck,
    and the run waited for it."""
    try:
        return ask(probe, callback_timeout=CONNECT_SECONDS)
    except TimeoutError:
        raise ClusterError(f"{address}: {who()} did not say in {CONNECT_SECONDS} s which code runs there") from None


def silent_workers(client):
    """``the worker at A`` (``the workers at A, B``): those whose last heartbeat the scheduler
    got :data:`SILENT_SECONDS` ago or more (twice the heartbeats' interval on a cluster large
    enough to space them further), by its clock: a stuck event loop sends none.  ``a worker``
    when none is, or the scheduler does not say (this only names them)."""
    from distributed.scheduler import heartbeat_interval

    try:
        now = client.run_on_scheduler(time.time, callback_timeout=LOOK_SECONDS)
        workers = client.sync(client.scheduler.identity, callback_timeout=LOOK_SECONDS)["workers"]
        silence = max(SILENT_SECONDS, 2 * heartbeat_interval(len(workers)))
        silent = [where for where, worker in workers.items() if now - worker["last_seen"] >= silence]
    except Exception:  # a scheduler gone, or an answer of another form: the line says "a worker"
        return "a worker"
    return servers(silent) if silent else "a worker"


def servers(names):
    """``the scheduler``, ``the scheduler and the workers at A, B``, ... (``names``:
    "scheduler" and workers' addresses), at most :data:`NAMED` addresses."""
    workers = [name for name in names if name != "scheduler"]
    parts = ["the scheduler"] if "scheduler" in names else []
    if workers:
        listed = ", ".join(workers[:NAMED]) + (f" and {len(workers) - NAMED} more" if len(workers) > NAMED else "")
        parts.append(f"the worker{'s' * (len(workers) > 1)} at {listed}")
    return " and ".join(parts)


def runs(names):
    """The verb after :func:`servers`: ``runs`` for one, ``run`` for more."""
    return "run" if len(names) > 1 else "runs"


def check_scheduler(address):
    """ClusterError unless a Dask scheduler greets a plain TCP connection at ``address``.

    A scheduler sends its handshake first, framed as Dask's TCP messages are (its length as an
    8-byte count, a few dozen bytes).  Given another server (the dashboard's HTTP port, 8787,
    for 8786), Dask's client hangs when it says nothing and reads what it says as a length
    (a MemoryError for 3 EiB); the scheduler logs the probe as a connection closed before
    its handshake.
    """
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    _, location = parse_address(address)
    try:
        probe = socket.create_connection(parse_host_port(location), timeout=CONNECT_SECONDS)
    except OSError as exc:  # refused, or timed out: a host down or behind a firewall
        raise ClusterError(f"{address}: no Dask scheduler answers ({exc.strerror or 'timed out'})") from None
    with probe:
        head = greeting(probe, address)
    if len(head) < 8 or struct.unpack("Q", head)[0] > GREETING_BYTES:
        raise ClusterError(f"{address}: not a Dask scheduler (it answered something else)")
    try:
        kind = asyncio.run(server_kind(address))
    except Exception as exc:  # a server that greets as Dask's do, then answers nothing it should
        raise ClusterError(f"{address}: not a Dask scheduler (asked what it is: {type(exc).__name__})") from None
    if kind != "Scheduler":  # a worker's or nanny's address, from their logs: Dask's client
        # fails there with a TypeError, then waits 40 s at exit to close itself
        raise ClusterError(f"{address}: a Dask {kind.lower()}, not the scheduler")


async def server_kind(address):
    """What the Dask server at ``address`` says it is: ``Scheduler``, ``Worker``, ``Nanny``."""
    from distributed.core import rpc

    async with rpc(address, timeout=GREETING_SECONDS) as server:
        return (await server.identity())["type"]


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


def cluster_failure(exc, address):
    """A :class:`ClusterError` if ``exc`` says the scheduler at ``address`` went away (its
    connection lost: every future is cancelled), or that it or a worker could not import this
    project's code (Dask's own message is a long deserialization error), else None."""
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    if (isinstance(exc, FutureCancelledError) and exc.reason == "scheduler-connection-lost"
            or isinstance(exc, CommClosedError)):
        return ClusterError(f"{address}: the scheduler went away (connection lost)")
    if isinstance(exc, RuntimeError) and "deserialization of the task graph" in str(exc):
        where = "the scheduler"
    elif isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == __name__.split(".")[0]:
        where = "a worker"
    else:
        return None
    return ClusterError(cannot_import(f"{where} at {address}"))


def cannot_import(where):
    """The message for a scheduler or worker (``where``) without this project's code."""
    return (f"{where} cannot import this project's code: run `make install` (or `pip install "
            "-e .`) in the repository on every host and start dask from its .venv (README, "
            "Scaling out on Dask)")


def result(future, address):
    """The future's result, or :class:`ClusterError` (:func:`cluster_failure`, and
    :func:`check_alone`: every worker left)."""
    alone_since = None
    try:
        while True:
            try:
                return future.result(timeout=WATCH_SECONDS)
            except TimeoutError:
                if future.done():  # the task's own TimeoutError (or its end, just now)
                    return future.result()
                alone_since = check_alone(future.client, address, alone_since)
    except Exception as exc:
        failure = cluster_failure(exc, address)
        if failure is None:
            raise
        raise failure from None


def check_alone(client, address, since):
    """Since when the cluster has had no worker (``since``, the last look's answer, or now;
    None while it has some), or ClusterError once that is :data:`WORKERS_SECONDS` ago: its
    tasks wait for a worker to join, and the run waits with them, silent.

    A look the scheduler does not answer in :data:`LOOK_SECONDS` changes nothing: a
    scheduler that went away cancels the tasks (:func:`cluster_failure` says so; Dask's
    ``scheduler_info`` would wait :data:`CONNECT_SECONDS` for it first), and a busy one is
    asked again.
    """
    try:
        identity = client.sync(client.scheduler.identity, n_workers=0, callback_timeout=LOOK_SECONDS)
    except (OSError, TimeoutError):
        return since
    if identity["n_workers"]:
        return None
    if since is None:
        return time.monotonic()
    if time.monotonic() - since >= WORKERS_SECONDS:
        raise ClusterError(f"{address}: every worker left and none joined in {WORKERS_SECONDS} s")
    return since


def checked_task():
    """A task that runs a function of this project only on a worker whose code is the
    client's (:func:`running_code`): ``task(code, address, payload)`` unpickles ``payload``
    (the function and its arguments) after the check, so that a worker that joined after
    :func:`check_code` with older code or other networks says so, where failing to unpickle
    a function it lacks made it leave the cluster.  Nested, so that Dask sends it by value
    (as :func:`fingerprint_probe`)."""
    def task(code, address, payload):
        import pickle

        import features
        from distributed import get_worker

        if getattr(features, "CODE_FINGERPRINT", "") != code[0]:
            differs = "other code than this client"
        else:  # the same code: these names exist
            from features.app.cluster import OTHER_NETWORKS, running_code

            differs = OTHER_NETWORKS if running_code() != code else None
        if differs:
            from features.app.cluster import ClusterError

            raise ClusterError(f"{address}: the worker at {get_worker().address} runs {differs}: {RESTART}")
        function, args = pickle.loads(payload)
        try:
            return function(*args)
        except RecursionError as exc:  # Dask cannot send its traceback: the task would never end
            reason = str(exc)
        raise RecursionError(reason)  # anew, outside the except: no deep traceback, nor one as its context
    return task


def cluster_threads(client):
    """How many threads the cluster's workers have in all (0 without workers)."""
    return sum(worker["nthreads"] for worker in client.scheduler_info()["workers"].values())


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
    import cloudpickle
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    address = client.scheduler.address
    threads = max(1, cluster_threads(client))
    task, code = checked_task(), running_code()
    pending = deque()
    chunks = iter(chunks)

    def run(chunk):
        return client.submit(task, code, address, cloudpickle.dumps((function, (chunk, *args))), pure=False)

    def refill():
        while len(pending) < AHEAD_PER_THREAD * threads:
            chunk = next(chunks, None)
            if chunk is None:
                return
            pending.append((chunk, run(chunk)))

    refill()
    while pending:
        chunk, future = pending.popleft()
        try:
            yield result(future, address)
        except (KilledWorker, FutureCancelledError):
            results = []
            for item in chunk:  # one at a time, so an innocent photo never shares a dying worker
                try:
                    results.extend(result(run([item]), address))  # not +=: numpy would add a chunk's rows
                except (KilledWorker, FutureCancelledError):
                    results.append(lost(item))
            yield results
        refill()
