"""The web app: a page and an HTTP API over the same per-photo analysis as recommend.py.

:func:`create_app` checks the model and catalog, forks the worker processes once (as
recommend.py does) and returns the FastAPI app; every request's photos are queued to those
workers (:mod:`~features.app.web.analyser`), one task per photo, so concurrent requests share
them and none is dropped; a body over its route's limit is refused as it arrives
(:mod:`~features.app.web.limits`), and the photos wait in a private folder
(:mod:`~features.app.web.uploads`).
"""
import asyncio
import importlib.util
import json
import logging
import shutil
import sys
import time
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
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from features.labels import STYLE_SEEN, TYPE_VALUES
from features.numbers import KB, byte_text
from features.products.recommendations import PER_CATEGORY, load_catalog, profile
from features.app.annotation import comment_segment, copy_comment
from features.app.analysis import (AnalysisSettings, app_card, check_card_is_model, check_detection,
                                   check_precision, exception_text, parse_min_probability)
from features.app.previews import PREVIEW_SIDE
from features.app.records import csv_text, printable, public
from features.app.web.analyser import (SERVER_STOPPING, STOPPING, Analyser, Unusable, open_batch,
                                       unanalysed)
from features.app.web.limits import BodyLimits
from features.app.web.schema import Account, Record, Refusal, Summary, checked_records
from features.app.web.uploads import display_name, remove_stale_uploads, saved, upload_folder

STATIC = Path(__file__).resolve().parent / "static"
#: Swagger UI 5 (which reads FastAPI's OpenAPI 3.1; swagger-ui-bundle's 4.15 showed "Unable to
#: render this definition") from a Python package, not a CDN: the docs work offline too.
SWAGGER_UI = Path(importlib.util.find_spec("fastapi_offline").submodule_search_locations[0]) / "static"
NOT_RECORDS = "records: expected the records of /api/analyze"
#: What each error answer of the routes that take a body means, for the API docs (FastAPI
#: documented every 422 as its list of errors, and no other error at all).
REFUSALS = {400: "a malformed body: a form cut short or not one, JSON this server does not read, "
                 "a text field over its limit",
            408: "the body stopped arriving",
            413: "over a limit: photos per request, bytes per photo, bytes of records",
            415: "a body of another media type than the route takes",
            422: "a wrong option or field, or records of another shape",
            500: "a failure of the server's own"}
#: The routes that analyse photos: their workers may fail to load the model.
UNUSABLE = {503: "the workers cannot load the model (a file replaced since the server started): restart it, "
                 "or put back the model it started with"}
#: A picture's answer at the server's stop (:data:`RETRY_LATER`).
STOPPING_REFUSAL = "the server is stopping: try again after Retry-After seconds"
#: /api/annotate's own.
ANNOTATE_REFUSALS = {422: "a wrong option or field, more than one photo, or a photo that cannot be read",
                     500: "the server cannot write the annotated copy (a full disk)",
                     503: f"{STOPPING_REFUSAL}; or {UNUSABLE[503]}"}
#: /api/preview's own (it reads the photo, not the model).
PREVIEW_REFUSALS = {422: "a field that is not the photo's, more than one photo, or a photo that cannot be read",
                    503: STOPPING_REFUSAL}
#: format=jsonl's answer, beside the JSON.
JSON_LINES = {"content": {"application/x-ndjson": {}}}
#: A form's text fields, which no route reads (each is named in a 422), are kept in memory
#: as they arrive: at Starlette's defaults, 1,000 of 1 MB, a request took the server from
#: 164 MB to 1.1 GB before its 422 (the API audit of 2026-12-06).
TEXT_FIELDS, TEXT_FIELD_BYTES = 64, 64 * KB
#: FastAPI's 400 for a JSON body it could not read, whatever the reason (:func:`unread_json`).
FASTAPI_UNREAD_BODY = "There was an error parsing the body"
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


async def all_records(batch, request):
    """The batch's records in order, for ``format=json``; when the client goes away first, a 499
    (nginx's "client closed request", which nobody reads), and its photos still queued are
    cancelled by :meth:`~features.app.web.analyser.Batch.close` rather than analysed for nobody.

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


def account_profile(records, catalog, *, per_category=PER_CATEGORY):
    """``recommend.py --profile``'s summary of ``records``, the photos never looked at counted
    apart: a server stopped mid-feed counted 115 photos "failed", nothing wrong with them."""
    return profile([r for r in records if not unanalysed(r)], catalog, per_category=per_category,
                   not_analysed=sum(map(unanalysed, records)))


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
                yield json.dumps(account_profile(records, catalog, per_category=per_category)) + "\n"
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
#: Most products per category a request may ask for (the page's box takes as many): a card
#: of more than that per category is a catalog page, not a recommendation.
MAX_PER_CATEGORY = 20
PerCategory = Annotated[int, Query(ge=1, le=MAX_PER_CATEGORY, description="products per category a face has")]
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


def answer_errors_in_one_line(app):
    """Every refusal and failure of ``app`` as a one-line JSON ``detail``, never a traceback:
    a malformed request's 422 (415 for the wrong media type), an HTTP refusal with its reason
    (a 405 with the methods the route takes), any other exception a 500 naming it."""
    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request, exc):
        if refused := wrong_media_type(request):
            return JSONResponse({"detail": refused}, status_code=415)
        error = exc.errors()[0]
        if error["type"] == "json_invalid":  # its place is the character where the JSON went wrong
            where, message = "request", f"not JSON ({error['ctx']['error']} at character {error['loc'][-1]})"
        elif error["type"] == "missing" and tuple(error["loc"]) == ("body",):  # it read "Field required"
            where, message = "request", "no JSON in it (an empty body)"
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

    @app.exception_handler(Unusable)  # the server's state: said once in its log, not a traceback per request
    async def one_line_unusable(request, exc):
        return JSONResponse({"detail": printable(str(exc))}, status_code=503)

    @app.exception_handler(Exception)
    async def one_line_server_error(request, exc):
        return JSONResponse({"detail": printable(exception_text(exc))}, status_code=500)


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

    answer_errors_in_one_line(app)

    async def options(request: Request, per_category: PerCategory = PER_CATEGORY,
                      min_probability: MinProbability = None, precision: Precision = None,
                      detection_threshold: DetectionThreshold = None):
        """A request's analysis options, from its query fields (a one-line 422 when malformed,
        given twice, or for a field it does not know)."""
        await check_fields(request)
        return request_options(analyser, card, per_category, min_probability, precision, detection_threshold)

    Options = Annotated[AnalysisSettings, Depends(options)]

    @app.post("/api/analyze", summary="One record per photo, as recommend.py --json prints it",
              responses=answers({**REFUSALS, **UNUSABLE}, model=list[Record], **JSON_LINES))
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
              responses=answers({**REFUSALS, **UNUSABLE}, model=Account, **JSON_LINES))
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
                             **account_profile(records, catalog, per_category=options.per_category)}, headers=headers)

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
            if unanalysed(record):  # nor here: a model the workers cannot load
                raise HTTPException(503, f"{record['image']}: {record['error']}")
            if record["error"]:
                raise HTTPException(422, f"{record['image']}: {record['error']}")
            if "annotation_error" in record:  # the server's fault, not the photo's: its log says it too
                detail = f"cannot write the annotated copy of {record['image']} ({record['annotation_error']})"
                print(f"serve.py: error: /api/annotate: {detail}", file=sys.stderr, flush=True)
                raise HTTPException(500, detail)
            # its comment names the photo as uploaded, not the server's private copy of it
            path = batch.jobs[0][0]
            jpeg = (batch.folder / "0-annotated.jpg").read_bytes().replace(
                comment_segment(copy_comment(path)), comment_segment(copy_comment(path, name=record["image"].encode())), 1)
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
    @app.get("/api/health", summary="Model loaded, version, uptime, limits", responses=answers(UNUSABLE))
    async def health():
        analyser.check_usable()  # a monitor sees it: every analysis is refused
        return {"status": "ok", "model_loaded": True, "version": version(),
                "uptime_seconds": round(time.monotonic() - started, 1), "workers": settings.workers,
                "model": {"labels": card["labels"], "thresholds": card["thresholds"], "style_seen": STYLE_SEEN,
                          "trained_at": card.get("trained_at"), "sha256": card["model_sha256"]},
                "limits": {"max_photo_bytes": settings.max_photo_bytes, "max_photos": settings.max_photos,
                           "max_per_category": MAX_PER_CATEGORY},
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
        return account_profile(model_records(records, card["labels"]), catalog, per_category=per_category)

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
