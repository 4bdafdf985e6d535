"""Worker processes of recommend.py, serve.py and train.py: how many, and how they end with
the process that forked them."""
import ctypes
import os
import signal
import sys

#: Worker processes by default: one per CPU this process may run on (each analyses one photo
#: at a time, on one thread), not the machine's count: a container pinned to some CPUs
#: (a cpuset) sees only those.
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
#: Most worker processes a command starts: past one per CPU they only wait for the CPUs, and
#: each holds its own models (about 125 MB once warm, measured under serve.py), so a slip
#: such as ``--workers 1000`` would fill the memory before the first photo.  (A Dask
#: cluster's workers are its own: ``recommend.py --scheduler`` is not bound.)
MOST_WORKERS = 4 * CPUS


def check_workers(number):
    """ValueError, in words, for a number of workers outside 1 to :data:`MOST_WORKERS`."""
    if not 1 <= number <= MOST_WORKERS:
        raise ValueError(f"{number}: must be from 1 to {MOST_WORKERS}" + (
            " (4 per CPU: more only wait for the CPUs, and take memory)" if number > MOST_WORKERS else ""))


def end_with_parent(parent):
    """In a worker process forked from ``parent`` (its pid): stop at SIGTERM, SIGINT and
    SIGHUP as a process does, not by the handlers it inherited (one the parent ignores stays
    ignored: under nohup a hang-up killed the workers), and end when the parent ends, however
    it ends: a parent that is killed cannot tell its workers, so the kernel does
    (PR_SET_PDEATHSIG, Linux), or this, when it ended before the worker asked the kernel."""
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, signal.SIG_DFL)
    die_with(parent)


def die_with(parent):
    """End this worker when ``parent`` (its pid) ends, however it ends (see
    :func:`end_with_parent`; :func:`train_worker`: killed outright, train.py left its joblib
    workers holding about 400 MB each, for good)."""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def train_worker(parent):
    """In train.py's joblib worker: :func:`die_with`, and deaf to SIGHUP, which a closing
    terminal sends the whole process group: killed by it, the workers' deaths raced train.py's
    own handler (a CI run's hang-up ended with exit 1 where 129 was due).  They end with
    train.py."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    die_with(parent)


def server_worker(parent):
    """In a web server's worker: :func:`end_with_parent`, and deaf to Ctrl-C and SIGTERM, which
    a terminal or systemd sends the whole process group: the server stops its workers once
    the photos being analysed are done (killed by the signal mid-photo, they answered every
    request's photos "the worker died")."""
    end_with_parent(parent)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)
