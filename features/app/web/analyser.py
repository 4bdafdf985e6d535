"""The server's worker processes, and each request's photos queued to them a few at a time.

The workers are forked once and shared by every request; a worker that dies on a photo is
replaced, and that photo is tried again alone (:meth:`Analyser.outcome`).
"""
import asyncio
import functools
import multiprocessing
import os
import shutil
import sys
import threading
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from features.app.analysis import (AnalysisSettings, analyse_chunk, decision_thresholds, error_record, frozen_catalog,
                                   lost_record, preload)
from features.app.previews import preview_jpeg
from features.app.workers import server_worker
from features.model.model_io import ModelError, check_model
from features.app.web.uploads import display_name, saved, upload_folder

#: Option sets whose thresholds a server keeps (:meth:`Analyser.thresholds`): clients may send
#: a new ``precision`` with every request.
KEPT_DECISIONS = 32
#: Photos of one request in the workers' queue at once, per worker: a request of 200 photos
#: held another's one photo until all 200 were done; now it waits behind a few.  Two per
#: worker keep the workers busy while the next is queued.
AHEAD_PER_WORKER = 2
#: How the error of a photo the server never looked at begins (the page offers to send it again).
NOT_ANALYSED = "not analysed"
#: Why a photo's work was cut short by the server's stop (Ctrl-C, SIGTERM).
SERVER_STOPPING = "the server is stopping; send it again once it is back"
#: A queued photo's answer when the server stops before it.
STOPPING = f"{NOT_ANALYSED}: {SERVER_STOPPING}"


def unanalysed(record):
    """Whether ``record`` is of a photo never looked at (the server stopping, a model the
    workers cannot load, the page's Stop): nothing was wrong with the photo."""
    return (record["error"] or "").startswith(NOT_ANALYSED)


class Analyser:
    """The worker processes, and the one place that calls the analysis code.

    The workers are forked once, after dlib's models are loaded, exactly as recommend.py
    forks its own; each then loads the model once (done here, at start, so the first
    request is not the slow one), and gets the catalog read at start with every request.
    """

    def __init__(self, settings, *, model_sha256, catalog):
        self.settings, self.model_sha256, self.catalog = settings, model_sha256, frozen_catalog(catalog)
        self.stopping = False
        self.pool = self._start()
        self.alone, self.alone_turn, self.alone_asked = None, asyncio.Lock(), 0  # :meth:`again_alone`'s
        self.decided = {}  # :meth:`thresholds`' answers
        self.broken = weakref.WeakSet()  # the pools whose worker's death the log said
        self.unusable = None  # why the workers cannot analyse (:meth:`_watch`, :meth:`check_usable`)
        self.said = threading.Lock()  # _watch runs in each pool's thread: each thing said once

    def _start(self):
        preload()
        pool = self._fork(self.settings.workers)
        warm = [pool.submit(analyse_chunk, [], self.options()) for _ in range(self.settings.workers)]
        for future in warm:
            future.result()
        return pool

    @staticmethod
    def _fork(workers):
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=server_worker, initargs=(os.getpid(),))

    async def again_alone(self, function, *args):
        """``function(*args)`` for a photo a worker may have died on (:func:`started`), run
        again alone, one photo at a time, in a pool of one worker (stopped once no photo waits
        for it): BrokenProcessPool only for a photo that kills that worker too."""
        self.alone_asked += 1
        try:
            async with self.alone_turn:
                if self.stopping:  # cancelled, as a queued photo is (Batch.record answers it)
                    return await asyncio.wrap_future(cancelled())
                if self.alone is None:
                    self.alone = self._fork(1)
                try:
                    return await asyncio.wrap_future(self._submit(self.alone, function, *args))
                except BrokenProcessPool:
                    self.alone.shutdown(wait=False, cancel_futures=True)
                    self.alone = None
                    raise
        finally:
            self.alone_asked -= 1
            if not self.alone_asked and self.alone is not None:  # its worker holds a model: ~125 MB
                self.alone.shutdown(wait=False)
                self.alone = None

    def options(self, **overrides):
        """A request's :class:`~features.app.analysis.AnalysisSettings`: this server's model
        (the one checked at start: a pool started again after a crash refuses another) and
        catalog with the request's options (as recommend.py's flags)."""
        return AnalysisSettings(model=self.settings.model.resolve(), catalog=self.catalog,
                                model_sha256=self.model_sha256, **overrides)

    def _queue(self, function, *args):
        """``function(*args)`` queued to the workers; a pool broken by a worker that died is
        replaced, so that one crash does not end the server.  Once the server is stopping, a
        future cancelled already (:meth:`stop`)."""
        if self.stopping:
            return cancelled()
        try:
            return self._submit(self.pool, function, *args)
        except BrokenProcessPool:  # a worker died while no photo was queued: said here
            self._said_death(self.pool)
            self.pool.shutdown(wait=False, cancel_futures=True)
            # not warmed up as at start: waiting for the workers' models held the event loop,
            # every request's, for a second; the photos queued wait for them in the workers
            self.pool = self._fork(self.settings.workers)
            return self._submit(self.pool, function, *args)

    def _submit(self, pool, function, *args):
        """``pool.submit(function, *args)``, watched (:meth:`_watch`)."""
        future = pool.submit(function, *args)
        future.add_done_callback(functools.partial(self._watch, pool))
        return future

    def _watch(self, pool, future):
        """Say in the log, as soon as a future finds it, a worker's death (once per pool: every
        photo was still answered, and nothing told the operator) or a model the workers refuse
        (once: workers started again after a death load the model file, replaced since the
        start), which is then :attr:`unusable`'s reason (every request logged a traceback of
        100 lines for its 500, and /api/health said "ok")."""
        if self.stopping or future.cancelled():
            return
        if isinstance(future.exception(), BrokenProcessPool):
            self._said_death(pool)
            return
        with self.said:
            if isinstance(future.exception(), ModelError) and self.unusable is None:
                self.unusable = (f"{future.exception()}: the workers started again cannot load it; restart "
                                 "serve.py to serve the new model, or put back the one it started with")
                print(f"serve.py: error: {self.unusable}", file=sys.stderr, flush=True)

    def check_usable(self):
        """:class:`Unusable` while the workers cannot load the model (:meth:`_watch`); the
        model file is checked again each time then (13 ms for the model in artifacts/), so
        the one the server started with, put back, is served again without a restart."""
        if self.unusable is None:
            return
        try:
            back = check_model(self.settings.model)["model_sha256"] == self.model_sha256
        except ModelError:
            back = False
        if not back:
            raise Unusable(self.unusable)
        with self.said:
            self.unusable = None
        print("serve.py: the model it started with is back: analysing again", file=sys.stderr, flush=True)

    def _said_death(self, pool):
        with self.said:
            if pool in self.broken:
                return
            self.broken.add(pool)
            print("serve.py: warning: a worker process died (killed for its memory, or crashed on a photo); its "
                  "photos are queued again, the one it was on alone (answered as lost if it kills that worker "
                  "too)", file=sys.stderr, flush=True)

    def submit(self, path, options, *, annotate_to=None):
        """Queue one photo; a future of its full record (with each face's headline)."""
        return self._queue(analyse_marked, path, options, annotate_to)

    async def outcome(self, future, function, path, *args, requeued=None):
        """The result of ``future``, that of ``function(path, *args)`` queued.  When a worker
        dies, its pool's photos fail: one whose work had started (:func:`started`) may be the
        one it died on, and is run again alone (:meth:`again_alone`), BrokenProcessPool only
        when it kills that worker too; one only queued is queued again, and ``requeued`` told
        of its new future (to cancel it).  (Before, every photo of the pool was answered "the
        worker died while analysing this photo".)"""
        while True:  # each new break is another photo's, which goes alone
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                if started(path).exists():
                    return await self.again_alone(function, path, *args)
                future = self._queue(function, path, *args)
                if requeued is not None:
                    requeued(future)

    async def preview(self, path):
        """The photo's :func:`~features.app.previews.preview_jpeg`, from a worker: a decoder
        that crashes on a photo takes a worker, not the server."""
        return await self.outcome(self._queue(preview_marked, path), preview_marked, path)

    def thresholds(self, options):
        """A future of :func:`~features.app.analysis.decision_thresholds` for ``options``, asked of
        a worker (this process does not load the model: it forks the workers) once per option
        set, the latest :data:`KEPT_DECISIONS` kept: the model, checked at start, is fixed."""
        key = (options.min_probability, options.precision)
        asked = self.decided.pop(key, None)
        if asked is None or (asked.done() and (asked.cancelled() or asked.exception())):
            asked = self._queue(decision_thresholds, options)
        self.decided[key] = asked  # the latest last
        while len(self.decided) > KEPT_DECISIONS:
            self.decided.pop(next(iter(self.decided)))
        return asked

    def stop(self):
        """Cancel the photos still queued, at once (their requests are answered, each such
        photo "not analysed: the server is stopping"); the ones being analysed finish, and so
        do those the pool has handed to its workers' queue (one more than there are workers).  At a
        signal: uvicorn waits for every open request to end before it stops, so a request of
        200 queued photos held a stopping server as long as they took."""
        self.stopping = True
        for pool in filter(None, (self.pool, self.alone)):
            pool.shutdown(wait=False, cancel_futures=True)

    def kill(self):
        """:meth:`stop`, and end the workers now, with the photos they are analysing (a second
        Ctrl-C: a photo that hangs must not hold the server, which waits for its workers)."""
        self.stop()
        for worker in multiprocessing.active_children():  # the server's children are its workers
            worker.kill()

    def close(self):
        """Stop the workers: queued photos are cancelled, the ones being analysed finish."""
        self.stopping = True
        for pool in filter(None, (self.pool, self.alone)):
            pool.shutdown(wait=True, cancel_futures=True)


def analyse_marked(path, options, annotate_to):
    """In a worker: one photo's :func:`~features.app.analysis.analyse_chunk`, with a mark left
    beside it first (:func:`started`): when a worker dies, the photos marked are the ones it
    may have died on; the others were only queued."""
    started(path).touch()
    return analyse_chunk([(path, annotate_to)], options)


def preview_marked(path):
    """In a worker: :func:`~features.app.previews.preview_jpeg`, marked as
    :func:`analyse_marked` marks a photo."""
    started(path).touch()
    return preview_jpeg(path)


def started(path):
    """The mark :func:`analyse_marked` and :func:`preview_marked` leave beside a photo whose
    work started."""
    return path.with_name(f"{path.name}.started")


class Unusable(Exception):
    """The workers cannot analyse any more (:attr:`Analyser.unusable` says why): a request is
    refused (503)."""


def cancelled():
    """A future cancelled already: a photo's once the server is stopping."""
    future = Future()
    future.cancel()
    return future


class Batch:
    """One request's photos in a private temporary folder, queued to the workers a few at a
    time (:data:`AHEAD_PER_WORKER`), so that requests take turns.

    The files are named by their number only, so nothing in a request picks a path;
    :meth:`close` cancels what has not started and removes the folder.
    """

    def __init__(self, analyser, photos, options, *, annotate=False):
        self.folder = upload_folder()
        self.names = [display_name(p.filename, n) for n, p in enumerate(photos)]
        self.analyser, self.options, self.annotate = analyser, options, annotate
        self.photos, self.futures, self.jobs, self.asked = photos, [], [], None
        self.ahead, self.running, self.closed = AHEAD_PER_WORKER * analyser.settings.workers, 0, False

    async def queue(self):
        """Ask a worker for the thresholds of the batch's options (:meth:`headers`), then write
        each upload to the folder, queueing the first photos as they are written."""
        self.asked = self.analyser.thresholds(self.options)  # first: a stream need not wait for the photos
        for number, upload in enumerate(self.photos):
            path = await saved(upload, self.folder / str(number))
            self.jobs.append((path, self.folder / f"{number}-annotated.jpg" if self.annotate else None))
            self.refill()
        return self

    def refill(self, *, at_least=0):
        """Queue the next photos while fewer than :attr:`ahead` of this batch's are queued or
        being analysed (and at least ``at_least`` photos in all): each one's end queues the
        next, whichever finishes first, so a slow photo does not leave the other workers idle."""
        loop = asyncio.get_running_loop()
        while not self.closed and len(self.futures) < len(self.jobs) and (
                self.running < self.ahead or len(self.futures) < at_least):
            path, annotate_to = self.jobs[len(self.futures)]
            future = self.analyser.submit(path, self.options, annotate_to=annotate_to)
            self.futures.append(future)
            self.running += 1
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self.finished))

    def finished(self):
        self.running -= 1
        self.refill()

    async def records(self):
        """Yield each photo's full record in upload order, ``image`` being its uploaded name."""
        for number, name in enumerate(self.names):
            self.refill(at_least=number + 1)  # its turn may come before the last one's end is counted
            yield {**await self.record(number), "image": name}

    async def record(self, number):
        """Photo ``number``'s record, through a worker's death (:meth:`Analyser.outcome`),
        answered as lost when it kills the worker it is given alone too.  One the server's stop
        cancelled (:meth:`Analyser.stop`) is not analysed."""
        (path, annotate_to), name = self.jobs[number], self.names[number]

        def requeued(future):  # kept where close() cancels it
            self.futures[number] = future

        try:
            return (await self.analyser.outcome(self.futures[number], analyse_marked, path, self.options,
                                                annotate_to, requeued=requeued))[0]
        except BrokenProcessPool:
            return lost_record(name)
        except ModelError:  # a model the workers cannot load: Analyser.unusable says why
            return error_record(name, f"{NOT_ANALYSED}: {self.analyser.unusable}")
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # this request's own task: not the photo's
                raise
            return error_record(name, STOPPING)

    async def headers(self):
        """The response headers that say which thresholds decide the photos (``X-Thresholds``,
        as the model decides with the request's options) and what to know of a label's
        (``X-Threshold-Warnings``: it never reaches the request's ``precision`` out of fold, or
        the precision decides it for far more faces than have it)."""
        try:
            asked = self.asked
            while True:  # each break is a photo's: asked again of the new pool
                try:
                    thresholds, notes = await asyncio.wrap_future(asked)
                    break
                except BrokenProcessPool:
                    asked = self.analyser.thresholds(self.options)
                except ModelError:
                    raise Unusable(self.analyser.unusable) from None
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            return {}  # the server is stopping: no photo will be decided
        headers = {"X-Thresholds": ",".join(f"{label}={threshold!r}" for label, threshold in thresholds.items())}
        if notes:
            # not HTTP's Warning, which RFC 9111 retired and proxies may drop
            headers["X-Threshold-Warnings"] = "; ".join(notes)
        return headers

    def close(self):
        self.closed = True
        for future in self.futures:
            future.cancel()
        shutil.rmtree(self.folder, ignore_errors=True)


async def open_batch(analyser, photos, options, *, annotate=False):
    """The request's :class:`Batch`, queued; nothing is left behind if queueing fails.
    :class:`Unusable` when the workers cannot analyse any more."""
    analyser.check_usable()
    batch = Batch(analyser, photos, options, annotate=annotate)
    try:
        return await batch.queue()
    except BaseException:
        batch.close()
        raise
