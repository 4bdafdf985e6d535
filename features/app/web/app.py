"""The web app: a page and an HTTP API over the same per-photo analysis as recommend.py.

:func:`create_app` checks the model and catalog, forks the worker processes once (as
recommend.py does) and returns the FastAPI app; every request's photos are queued to those
workers, one task per photo, so concurrent requests share them and none is dropped.
"""
import asyncio
import functools
import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import unicodedata
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Body, Depends, FastAPI, File, HTTPException, Query, Request, UploadFile, params
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from features.labels import TYPE_VALUES
from features.numbers import fixed
from features.products.recommendations import PER_CATEGORY, load_catalog, profile
from features.app.analysis import (AnalysisSettings, analyse_chunk, app_card, check_card_is_model, check_detection,
                                   check_precision, chosen_thresholds, error_record, frozen_catalog, lost_record,
                                   parse_min_probability, preload)
from features.app.previews import PREVIEW_SIDE, preview_jpeg
from features.app.workers import server_worker
from features.app.records import csv_text, printable, public
from features.app.web.schema import Account, Record, Refusal, Summary, checked_records

STATIC = Path(__file__).resolve().parent / "static"
#: Swagger UI 5 (which reads FastAPI's OpenAPI 3.1; swagger-ui-bundle's 4.15 showed "Unable to
#: render this definition") from a Python package, not a CDN: the docs work offline too.
SWAGGER_UI = Path(importlib.util.find_spec("fastapi_offline").submodule_search_locations[0]) / "static"
KB, MB = 1 << 10, 1 << 20
# multipart headers around one file part are a few hundred bytes; this is generous
PART_OVERHEAD = 64 * KB
NOT_RECORDS = "records: expected the records of /api/analyze"
#: What each error answer of the routes that take a body means, for the API docs (FastAPI
#: documented every 422 as its list of errors, and no other error at all).
REFUSALS = {400: "a malformed body: a form cut short or not one, JSON this server does not read, "
                 "a text field over its limit",
            408: "the body stopped arriving",
            413: "over a limit: photos per request, bytes per photo, bytes of records",
            415: "a body of another media type than the route takes",
            422: "a wrong option or field, or records of another shape"}
#: /api/annotate's own.
ANNOTATE_REFUSALS = {422: "a wrong option or field, more than one photo, or a photo that cannot be read",
                     500: "the server cannot write the annotated copy (a full disk)",
                     503: "the server is stopping: try again after Retry-After seconds"}
#: /api/preview's own.
PREVIEW_REFUSALS = {422: "a field that is not the photo's, more than one photo, or a photo that cannot be read",
                    503: ANNOTATE_REFUSALS[503]}
#: format=jsonl's answer, beside the JSON.
JSON_LINES = {"content": {"application/x-ndjson": {}}}
#: A form's text fields, which no route reads (each is named in a 422), are kept in memory
#: as they arrive: at Starlette's defaults, 1,000 of 1 MB, a request took the server from
#: 164 MB to 1.1 GB before its 422 (the API audit of 2026-12-06).
TEXT_FIELDS, TEXT_FIELD_BYTES = 64, 64 * KB
#: The header of an answer given before any of the body was read: the connection cannot be used
#: again.  A 413 found as the body streams keeps it, and the rest of the body is read and
#: dropped (not spooled): closed with that rest unread, the connection was reset, and curl lost
#: the answer (exit 55, where it printed the 413; httpx read it either way).
CLOSE = {"Connection": "close"}
#: FastAPI's 400 for a JSON body it could not read, whatever the reason (:func:`unread_json`).
FASTAPI_UNREAD_BODY = "There was an error parsing the body"
#: The largest body of /api/csv and /api/summary: the page sends the records of a whole drop,
#: which may be many requests' photos, not one's (a record is 1-3 KB: some 25,000 photos).  Its
#: JSON is read on the event loop, about 0.03 s and 8 MB of memory per MB sent.
MAX_RECORDS_BYTES = 64 * MB
#: The routes that take records (JSON), not photos.
RECORDS_ROUTES = ("/api/csv", "/api/summary")
#: The routes that take one photo, and where several go instead.  A second photo is refused as
#: its part begins: counted once the form was read, a request of 200 photos of 20 MB (4 GB)
#: was taken in whole, to disk, to be refused.
ONE_PHOTO_ROUTES = {"/api/annotate": "; /api/analyze takes several", "/api/preview": ""}
BROWSER_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}
#: What an upload's name loses (Unicode categories): control and format characters, lone
#: surrogates, and line and paragraph separators (a line break to whoever reads the name).
#: Characters unassigned in this Python's Unicode stay: they are newer emoji, mostly.
UNSHOWN = ("Cc", "Cf", "Cs", "Zl", "Zp")
#: The start of a request's upload folder's name, then the server's pid (:func:`remove_stale_uploads`).
UPLOADS = "img2rec-web-"
#: Option sets whose thresholds a server keeps (:meth:`Analyser.thresholds`): clients may send
#: a new ``precision`` with every request.
KEPT_DECISIONS = 32
#: Photos of one request in the workers' queue at once, per worker: a request of 200 photos
#: held another's one photo until all 200 were done; now it waits behind a few.  Two per
#: worker keep the workers busy while the next is queued.
AHEAD_PER_WORKER = 2
#: Why a photo's work was cut short by the server's stop (Ctrl-C, SIGTERM).
SERVER_STOPPING = "the server is stopping; send it again once it is back"
#: A queued photo's answer when the server stops before it.
STOPPING = f"not analysed: {SERVER_STOPPING}"
#: The header of a picture's 503 at the server's stop: a restart takes some seconds.
RETRY_LATER = {"Retry-After": "10"}


@dataclass(frozen=True)
class Settings:
    """What the server needs to know; :mod:`serve` builds it from the command line."""

    model: Path
    catalog: Path
    workers: int
    max_photo_bytes: int
    max_photos: int
    body_timeout: float  # seconds without a byte of a request's body before it is refused (408)


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
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            # not warmed up as at start: waiting for the workers' models held the event loop,
            # every request's, for a second; the photos queued wait for them in the workers
            self.pool = self._fork(self.settings.workers)
            return self._submit(self.pool, function, *args)

    def _submit(self, pool, function, *args):
        """``pool.submit(function, *args)``, a worker's death said once per pool in the log,
        as soon as a future finds it: every photo was still answered, and nothing told the
        operator."""
        future = pool.submit(function, *args)
        future.add_done_callback(functools.partial(self._said_death, pool))
        return future

    def _said_death(self, pool, future):
        if self.stopping or future.cancelled() or not isinstance(future.exception(), BrokenProcessPool):
            return
        if pool not in self.broken:
            self.broken.add(pool)
            print("serve.py: warning: a worker process died (killed for its memory, or crashed on a photo); its "
                  "photos are queued again, the one it was on alone (answered as lost if it kills that worker "
                  "too)", file=sys.stderr, flush=True)

    def submit(self, path, options, *, annotate_to=None):
        """Queue one photo; a future of its full record (with each face's headline)."""
        return self._queue(analyse_marked, path, annotate_to, options)

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
        """A future of :func:`~features.app.analysis.chosen_thresholds` for ``options``, asked of
        a worker (this process does not load the model: it forks the workers) once per option
        set, the latest :data:`KEPT_DECISIONS` kept: the model, checked at start, is fixed."""
        key = (options.min_probability, options.precision)
        asked = self.decided.pop(key, None)
        if asked is None or (asked.done() and (asked.cancelled() or asked.exception())):
            asked = self._queue(chosen_thresholds, options)
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


def analyse_marked(path, annotate_to, options):
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


def cancelled():
    """A future cancelled already: a photo's once the server is stopping."""
    future = Future()
    future.cancel()
    return future


def upload_folder():
    """A request's private folder for its photos (mode 0700), named for
    :func:`remove_stale_uploads`."""
    return Path(tempfile.mkdtemp(prefix=f"{UPLOADS}{os.getpid()}-"))


async def saved(upload, path):
    """``upload`` written to ``path``, a block at a time; ``path``."""
    with open(path, "wb") as out:
        while block := await upload.read(MB):
            out.write(block)
    return path


def remove_stale_uploads():
    """Remove the upload folders of this user's servers that no longer run: a server killed
    outright (SIGKILL, a crash) cannot remove its requests' photos, which stayed in the
    temporary folder, someone's photos on disk, for good."""
    for folder in Path(tempfile.gettempdir()).glob(UPLOADS + "*"):
        pid = folder.name[len(UPLOADS):].split("-")[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its server is gone
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # gone meanwhile, or a process of another user's (running): not ours to judge
            continue


def display_name(filename, number):
    """The uploaded file's own name without folders, control characters or line separators:
    shown, never opened.

    Browsers send ``"``, CR and LF in a file name as ``%22``, ``%0D`` and ``%0A`` (WHATWG's
    multipart/form-data); those three are undone, so ``say "hi".jpg`` is not shown as
    ``say %22hi%22.jpg`` (CR and LF then go with the other control characters).
    """
    name = filename or ""
    for escaped, character in BROWSER_ESCAPES.items():
        name = name.replace(escaped, character)
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c) not in UNSHOWN).strip()
    return name or f"photo-{number}"


def byte_text(n):
    """A byte count in MB from 1 MB up and in KB below, with one decimal, a half rounded up:
    as the page's ``byteText`` says a limit (``static/app.js``)."""
    scale, unit = (MB, "MB") if n >= MB else (KB, "KB")
    return f"{fixed(n / scale, 1)} {unit}"  # over a power of two: exact in a double


class BodyLimits:
    """Refuse a request whose body passes its route's limit (:meth:`limit`), a photo over
    ``max_photo_bytes`` or one photo more than ``max_photos``, as soon as the bytes arrive
    (413, one line of JSON; a second photo to a route of one, 422): pure ASGI middleware
    that counts every body, and runs python-multipart's parser (the one Starlette uses) over
    a multipart body as it streams to the app.

    Starlette reads and spools the whole body before a part's size is known, so a 600 MB
    photo would be taken in whole to be refused; and its own body limit (FastAPI's
    ``max_body_size``) answers in plain text, past every exception handler.  A body declared
    over the limit is refused before it is read; otherwise the 413 is raised from ``receive``,
    inside the route's reading of its body, and answered as any HTTPException; since the body
    is cut short, it names the limit, not its size.  A malformed multipart body is not ours
    to report: the scan stops and Starlette says what is wrong with it; one that ends before
    its closing boundary is refused with 400 (:meth:`PartScan.ended`).

    A body that stops arriving (a client that declared more than it sends, or went silent)
    is refused with 408 after ``body_timeout`` seconds without a byte: uvicorn has no such
    timeout, and waits for every open request before it stops, so one such client held a
    stopping server forever.
    """

    def __init__(self, app, settings):
        self.app, self.settings = app, settings

    def limit(self, path):
        """The largest body of a request to ``path``, in bytes and in words, and whether it is
        photos: 64 MB of records for :data:`RECORDS_ROUTES` (a whole drop's, whatever the photo
        limits), one photo of ``max_photo_bytes`` for :data:`ONE_PHOTO_ROUTES`, else
        ``max_photos`` such photos (with their parts' headers)."""
        if path in RECORDS_ROUTES:
            return MAX_RECORDS_BYTES, f"{byte_text(MAX_RECORDS_BYTES)} of records", False
        photos, size = 1 if path in ONE_PHOTO_ROUTES else self.settings.max_photos, self.settings.max_photo_bytes
        return photos * (size + PART_OVERHEAD), f"{photos} photo{'s' * (photos != 1)} of {byte_text(size)}", True

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers, (limit, words, photos) = Headers(scope=scope), self.limit(scope["path"])
        over = f"over the limit of {words} per request"
        if headers.get("content-length", "").isdigit() and int(headers["content-length"]) > limit:
            return await JSONResponse({"detail": over}, status_code=413, headers=CLOSE)(
                scope, receive, send)
        scan = part_scan(headers.get("content-type"), self.settings, scope["path"]) if photos else None
        read, whole = 0, False

        async def limited():
            nonlocal read, whole
            if whole:  # all that is left to hear is the client going away, whenever it does
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.settings.body_timeout)
            except TimeoutError:
                raise HTTPException(408, f"the body stopped arriving (nothing for {self.settings.body_timeout:g} s)",
                                    headers=CLOSE) from None
            if message["type"] == "http.request":
                whole = not message.get("more_body", False)
                read += len(message.get("body", b""))
                if read > limit:
                    raise HTTPException(413, over)  # the connection kept (see CLOSE)
                if scan is not None:
                    scan.write(message.get("body", b""))
                    if whole and read and not scan.ended():
                        raise HTTPException(400, f"request: the form was cut short ({read} bytes, "
                                                 "no closing boundary)")
            return message

        await self.app(scope, limited, send)


def part_scan(content_type, settings, path):
    """A :class:`PartScan` for a multipart body, else None (for a boundary the parser refuses
    too: Starlette's to report)."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in options:
        return None
    try:
        return PartScan(options[b"boundary"], settings, path)
    except FormParserError:
        return None


class PartScan:
    """One multipart body's file parts, counted as it streams in (see :class:`BodyLimits`)."""

    def __init__(self, boundary, settings, path):
        self.settings, self.path, self.files = settings, path, 0
        self.field = self.value = self.disposition = b""
        self.name, self.size = None, 0  # the file part being read: its display name, its bytes so far
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self.begin, "on_header_field": self.header_field,
            "on_header_value": self.header_value, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.data})

    def write(self, chunk):
        """Scan the next chunk; raises the 413 when a limit is passed."""
        if self.parser is None:
            return
        try:
            self.parser.write(chunk)
        except FormParserError:
            self.parser = None  # malformed: Starlette's to report, once it reads this far

    def ended(self):
        """Whether the body so far is a whole form, or malformed (Starlette's to report): a
        form cut off (a client or proxy that sent less than the form) read as one whose
        photos were never sent, "photos: Field required", as python-multipart does not check
        that a form ends."""
        return self.parser is None or self.parser.state == MultipartState.END

    def begin(self):
        self.disposition, self.name, self.size = b"", None, 0

    def header_field(self, data, start, end):
        self.field += data[start:end]

    def header_value(self, data, start, end):
        self.value += data[start:end]

    def header_end(self):
        if self.field.strip().lower() == b"content-disposition":
            self.disposition = self.value
        self.field = self.value = b""

    def headers_finished(self):
        _, options = parse_options_header(self.disposition)
        if b"filename" not in options:  # a text field: Starlette limits those itself
            return
        self.files += 1
        if self.path in ONE_PHOTO_ROUTES and self.files > 1:
            raise HTTPException(422, f"photo: one photo per request (more than one sent){ONE_PHOTO_ROUTES[self.path]}")
        if self.files > self.settings.max_photos:
            raise HTTPException(413, f"over the limit of {self.settings.max_photos} photos per request; "
                                     "send them in several requests")
        self.name = display_name(filename_text(options[b"filename"]), self.files - 1)

    def data(self, data, start, end):
        if self.name is None:
            return
        self.size += end - start
        if self.size > self.settings.max_photo_bytes:
            raise HTTPException(413, f"{self.name}: over the limit of {byte_text(self.settings.max_photo_bytes)} "
                                     "per photo")


def filename_text(raw):
    """An upload's file name as Starlette decodes it for the route (UTF-8, else Latin-1), so
    that a 413 names the photo as its record would (``caf\\xe9.jpg``: ``café.jpg``, not
    ``caf\ufffd.jpg``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


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
            return (await self.analyser.outcome(self.futures[number], analyse_marked, path, annotate_to,
                                                self.options, requeued=requeued))[0]
        except BrokenProcessPool:
            return lost_record(name)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # this request's own task: not the photo's
                raise
            return error_record(name, STOPPING)

    async def headers(self):
        """The response headers that say which thresholds decide the photos (``X-Thresholds``,
        as the model decides with the request's options) and why a label decides nothing
        (``X-Threshold-Warnings``: it never reaches the request's ``precision`` out of fold)."""
        try:
            asked = self.asked
            while True:  # each break is a photo's: asked again of the new pool
                try:
                    thresholds, notes = await asyncio.wrap_future(asked)
                    break
                except BrokenProcessPool:
                    asked = self.analyser.thresholds(self.options)
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


async def check_fields(request: Request):
    """A one-line 422 for a query or form field the request's route does not read, and for an
    option given twice: a misspelt option (``min_probabilty``) was answered with the
    defaults, photos sent as ``photo`` to /api/analyze were left out, and of an option given
    twice the last was read, and nothing said so.  (The GET routes, which read no field, take
    any: a monitor or a browser may add one to get past a cache.)"""
    dependant = request.scope["route"].dependant
    known = query_fields(dependant)
    if unknown := sorted(set(request.query_params) - known):
        listed = f"its options: {', '.join(sorted(known))}" if known else "it has none"
        raise HTTPException(422, f"{field_name(unknown[0])}: not an option of {request.url.path} ({listed})")
    given = [name for name, _ in request.query_params.multi_items()]
    if twice := sorted({name for name in given if given.count(name) > 1}):
        raise HTTPException(422, f"{twice[0]}: given {given.count(twice[0])} times; give it once")
    if not any(isinstance(field.field_info, params.Form) for field in dependant.body_params):
        return  # a JSON body: its shape is checked where it is read
    if refused := wrong_media_type(request):  # before the fields' names: they are not the mistake
        raise HTTPException(415, refused)
    fields = {field.alias for field in dependant.body_params}  # the photos' field (parsed already)
    if unknown := sorted(set((await request.form()).keys()) - fields):
        raise HTTPException(422, f"{field_name(unknown[0])}: not a field of {request.url.path} (its field: "
                                 f"{', '.join(sorted(fields))})")


def field_name(name):
    """A field's name as a message starts with it: ``?=1`` named none (": not an option")."""
    return name or "a field with no name"


def unread_json(cause):
    """Why FastAPI could not read a JSON body (the cause of its 400, which says only
    :data:`FASTAPI_UNREAD_BODY`), in the words of a ``json_invalid`` 422; None for another."""
    if isinstance(cause, UnicodeDecodeError):
        return f"request: not JSON (not UTF-8 at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "request: not JSON this server reads (nested too deep)"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):  # Python's own limit
        return f"request: not JSON this server reads (a number of over {sys.get_int_max_str_digits()} digits)"
    return None


def query_fields(dependant):
    """The query fields a FastAPI route (its ``dependant``) reads, its dependencies' too."""
    return {field.alias for field in dependant.query_params}.union(*map(query_fields, dependant.dependencies))


def request_options(analyser, card, per_category, min_probability, precision, detection_threshold):
    """A request's analysis options, or a one-line 422 for a malformed ``min_probability`` or
    a ``detection_threshold`` the model's detector cannot use (``card``: the model's card)."""
    try:
        chosen = parse_min_probability(min_probability or "")
    except ValueError as exc:
        raise HTTPException(422, f"min_probability: {exc}") from None
    try:
        check_precision(chosen, precision)
    except ValueError as exc:
        raise HTTPException(422, f"precision: {exc}") from None
    try:
        check_detection(card, threshold=detection_threshold)
    except ValueError as exc:
        raise HTTPException(422, f"detection_threshold: {exc}") from None
    return analyser.options(per_category=per_category, min_probability=tuple(sorted(chosen.items())),
                            precision=precision, detection_threshold=detection_threshold)


async def open_batch(analyser, photos, options, *, annotate=False):
    """The request's :class:`Batch`, queued; nothing is left behind if queueing fails."""
    batch = Batch(analyser, photos, options, annotate=annotate)
    try:
        return await batch.queue()
    except BaseException:
        batch.close()
        raise


async def all_records(batch, request):
    """The batch's records in order, for ``format=json``; when the client goes away first, a 499
    (nginx's "client closed request", which nobody reads), and its photos still queued are
    cancelled by :meth:`Batch.close` rather than analysed for nobody.

    Once the form is read, ``receive`` answers only when the client disconnects (or after the
    response), so it is waited on beside the records.
    """
    async def collect():
        return [record async for record in batch.records()]

    async def gone():
        while (await request.receive())["type"] != "http.disconnect":
            pass

    records = asyncio.ensure_future(collect())
    left = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({records, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        records.cancel()  # nothing when done; else the client left, or this request is cancelled
        left.cancel()
    if not records.done() or records.cancelled():
        raise HTTPException(499, "the client went away before the answer")
    return records.result()


def answers(refusals=REFUSALS, **ok):
    """A route's documented answers (the API docs): its 200 (``ok``) and each refusal, one line
    of JSON."""
    return {200: ok, **{code: {"model": Refusal, "description": words} for code, words in refusals.items()}}


def model_records(records, labels):
    """Records as /api/analyze gives them with the model's ``labels``, or a one-line 422 saying
    what is not: :func:`csv_text` and :func:`profile` trust their records, so another shape
    would be a 500 or a row of junk, and a score or label the model has not (of another
    column, even) a wrong row."""
    try:
        records = checked_records(records)
    except ValueError as exc:
        raise HTTPException(422, f"{NOT_RECORDS} ({exc})") from None
    named = {label for record in records for face in record["faces"] for label in [*face["scores"], *face["labels"]]}
    if unknown := sorted(named - set(labels)):
        raise HTTPException(422, f"{NOT_RECORDS}; their labels are {', '.join(labels)}, "
                                 f"not {', '.join(map(repr, unknown))}")
    # what the summary reads beside a CSV row: a face's every score, and types the model has
    # (a score left out, or a type named otherwise, was a 500 and a traceback in the log)
    for n, record in enumerate(records):
        for m, face in enumerate(record["faces"]):
            where = f"{n}.faces.{m}"
            if missing := [label for label in labels if label not in face["scores"]]:
                raise HTTPException(422, f"{NOT_RECORDS} ({where}.scores: no {missing[0]!r})")
            for family, names in face["types"].items():
                if family != "hat_colour" and (unknown := sorted(set(names) - set(TYPE_VALUES[family]))):
                    raise HTTPException(422, printable(f"{NOT_RECORDS} ({where}.types.{family}: {unknown[0]!r} "
                                                       f"is not one of {', '.join(TYPE_VALUES[family])})"))
    return records


def wrong_media_type(request):
    """Why a request's body is of another media type than its route reads (JSON sent where
    photos are expected, a form where records are, a body that names none: its list of
    records read "Input should be a valid list"), for a one-line 415, else None; a request
    without a body is left to say which field is missing."""
    route = request.scope.get("route")
    expected = getattr(getattr(getattr(route, "body_field", None), "field_info", None), "media_type", None)
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if expected is None or sent == expected:
        return None
    if not sent:
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        return f"{request.url.path} takes {expected}; the request names no Content-Type" if has_body else None
    return f"{request.url.path} takes {expected}, not {sent}"


def form_refusal(detail):
    """Starlette's 400 for a form's text field over :data:`TEXT_FIELD_BYTES`, or for more than
    :data:`TEXT_FIELDS` of them, in words that say what the routes take; else ``detail``."""
    if detail.startswith(("Part exceeded maximum size", "Field exceeded maximum size")):
        return (f"request: a form field that is not a file is over {byte_text(TEXT_FIELD_BYTES)}; "
                "photos are sent as files (with a filename)")
    if detail.startswith("Too many fields"):
        return f"request: over {TEXT_FIELDS} form fields that are not files; photos are sent as files"
    return detail


async def json_lines(batch, *, catalog=None, per_category=PER_CATEGORY):
    """The response of ``format=jsonl``: ``recommend.py --json`` (``--profile``) output, with
    the batch's headers."""
    try:
        headers = await batch.headers()
    except BaseException:
        batch.close()
        raise

    async def lines():
        records = []
        try:
            async for record in batch.records():
                records.append(record)
                yield json.dumps(public(record)) + "\n"
            if catalog is not None:
                yield json.dumps(profile(records, catalog, per_category=per_category)) + "\n"
        finally:  # also when the client went away mid-stream
            batch.close()

    # and when it went away before the stream started, which skips the generator's finally
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers,
                             background=BackgroundTask(batch.close))


def allowed_methods(app, scope):
    """The methods of every route at ``scope``'s path, sorted: Starlette's 405 named one
    route's (``Allow: GET`` where HEAD is a route of its own too), and said "Method Not
    Allowed" alone."""
    methods, asked = set(), {"type": "http", "path": scope["path"], "root_path": "", "method": scope["method"]}
    for route in app.routes:  # matched from the app's root: a mount had made the scope its own
        if route.matches(asked)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or {"GET", "HEAD"}  # a mount: static files, here
    return sorted(methods)


def model_summary(card):
    """The model card's lines worth logging at start: labels, thresholds, training date."""
    thresholds = ", ".join(f"{label} >= {card['thresholds'][label]:.2f}" for label in card["labels"])
    return (f"labels {', '.join(card['labels'])}; thresholds {thresholds}; "
            f"trained {card.get('trained_at', 'at an unknown date')} on {card['dataset']['n_used']} photos")


def version():
    try:
        return metadata.version("img2recommender")
    except metadata.PackageNotFoundError:  # running from a checkout that was not installed
        return "unknown"


Photos = Annotated[list[UploadFile], File(description="photos (JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP, TIFF, ...)")]
OnePhoto = Annotated[UploadFile, File(description="one photo")]
PerCategory = Annotated[int, Query(ge=1, le=20, description="products per category a face has")]
DetectionThreshold = Annotated[float | None, Query(description="face detector score threshold instead of "
                                                            "the model's: lower finds more faces, and more "
                                                            "false ones")]
MinProbability = Annotated[str | None, Query(description="decide a label when its probability reaches P, "
                                                          "e.g. hat=0.8,eyewear=0.6 (as recommend.py)")]
Precision = Annotated[float | None, Query(gt=0, le=1, allow_inf_nan=False,  # NaN: not "less than or equal to 1"
                                          description="for the other labels, the threshold of the best recall "
                                                      "at this out-of-fold precision (as recommend.py)")]
Format = Annotated[Literal["json", "jsonl"], Query(description="json: one document; jsonl: one line "
                                                               "per photo as each is done, in order")]


def create_app(settings):
    """The FastAPI app for ``settings``; raises ModelError or CatalogError for an unusable
    model or catalog, before any worker starts."""
    card = app_card(settings.model)
    catalog = load_catalog(settings.catalog)
    remove_stale_uploads()
    # a client's malformed form is its 400, not a line of the server's log: python-multipart
    # logged each such body as a bare warning ("Did not find CR at end of boundary (3)"), twice
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    analyser = Analyser(settings, model_sha256=card["model_sha256"], catalog=catalog)
    try:
        analyser.pool.submit(check_card_is_model, analyser.options(), card).result()
    except BaseException:
        analyser.close()
        raise
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        except asyncio.CancelledError:
            # a second Ctrl-C: uvicorn exits at once, without the shutdown that ends this
            # (Analyser.kill has ended the workers); cancelled here, it logged a traceback
            return
        analyser.close()

    app = FastAPI(title="img2recommender", version=version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Hat, beard and eyewear per face, with calibrated probabilities and products.",
                  # BodyLimits refuses one photo more first, with its 413; Starlette's default
                  # (1000) would refuse a larger --max-photos with a 400
                  form_limits={"max_files": settings.max_photos, "max_fields": TEXT_FIELDS,
                               "max_part_size": TEXT_FIELD_BYTES})
    app.add_middleware(BodyLimits, settings=settings)
    app.state.card, app.state.summary, app.state.analyser = card, model_summary(card), analyser

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request, exc):
        if refused := wrong_media_type(request):
            return JSONResponse({"detail": refused}, status_code=415)
        error = exc.errors()[0]
        if error["type"] == "json_invalid":  # its place is the character where the JSON went wrong
            where, message = "request", f"not JSON ({error['ctx']['error']} at character {error['loc'][-1]})"
        else:
            where = ".".join(str(part) for part in error["loc"][1:]) or "request"
            # a part without a filename reaches FastAPI as text, not as a file
            message = "not a file (no filename)" if "Expected UploadFile" in error["msg"] else error["msg"]
        return JSONResponse({"detail": printable(f"{where}: {message}")}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def one_line_refusal(request, exc):  # a name the client chose may be in it
        if exc.status_code == 400 and (refused := wrong_media_type(request)):  # a URL-encoded form's field
            return JSONResponse({"detail": refused}, status_code=415)  # over its limit: the form is the mistake
        if exc.status_code == 405:
            allowed = ", ".join(allowed_methods(app, request.scope))
            return JSONResponse({"detail": printable(f"{request.url.path} takes {allowed}, not {request.method}")},
                                status_code=405, headers={"Allow": allowed})
        detail = (exc.detail == FASTAPI_UNREAD_BODY and unread_json(exc.__cause__)) or form_refusal(str(exc.detail))
        return JSONResponse({"detail": printable(detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def one_line_server_error(request, exc):
        return JSONResponse({"detail": printable(f"{type(exc).__name__}: {exc}".splitlines()[0])}, status_code=500)

    async def options(request: Request, per_category: PerCategory = PER_CATEGORY,
                      min_probability: MinProbability = None, precision: Precision = None,
                      detection_threshold: DetectionThreshold = None):
        """A request's analysis options, from its query fields (a one-line 422 when malformed,
        given twice, or for a field it does not know)."""
        await check_fields(request)
        return request_options(analyser, card, per_category, min_probability, precision, detection_threshold)

    Options = Annotated[AnalysisSettings, Depends(options)]

    @app.post("/api/analyze", summary="One record per photo, as recommend.py --json prints it",
              responses=answers(model=list[Record], **JSON_LINES))
    async def analyze(photos: Photos, options: Options, request: Request, format: Format = "json"):
        batch = await open_batch(analyser, photos, options)
        if format == "jsonl":
            return await json_lines(batch)
        try:
            headers = await batch.headers()
            return JSONResponse([public(record) for record in await all_records(batch, request)], headers=headers)
        finally:
            batch.close()

    @app.post("/api/profile", summary="The records and the account summary of recommend.py --profile",
              responses=answers(model=Account, **JSON_LINES))
    async def account(photos: Photos, options: Options, request: Request, format: Format = "json"):
        batch = await open_batch(analyser, photos, options)
        if format == "jsonl":
            return await json_lines(batch, catalog=catalog, per_category=options.per_category)
        try:
            headers = await batch.headers()
            records = await all_records(batch, request)
        finally:
            batch.close()
        return JSONResponse({"records": [public(r) for r in records],
                             **profile(records, catalog, per_category=options.per_category)}, headers=headers)

    @app.post("/api/annotate", summary="One photo with its faces, scores and products drawn (JPEG)",
              response_class=Response,
              responses=answers({**REFUSALS, **ANNOTATE_REFUSALS}, content={"image/jpeg": {}}))
    async def annotate(photo: OnePhoto, options: Options, request: Request):
        batch = await open_batch(analyser, [photo], options, annotate=True)
        try:
            headers = await batch.headers()
            [record] = await all_records(batch, request)  # a client gone: its photo not analysed for nobody
            if record["error"] == STOPPING:  # nothing wrong with the photo
                raise HTTPException(503, f"{record['image']}: {STOPPING}", headers=RETRY_LATER)
            if record["error"]:
                raise HTTPException(422, f"{record['image']}: {record['error']}")
            if "annotation_error" in record:  # the server's fault, not the photo's: its log says it too
                detail = f"cannot write the annotated copy of {record['image']} ({record['annotation_error']})"
                print(f"serve.py: error: /api/annotate: {detail}", file=sys.stderr, flush=True)
                raise HTTPException(500, detail)
            jpeg = (batch.folder / "0-annotated.jpg").read_bytes()
        finally:
            batch.close()
        return Response(jpeg, media_type="image/jpeg", headers=headers)

    @app.post("/api/preview", summary=f"One photo upright, at most {PREVIEW_SIDE} px on its longer side, as a "
                                      "JPEG, not analysed: for a browser that cannot show it (HEIC, TIFF)",
              response_class=Response, dependencies=[Depends(check_fields)],
              responses=answers({**REFUSALS, **PREVIEW_REFUSALS}, content={"image/jpeg": {}}))
    async def preview(photo: OnePhoto):
        folder, name = upload_folder(), display_name(photo.filename, 0)
        try:
            jpeg, reason = await analyser.preview(await saved(photo, folder / "0"))
        except BrokenProcessPool:
            raise HTTPException(422, f"{name}: the worker died while reading this photo") from None
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            raise HTTPException(503, f"{name}: {SERVER_STOPPING}", headers=RETRY_LATER) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if reason:
            raise HTTPException(422, f"{name}: {reason}")
        return Response(jpeg, media_type="image/jpeg")

    # HEAD apart (as a monitor asks): one route of both gave two operations the same id
    @app.head("/api/health", include_in_schema=False)
    @app.get("/api/health", summary="Model loaded, version, uptime, limits")
    async def health():
        return {"status": "ok", "model_loaded": True, "version": version(),
                "uptime_seconds": round(time.monotonic() - started, 1), "workers": settings.workers,
                "model": {"labels": card["labels"], "thresholds": card["thresholds"],
                          "trained_at": card.get("trained_at"), "sha256": card["model_sha256"]},
                "limits": {"max_photo_bytes": settings.max_photo_bytes, "max_photos": settings.max_photos},
                "defaults": {"per_category": PER_CATEGORY}}

    @app.post("/api/csv", summary="Records (as /api/analyze gives them) as CSV, one row per face",
              response_class=Response, responses=answers(content={"text/csv": {}}),
              dependencies=[Depends(check_fields)])
    # a list of anything here: checked_records stops at the first wrong item, where FastAPI
    # would build an error for each of a million
    def records_csv(records: Annotated[list, Body(description="records of /api/analyze")]):
        return Response(csv_text(model_records(records, card["labels"])), media_type="text/csv")

    @app.post("/api/summary", summary="The account summary of records (as /api/analyze gives them), as "
                                      "/api/profile's: the page's summary of a drop sent in several requests",
              dependencies=[Depends(check_fields)], responses=answers(model=Summary))
    def records_summary(records: Annotated[list, Body(description="records of /api/analyze")],
                        per_category: PerCategory = PER_CATEGORY):
        return profile(model_records(records, card["labels"]), catalog, per_category=per_category)

    @app.head("/api/catalog", include_in_schema=False)
    @app.get("/api/catalog", summary="The products that can be recommended")
    async def products():
        return catalog

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)  # HEAD as the page's
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="img2recommender API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no call to swagger.io

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")
    return app
