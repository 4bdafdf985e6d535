"""Ctrl-C (SIGINT), SIGTERM and SIGHUP in recommend.py and train.py: each stops a run, once,
where Python can stop it, and waits while something is written that must be whole."""
import os
import signal
import sys
import threading
from contextlib import contextmanager


#: The signals that stop a run, and how the tools say so.  SIGHUP: the terminal or the SSH
#: session closed (its run died at once, its Parquet file lost, a temporary file left behind).
STOPS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class Stopped(KeyboardInterrupt):
    """A signal of :data:`STOPS` stopped the run (a KeyboardInterrupt, so that code that tidies
    up after Ctrl-C does so for the others too).

    Attributes
    ----------
    number : int
        The signal's; the exit code is 128 plus it (130, 143, 129).
    """

    def __init__(self, number):
        super().__init__(number)
        self.number = number

    @property
    def code(self):
        return 128 + self.number

    @property
    def word(self):
        """``interrupted``, ``terminated`` or ``hung up``, as the tools say it."""
        return STOPS[self.number]


def as_stopped(interrupt):
    """``interrupt`` as :class:`Stopped`: a plain KeyboardInterrupt (Python's own handler
    before :class:`StopSignals` was set, or one a library raised anew) is Ctrl-C's."""
    return interrupt if isinstance(interrupt, Stopped) else Stopped(signal.SIGINT)


@contextmanager
def quick_stops(tool):
    """While ``tool`` imports its libraries (a second or two, before anything is written), a
    signal of :data:`STOPS` ends the process at once, on one line and with its exit code:
    Ctrl-C printed the traceback of the import it broke.  A signal ignored when the process
    started stays ignored; the handlers are Python's again afterwards."""
    def leave(number, frame):
        try:
            os.write(2, f"{tool}: {STOPS[number]}\n".encode())
        except OSError:  # stderr closed, or its reader gone: the exit still tells
            pass
        os._exit(128 + number)

    previous = {number: signal.signal(number, leave) for number in STOPS
                if signal.getsignal(number) is untouched(number)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def untouched(number):
    """Python's own handler of signal ``number``: the one a tool may replace."""
    return signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL


class StopSignals:
    """The signals of :data:`STOPS` raise :class:`Stopped` in the main thread, once: inside
    :meth:`held` they wait for its end, and after the first stop they are only noted, so that
    what was answered is still written.  A signal ignored when the process started (a
    background job's SIGINT, SIGHUP under nohup) stays ignored.

    Parameters
    ----------
    unsafe : callable, optional
        ``unsafe(frame)`` is true for a frame where an exception raised would be lost (XGBoost
        prints and drops one raised in its callbacks): while such a frame runs, the signal is
        sent again 50 ms later.
    """

    def __init__(self, *, unsafe=None):
        self.unsafe = unsafe
        self.holding, self.pending, self.stopped = False, None, None
        self.pid = os.getpid()
        for number in STOPS:
            if signal.getsignal(number) is untouched(number):
                signal.signal(number, self.arrived)
        self.unraisable_hook, sys.unraisablehook = sys.unraisablehook, self.unraisable

    def unraisable(self, unraisable):
        """Python's report of an exception it had to drop (one raised in a ``__del__``, such
        as a Dask future's): a stop dropped so is not printed as a traceback beside the tool's
        one line, since :meth:`check` stops the run where it can; anything else is reported as
        before."""
        if not isinstance(unraisable.exc_value, Stopped):
            self.unraisable_hook(unraisable)

    def arrived(self, number, frame):
        if os.getpid() != self.pid:  # a worker forked a moment ago, before its own handlers:
            signal.signal(number, signal.SIG_DFL)  # it ends as the signal ends a process (a
            os.kill(os.getpid(), number)  # Stopped raised there printed multiprocessing's traceback)
            return
        if self.holding or self.stopped is not None:
            self.pending = self.pending or number
        elif self.unsafe is not None and any(map(self.unsafe, callers(frame))):
            threading.Timer(0.05, os.kill, (os.getpid(), number)).start()
        else:
            self.stop(number)

    def stop(self, number):
        self.stopped = number
        raise Stopped(number)

    def hold(self):
        """From now on a signal is only noted (:attr:`pending`): what follows must finish.  A
        run already stopped stops here instead (:meth:`check`)."""
        self.check()
        self.holding = True

    def check(self):
        """Stop here if the run was stopped already: its stop was lost on the way (Python
        drops an exception raised in a ``__del__``, such as a Dask future's), and what
        follows must not run."""
        if self.stopped is not None:
            raise Stopped(self.stopped)

    @contextmanager
    def held(self):
        """Signals wait while this runs; one that came stops the run at its end."""
        holding, self.holding = self.holding, True
        try:
            yield
        finally:
            self.holding = holding
        if self.pending is not None and self.stopped is None and not holding:
            self.stop(self.pending)


def callers(frame):
    """``frame`` and the frames that called it."""
    while frame is not None:
        yield frame
        frame = frame.f_back
