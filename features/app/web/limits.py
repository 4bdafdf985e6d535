"""Request bodies counted as they arrive, and refused as soon as one passes its route's limit."""
import asyncio

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.datastructures import Headers

from features.numbers import KB, MB, byte_text
from features.app.web.uploads import display_name, filename_text

# multipart headers around one file part are a few hundred bytes; this is generous
PART_OVERHEAD = 64 * KB
#: The header of an answer given before any of the body was read: the connection cannot be used
#: again.  A 413 found as the body streams keeps it, and the rest of the body is read and
#: dropped (not spooled): closed with that rest unread, the connection was reset, and curl lost
#: the answer (exit 55, where it printed the 413; httpx read it either way).
CLOSE = {"Connection": "close"}
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
