"""Ctrl-C, SIGTERM and SIGHUP as recommend.py and train.py take them (features/stops.py), with real
signals sent to this process."""
import os
import signal
import sys
import time

import pytest

from features.stops import Stopped, StopSignals, as_stopped, quick_stops


@pytest.fixture
def signals():
    """A StopSignals on this process, with pytest's own handlers put back after the test."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    hook = sys.unraisablehook
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal (nohup ignores it)
    try:
        yield StopSignals
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        sys.unraisablehook = hook


def signalled(number):
    """Send ``number`` to this process and give Python time to run its handler."""
    os.kill(os.getpid(), number)
    time.sleep(0.05)


def test_a_signal_stops_a_run_once(signals):
    """A signal while a record goes into the Parquet file waits for it, and stops the run
    once: a second one (Ctrl-C pressed again) is only noted, so that what was answered is
    still written and the file finished."""
    stops, steps = signals(), []
    with pytest.raises(Stopped) as stop:
        with stops.held():
            signalled(signal.SIGTERM)
            steps.append("record written")
    assert (stop.value.number, stop.value.code, stop.value.word) == (signal.SIGTERM, 143, "terminated")
    assert steps == ["record written"]
    signalled(signal.SIGINT)
    with stops.held():
        steps.append("file finished")
    assert steps == ["record written", "file finished"]


def test_sighup_stops_a_run_as_sigterm_does(signals):
    """The terminal or SSH session closing sends SIGHUP, which killed recommend.py at once."""
    stops = signals()
    with pytest.raises(Stopped) as stop:
        signalled(signal.SIGHUP)
    assert (stop.value.code, stop.value.word) == (129, "hung up") and stops.stopped == signal.SIGHUP


def test_a_signal_after_hold_is_only_noted(signals):
    """train.py holds from the moment the model starts to move in: the run ends as it does,
    and says which signal came."""
    stops = signals()
    stops.hold()
    signalled(signal.SIGINT)
    signalled(signal.SIGTERM)
    assert stops.pending == signal.SIGINT


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # the dropped stop is not reported
def test_a_run_whose_stop_was_lost_stops_at_hold(signals):
    """A stop dropped on its way (Python prints and drops an exception raised in a
    ``__del__``) leaves later signals only noted; train.py must then not go on to replace
    the model: :meth:`hold` stops the run."""
    stops = signals()

    class Finalised:
        def __del__(self):
            signalled(signal.SIGINT)  # Stopped, raised in here, is printed and dropped

    Finalised()
    signalled(signal.SIGTERM)  # only noted: the run counts as stopped
    with pytest.raises(Stopped) as stop:
        stops.hold()
    assert stop.value.number == signal.SIGINT and not stops.holding


def test_a_run_whose_stop_was_lost_stops_at_the_next_check(signals, capfd):
    """recommend.py checks before each record: a stop dropped in a Dask future's ``__del__``
    let the run answer every photo and exit 0; then Python's report of the dropped stop (a
    traceback, seen once in a CI run's Ctrl-C test) stood beside the one line."""
    class Finalised:
        def __del__(self):
            signalled(signal.SIGINT)

    with pytest.MonkeyPatch.context() as patch:  # Python's own report, not pytest's (a warning)
        patch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
        stops = signals()
        stops.check()  # not stopped: goes on
        Finalised()
    with pytest.raises(Stopped) as stop:
        stops.check()
    assert stop.value.code == 130
    assert capfd.readouterr().err == ""


def test_held_inside_hold_keeps_holding(signals):
    stops = signals()
    stops.hold()
    with stops.held():
        pass
    signalled(signal.SIGTERM)
    assert stops.holding and stops.pending == signal.SIGTERM


def test_a_signal_in_an_unsafe_frame_comes_again_after_it(signals):
    """Where an exception would be lost (XGBoost's callbacks), the stop comes once that frame
    has returned."""
    signals(unsafe=lambda frame: frame.f_code.co_name == "callback")
    steps = []

    def callback():
        signalled(signal.SIGINT)
        steps.append("callback returned")

    with pytest.raises(Stopped) as stop:
        callback()
        time.sleep(1)
        steps.append("not stopped")
    assert steps == ["callback returned"] and stop.value.code == 130


def test_an_ignored_signal_stays_ignored(signals):
    """A background job's SIGINT is ignored from the start: Ctrl-C is not its to take."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signals()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_plain_keyboard_interrupt_is_ctrl_c():
    stop = as_stopped(KeyboardInterrupt())
    assert (stop.number, stop.code, stop.word) == (signal.SIGINT, 130, "interrupted")


def test_quick_stops_leave_ignored_signals_and_hand_back_pythons(signals):
    """While a tool loads its libraries (train.py's test sends the signal): a signal ignored
    at the start (SIGHUP under nohup) stays ignored, and Python's handlers come back, for
    :class:`StopSignals` to replace."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with quick_stops("tool"):
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_worker_forked_with_the_handlers_ends_as_a_process_does(signals, number):
    """A worker forked from a run has the run's handlers until its own are set: a pool torn
    down at that moment (a dead worker's pool sends the others SIGTERM) made one raise
    :class:`Stopped` in multiprocessing's start-up and print "Process ForkProcess-7:" with a
    traceback among recommend.py's one-line answers.  Now it ends as the signal ends a
    process: quietly, by the signal."""
    signals()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the worker, before anything of its own: the signal arrives
        os.close(read)
        os.dup2(write, 2)
        try:
            os.kill(os.getpid(), number)
            time.sleep(0.05)
            os.write(2, b"survived the signal")
        except BaseException as exc:
            os.write(2, f"raised {exc!r}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as stderr:
        said = stderr.read()
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == number and said == ""
