"""The HTTP API of a real serve.py process, with the model trained in this session."""
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
from http.client import HTTPConnection
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from conftest import LFW, ROOT, WILD_DEV, alive, children, ended, serving
from features.labels import STYLE_SEEN
from features.numbers import byte_text
from features.app.workers import MOST_WORKERS

TWO_PEOPLE = LFW / "Thaksin_Shinawatra_0005.jpg"
TIMEOUT = 300  # a request queued behind 160 others on 2 busy cores


@pytest.fixture(scope="module")
def photos(feed):
    """The feed's photos, in the name order recommend.py reads the folder in."""
    return sorted(feed.iterdir())


def upload(paths, field="photos"):
    return [(field, (path.name, path.read_bytes())) for path in paths]


def recommend_lines(trained, folder, *args):
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), "--json",
               "--profile", str(folder), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    return [json.loads(line) for line in result.stdout.splitlines()]


def renamed(records):
    """recommend.py's records with ``image`` as the API gives it: the uploaded file's name."""
    return [{**r, "image": Path(r["image"]).name} for r in records]


def test_records_and_profile_equal_recommend_json(server, trained, photos):
    expected = recommend_lines(trained, photos[0].parent)
    *records, summary = expected
    assert len(records) == len(photos) and "profile" in summary

    analysed = httpx.post(server + "/api/analyze", files=upload(photos), timeout=TIMEOUT)
    assert analysed.status_code == 200
    assert analysed.json() == renamed(records)

    account = httpx.post(server + "/api/profile", files=upload(photos), timeout=TIMEOUT).json()
    assert account == {"records": renamed(records), **summary}

    streamed = httpx.post(server + "/api/profile", params={"format": "jsonl"}, files=upload(photos), timeout=TIMEOUT)
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in streamed.text.splitlines()] == renamed(records) + [summary]
    by_name = {r["image"]: r for r in analysed.json()}
    assert len(by_name[TWO_PEOPLE.name]["faces"]) == 2 and by_name["coffee.jpg"]["faces"] == []
    assert "not a recognised image" in by_name["broken.jpg"]["error"]


def test_options_reach_the_analysis(server, trained, photos):
    *records, _ = recommend_lines(trained, photos[0].parent, "--per-category", "1", "--detection-threshold", "0.7",
                                  "--min-probability", "hat=0.05", "--precision", "0.8")
    answer = httpx.post(server + "/api/analyze", params={"per_category": 1, "detection_threshold": 0.7,
                                                         "min_probability": "hat=0.05", "precision": 0.8},
                        files=upload(photos), timeout=TIMEOUT)
    assert answer.json() == renamed(records)
    bad = httpx.post(server + "/api/analyze", params={"min_probability": "scarf=0.5"}, files=upload(photos[:1]))
    assert bad.status_code == 422 and bad.json()["detail"].startswith("min_probability: 'scarf=0.5'")
    # a misspelt option was answered with the defaults, and nothing said it was not read
    for route, known in (("analyze", "detection_threshold, format, min_probability, per_category, precision"),
                         ("annotate", "detection_threshold, min_probability, per_category, precision")):
        misspelt = httpx.post(f"{server}/api/{route}", params={"min_probabilty": "hat=0.99"},
                              files=upload(photos[:1], "photos" if route == "analyze" else "photo"))
        assert misspelt.status_code == 422 and misspelt.json() == {
            "detail": f"min_probabilty: not an option of /api/{route} (its options: {known})"}
    assert all(len([p for p in f["recommendations"] if p["category"] == label]) <= 1
               for r in records for f in r["faces"] for label in f["labels"])
    # photos under another field were left out, and of an option given twice the last was read
    misnamed = httpx.post(server + "/api/analyze", files=upload(photos[:1]) + upload(photos[1:2], "photo"))
    assert misnamed.status_code == 422 and misnamed.json() == {
        "detail": "photo: not a field of /api/analyze (its field: photos)"}
    nameless = httpx.post(server + "/api/analyze", params={"": "1"}, files=upload(photos[:1]))
    assert nameless.status_code == 422 and nameless.json()["detail"].startswith(
        "a field with no name: not an option of /api/analyze")  # it began ": not an option"
    nameless = httpx.post(server + "/api/analyze", data={"": "1"}, files=upload(photos[:1]))
    assert nameless.status_code == 422 and nameless.json() == {
        "detail": "a field with no name: not a field of /api/analyze (its field: photos)"}
    twice = httpx.post(server + "/api/profile", params=[("min_probability", "hat=0.1"), ("min_probability", "beard=0.1")],
                       files=upload(photos[:1]))
    assert twice.status_code == 422 and twice.json() == {"detail": "min_probability: given 2 times; give it once"}


def test_a_route_without_options_refuses_one_too(server):
    """/api/csv reads no query field: ``format=xlsx`` was answered with the CSV, as if read.
    The GET routes take any field (a monitor's or a browser's cache-buster)."""
    answer = httpx.post(server + "/api/csv", params={"format": "xlsx"}, json=[])
    assert answer.status_code == 422
    assert answer.json() == {"detail": "format: not an option of /api/csv (it has none)"}
    for route in ("health", "catalog"):
        assert httpx.get(f"{server}/api/{route}", params={"_": "1733443200"}).status_code == 200


def told_thresholds(answer):
    """The ``X-Thresholds`` header of an answer, as label -> threshold."""
    return {label: float(value) for label, _, value in
            (item.partition("=") for item in answer.headers["x-thresholds"].split(","))}


def test_a_request_is_told_the_thresholds_that_decided_it(server, trained, photos):
    """A ``precision`` a label never reaches left that label undecided on every photo, and the
    answer did not say so (recommend.py says it on stderr): every answer's headers name the
    thresholds that decided it, and ``X-Threshold-Warnings`` what recommend.py warns of, in its
    words (at precision 0.2: every label decided for far more faces than have it, whatever
    the model; whether it reaches 0.9999 depends on its training)."""
    plain = httpx.post(server + "/api/analyze", files=upload(photos[:1]), timeout=TIMEOUT)
    assert told_thresholds(plain) == httpx.get(server + "/api/health").json()["model"]["thresholds"]
    assert "x-threshold-warnings" not in plain.headers
    said = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), "--json",
                           "--precision", "0.2", str(photos[0])], capture_output=True, text=True, cwd=ROOT).stderr
    notes = [line.removeprefix("recommend.py: warning: ") for line in said.splitlines()
             if line.startswith("recommend.py: warning: ")]
    thresholds = dict(item.split() for item in said.splitlines()[-1].removeprefix("recommend.py: thresholds: ")
                      .split(", "))
    assert len(notes) == 3 and all("at precision 0.2: decided for" in note for note in notes), said
    for route, field, params in (("analyze", "photos", {}), ("analyze", "photos", {"format": "jsonl"}),
                                 ("profile", "photos", {}), ("annotate", "photo", {})):
        answer = httpx.post(f"{server}/api/{route}", params={"precision": 0.2, **params},
                            files=upload(photos[:2] if field == "photos" else photos[:1], field), timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert {label: f"{t:.4f}" for label, t in told_thresholds(answer).items()} == thresholds
        assert answer.headers["x-threshold-warnings"].split("; ") == notes
        if route == "analyze" and not params:
            assert all(told_thresholds(answer)[label] <= face["scores"][label]
                       for record in answer.json() for face in record["faces"] for label in face["labels"])


def test_bad_uploads_get_their_error_and_leave_nothing_behind(server, photos):
    before = set(Path(tempfile.gettempdir()).glob("img2rec-web-*"))
    jpeg = photos[0].read_bytes()
    photos = [("photos", ("../../etc/evil\u202e\u2028.jpg", b"not a photo")),  # folders, a control character, a line separator
              ("photos", ("empty.jpg", b"")),
              ("photos", ("cut.jpg", jpeg[:len(jpeg) // 3])),
              ("photos", ("C:\\Users\\me\\good-\U0001fae8.jpg", jpeg)),  # an emoji newer than Python 3.11's Unicode
              ("photos", ("..", jpeg)),
              ("photos", ('say "hi"\r\n & <b>.jpg', jpeg))]  # sent as say %22hi%22%0D%0A, as browsers do
    answer = httpx.post(server + "/api/analyze", files=photos, timeout=TIMEOUT)
    assert answer.status_code == 200
    evil, empty, cut, good, dots, quoted = answer.json()
    assert evil["image"] == "evil.jpg" and evil["error"] == "not a recognised image format"
    assert empty["error"] == "empty file (0 bytes)" and cut["error"] and cut["faces"] == []
    assert good["image"] == "good-\U0001fae8.jpg" and good["error"] is None and good["width"] == 250
    assert dots["image"] == ".." and dots["error"] is None  # a name only shown, never a path
    assert quoted["image"] == 'say "hi" & <b>.jpg' and quoted["error"] is None
    assert not Path("/etc/evil.jpg").exists()
    nameless = httpx.post(server + "/api/analyze", files=[("photos", ("", jpeg))])  # what a form sends for no file
    assert nameless.status_code == 422 and nameless.json() == {"detail": "photos.0: not a file (no filename)"}
    assert set(Path(tempfile.gettempdir()).glob("img2rec-web-*")) == before  # every request's folder removed


def test_annotate_returns_a_jpeg_or_a_one_line_error(server, photos):
    answer = httpx.post(server + "/api/annotate", files=upload([TWO_PEOPLE], "photo"), timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.format == "JPEG" and image.width >= 250
    refused = httpx.post(server + "/api/annotate", files=[("photo", ("broken.jpg", b"<html>"))], timeout=TIMEOUT)
    assert refused.status_code == 422
    assert refused.json() == {"detail": "broken.jpg: not a recognised image format"}
    two = httpx.post(server + "/api/annotate", files=upload([TWO_PEOPLE, photos[0]], "photo"), timeout=TIMEOUT)
    assert two.status_code == 422
    assert two.json() == {"detail": "photo: one photo per request (more than one sent); /api/analyze takes several"}


def test_a_preview_is_the_photo_upright_and_small_or_a_one_line_error(server, tmp_path):
    """Chromium shows no HEIC and no TIFF: the page asks the server, which reads a photo as
    the analysis does (a phone's HEIC turned upright by its EXIF), for a JPEG it can show, no
    larger than a card needs; a small photo keeps its size."""
    import pillow_heif  # its encoder: the project reads HEIC with pi-heif, a decoder alone

    from features.app.previews import PREVIEW_SIDE
    from features.vision.images import load_image

    turned = Image.Exif()
    turned[0x0112] = 6  # "rotate 90° clockwise to view": a phone held upright
    # in sRGB, with no profile: an iPhone's photo, in Display P3 (the profile of a real photo
    # in wild-dev), converted as the analysis reads it; one of grey describes no RGB pixels
    p3 = Image.open(WILD_DEV / "yolov5_bus.jpg").info["icc_profile"]
    rgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey = rgb[:16] + b"GRAY" + rgb[20:]
    phone = Image.open(TWO_PEOPLE).resize((2000, 1500))
    phone.info["icc_profile"] = p3
    pillow_heif.from_pillow(phone).save(tmp_path / "IMG_0001.HEIC", quality=90, exif=turned.tobytes())
    Image.open(TWO_PEOPLE).save(tmp_path / "scan.tif")
    Image.open(TWO_PEOPLE).convert("L").save(tmp_path / "grey.jpg", icc_profile=grey)
    before = set(Path(tempfile.gettempdir()).glob("img2rec-web-*"))
    for name, size in (("IMG_0001.HEIC", (PREVIEW_SIDE * 3 // 4, PREVIEW_SIDE)), ("scan.tif", (250, 250)),
                       ("grey.jpg", (250, 250))):
        answer = httpx.post(server + "/api/preview", files=upload([tmp_path / name], "photo"), timeout=TIMEOUT)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(answer.content)) as preview:
            assert preview.format == "JPEG" and preview.size == size and "icc_profile" not in preview.info
            read = Image.fromarray(load_image(tmp_path / name)).resize(size)
            off = np.abs(np.asarray(preview, dtype=float) - np.asarray(read, dtype=float)).mean()
            assert off < 6
            if name == "IMG_0001.HEIC":  # in sRGB: nearer the photo converted than its P3 pixels as they are
                with Image.open(tmp_path / name) as raw:
                    raw = ImageOps.exif_transpose(raw).convert("RGB").resize(size)
                assert off < np.abs(np.asarray(preview, dtype=float) - np.asarray(raw, dtype=float)).mean()
    refused = httpx.post(server + "/api/preview", files=[("photo", ("broken.heic", b"<html>"))], timeout=TIMEOUT)
    assert refused.status_code == 422 and refused.json() == {"detail": "broken.heic: not a recognised image format"}
    two = httpx.post(server + "/api/preview", files=upload([TWO_PEOPLE] * 2, "photo"), timeout=TIMEOUT)
    assert two.status_code == 422 and two.json() == {"detail": "photo: one photo per request (more than one sent)"}
    wrong = httpx.post(server + "/api/preview", params={"per_category": 1}, files=upload([TWO_PEOPLE], "photo"))
    assert wrong.status_code == 422
    assert wrong.json() == {"detail": "per_category: not an option of /api/preview (it has none)"}
    assert set(Path(tempfile.gettempdir()).glob("img2rec-web-*")) == before  # every request's folder removed


def test_an_annotated_copy_the_server_cannot_write_is_a_one_line_500(trained, tmp_path, small_disk):
    """The server's temporary folder on a disk with a page of room: a small photo is written
    there and analysed, its annotated copy cannot be; a one-line 500 that says why (the
    server's fault, not the photo's), no traceback, the request's folder removed, and a bad
    photo is still the photo's 422."""
    folder, preexec = small_disk
    photo = io.BytesIO()
    Image.open(TWO_PEOPLE).resize((100, 100)).save(photo, "JPEG")
    assert len(photo.getvalue()) <= 4096  # the upload fits in the room left; its copy, 500 px a side, does not
    small = ("small.jpg", photo.getvalue())
    log = tmp_path / "serve.log"
    with serving(trained["model"], log, env={**os.environ, "TMPDIR": str(folder)}, preexec_fn=preexec) as (url, _):
        analysed = httpx.post(url + "/api/analyze", files=[("photos", small)], timeout=TIMEOUT)
        answer = httpx.post(url + "/api/annotate", files=[("photo", small)], timeout=TIMEOUT)
        refused = httpx.post(url + "/api/annotate", files=[("photo", ("broken.jpg", b"<html>"))], timeout=TIMEOUT)
    assert analysed.status_code == 200 and analysed.json()[0]["error"] is None
    reason = "File too large" if preexec else "No space left on device"
    assert answer.status_code == 500
    assert answer.json() == {"detail": f"cannot write the annotated copy of small.jpg ({reason})"}
    assert refused.status_code == 422 and refused.json() == {"detail": "broken.jpg: not a recognised image format"}
    assert "Traceback" not in log.read_text()
    assert f"serve.py: error: /api/annotate: cannot write the annotated copy of small.jpg ({reason})\n" in log.read_text()
    assert not list(folder.glob("img2rec-web-*"))


def test_wrong_options_are_one_line_422(server, photos):
    answer = httpx.post(server + "/api/analyze", params={"per_category": 0}, files=upload(photos[:1]))
    assert answer.status_code == 422
    assert answer.json() == {"detail": "per_category: Input should be greater than or equal to 1"}
    answer = httpx.post(server + "/api/analyze", params={"precision": "nan"}, files=upload(photos[:1]))
    assert answer.status_code == 422 and answer.json() == {"detail": "precision: Input should be a finite number"}
    assert httpx.post(server + "/api/analyze").json() == {"detail": "photos: Field required"}
    answer = httpx.post(server + "/api/analyze", params={"detection_threshold": -1}, files=upload(photos[:1]))
    assert answer.status_code == 422 and answer.json()["detail"].startswith(
        "detection_threshold: BlazeFace's threshold must be at least 0.1 and under 1")
    # a threshold near 0 took hundreds of false faces a photo, a minute each, for every user's wait
    answer = httpx.post(server + "/api/analyze", params={"detection_threshold": 0.01}, files=upload(photos[:1]))
    assert answer.status_code == 422 and answer.json()["detail"].startswith(
        "detection_threshold: BlazeFace's threshold must be at least 0.1 and under 1")
    answer = httpx.post(server + "/api/analyze", params={"min_probability": "hat=0.5,hat=0.6"}, files=upload(photos[:1]))
    assert answer.status_code == 422 and "hat is given twice" in answer.json()["detail"]
    every = {"min_probability": "hat=0.5,beard=0.5,eyewear=0.5", "precision": 0.9}  # as recommend.py refuses it
    answer = httpx.post(server + "/api/analyze", params=every, files=upload(photos[:1]))
    assert answer.status_code == 422
    assert answer.json() == {"detail": "precision: would set no label: min_probability sets them all"}


def test_a_body_of_the_wrong_kind_is_a_one_line_415(server, photos):
    """Whatever the fields' names (a URL-encoded form's ``x`` was a 422 naming the field),
    and for a body that names no media type (records sent so read "Input should be a valid
    list")."""
    answer = httpx.post(server + "/api/analyze", json=[{"photos": photos[0].name}])
    assert answer.status_code == 415
    assert answer.json() == {"detail": "/api/analyze takes multipart/form-data, not application/json"}
    answer = httpx.post(server + "/api/csv", files=upload(photos[:1]))
    assert answer.status_code == 415
    assert answer.json() == {"detail": "/api/csv takes application/json, not multipart/form-data"}
    for route in ("analyze", "annotate"):
        encoded = httpx.post(f"{server}/api/{route}", data={"x": "1"})
        assert encoded.status_code == 415 and encoded.json() == {
            "detail": f"/api/{route} takes multipart/form-data, not application/x-www-form-urlencoded"}
    for route in ("csv", "summary"):
        untyped = httpx.post(f"{server}/api/{route}", content=b"[]")
        assert untyped.status_code == 415 and untyped.json() == {
            "detail": f"/api/{route} takes application/json; the request names no Content-Type"}
    # no body: what is missing ("request: Field required" said it in FastAPI's words)
    assert httpx.post(server + "/api/csv").json() == {"detail": "request: no JSON in it (an empty body)"}


def test_text_fields_are_refused_as_they_arrive(server, photos):
    """The routes read no text field, and Starlette keeps them in memory: 1,000 fields of 1 MB
    took the server from 164 MB to 1.1 GB before the 422 that named the first of them."""
    big = httpx.post(server + "/api/analyze", files=upload(photos[:1]), data={"note": "x" * 100_000})
    assert big.status_code == 400 and big.json() == {
        "detail": "request: a form field that is not a file is over 64.0 KB; photos are sent as files (with a "
                  "filename)"}
    encoded = httpx.post(server + "/api/analyze", data={"photos": "x" * 100_000})  # a form of no file at all
    assert encoded.status_code == 415 and encoded.json() == {
        "detail": "/api/analyze takes multipart/form-data, not application/x-www-form-urlencoded"}
    many = httpx.post(server + "/api/analyze", files=upload(photos[:1]), data={f"n{i}": "1" for i in range(65)})
    assert many.status_code == 400 and many.json() == {
        "detail": "request: over 64 form fields that are not files; photos are sent as files"}
    few = httpx.post(server + "/api/analyze", files=upload(photos[:1]), data={"note": "x" * 1000})
    assert few.status_code == 422 and few.json() == {"detail": "note: not a field of /api/analyze (its field: photos)"}


def test_health_catalog_and_offline_docs(server, trained):
    health = httpx.get(server + "/api/health").json()
    card = json.loads((trained["out"] / "model_card.json").read_text())
    assert health["model_loaded"] and health["status"] == "ok" and health["uptime_seconds"] > 0
    assert health["model"]["thresholds"] == card["thresholds"] and health["model"]["trained_at"] == card["trained_at"]
    assert health["model"]["style_seen"] == STYLE_SEEN  # the page tells a beard style from it
    assert health["limits"] == {"max_photo_bytes": 20 * 2 ** 20, "max_photos": 200, "max_per_category": 20}
    from features.products.recommendations import PER_CATEGORY, load_catalog

    assert health["defaults"] == {"per_category": PER_CATEGORY}
    for path in ("/", "/api/health", "/api/catalog", "/docs", "/openapi.json"):  # as a monitor or a load balancer asks
        assert httpx.head(server + path).status_code == 200
    # a method a route does not take: every method the path takes (HEAD, a route of its own, was
    # left out of Allow), in words (it said "Method Not Allowed")
    for method, path, allowed in (("POST", "/api/health", "GET, HEAD"), ("GET", "/api/preview", "POST"),
                                  ("DELETE", "/static/app.js", "GET, HEAD")):
        refused = httpx.request(method, server + path)
        assert (refused.status_code, refused.headers["allow"]) == (405, allowed)
        assert refused.json() == {"detail": f"{path} takes {allowed}, not {method}"}

    assert httpx.get(server + "/api/catalog").json() == load_catalog()
    docs = httpx.get(server + "/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert httpx.get(server + "/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = httpx.get(server + "/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/analyze", "/api/profile", "/api/annotate", "/api/preview", "/api/health", "/api/catalog",
            "/api/csv", "/api/summary"} <= set(paths)
    # the answers as they come: every refusal one line (FastAPI documented each 422 as a list
    # of errors, and no other refusal), records of Record's shape, JSON Lines on request
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path in ("/api/analyze", "/api/profile", "/api/annotate", "/api/preview", "/api/csv", "/api/summary"):
        answers = paths[path]["post"]["responses"]
        assert {"400", "408", "413", "415", "422", "500"} <= set(answers), path
        for code in set(answers) - {"200"}:
            assert answers[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Refusal"}
    analyze = paths["/api/analyze"]["post"]["responses"]["200"]["content"]
    assert analyze["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/Record"}
    assert "application/x-ndjson" in analyze
    profile = schema["components"]["schemas"]["Profile"]["properties"]  # the summary's keys, as given
    assert set(profile) == set(httpx.post(server + "/api/summary", json=[]).json()["profile"])


def test_limits_refuse_with_413(trained, tmp_path, astronaut, photos):
    small, big = tmp_path / "astronaut.jpg", tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(small, quality=95)  # about 100 kB
    Image.fromarray(astronaut).save(big, compress_level=0)  # about 790 kB: over the whole body limit
    limit = small.stat().st_size - 1  # the JPEG is one byte too large
    with serving(trained["model"], tmp_path / "serve.log", "--max-photos", "3",
                 "--max-photo-mb", repr(limit / 2 ** 20)) as (url, _):
        assert httpx.get(url + "/api/health").json()["limits"]["max_photo_bytes"] == limit
        many = httpx.post(url + "/api/analyze", files=upload(photos[:4]))
        assert many.status_code == 413
        assert many.json() == {"detail": "over the limit of 3 photos per request; send them in several requests"}
        large = httpx.post(url + "/api/analyze", files=upload([photos[0], small]))
        assert large.status_code == 413
        assert large.json() == {"detail": f"astronaut.jpg: over the limit of {byte_text(limit)} per photo"}
        assert byte_text(limit).endswith(" KB")
        at_limit = [("photos", ("cut.jpg", small.read_bytes()[:limit]))]  # not a byte over: analysed
        assert httpx.post(url + "/api/analyze", files=at_limit, timeout=TIMEOUT).status_code == 200
        assert httpx.post(url + "/api/analyze", files=upload([big])).status_code == 413
        malformed = httpx.post(url + "/api/analyze", content=b"--bX\r\n",
                               headers={"content-type": "multipart/form-data; boundary=b"})
        assert malformed.status_code == 400 and malformed.json() == {"detail": "Invalid multipart data."}
        assert "boundary" not in (tmp_path / "serve.log").read_text()  # python-multipart's warning, twice
        # a form cut short before its closing boundary: it was "photos: Field required"
        form = (b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
                + photos[0].read_bytes() + b"\r\n--b--\r\n")
        cut, whole = (httpx.post(url + "/api/analyze", content=sent, timeout=TIMEOUT,
                                 headers={"content-type": "multipart/form-data; boundary=b"})
                      for sent in (form[:-9], form[:-2]))  # the boundary decides, not the CRLF after it
        assert cut.status_code == 400
        assert cut.json() == {"detail": f"request: the form was cut short ({len(form) - 9} bytes, no closing boundary)"}
        assert whole.status_code == 200 and whole.json()[0]["error"] is None
        # a name in Latin-1, not UTF-8: the 413 names it as the record does (it said caf\ufffd.jpg)
        for photo, status, named in ((small.read_bytes(), 413, "detail"), (at_limit[0][1][1], 200, "image")):
            latin = (b'--b\r\nContent-Disposition: form-data; name="photos"; filename="caf\xe9.jpg"\r\n\r\n'
                     + photo + b"\r\n--b--\r\n")
            answer = httpx.post(url + "/api/analyze", content=latin, timeout=TIMEOUT,
                                headers={"content-type": "multipart/form-data; boundary=b"})
            assert answer.status_code == status
            assert (answer.json() if status == 413 else answer.json()[0])[named].startswith("café.jpg")
        assert httpx.post(url + "/api/analyze", files=upload(photos[:3])).status_code == 200


def post_the_start_of(url, name, declared, sent):
    """POST one photo of ``declared`` bytes (so says Content-Length) but send only the first
    ``sent``; the answer's status, JSON and Connection header, which a server that waits for
    the whole body never gives (the socket times out)."""
    head = (f'--b\r\nContent-Disposition: form-data; name="photos"; filename="{name}"\r\n'
            'Content-Type: image/jpeg\r\n\r\n').encode()
    return post_declared(url, "/api/analyze", "multipart/form-data; boundary=b", len(head) + declared,
                         head + bytes(sent))


def post_declared(url, path, content_type, declared, sent):
    """POST ``sent`` under a Content-Length of ``declared`` bytes; the answer's status, JSON and
    Connection header."""
    host, port = url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(declared))
        connection.endheaders(sent)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read()), answer.getheader("connection")
    finally:
        connection.close()


def test_a_body_over_its_route_s_limit_is_a_one_line_json_413(trained, tmp_path):
    """Starlette's own body limit answered "Content Too Large" in plain text, which the page
    and API clients read as JSON: a body declared over the limit (JSON sent to /api/analyze,
    records to /api/csv) and one that passes it as it streams, with no length declared."""
    with serving(trained["model"], tmp_path / "serve.log", "--max-photos", "1", "--max-photo-mb", "0.05") as (url, _):
        # refused unread: the connection is closed after (a client waited on it for its own timeout)
        assert post_declared(url, "/api/analyze", "application/json", 200 * 1024, b"[]") == (
            413, {"detail": "over the limit of 1 photo of 51.2 KB per request"}, "close")
        over = {"detail": "over the limit of 64.0 MB of records per request"}
        assert post_declared(url, "/api/csv", "application/json", 65 * 2 ** 20, b"[]") == (413, over, "close")
        streamed = httpx.post(url + "/api/csv", content=iter([b"[" + b" " * 2 ** 20] * 65),
                              headers={"content-type": "application/json"}, timeout=TIMEOUT)
        assert streamed.status_code == 413 and streamed.json() == over
        # photos sent to /api/csv are no photos of its: the 415 it gives any form, not a photo's 413
        form = httpx.post(url + "/api/csv", files=[("photos", ("a.jpg", b"x" * 60_000)), ("photos", ("b.jpg", b"y"))])
        assert form.status_code == 415 and form.json() == {"detail": "/api/csv takes application/json, not multipart/form-data"}


def test_a_body_that_stops_arriving_is_refused_with_408(trained, tmp_path, photos):
    """uvicorn waits for a body as long as it takes, and for every open request before it
    stops: one client that declared more than it sent held a stopping server forever.  A body
    is refused once none of it came for --body-timeout seconds; one that keeps coming, slowly,
    is read in whole."""
    head = (f'--b\r\nContent-Disposition: form-data; name="photos"; filename="{photos[0].name}"\r\n'
            'Content-Type: image/jpeg\r\n\r\n').encode()
    body = head + photos[0].read_bytes() + b"\r\n--b--\r\n"
    multipart = {"content-type": "multipart/form-data; boundary=b"}

    def slowly(parts):
        for part in parts:
            time.sleep(0.4)
            yield part

    with serving(trained["model"], tmp_path / "serve.log", "--body-timeout", "1") as (url, process):
        stalled = post_declared(url, "/api/analyze", multipart["content-type"], len(body), body[:1000])
        assert stalled == (408, {"detail": "the body stopped arriving (nothing for 1 s)"}, "close")
        steady = httpx.post(url + "/api/analyze", content=slowly(body[n:n + len(body) // 6 + 1] for n in
                                                                 range(0, len(body), len(body) // 6 + 1)),
                            headers=multipart, timeout=TIMEOUT)  # 2.8 s in all
        assert steady.status_code == 200 and [r["image"] for r in steady.json()] == [photos[0].name]
        assert steady.json()[0]["faces"]
        with socket.create_connection(url.removeprefix("http://").split(":")) as silent:
            silent.sendall(b"POST /api/csv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n[")
            time.sleep(0.2)
            stopped = time.time()
            process.terminate()
            process.wait(timeout=30)  # it waited forever
            assert time.time() - stopped < 10
            assert silent.recv(1000).startswith(b"HTTP/1.1 408 ")


def test_a_photo_over_the_limit_is_refused_before_the_rest_is_sent(server):
    """A 600 MB photo is refused once 20 MB of it have come, not read (and spooled) in whole;
    one photo past the limit of 200 is a 413 too (Starlette's own limit was a 400 at 1001), and
    a second photo to a route of one a 422 as it begins."""
    # the connection kept, the rest read and dropped: closed, it was reset, and curl lost the answer
    assert post_the_start_of(server, "big.jpg", 600 * 2 ** 20, 21 * 2 ** 20) == (
        413, {"detail": "big.jpg: over the limit of 20.0 MB per photo"}, None)
    many = httpx.post(server + "/api/analyze", files=[("photos", (f"{n}.jpg", b"")) for n in range(1001)])
    assert many.status_code == 413
    assert many.json() == {"detail": "over the limit of 200 photos per request; send them in several requests"}
    # a route of one photo: a second is refused as its part begins, and a body declared over one
    # photo's limit unread (both took up to 200 photos of 20 MB, 4 GB, to disk, to be refused)
    part = '--b\r\nContent-Disposition: form-data; name="photo"; filename="{}"\r\n\r\n'.format
    first = part("a.jpg").encode() + TWO_PEOPLE.read_bytes() + b"\r\n" + part("b.jpg").encode()
    for route, hint in (("/api/annotate", "; /api/analyze takes several"), ("/api/preview", "")):
        assert post_declared(server, route, "multipart/form-data; boundary=b", len(first) + 10 * 2 ** 20, first) == (
            422, {"detail": f"photo: one photo per request (more than one sent){hint}"}, None)
        assert post_declared(server, route, "multipart/form-data; boundary=b", 21 * 2 ** 20, first) == (
            413, {"detail": "over the limit of 1 photo of 20.0 MB per request"}, "close")


def test_eight_clients_at_once_each_photo_answered_once(server, lfw_paths):
    """8 clients x 20 photos at once: every request is queued to the 2 workers, none dropped."""
    clients = [[Path(p) for p in lfw_paths[20 * n:20 * (n + 1)]] for n in range(8)]

    def send(photos):
        return httpx.post(server + "/api/analyze", files=upload(photos), timeout=TIMEOUT)

    with ThreadPoolExecutor(len(clients)) as threads:
        answers = list(threads.map(send, clients))
    for photos, answer in zip(clients, answers):
        assert answer.status_code == 200
        records = answer.json()
        assert [r["image"] for r in records] == [p.name for p in photos]
        assert all(r["error"] is None and r["width"] == 250 for r in records)
    assert httpx.get(server + "/api/health").json()["status"] == "ok"


def test_a_client_that_leaves_mid_stream_leaves_nothing_behind(server, lfw_paths):
    before = set(Path(tempfile.gettempdir()).glob("img2rec-web-*"))
    photos = upload([Path(p) for p in lfw_paths[:12]])
    with httpx.stream("POST", server + "/api/analyze", params={"format": "jsonl"}, files=photos,
                      timeout=TIMEOUT) as answer:
        first = json.loads(next(answer.iter_lines()))
    assert first["image"] == Path(lfw_paths[0]).name
    assert httpx.get(server + "/api/health").status_code == 200
    deadline = time.time() + 60  # the photos already queued finish (cancelled ones never start)
    while set(Path(tempfile.gettempdir()).glob("img2rec-web-*")) != before and time.time() < deadline:
        time.sleep(0.5)
    assert set(Path(tempfile.gettempdir()).glob("img2rec-web-*")) == before


def test_requests_take_turns_at_the_workers(server, lfw_paths):
    """A request of many photos queued them all at once: another request's one photo, sent
    while they were being analysed, was answered only after the last of them.  Now each
    request has a few photos queued at a time, and the one photo waits behind a few."""
    many = upload([Path(p) for p in lfw_paths[:40]])
    arrived = []

    def stream():
        with httpx.stream("POST", server + "/api/analyze", params={"format": "jsonl"}, files=many,
                          timeout=TIMEOUT) as answer:
            for _ in answer.iter_lines():
                arrived.append(time.monotonic())

    with ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(stream)
        while not arrived and not streaming.done():
            time.sleep(0.05)
        one = httpx.post(server + "/api/analyze", files=upload([Path(lfw_paths[40])]), timeout=TIMEOUT)
        answered = time.monotonic()
        streaming.result()
    assert one.status_code == 200 and one.json()[0]["image"] == Path(lfw_paths[40]).name
    assert len(arrived) == 40 and sum(t > answered for t in arrived) >= 20, (arrived, answered)


@pytest.mark.parametrize("path", ["/api/analyze", "/api/profile"])
def test_a_client_that_gives_up_on_a_json_answer_leaves_no_work_behind(server, lfw_paths, path):
    """A client that stops waiting for a format=json answer: its photos still queued are
    cancelled, not analysed for nobody, so the next request is answered about as soon as a
    photo alone (the 120 photos' queue would hold it some 40 times as long)."""
    one = upload([Path(lfw_paths[0])])

    def seconds_for_one():
        started = time.monotonic()
        assert httpx.post(server + "/api/analyze", files=one, timeout=TIMEOUT).status_code == 200
        return time.monotonic() - started

    alone = sorted(seconds_for_one() for _ in range(3))[1]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server + path, files=upload([Path(p) for p in lfw_paths[:120]]),
                   timeout=httpx.Timeout(TIMEOUT, read=2))
    after = seconds_for_one()  # behind the few photos the workers had started: one each, and one queued
    assert after < 10 * alone, f"{after:.1f} s after the client left, {alone:.1f} s alone"


def test_an_annotate_client_that_gives_up_leaves_no_work_behind(server, lfw_paths, tmp_path):
    """/api/annotate's photo, queued behind another request's large photos, was analysed and
    drawn for a client that had gone (its folder kept until then), where /api/analyze's
    queued photos are cancelled."""
    big = tmp_path / "big.jpg"
    Image.open(lfw_paths[0]).resize((6000, 6000)).save(big, quality=70)
    arrived = []

    def stream():
        with httpx.stream("POST", server + "/api/analyze", params={"format": "jsonl"},
                          files=upload([big] * 6), timeout=TIMEOUT) as answer:
            for _ in answer.iter_lines():
                arrived.append(time.monotonic())

    def folders():
        return set(Path(tempfile.gettempdir()).glob("img2rec-web-*"))

    before = folders()
    with ThreadPoolExecutor(2) as pool:
        streaming = pool.submit(stream)
        deadline = time.time() + 60
        while not any((folder / "0.started").exists() for folder in folders() - before):  # the workers busy
            assert time.time() < deadline and not streaming.done()
            time.sleep(0.01)
        before = folders()
        annotating = pool.submit(httpx.post, server + "/api/annotate", files=upload([Path(lfw_paths[1])], "photo"),
                                 timeout=httpx.Timeout(TIMEOUT, read=0.5))
        mine = set()
        while not annotating.done():  # its upload's folder, seen while the client waits
            mine |= folders() - before
            time.sleep(0.005)
        with pytest.raises(httpx.ReadTimeout):
            annotating.result()
        left, started = time.monotonic(), []
        while any(folder.exists() for folder in mine) and time.monotonic() < left + 60:
            started += [mark for folder in mine for mark in folder.glob("*.started")]
            time.sleep(0.02)
        gone = time.monotonic()
        streaming.result()
    assert len(mine) == 1 and not started, (mine, started)  # never analysed
    assert len(arrived) == 6 and gone < arrived[-1], "the folder stayed until the other request was done"


def test_workers_killed_mid_request_answer_every_photo_and_come_back(trained, tmp_path, lfw_paths):
    """Every photo of the broken pool used to be answered "the worker died while analysing this
    photo", most of them only queued: each is analysed again, alone, and only a photo that
    kills that worker too would be lost."""
    photos = [Path(p) for p in lfw_paths[:20]]
    with serving(trained["model"], tmp_path / "serve.log") as (url, process):
        with httpx.stream("POST", url + "/api/analyze", params={"format": "jsonl"}, files=upload(photos),
                          timeout=TIMEOUT) as answer:
            lines = answer.iter_lines()
            records = [json.loads(next(lines))]
            workers = children(process.pid)
            assert len(workers) == 2
            for worker in workers:
                os.kill(worker, signal.SIGKILL)
            records += [json.loads(line) for line in lines]
        assert [r["image"] for r in records] == [p.name for p in photos]  # every photo answered once
        assert all(r["error"] is None for r in records), [r["error"] for r in records]
        again = httpx.post(url + "/api/analyze", files=upload(photos[:4]), timeout=TIMEOUT)
        assert again.status_code == 200 and all(r["error"] is None for r in again.json())
        # one photo whose worker dies: the death said at once, with no other photo to queue
        died = "serve.py: warning: a worker process died (killed for its memory, or crashed on a photo)"
        said = (tmp_path / "serve.log").read_text().count(died)
        assert said == 1  # the operator never knew
        # a worker killed as it works on one photo, to annotate or to preview: done again, alone
        big = tmp_path / "big.jpg"
        for route, side, quality in (("/api/annotate", 6000, 70), ("/api/preview", 7000, 95)):
            Image.open(photos[0]).resize((side, side)).save(big, quality=quality)
            answer = killed_as_it_starts(url, process, route, big)
            said += 1  # said before the photo's answer, whose work starts again alone after it
            assert answer.status_code == 200 and (tmp_path / "serve.log").read_text().count(died) == said, route
        with Image.open(io.BytesIO(answer.content)) as preview:
            assert preview.size == (1024, 1024)


def killed_as_it_starts(url, process, route, photo):
    """POST ``photo`` alone to ``route`` and kill the server's workers as soon as its work
    has started (its mark, :func:`~features.app.web.analyser.started`); the answer."""
    before = set(Path(tempfile.gettempdir()).glob("img2rec-web-*"))
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, url + route, files=upload([photo], "photo"), timeout=TIMEOUT)
        deadline = time.time() + 60
        while not any((folder / "0.started").exists()
                      for folder in set(Path(tempfile.gettempdir()).glob("img2rec-web-*")) - before):
            assert time.time() < deadline, f"{route}: the photo's work did not start"
            time.sleep(0.01)
        for worker in children(process.pid):
            os.kill(worker, signal.SIGKILL)
        return answer.result()


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_a_stop_sent_to_the_group_answers_the_queued_photos_at_once(trained, tmp_path, lfw_paths, number, code):
    """Ctrl-C in a terminal and systemd's stop signal the whole process group: the workers
    died mid-photo and every queued photo was answered "the worker died"; a SIGTERM to the
    server alone let the queue run to its end before it stopped.  Now the photos being
    analysed finish, the queued ones are answered at once as not analysed, and it exits; the
    feed's profile counts them apart from the failed (it counted them failed)."""
    from features.app.web.analyser import STOPPING

    photos = [Path(p) for p in lfw_paths[:80]]
    def own_group():
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job's ignored SIGINT, restored

    with serving(trained["model"], tmp_path / "serve.log", preexec_fn=own_group) as (url, process):
        with httpx.stream("POST", url + "/api/profile", params={"format": "jsonl"}, files=upload(photos),
                          timeout=TIMEOUT) as answer:
            lines = answer.iter_lines()
            records = [json.loads(next(lines)) for _ in range(3)]
            os.killpg(process.pid, number)
            sent = time.monotonic()
            *others, account = [json.loads(line) for line in lines]
            records += others
            answered = time.monotonic() - sent
        assert process.wait(timeout=60) == code
    assert [r["image"] for r in records] == [p.name for p in photos]  # every photo answered once
    stopped = [r for r in records if r["error"] == STOPPING]
    assert stopped and all(r["error"] is None for r in records if r not in stopped), {r["error"] for r in records}
    assert len(stopped) > 60 and answered < 20, (len(stopped), answered)
    assert records[3]["error"] is None  # being analysed at the signal: finished (a worker killed by it was not)
    counts = {key: account["profile"][key] for key in ("photos", "failed", "not_analysed")}
    assert counts == {"photos": 80 - len(stopped), "failed": 0, "not_analysed": len(stopped)}
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("route, cut_short", [
    ("/api/annotate", "not analysed: the server is stopping; send it again once it is back"),
    ("/api/preview", "the server is stopping; send it again once it is back")])
def test_a_picture_the_stop_cuts_short_is_a_503_not_the_photo_s_fault(trained, tmp_path, route, cut_short):
    """/api/annotate's answer is the picture: a photo the server's stop left unanalysed was a
    422, as if the photo were bad.  It is a 503 with Retry-After, as is /api/preview's.  (Half
    the upload is sent before the stop, the rest after: the request is open when the signal
    comes.)"""
    request = httpx.Request("POST", "http://x" + route, files=upload([TWO_PEOPLE], "photo"))
    body = request.read()
    with serving(trained["model"], tmp_path / "serve.log") as (url, process):
        host, port = url.removeprefix("http://").split(":")
        connection = HTTPConnection(host, int(port), timeout=60)
        try:
            connection.putrequest("POST", route)
            connection.putheader("Content-Type", request.headers["content-type"])
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body[:len(body) // 2])
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            connection.send(body[len(body) // 2:])
            answer = connection.getresponse()
            status, retry, detail = answer.status, answer.getheader("retry-after"), json.loads(answer.read())
        finally:
            connection.close()
    assert (status, retry) == (503, "10")
    assert detail == {"detail": f"{TWO_PEOPLE.name}: {cut_short}"}


def test_a_killed_servers_uploads_are_removed_at_the_next_start(trained, tmp_path):
    """A server killed mid-request (SIGKILL) left its request's photos in the temporary folder
    for good; the next server removes the folders of servers that no longer run, not others'."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"img2rec-web-{ended.pid}-"))
    (stale / "0").write_bytes(TWO_PEOPLE.read_bytes())
    running = Path(tempfile.mkdtemp(prefix=f"img2rec-web-{os.getpid()}-"))
    try:
        with serving(trained["model"], tmp_path / "serve.log", "--workers", "1"):
            assert not stale.exists() and running.exists()
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(running, ignore_errors=True)


def test_the_server_answers_with_the_model_and_catalog_it_started_with(trained, tmp_path):
    """/api/health names the model the server started with and /api/catalog its products; a
    request with options the workers had not seen made them load the model and the catalog
    again from disk, so a model retrained since, or a catalog edited, answered it while the
    others kept the first.  Here the model is replaced by one that decides a hat on every
    face and every product is renamed; a request with new options (the model's own detection
    threshold, given) must get the first answer.  Workers that die then, while idle, are
    started again and refuse the new file: said once in the log, not a traceback of 100
    lines per request, the photos in flight "not analysed" with why, every later request
    and /api/health a one-line 503 (health said "ok" while every analysis failed), until
    the first model is put back."""
    from features.model.model_io import load_model, save_model

    served, catalog = tmp_path / "model" / "model.joblib", tmp_path / "products.csv"
    served.parent.mkdir()
    shutil.copy(trained["model"], served)
    shutil.copy(trained["out"] / "model_card.json", served.parent)
    shutil.copy(ROOT / "data" / "products.csv", catalog)
    threshold = json.loads((served.parent / "model_card.json").read_text())["detector"]["threshold"]
    photos = [LFW / "Elton_John_0004.jpg", LFW / "Fred_Funk_0002.jpg", TWO_PEOPLE]
    with serving(served, tmp_path / "serve.log", "--catalog", str(catalog)) as (url, process):
        def records(**options):
            answer = httpx.post(url + "/api/analyze", params=options, files=upload(photos), timeout=TIMEOUT)
            assert answer.status_code == 200, answer.text
            return answer.json()

        first, first_sha = records(), httpx.get(url + "/api/health").json()["model"]["sha256"]
        model, card = load_model(served)
        save_model(model.with_decisions(min_probability={"hat": 0.0}), card, served)  # every face a hat
        catalog.write_text(catalog.read_text().replace(",hat,", ",hat,Edited ").replace(",beard,", ",beard,Edited ")
                           .replace(",eyewear,", ",eyewear,Edited "))
        assert records(detection_threshold=threshold) == first
        products = {p["name"] for p in httpx.get(url + "/api/catalog").json()}
        workers = children(process.pid)
        for worker in workers:  # idle: no photo of theirs to answer
            os.kill(worker, signal.SIGKILL)
        assert ended(workers)
        why = (f"{served}: another model than the one checked at the start (checksum "
               f"{json.loads(served.with_name('model_card.json').read_text())['model_sha256'][:12]}, checked "
               f"{first_sha[:12]}): the workers started again cannot load it; restart serve.py to serve the new "
               "model, or put back the one it started with")
        in_flight = records()
        assert [r["error"] for r in in_flight] == [f"not analysed: {why}"] * len(photos)
        for route, field in (("/api/analyze", "photos"), ("/api/profile", "photos"), ("/api/annotate", "photo")):
            refused = httpx.post(url + route, files=upload(photos[:1], field), timeout=TIMEOUT)
            assert (refused.status_code, refused.json()) == (503, {"detail": why}), route
        health = httpx.get(url + "/api/health")
        assert (health.status_code, health.json()) == (503, {"detail": why})
        shutil.copy(trained["model"], served)  # the model it started with, put back: served again, no restart
        shutil.copy(trained["out"] / "model_card.json", served.parent)
        assert httpx.get(url + "/api/health").status_code == 200 and records() == first
    log = (tmp_path / "serve.log").read_text()
    assert log.count(f"serve.py: error: {why}\n") == 1 and "Traceback" not in log
    assert log.count("serve.py: the model it started with is back: analysing again\n") == 1
    assert log.count("serve.py: warning: a worker process died") == 1  # its death, though no photo was queued
    faces = [face for record in first for face in record["faces"]]
    assert any("hat" not in face["labels"] for face in faces)
    names = {p["name"] for face in faces for p in face["recommendations"]}
    assert names and names <= products and not any(name.startswith("Edited") for name in products)


@pytest.mark.parametrize("entry, value", [(("thresholds", "hat"), 0.9), (("detector", "recheck_mmod"), False)])
def test_a_card_edited_to_other_thresholds_or_detector_is_refused(trained, tmp_path, entry, value):
    """The card is checked for form, the model's own values decide: a card edited to another
    threshold or detector setting was served, /api/health and the page showing what the
    decisions did not use."""
    served = tmp_path / "model.joblib"
    shutil.copy(trained["model"], served)
    card = json.loads((trained["out"] / "model_card.json").read_text())
    own = card[entry[0]][entry[1]]
    card[entry[0]][entry[1]] = value
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    command = [sys.executable, str(ROOT / "serve.py"), "--model", str(served), "--port", "0", "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"serve.py: error: {tmp_path / 'model_card.json'}: {'.'.join(entry)} {value!r} is not "
                             f"the model's ({own!r}): the card was edited; retrain with: python train.py, or put "
                             "the model's back\n")


def test_serve_without_a_model_says_so_in_one_line(tmp_path):
    command = [sys.executable, str(ROOT / "serve.py"), "--model", str(tmp_path / "none.joblib")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"serve.py: error: {tmp_path / 'none.joblib'}: no model file; make one with: python train.py\n"


def test_a_taken_port_is_said_at_once_in_one_line(trained):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        command = [sys.executable, str(ROOT / "serve.py"), "--model", str(trained["model"]), "--port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1
    assert result.stderr == f"serve.py: error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


@pytest.mark.parametrize("flags, error", [
    (["--port", "70000"], "--port 70000: must be from 0 to 65535"),
    (["--port", "-1"], "--port -1: must be from 0 to 65535"),
    (["--max-photo-mb", "nan"], "--max-photo-mb nan: must be from 0.001 to 10000"),
    (["--max-photo-mb", "inf"], "--max-photo-mb inf: must be from 0.001 to 10000"),
    (["--max-photo-mb", "1e-9"], "--max-photo-mb 1e-09: must be from 0.001 to 10000"),
    (["--max-photo-mb", "1e308"], "--max-photo-mb 1e+308: must be from 0.001 to 10000"),
    (["--body-timeout", "0.5"], "--body-timeout 0.5: must be from 1 to 3600"),
    (["--body-timeout", "nan"], "--body-timeout nan: must be from 1 to 3600"),
    (["--host", "é" * 64], f"--host {'é' * 64!r}: not a host name or address"),
    (["--host", ""], "--host is empty: give an address (0.0.0.0 for every interface)"),  # it bound every one
    (["--workers", str(MOST_WORKERS + 1)], f"--workers {MOST_WORKERS + 1}: must be from 1 to {MOST_WORKERS} "
                                           "(4 per CPU: more only wait for the CPUs, and take memory)"),
])
def test_a_wrong_argument_is_a_usage_error_before_anything_starts(tmp_path, flags, error):
    command = [sys.executable, str(ROOT / "serve.py"), "--model", str(tmp_path / "none.joblib"), *flags]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == f"serve.py: error: {error}", result.stderr


@pytest.mark.parametrize("host, shown", [("127.0.0.1", r"127\.0\.0\.1"), ("::1", r"\[::1\]"),
                                        ("0.0.0.0", re.escape(socket.gethostname())),
                                        ("::", re.escape(socket.gethostname()))])
def test_port_zero_serves_on_the_port_it_prints(trained, host, shown):
    """The URL printed is one a browser opens: an IPv6 address in brackets (``http://::1:8000/``
    was printed), the machine's name for every interface (``http://0.0.0.0:8000/`` was), and
    its address on the network of the host's family, where it has a route out, for a
    machine that does not know the name."""
    from serve import outward_address

    command = [sys.executable, str(ROOT / "serve.py"), "--model", str(trained["model"]), "--port", "0",
               "--workers", "1", "--host", host]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = next(line for line in process.stderr if "open http://" in line)
        url = re.search(rf"http://{shown}:(\d+)/", line)
        assert url and url.group(1) != "0", line
        assert line.endswith("; 1 worker\n"), line
        assert httpx.get(url.group(0) + "api/health", timeout=TIMEOUT).status_code == 200
        address = re.search(rf"{re.escape(url.group(0))} or (http://(\[[\da-f:]+\]|[\d.]+):{url.group(1)}/) \(API docs",
                            line)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        assert bool(address) == (host in ("0.0.0.0", "::") and outward_address(family) is not None), line
        if address:
            assert httpx.get(address.group(1) + "api/health", timeout=TIMEOUT).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_the_server_without_a_traceback(trained, tmp_path, presses):
    """Uvicorn raises a captured SIGINT again once it has shut down, which Python's default
    handler turned into a KeyboardInterrupt traceback; a second Ctrl-C, which exits at once,
    logged the lifespan's CancelledError with its traceback (SIGINT is restored here: a
    shell's background job ignores it, and so would the server)."""
    log = tmp_path / "serve.log"
    with serving(trained["model"], log, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as (_, process):
        for _ in range(presses):
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        assert process.wait(timeout=60) == 130
    assert "Traceback" not in log.read_text() and "KeyboardInterrupt" not in log.read_text(), log.read_text()


def test_a_background_server_ignores_ctrl_c_as_it_started(trained, tmp_path):
    """A server started with SIGINT ignored (``serve.py &`` from a script) keeps
    ignoring it, as recommend.py and train.py do: uvicorn's handler took its place, and the
    terminal's Ctrl-C stopped the server, which exited 0.  SIGTERM still stops it."""
    with serving(trained["model"], tmp_path / "serve.log",
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as (url, process):
        process.send_signal(signal.SIGINT)
        time.sleep(2)
        assert process.poll() is None and httpx.get(url + "/api/health").json()["status"] == "ok"
        process.terminate()
        assert process.wait(timeout=60) == -signal.SIGTERM


def test_workers_end_with_a_killed_server(trained, tmp_path):
    with serving(trained["model"], tmp_path / "serve.log") as (url, process):
        workers = children(process.pid)
        process.kill()  # no shutdown code runs: the kernel ends the workers
        process.wait()
        deadline = time.time() + 30
        while any(map(alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        assert workers and not any(map(alive, workers))


def test_csv_rows_are_the_parquet_rows(server, trained, photos, tmp_path):
    """The page's CSV download: the server flattens records exactly as recommend.py --output."""
    import pandas as pd

    out = tmp_path / "rows.parquet"
    *records, _ = recommend_lines(trained, photos[0].parent, "--output", str(out))
    answer = httpx.post(server + "/api/csv", json=records, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    text_columns = ("image", "labels", "status", "quality_reasons", "products", "product_names")
    table = pd.read_csv(io.StringIO(answer.text), dtype=dict.fromkeys(text_columns, str))
    parquet = pd.read_parquet(out)
    assert list(table.columns) == list(parquet.columns) and len(table) == len(parquet)
    for column in text_columns:
        assert table[column].fillna("").astype(str).tolist() == parquet[column].fillna("").astype(str).tolist()
    assert (table[["hat", "beard", "eyewear"]].fillna(-1) - parquet[["hat", "beard", "eyewear"]].fillna(-1)).abs().max().max() < 1e-9
    bad = httpx.post(server + "/api/csv", json=[{"image": "x"}], timeout=TIMEOUT)
    assert bad.status_code == 422
    assert bad.json() == {"detail": "records: expected the records of /api/analyze (0.width: Field required)"}


def test_a_summary_of_records_is_the_profile_of_their_photos(server, photos):
    """/api/summary, which the page calls for a drop sent in several requests: the records'
    summary is /api/profile's for the same photos, with its products per category; records
    of another shape and a field it does not read are one-line 422s."""
    account = httpx.post(server + "/api/profile", files=upload(photos), params={"per_category": 3},
                         timeout=TIMEOUT).json()
    answer = httpx.post(server + "/api/summary", json=account["records"], params={"per_category": 3}, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json() == {"profile": account["profile"]}
    assert account["profile"]["recommendations"] and account["profile"]["failed"] >= 1  # the feed's broken photo
    # a photo the page stopped before its answer: counted apart, not failed (nothing wrong with it)
    stopped = {"image": "b.jpg", "width": None, "height": None, "faces": [],
               "error": "not analysed: stopped on this page before its answer came"}
    answer = httpx.post(server + "/api/summary", json=account["records"] + [stopped], params={"per_category": 3},
                        timeout=TIMEOUT)
    assert answer.json() == {"profile": {**account["profile"], "not_analysed": 1}}
    assert account["profile"]["not_analysed"] == 0
    default = httpx.post(server + "/api/summary", json=account["records"], timeout=TIMEOUT).json()["profile"]
    assert len(default["recommendations"]) < len(account["profile"]["recommendations"])
    bad = httpx.post(server + "/api/summary", json=[{"image": "x"}], timeout=TIMEOUT)
    assert bad.status_code == 422
    assert bad.json() == {"detail": "records: expected the records of /api/analyze (0.width: Field required)"}
    # what the summary reads beyond a CSV row: each of a face's scores, types the model has (a 500)
    face = next(f for r in account["records"] for f in r["faces"] if f["quality"]["status"] == "ok")
    record = {"image": "a.jpg", "width": 1, "height": 1, "error": None}
    for changed, said in (({**face, "scores": {"hat": 0.5}}, "0.faces.0.scores: no 'beard'"),
                          ({**face, "types": {"beard": {"zzz": 0.9}}},
                           "0.faces.0.types.beard: 'zzz' is not one of stubble, moustache, goatee, full_beard")):
        for route in ("summary", "csv"):
            answer = httpx.post(f"{server}/api/{route}", json=[{**record, "faces": [changed]}], timeout=TIMEOUT)
            assert answer.status_code == 422 and answer.json() == {
                "detail": f"records: expected the records of /api/analyze ({said})"}
    typo = httpx.post(server + "/api/summary", json=[], params={"per_categry": 3}, timeout=TIMEOUT)
    assert typo.status_code == 422
    assert typo.json() == {"detail": "per_categry: not an option of /api/summary (its options: per_category)"}


@pytest.mark.parametrize("scores, unknown", [({"foo": 1}, "'foo'"),  # was a 500
                                             ({"image": 0.5, "face": 1, "hat": 0.5}, "'face', 'image'")])  # columns
def test_csv_of_scores_of_other_labels_is_a_one_line_422(server, trained, scores, unknown):
    labels = json.loads((trained["out"] / "model_card.json").read_text())["labels"]
    face = {"box": [1, 2, 3, 4], "scores": dict.fromkeys(labels, 0.5), "labels": [],
            "quality": {"status": "ok", "reasons": []}, "types": {}, "recommendations": []}
    record = {"image": "a.jpg", "width": 1, "height": 1, "error": None, "faces": [face]}
    assert httpx.post(server + "/api/csv", json=[record]).status_code == 200
    answer = httpx.post(server + "/api/csv", json=[record, {**record, "faces": [{**face, "scores": scores}]}])
    assert answer.status_code == 422
    assert answer.json() == {"detail": "records: expected the records of /api/analyze; their labels are "
                                       f"{', '.join(labels)}, not {unknown}"}


def test_the_schema_holds_every_key_of_a_published_record():
    """/api/csv's schema and the published record are written apart: a key added to one only
    would be refused, or not checked."""
    from features.app.records import PUBLIC_FACE_KEYS, PUBLIC_KEYS
    from features.app.web.schema import Face, Record

    assert set(Record.__annotations__) == set(PUBLIC_KEYS) and set(Face.__annotations__) == set(PUBLIC_FACE_KEYS)


@pytest.mark.parametrize("change, detail", [
    ({"box": [1, 2]}, "0.faces.0.box: List should have at least 4 items after validation, not 2"),
    ({"scores": {"hat": "high"}}, "0.faces.0.scores.hat: Input should be a valid number"),
    ({"scores": {"hat": "0.5"}}, "0.faces.0.scores.hat: Input should be a valid number"),  # not converted
    ({"scores": {"hat": True}}, "0.faces.0.scores.hat: Input should be a valid number"),
    ({"scores": {"hat": 1.5}}, "0.faces.0.scores.hat: Input should be less than or equal to 1"),
    ({"scores": {"x\nHTTP/1.1 200 OK": "no"}}, "0.faces.0.scores.x\\nHTTP/1.1 200 OK: Input should be a valid number"),
    ({"quality": {"status": "fine"}}, "0.faces.0.quality.status: Input should be 'ok' or 'uncertain'"),
    ({"types": {"hat": {"cap": "yes"}}}, "0.faces.0.types.hat.cap: Input should be a valid number"),
    # the rows read them (quality_reasons, product_names): unchecked, a record without them was a 500
    ({"quality": {"status": "ok"}}, "0.faces.0.quality.reasons: Field required"),
    ({"recommendations": [{"product_id": "HAT-003"}]}, "0.faces.0.recommendations.0.name: Field required"),
])
def test_csv_of_records_of_another_shape_says_what_is_wrong(server, change, detail):
    """Each of these was written as a row of junk (a box of two numbers, a score of text or
    over 1, a status no record has), with a 200; a key holding a line break stays on the
    error's one line."""
    face = {"box": [1, 2, 3, 4], "scores": {"hat": 0.5}, "labels": [], "quality": {"status": "ok", "reasons": []},
            "types": {}, "recommendations": [], **change}
    answer = httpx.post(server + "/api/csv", json=[{"image": "a.jpg", "width": 1, "height": 1, "error": None,
                                                   "faces": [face]}])
    assert answer.status_code == 422
    assert answer.json() == {"detail": f"records: expected the records of /api/analyze ({detail})"}


def test_csv_of_wrong_records_or_unreadable_json_is_said_at_once_in_one_line(server):
    """Every wrong item was made an error before the first was said: 2 million zeros held the
    server 17 s and 2.6 GB (the web audit).  A lone surrogate (JSON's "\\ud800") in a text
    was a 500: no CSV can hold it.  JSON that Python does not read was one 400 for all."""
    from pydantic import ValidationError

    from features.app.web.schema import RECORDS

    with pytest.raises(ValidationError) as wrong:
        RECORDS.validate_python([0] * 1000 + [{"image": 1, "faces": [0] * 1000}])
    assert wrong.value.error_count() == 1  # was 1,000 and more
    zeros = httpx.post(server + "/api/csv", content=b"[" + b"0," * 2_000_000 + b"0]",
                       headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert zeros.status_code == 422
    assert zeros.json() == {"detail": "records: expected the records of /api/analyze (0: Input should be a valid dictionary)"}
    # what FastAPI's 400 said only "There was an error parsing the body" for
    for body, why in ((b"[1, \xff]", "not JSON (not UTF-8 at byte 4)"),
                      (b"[" * 100_000 + b"]" * 100_000, "not JSON this server reads (nested too deep)"),
                      (b"[" + b"9" * 5000 + b"]", "not JSON this server reads (a number of over 4300 digits)")):
        unread = httpx.post(server + "/api/csv", content=body, headers={"content-type": "application/json"})
        assert unread.status_code == 400 and unread.json() == {"detail": f"request: {why}"}
    for route in ("/api/csv", "/api/summary"):  # it said "request: Field required"
        empty = httpx.post(server + route, content=b"", headers={"content-type": "application/json"})
        assert (empty.status_code, empty.json()) == (422, {"detail": "request: no JSON in it (an empty body)"}), route
    record = {"image": "a\ud800b.jpg", "width": 1, "height": 1, "error": None, "faces": []}
    lone = httpx.post(server + "/api/csv", content=json.dumps([record]), headers={"content-type": "application/json"})
    assert lone.status_code == 422
    assert lone.json() == {"detail": "records: expected the records of /api/analyze (0.image: not Unicode text (a lone surrogate))"}


def test_csv_types_are_the_most_probable_whatever_the_key_order(server, trained):
    """A client may send the records back with their keys sorted (json.dump sort_keys=True):
    the type columns are the most probable type, not the first key."""
    labels = json.loads((trained["out"] / "model_card.json").read_text())["labels"]
    types = {"hat": {"cap": 0.918, "beanie": 0.082}, "eyewear": {"clear": 0.7, "dark": 0.3}, "hat_colour": "navy"}
    face = {"box": [1, 2, 3, 4], "scores": dict.fromkeys(labels, 0.9), "labels": ["hat", "eyewear"],
            "quality": {"status": "ok", "reasons": []}, "types": types, "recommendations": []}
    record = {"image": "a.jpg", "width": 1, "height": 1, "error": None, "faces": [face]}
    answer = httpx.post(server + "/api/csv", content=json.dumps([record], sort_keys=True),
                        headers={"content-type": "application/json"})
    assert answer.status_code == 200
    [row] = csv.DictReader(io.StringIO(answer.text))
    assert (row["hat_type"], row["eyewear_type"], row["hat_colour"]) == ("cap", "clear", "navy")


def test_csv_does_not_hand_a_spreadsheet_a_formula(server, photos):
    """An uploaded photo's name is the row's ``image``: one named as a formula ran in the
    spreadsheet that opened the download.  It is quoted; a number is not."""
    content = photos[0].read_bytes()
    analysed = httpx.post(server + "/api/analyze", files=[("photos", ("=HYPERLINK(1+2).jpg", content, "image/jpeg"))],
                          timeout=TIMEOUT).json()
    answer = httpx.post(server + "/api/csv", json=analysed, timeout=TIMEOUT)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert rows and {row["image"] for row in rows} == {"'=HYPERLINK(1+2).jpg"}
    assert all(row["left"].isdigit() for row in rows)  # a face's numbers, as they were


def test_csv_of_a_drop_larger_than_one_request_of_photos(trained, tmp_path):
    """The page sends the records of a whole drop, many requests' worth of photos: /api/csv
    has its own body limit, not the photo requests' (here 1 photo of 50 KB, about 114 KB)."""
    labels = json.loads((trained["out"] / "model_card.json").read_text())["labels"]
    face = {"box": [1, 2, 3, 4], "scores": dict.fromkeys(labels, 0.5), "labels": [],
            "quality": {"status": "ok", "reasons": []}, "types": {}, "recommendations": []}
    records = [{"image": f"{n}.jpg", "width": 1, "height": 1, "error": None, "faces": [face]} for n in range(2000)]
    assert len(json.dumps(records)) > 300 * 1024
    with serving(trained["model"], tmp_path / "serve.log", "--max-photos", "1", "--max-photo-mb", "0.05") as (url, _):
        answer = httpx.post(url + "/api/csv", json=records, timeout=TIMEOUT)
    assert answer.status_code == 200 and len(list(csv.DictReader(io.StringIO(answer.text)))) == 2000


def test_a_row_says_why_its_face_is_not_judged_and_names_its_products():
    """The CSV (and Parquet) said "uncertain" where the page said "not judged: face 33 px
    wide, under 36 px", and gave the products by id alone."""
    from features.app.records import ROW_COLUMNS, flat_rows

    blurred = {"box": [1, 2, 30, 31], "scores": {"hat": 0.1, "beard": 0.9, "eyewear": 0.1}, "labels": [], "types": {},
               "recommendations": [], "quality": {"status": "uncertain", "reasons": [
                   "face 29 px wide, under 36 px", "blurred (sharpness 8, under 60)"]}}
    capped = {**blurred, "labels": ["hat"], "quality": {"status": "ok", "reasons": []},
              "recommendations": [{"product_id": "HAT-003", "name": "White trucker cap"},
                                  {"product_id": "HAT-004", "name": "Red baseball cap"}]}
    rows = flat_rows({"image": "a.jpg", "width": 40, "height": 40, "error": None, "faces": [blurred, capped]})
    assert [set(row) for row in rows] == [set(ROW_COLUMNS)] * 2
    assert rows[0]["quality_reasons"] == "face 29 px wide, under 36 px; blurred (sharpness 8, under 60)"
    assert rows[1]["quality_reasons"] == "" and rows[1]["products"] == "HAT-003,HAT-004"
    assert rows[1]["product_names"] == "White trucker cap; Red baseball cap"
