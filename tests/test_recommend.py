"""recommend.py end to end through the real CLI, with a model trained in this session."""
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from conftest import APPLE_DOUBLE_FILE, LFW, ROOT, alive, as_in_a_terminal, children, ended, free_port
from features.app.workers import MOST_WORKERS

TWO_PEOPLE = LFW / "Thaksin_Shinawatra_0005.jpg"


def run(trained, *args, timeout=600):
    """recommend.py with the session's model; a run that hangs fails its test (TimeoutExpired)."""
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@given(st.floats(0, 1), st.floats(0.0001, 1))
def test_a_score_shows_on_the_side_of_its_threshold_its_decision_is(probability, threshold):
    """Scores are shown to 4 decimals: to the nearest, 0.37064999 decided at 0.3706498 (a
    label) showed 0.3706, under the threshold the answer names (X-Thresholds); but the
    nearest wherever it stays on its side (0.00066 showed 0.0006 with the threshold at 0.54)."""
    from features.app.analysis import shown_score

    decided = probability >= threshold
    shown = shown_score(probability, threshold, decided=decided)
    assert (shown >= threshold) == decided and abs(shown - probability) <= 0.0001 + 1e-12
    nearest = round(probability, 4)
    assert shown == round(shown, 4) and shown_score(probability, threshold) == nearest
    assert shown == nearest or (nearest >= threshold) != decided


def check_record(record):
    assert set(record) == {"image", "width", "height", "faces", "error"}
    for face in record["faces"]:
        assert set(face) == {"box", "scores", "labels", "types", "quality", "recommendations"}
        assert {"hat" if f == "hat_colour" else f for f in face["types"]} <= set(face["labels"])
        assert set(face["quality"]) == {"width_px", "sharpness", "yaw_degrees", "touches_edge", "status", "failed", "reasons"}
        assert (face["quality"]["status"] == "ok") == (face["quality"]["reasons"] == face["quality"]["failed"] == [])
        if face["quality"]["status"] == "uncertain":  # scores shown, nothing decided or sold
            assert face["labels"] == [] and face["recommendations"] == [] and face["types"] == {}
        assert len(face["box"]) == 4 and set(face["scores"]) == {"hat", "beard", "eyewear"}
        assert all(0 <= p <= 1 for p in face["scores"].values())
        for product in face["recommendations"]:
            assert set(product) == {"product_id", "category", "name", "price", "score", "reason"}
            assert product["category"] in face["labels"]  # only categories the face has
        if not face["labels"]:
            assert face["recommendations"] == []


def test_json_lines_one_per_photo_in_order(trained, feed):
    result = run(trained, feed, "--json")
    photos = sorted(p for p in feed.iterdir())
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(photos)
    records = [json.loads(line) for line in lines]
    assert [r["image"] for r in records] == [str(p) for p in photos]
    for record in records:
        check_record(record)
    by_name = {r["image"].split("/")[-1]: r for r in records}
    assert by_name["broken.jpg"]["faces"] == [] and "not a recognised image" in by_name["broken.jpg"]["error"]
    assert by_name["coffee.jpg"] == {**by_name["coffee.jpg"], "faces": [], "error": None}
    assert len(by_name[TWO_PEOPLE.name]["faces"]) == 2
    assert len(by_name["astronaut photo é.PNG"]["faces"]) == 1
    assert result.returncode == 1  # the broken file failed, the others answered
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr


def test_good_photos_exit_zero_and_read_as_text(trained):
    from features.products.recommendations import headline

    result = run(trained, TWO_PEOPLE)
    assert result.returncode == 0, result.stderr
    assert "2 faces" in result.stdout and "face 2 at" in result.stdout
    faces = json.loads(run(trained, TWO_PEOPLE, "--json").stdout)["faces"]
    for face in faces:  # each face's own headline, as its record decides it
        assert f"    {headline(face['scores'], face['labels'], face['quality'])}\n" in result.stdout


def test_missing_path_is_reported_not_fatal(trained, tmp_path):
    """A name that reads as standard input or a web address says so: neither is read."""
    result = run(trained, tmp_path / "nope.jpg", "-", "https://example.com/a.jpg", TWO_PEOPLE, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["error"] for record in records[:3]] == [
        "no such file", "no such file (photos are read from files, not from standard input: save it to a file first)",
        "no such file (a web address? photos are read from files: download it first)"]
    assert len(records[3]["faces"]) == 2 and result.returncode == 1


def test_a_folder_s_avif_heic_and_jpe_photos_are_read(trained, tmp_path):
    """Pillow decodes AVIF and JPE, and each was analysed when named, but a folder scan passed
    them over: a folder of AVIF photos had "no photos".  An iPhone's HEIC was not read at all,
    and a folder of them had "no photos" too.  A Mac's AppleDouble file beside a photo (copied
    to a USB stick) is no photo: left out of the folder, by the page's drop too."""
    import re

    import pillow_heif  # its encoder: the project reads HEIC with pi-heif, a decoder alone
    from PIL import Image

    from features.vision.images import APPLE_DOUBLE, PHOTO_SUFFIXES, SYSTEM_FILES

    with Image.open(TWO_PEOPLE) as photo:
        photo.save(tmp_path / "people.avif")
        photo.save(tmp_path / "people.jpe", format="JPEG")
        pillow_heif.from_pillow(photo).save(tmp_path / "IMG_0001.HEIC", quality=90)  # as an iPhone names it
    (tmp_path / "._IMG_0001.HEIC").write_bytes(APPLE_DOUBLE_FILE)
    result = run(trained, tmp_path, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert [Path(r["image"]).name for r in records] == ["IMG_0001.HEIC", "people.avif", "people.jpe"]
    assert all(len(r["faces"]) == 2 for r in records)
    page = re.search(r"const PHOTO = /\\.\((.*?)\)\$/i", (ROOT / "features/app/web/static/app.js").read_text())
    assert all(re.fullmatch(page.group(1), suffix[1:]) for suffix in PHOTO_SUFFIXES)  # the page's drop reads them too
    script = (ROOT / "features/app/web/static/app.js").read_text()
    assert f'join() === "{",".join(map(str, APPLE_DOUBLE))}"' in script
    assert f"const SYSTEM_FILES = new Set({json.dumps(sorted(SYSTEM_FILES))});" in script  # the page's, alike


def test_a_folder_numbered_as_posted_keeps_its_order(trained, tmp_path):
    """Numbers in names by value: post_10.jpg came before post_2.jpg (plain name order)."""
    names = ["post_1.jpg", "post_2.jpg", "post_9.jpg", "post_10.jpg", "post_11.jpg"]
    for name in reversed(names):
        shutil.copy(LFW / "Elton_John_0004.jpg", tmp_path / name)
    result = run(trained, tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert [Path(json.loads(line)["image"]).name for line in result.stdout.splitlines()] == names


def test_help_names_every_detector():
    """--help names the detectors without loading them (OpenCV and dlib are not imported for
    --help), so the names are written there too: they are the detectors there are."""
    from features.vision.faces import DETECTORS

    result = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--help"], capture_output=True, text=True,
                            cwd=ROOT)
    named = re.search(r"--detector NAME face detector \(([^)]*)\)", " ".join(result.stdout.split()))
    assert result.returncode == 0 and sorted(named.group(1).split(", ")) == sorted(DETECTORS)


def test_an_empty_folder_is_said_not_skipped_silently(trained, tmp_path):
    (tmp_path / "empty" / "2026").mkdir(parents=True)
    result = run(trained, tmp_path / "empty", TWO_PEOPLE)
    assert result.returncode == 0 and "2 faces" in result.stdout
    assert f"warning: {tmp_path / 'empty'}: no photos in this folder (--recursive reads its sub-folders)" in result.stderr
    alone = run(trained, tmp_path / "empty")  # nothing to answer: an error, as --help says
    assert alone.returncode == 1 and alone.stdout == ""
    # a folder of other files names them, as a folder with photos names those it leaves out
    (tmp_path / "papers").mkdir()
    for name in ("notes.txt", "brief.pdf", ".DS_Store"):
        (tmp_path / "papers" / name).write_text("not a photo")
    papers = run(trained, tmp_path / "papers", TWO_PEOPLE)
    assert (f"warning: {tmp_path / 'papers'}: no photos in this folder; it holds 2 files that are not photos "
            "(brief.pdf, notes.txt)") in papers.stderr
    assert alone.stderr.splitlines()[-1] == f"recommend.py: error: no photos found in {tmp_path / 'empty'}"


def test_the_files_of_a_folder_that_are_not_photos_are_named(trained, tmp_path):
    """As the page names the files of a drop it does not send: a brief and a note beside the
    photos were left out without a word (hidden files, such as a Mac's .DS_Store, are no
    one's), and so was a sub-folder of photos without --recursive (but the --annotate
    folder, whose copies are the run's own)."""
    feed = tmp_path / "feed"
    (feed / "edits").mkdir(parents=True)
    shutil.copy(TWO_PEOPLE, feed / "post.jpg")
    shutil.copy(TWO_PEOPLE, feed / "edits" / "post-2.jpg")
    (feed / ".thumbnails").mkdir()
    for name in ("notes.txt", "brief.pdf", "reel.mp4", "story.mov", ".DS_Store", "Thumbs.db", "desktop.ini",
                 ".thumbnails/post.png.txt"):
        (feed / name).write_text("not a photo")
    result = run(trained, feed, "--json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    assert result.stderr == (f"recommend.py: warning: {feed}: left out 4 files that are not photos (brief.pdf, "
                             "notes.txt, reel.mp4, ...)\n"
                             f"recommend.py: warning: {feed}: left out 1 sub-folder with photos (edits; --recursive "
                             "reads it)\n")
    (feed / "edits" / "notes.txt").write_text("not a photo")
    below = run(trained, feed, "--json", "--recursive")
    assert len(below.stdout.splitlines()) == 2 and below.stderr == (
        f"recommend.py: warning: {feed}: left out 5 files that are not photos (brief.pdf, edits/notes.txt, "
        "notes.txt, ...)\n")
    # named as --recursive reads: a photo deeper down counts, a Mac's AppleDouble file does not,
    # and a hidden folder (an Android camera's .thumbnails, a copy of every photo) is not read
    (feed / "2024" / "june").mkdir(parents=True)
    shutil.copy(TWO_PEOPLE, feed / "2024" / "june" / "post.jpg")
    (feed / "mac").mkdir()
    (feed / "mac" / "._post.jpg").write_bytes(APPLE_DOUBLE_FILE)
    shutil.copy(TWO_PEOPLE, feed / ".thumbnails" / "post.jpg")
    assert "left out 2 sub-folders with photos (2024, edits; --recursive reads them)" in run(trained, feed).stderr
    assert len(run(trained, feed, "--json", "--recursive").stdout.splitlines()) == 3
    shutil.rmtree(feed / "2024")
    for _ in range(2):  # the second time, its folder holds the first one's copy
        copies = run(trained, feed, "--json", "--annotate", feed / "copies")
        assert copies.returncode == 0 and (feed / "copies" / "post.jpg").is_file()
        assert "sub-folder" not in copies.stderr.replace("1 sub-folder with photos (edits;", "")
    assert "left out 2 sub-folders with photos (copies, edits; --recursive reads them)" in run(trained, feed).stderr


def test_annotate_writes_images_that_open(trained, feed, tmp_path):
    out = tmp_path / "annotated"
    run(trained, feed, "--annotate", out, "--n-jobs", "2")
    written = sorted(p.name for p in out.iterdir())
    assert f"{TWO_PEOPLE.stem}.jpg" in written and "broken.jpg" not in written
    with Image.open(out / f"{TWO_PEOPLE.stem}.jpg") as image:
        assert image.size[0] >= 250


def test_a_file_name_that_is_not_utf8(trained, tmp_path):
    """Linux names are bytes: the annotated copy keeps them (OpenCV's imwrite crashed the
    worker on them), and the record names the photo alike in text, JSON and Parquet, each
    byte that is not UTF-8 as \\xff (the Parquet file could not be closed)."""
    name = os.fsdecode(b"bad\xff\xfename.jpg")
    shutil.copy(TWO_PEOPLE, tmp_path / name)
    shown = f"{tmp_path}/bad\\xff\\xfename.jpg"
    out = tmp_path / "out"
    result = run(trained, tmp_path / name, TWO_PEOPLE, "--json", "--n-jobs", "2", "--annotate", out,
                 "--output", out / "rows.parquet")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [shown, str(TWO_PEOPLE)]
    assert pq.read_table(out / "rows.parquet").column("image").to_pylist() == [shown] * 2 + [str(TWO_PEOPLE)] * 2
    assert sorted(os.listdir(os.fsencode(out))) == [f"{TWO_PEOPLE.stem}.jpg".encode(), b"bad\xff\xfename.jpg",
                                                     b"rows.parquet"]
    with Image.open(out / name) as image:
        assert image.size[0] >= 250
    text = run(trained, tmp_path / name)
    assert text.returncode == 0 and text.stdout.startswith(f"{shown} (250x250): 2 faces\n")


def test_a_file_name_with_a_line_break_stays_on_one_line(trained, tmp_path):
    """Each record, and each error, is one line of the text output or of stderr, whatever the
    name holds (a line break printed as it is split a photo's error in two)."""
    shutil.copy(TWO_PEOPLE, tmp_path / "two\npeople.jpg")
    (tmp_path / "bro\x1bken\n.jpg").write_bytes(b"not a photo")
    result = run(trained, tmp_path / "two\npeople.jpg", tmp_path / "bro\x1bken\n.jpg")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"{tmp_path}/two\\npeople.jpg (250x250): 2 faces"
    assert result.stderr.splitlines() == [f"recommend.py: {tmp_path}/bro\\x1bken\\n.jpg: not a recognised image format"]
    records = run(trained, tmp_path / "two\npeople.jpg", "--json")
    assert json.loads(records.stdout)["image"] == f"{tmp_path}/two\\npeople.jpg"
    (tmp_path / "no\u2028photos").mkdir()  # a line separator, as str.splitlines reads one; a folder's warning
    result = run(trained, tmp_path / "two\npeople.jpg", tmp_path / "no\u2028photos")
    assert f"recommend.py: warning: {tmp_path}/no\\u2028photos: no photos in this folder" in result.stderr.splitlines()
    shutil.copy(TWO_PEOPLE, tmp_path / "rtl\u202egpj.jpg")  # a right-to-left override drew "jpg.jpg" and the rest reversed
    assert run(trained, tmp_path / "rtl\u202egpj.jpg").stdout.startswith(f"{tmp_path}/rtl\\u202egpj.jpg (250x250)")


def test_a_stdout_that_is_not_utf8_gets_every_answer(trained):
    """The reasons' arrow on a Latin-1 stdout was a UnicodeEncodeError that ended the run
    before its first answer."""
    result = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]),
                             str(LFW / "Fred_Funk_0002.jpg"), "--min-probability", "hat=0.0001"],
                            capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "latin-1"})
    # the threshold to the four decimals scores are shown to (at three, 0.0001 read "0.000")
    assert result.returncode == 0 and result.stderr.startswith(b"recommend.py: thresholds: hat 0.0001,")
    assert result.stderr.count(b"\n") == 1 and b" \\u2192 " in result.stdout and result.stdout.decode("latin-1").startswith(f"{LFW}/Fred_Funk_0002.jpg")


@pytest.mark.parametrize("stem", ["x" * 251, "x" + "写" * 83])  # 255 and 254 bytes with .jpg: they fit
def test_annotated_copies_of_one_long_name_fit_a_file_name(stem):
    """A second photo of a 251-byte name could not get its copy: "-2" took it past 255 bytes."""
    from recommend import annotation_targets

    targets = annotation_targets([Path("a") / f"{stem}.jpg", Path("b") / f"{stem}.png", Path("c") / f"{stem}.jpg"],
                                 Path("out"))
    names = [target.name for target in targets]
    assert names[0] == f"{stem}.jpg" and len(set(names)) == 3
    assert all(len(os.fsencode(name)) <= 255 for name in names) and names[1].endswith("-2.jpg")
    assert all(name.encode("utf-8") for name in names)  # cut by whole characters
    assert names[2].endswith("-3.jpg") and names[1].removesuffix("-2.jpg") == names[2].removesuffix("-3.jpg")


def test_annotate_never_replaces_a_photo(trained, tmp_path):
    """Annotated copies written into the photos' own folder would replace them (a PNG's copy
    too, named .jpg), or a photo there that was not given (b.png's copy is b.jpg): refused
    before any photo is read, and the photos stay as they were."""
    shutil.copy(TWO_PEOPLE, tmp_path / "a.jpg")
    shutil.copy(TWO_PEOPLE, tmp_path / "b.jpg")
    Image.open(TWO_PEOPLE).save(tmp_path / "b.png")
    (tmp_path / "link").symlink_to(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    png = tmp_path / "b.png"
    for photos, folder, held in (([tmp_path], tmp_path, tmp_path / "a.jpg"), ([png, tmp_path / "b.jpg"], tmp_path, png),
                                 ([png], tmp_path, png), ([png], tmp_path / "link", png),
                                 ([TWO_PEOPLE, tmp_path / "link" / "b.png"], tmp_path, tmp_path / "link" / "b.png")):
        result = run(trained, *photos, "--annotate", folder)
        assert result.returncode == 2 and result.stdout == "", photos
        assert result.stderr == (f"recommend.py: error: --annotate {folder}: the folder holds the photo {held}, "
                                 "and annotated copies could replace its photos; choose a folder without them\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_annotate_replaces_its_own_copies_only(trained, tmp_path):
    """A folder of other photos, none given, where a photo's copy goes: the copy replaced a
    photo of the same name without a word.  Now only an annotated copy (its JPEG comment says
    so, as an earlier run's) is replaced; anything else there is a usage error before any
    photo is read, the folder as it was."""
    from features.app.annotation import COPY_MARK

    out = tmp_path / "out"
    photos = (TWO_PEOPLE, LFW / "Elton_John_0004.jpg", LFW / "Fred_Funk_0002.jpg")
    assert run(trained, *photos, "--annotate", out).returncode == 0
    copies = [out / f"{photo.stem}.jpg" for photo in photos]
    for photo, copy in zip(photos, copies):  # each copy says which photo it is of
        with Image.open(copy) as image:
            assert image.info["comment"] == COPY_MARK + b" of " + os.fsencode(os.path.abspath(photo))
            assert image.size[0] >= 250
    earlier = copies[0].read_bytes()
    copies[0].write_bytes(earlier.replace(COPY_MARK, b"an older copy, kept here", 1))  # no longer one of ours
    shutil.copy(LFW / "Chris_Whitney_0001.jpg", copies[1])  # another photo, of that name
    (out / "notes.txt").write_text("not in the way")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for named, said in ((photos, f"{copies[0]} is not an annotated copy, and a photo's copy would replace it (2 such "
                                 "files there); choose another folder, or move them"),
                        (photos[1:], f"{copies[1]} is not an annotated copy, and a photo's copy would replace it; "
                                     "choose another folder, or move it")):
        refused = run(trained, *named, "--annotate", out)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr == f"recommend.py: error: --annotate {out}: {said}\n"
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    copies[1].unlink()
    again = run(trained, *photos[1:], "--annotate", out)
    assert again.returncode == 0 and COPY_MARK in copies[1].read_bytes()[:256]  # written anew
    assert copies[2].stat().st_mtime_ns > (out / "notes.txt").stat().st_mtime_ns  # replaced: an earlier run's copy
    assert {name: data for name, data in before.items() if name != copies[1].name and name != copies[2].name} == {
        p.name: p.read_bytes() for p in out.iterdir() if p not in copies[1:]}


def test_annotate_refuses_what_only_looks_like_a_copy(trained, tmp_path):
    """Where a copy goes: a named pipe (reading it for the mark held the run for good), a link
    to a folder (the copy replaced the link), a text that starts with the mark's words: none
    is an annotated copy, each a usage error."""
    from features.app.annotation import COPY_MARK

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "folder").mkdir()
    target = out / f"{TWO_PEOPLE.stem}.jpg"
    for make in (os.mkfifo, lambda path: path.symlink_to(tmp_path / "folder"),
                 lambda path: path.write_bytes(COPY_MARK + b" (not really)")):
        make(target)
        result = run(trained, TWO_PEOPLE, "--annotate", out, timeout=120)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert f"{target} is not an annotated copy" in result.stderr
        assert os.path.lexists(target) and os.listdir(out) == [target.name]
        target.unlink()


def test_an_annotated_copy_that_cannot_be_written_keeps_the_analysis(trained, tmp_path):
    """A folder where one photo's copy should go: that copy cannot be moved into place, and is
    one line naming it and why; the photo's record is printed whole, the other photos get
    their copies, nothing staged is left behind, and the exit code is 1."""
    photos = [LFW / "Fred_Funk_0002.jpg", TWO_PEOPLE, LFW / "Elton_John_0004.jpg"]
    out = tmp_path / "out"
    (out / f"{TWO_PEOPLE.stem}.jpg").mkdir(parents=True)
    result = run(trained, *photos, "--json", "--n-jobs", "2", "--annotate", out)
    assert result.returncode == 1
    assert result.stderr == (f"recommend.py: error: {out / TWO_PEOPLE.stem}.jpg: cannot write the annotated copy "
                             "(Is a directory)\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in records] == list(map(str, photos))
    for record in records:
        check_record(record)
    assert len(records[1]["faces"]) == 2 and records[1]["error"] is None
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}.jpg" for p in photos)
    assert list((out / f"{TWO_PEOPLE.stem}.jpg").iterdir()) == []
    for photo in photos[::2]:
        with Image.open(out / f"{photo.stem}.jpg") as image:
            assert image.format == "JPEG"


def test_list_files_without_a_path_header(trained, tmp_path):
    """A one-column CSV without a header is a list of paths, its first line one of them; a CSV
    of several columns without a path column is refused, not read from its first column."""
    (tmp_path / "plain.csv").write_text(f"{TWO_PEOPLE}\n {TWO_PEOPLE}\n")
    result = run(trained, "--list", tmp_path / "plain.csv", "--json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2
    (tmp_path / "two.csv").write_text(f"a,b\n{TWO_PEOPLE},1\n")
    result = run(trained, "--list", tmp_path / "two.csv")
    assert result.returncode == 1 and "no path, image or filename column (columns: a, b)" in result.stderr


def test_list_csv_rows_must_have_the_header_fields(trained, tmp_path):
    """A comma in a name, unquoted, gives its row a field more: pandas read the first field of
    every such row as an index and the photo from the next (Fred.jpg of "Funk, Fred.jpg"); the
    row is refused instead, by its line.  Column names are read without case and spaces."""
    (tmp_path / "comma.csv").write_text("path,label\nodd/Funk, Fred.jpg,hat\n")
    result = run(trained, "--list", tmp_path / "comma.csv")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: {tmp_path / 'comma.csv'}: cannot read the list "
                             "(line 2 has 3 fields, the header 2)\n")
    # a short row that reaches the path, and an empty field more (a spreadsheet's), are read
    (tmp_path / "spaced.csv").write_text(f" Path ,label\n{TWO_PEOPLE},1\n\n{TWO_PEOPLE}\n{TWO_PEOPLE},1,\n")
    result = run(trained, "--list", tmp_path / "spaced.csv", "--json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3


def test_a_list_in_utf16_or_missing_is_one_line_naming_it(trained, tmp_path):
    """A list saved as UTF-16 (Windows' "Unicode text") became one "photo" per line, each a
    corrupt image with NUL bytes written to the terminal; a missing list repeated its name."""
    (tmp_path / "photos.csv").write_text(f"path\n{TWO_PEOPLE}\n", encoding="utf-16")
    result = run(trained, "--list", tmp_path / "photos.csv")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"recommend.py: error: {tmp_path / 'photos.csv'}: cannot read the list (not a list "
                             "of paths: it holds NUL bytes (UTF-16 text, or not text at all); save it as UTF-8)\n")
    result = run(trained, "--list", tmp_path / "none.txt")
    assert result.stderr == f"recommend.py: error: {tmp_path / 'none.txt'}: cannot read the list (No such file or directory)\n"


def test_a_list_names_folders_and_comments_as_documented(trained, feed, tmp_path):
    """A folder in the list is read as on the command line (it was "is a directory, not a
    photo"); a line starting with # is a comment, and ./#name reaches such a photo."""
    shutil.copy(TWO_PEOPLE, tmp_path / "#1.jpg")
    (tmp_path / "photos.txt").write_text(f"{feed}\n# {TWO_PEOPLE}\n#1.jpg\n./#1.jpg\n")
    result = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]),
                             "--list", "photos.txt", "--json"], capture_output=True, text=True, cwd=tmp_path)
    images = [json.loads(line)["image"] for line in result.stdout.splitlines()]
    assert images == [str(p) for p in sorted(feed.iterdir())] + ["#1.jpg"], result.stderr


def test_a_text_list_with_a_byte_order_mark(trained, tmp_path):
    """A list saved as "UTF-8 with BOM": the mark is not part of the first path."""
    (tmp_path / "photos.txt").write_text(f"\ufeff{TWO_PEOPLE}\n", encoding="utf-8")
    result = run(trained, "--list", tmp_path / "photos.txt", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["image"] == str(TWO_PEOPLE), result.stderr


def test_profile_of_a_folder(trained, feed):
    """The feed's profile is the one of the photos' own lines: its counts and shares,
    counted here from those lines, and the catalog's products for it."""
    from features.products.recommendations import load_catalog, profile as profile_of

    result = run(trained, feed, "--profile", "--json")
    lines = result.stdout.strip().splitlines()
    records, profile = [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])["profile"]
    read = [r for r in records if r["error"] is None]
    judged = [f for r in read for f in r["faces"] if f["quality"]["status"] == "ok"]
    assert len(records) == len(list(feed.iterdir())) and profile["photos"] == len(read) == len(records) - 1
    assert profile["failed"] == 1 and profile["faces"] == sum(len(r["faces"]) for r in read) >= 8
    assert profile["faces_judged"] == len(judged) and set(profile["labels"]) == {"hat", "beard", "eyewear"}
    for label, stats in profile["labels"].items():
        with_it = sum(any(label in f["labels"] for f in r["faces"]) for r in read)
        assert stats["photo_share"] == with_it / len(read)
        assert stats["mean_probability"] == round(float(np.mean([f["scores"][label] for f in judged])), 4)
    assert profile == profile_of(records, load_catalog())["profile"]
    seen = {label for label, stats in profile["labels"].items() if stats["photo_share"] > 0}
    assert {p["category"] for p in profile["recommendations"]} <= seen
    assert profile["headline"].startswith("We recommend") == bool(seen)


def test_a_reader_that_goes_away_before_the_profile(trained):
    """``| head -1``: the reader has the photo's line and is gone when the profile is printed
    (a second later: --min-probability loads the model to announce its thresholds first)."""
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(TWO_PEOPLE),
               "--json", "--profile", "--min-probability", "hat=0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert json.loads(process.stdout.readline())["image"] == str(TWO_PEOPLE)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_profile_never_reads_0_or_100_percent_for_a_share_that_is_not(trained, tmp_path):
    """1 face photo among 250 blank ones read "hat in 0% of photos" and "seen in 0% of 251
    photos" beside a hat product for the account."""
    from PIL import Image

    from features.app.text import share_text

    assert [share_text(s) for s in (1 / 251, 249 / 250, 0.5, 0, 1, 1 / 300_000)] == ["0.4%", "99.6%", "50%", "0%",
                                                                                    "100%", "0.0003%"]
    shutil.copy(TWO_PEOPLE, tmp_path / "a.jpg")
    Image.new("RGB", (50, 50), "white").save(tmp_path / "blank.png")
    for n in range(249):
        os.symlink(tmp_path / "blank.png", tmp_path / f"b{n:03}.png")
    result = run(trained, tmp_path, "--profile", "--min-probability", "hat=0,beard=0,eyewear=0")
    profile = result.stdout[result.stdout.index("profile: "):]
    assert "profile: 251 photos (0 failed), 2 faces" in profile
    assert "hat      in 0.4% of photos, 100% of faces" in profile
    assert "seen in 1 of 251 photos" in profile and " 0% " not in profile


def test_a_text_profile_says_types_in_words_and_figures_as_the_page():
    """"full_beard 0%" and a mean of 0.125 read "0.12" where the page shows "0.13"."""
    from features.app.text import format_profile

    stats = {"photo_share": 0.5, "face_share": 0.5, "mean_probability": 0.125}
    summary = {"profile": {"photos": 2, "failed": 0, "faces": 3, "faces_judged": 2, "labels": {"beard": stats},
                           "headline": "We recommend beard products", "recommendations": [],
                           "types": {"beard": {"full_beard": 1.0, "goatee": 0.0}}}}
    assert format_profile(summary).splitlines() == [  # the faces' shares: of those judged
        "profile: 2 photos (0 failed), 3 faces (1 not judged)", "  We recommend beard products",
        "  beard    in 50% of photos, 50% of the 2 faces judged, mean probability 0.13",
        "  beard among the faces with it (styles overlap): full beard 100%, goatee 0%"]
    # no style sure enough on any face: four styles at 0% read as no beard (helper-92)
    unsure = {**summary["profile"], "types": {"beard": {"full_beard": 0.0, "goatee": 0.0}}}
    assert format_profile({"profile": unsure}).splitlines()[-1] == (
        "  beard among the faces with it (styles overlap): no style at 0.5 or more")
    # no share of nothing: it read "0% of the 0 photos analysed", and a mean of no face "0.00"
    unjudged = {"photo_share": 0.5, "face_share": None, "mean_probability": None}
    none = {**summary["profile"], "faces": 1, "faces_judged": 0, "types": {}, "labels": {"beard": unjudged}}
    assert format_profile({"profile": none}).splitlines()[2:] == ["  beard    in 50% of photos"]
    failed = {"beard": dict.fromkeys(stats)}
    assert format_profile({"profile": {**none, "photos": 0, "failed": 2, "labels": failed}}).splitlines()[2:] == []


def test_a_profile_says_its_shares_are_of_the_photos_analysed(trained, tmp_path):
    """Under "2 photos (1 failed)", "in 100% of photos" read as of both."""
    shutil.copy(TWO_PEOPLE, tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"not a photo")
    result = run(trained, tmp_path, "--profile", "--min-probability", "hat=0,beard=0,eyewear=0")
    profile = result.stdout[result.stdout.index("profile: "):]
    assert "profile: 2 photos (1 failed), 2 faces" in profile
    assert "hat      in 100% of the 1 photo analysed, 100% of faces" in profile


def test_a_reader_of_stderr_that_goes_away_costs_no_photo(trained, feed):
    """``2>&1 >out | head -1``: the reader of the error lines goes away after the first; the
    next error line was taken for stdout's reader going, and the run ended there."""
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(feed),
               str(feed / "broken.jpg"), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert "broken.jpg" in process.stderr.readline()
    process.stderr.close()
    records = [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=120) == 1  # the broken photo
    assert len(records) == len(list(feed.iterdir())) + 1 and records[-1]["error"]


def test_stdout_that_cannot_be_written_is_one_line_and_keeps_the_output_file(trained, tmp_path):
    """A full disk under stdout was a traceback for the profile, and "OSError: [Errno 28]"
    for a record; a closed stdout (``>&-``) dropped every answer and exited 0."""
    import pandas as pd

    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(TWO_PEOPLE),
               str(TWO_PEOPLE), "--output", str(tmp_path / "rows.parquet")]
    with open("/dev/full", "w") as full:
        result = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == ("recommend.py: error: cannot write the answers to standard output (No space left on "
                             "device); stopped after 1 of 2 photos\n")
    assert len(pd.read_parquet(tmp_path / "rows.parquet")) == 2  # the photo answered: its two faces
    closed = subprocess.run(command, stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 2 and closed.stderr.startswith("recommend.py: error: standard output is closed")
    # stderr dead too (a terminal closed, ``> log 2>&1`` on a full disk): its line is lost, not the file
    (tmp_path / "rows.parquet").unlink()
    with open("/dev/full", "w") as full:
        assert subprocess.run(command, stdout=full, stderr=full, cwd=ROOT).returncode == 1
    assert len(pd.read_parquet(tmp_path / "rows.parquet")) == 2 and len(list(tmp_path.iterdir())) == 1
    # stderr closed (2>&-): print wrote its lines into stdout, among the answers
    quiet = subprocess.run(command[:-2] + [str(tmp_path / "missing.jpg"), "--json"], capture_output=True, text=True,
                           cwd=ROOT, preexec_fn=lambda: os.close(2))
    assert quiet.returncode == 1 and [json.loads(line)["image"] for line in quiet.stdout.splitlines()] == [
        str(TWO_PEOPLE), str(TWO_PEOPLE), str(tmp_path / "missing.jpg")]


def test_text_profile_counts_every_photo_given(trained, feed):
    """The JSON's photos are those analysed; the text says how many were given, and how many
    of them failed, in the singular for one."""
    given = len(list(feed.iterdir()))
    result = run(trained, feed, "--profile")
    assert re.search(rf"^profile: {given} photos \(1 failed\), \d+ faces$", result.stdout, re.M), result.stdout
    one = run(trained, LFW / "Fred_Funk_0002.jpg", "--profile")
    assert "\nprofile: 1 photo (0 failed), 1 face\n" in one.stdout


def test_one_worker_and_two_agree(trained, feed):
    """Chunks shared by two workers are answered in order, as one worker answers them."""
    one = run(trained, feed, "--json", "--n-jobs", "1").stdout
    two = run(trained, feed, "--json", "--n-jobs", "2").stdout
    assert one == two


def test_workers_are_bound_here_not_on_a_cluster(trained):
    """At most 4 local workers per CPU; a cluster's workers are its own (there --n-jobs only
    sizes the chunks), so a large --n-jobs goes on to the scheduler."""
    many = run(trained, TWO_PEOPLE, "--n-jobs", MOST_WORKERS + 1)
    assert many.returncode == 2 and many.stderr.endswith(
        f"recommend.py: error: --n-jobs {MOST_WORKERS + 1}: must be from 1 to {MOST_WORKERS} "
        "(4 per CPU: more only wait for the CPUs, and take memory)\n")
    address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    cluster = run(trained, TWO_PEOPLE, "--n-jobs", MOST_WORKERS + 1, "--scheduler", address)
    assert cluster.returncode == 1 and f"{address}: no Dask scheduler answers" in cluster.stderr


def test_usage_and_model_errors(trained, tmp_path):
    assert run(trained).returncode == 2
    typo = run(trained, "--jsn", "--recursve=1", TWO_PEOPLE)  # said with the nearest option, nothing analysed
    assert typo.returncode == 2 and typo.stdout == "" and typo.stderr.splitlines()[-1] == (
        "recommend.py: error: unrecognized arguments: --jsn (did you mean --json?) --recursve=1 (did you mean "
        "--recursive?)")
    missing = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model",
                              str(tmp_path / "none.joblib"), str(TWO_PEOPLE)],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 1 and "python train.py" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_long_feed_is_written_in_row_groups_and_read_back_whole(trained, tmp_path):
    """More rows than :data:`BATCH_ROWS` go out in groups as they come, none lost or
    reordered, and the file appears only when it is finished."""
    from features.app.outputs import BATCH_ROWS, ParquetSink
    from features.app.records import flat_rows

    record = json.loads(run(trained, TWO_PEOPLE, "--json").stdout)
    copies = BATCH_ROWS // len(record["faces"]) + 1
    sink = ParquetSink(tmp_path / "rows.parquet")
    for number in range(copies):
        sink.add({**record, "image": f"post_{number}.jpg"})
    assert not (tmp_path / "rows.parquet").exists()  # the first group is written to a staged file
    sink.close()
    written = pq.ParquetFile(tmp_path / "rows.parquet")
    assert written.metadata.num_row_groups == 2
    expected = [row for number in range(copies) for row in flat_rows({**record, "image": f"post_{number}.jpg"})]
    assert written.read().to_pylist() == expected and len(expected) > BATCH_ROWS


def test_the_readme_names_the_parquet_file_s_columns_in_order(trained, tmp_path):
    """The README lists the columns for people who read it, not the code: a file written here
    has those columns, in that order."""
    import re

    text = " ".join((ROOT / "README.md").read_text().split())
    listed = text.split("its face columns empty: ", 1)[1].split("; the web page's CSV", 1)[0]
    run(trained, TWO_PEOPLE, "--output", str(tmp_path / "rows.parquet"))
    assert re.findall(r"`(\w+)`", listed) == pq.read_schema(tmp_path / "rows.parquet").names


def test_outputs_that_cannot_be_written_are_one_line_errors(trained, tmp_path):
    """Checked before any photo is analysed; a Parquet file must be named as one."""
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder.parquet").mkdir()
    for option, message in ((["--output", tmp_path / "no" / "x.parquet"], "cannot write the file"),
                            (["--output", tmp_path / "a-folder.parquet"], "cannot write the file"),
                            (["--annotate", tmp_path / "a-file"], "a-file: not a folder"),
                            (["--annotate", "/proc"], "cannot write into the folder")):
        result = run(trained, TWO_PEOPLE, *option)
        assert result.returncode == 1 and result.stdout == "", option
        assert result.stderr.count("\n") == 1 and message in result.stderr and str(option[1]) in result.stderr
    result = run(trained, TWO_PEOPLE, "--output", tmp_path / "x.xlsx")
    assert result.returncode == 2 and "name it FILE.parquet (for programs) or FILE.csv (for spreadsheets)" in result.stderr


def test_a_csv_output_is_the_page_s_download_row_for_row(trained, tmp_path):
    """--output FILE.csv, for a spreadsheet: the rows of the Parquet file, written as the web
    page's CSV download is (behind a byte-order mark, a name a spreadsheet would run as a
    formula quoted)."""
    import pandas as pd

    from features.app.records import csv_text

    shutil.copy(TWO_PEOPLE, tmp_path / "=HYPERLINK(1).jpg")
    photos = [str(TWO_PEOPLE), "=HYPERLINK(1).jpg", "gone.jpg"]  # named from the working folder

    def run_here(*args):
        return subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=600)

    result = run_here(*photos, "--json", "--output", "rows.csv")
    assert result.returncode == 1 and "gone.jpg: no such file" in result.stderr  # the rest answered
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert (tmp_path / "rows.csv").read_bytes() == b"\xef\xbb\xbf" + csv_text(records).encode()
    run_here(*photos, "--output", "rows.parquet")
    table = pd.read_csv(tmp_path / "rows.csv", encoding="utf-8-sig", keep_default_na=False)
    parquet = pd.read_parquet(tmp_path / "rows.parquet")
    assert list(table.columns) == list(parquet.columns) and len(table) == len(parquet) == 5
    assert table["image"].tolist() == [str(TWO_PEOPLE)] * 2 + ["'=HYPERLINK(1).jpg"] * 2 + ["gone.jpg"]
    assert table["hat"][:4].astype(float).tolist() == parquet["hat"][:4].tolist()


@pytest.mark.parametrize("kind, photos", [("parquet", 6), ("csv", 24)])  # 24 photos: the CSV's rows pass a page
def test_a_full_disk_keeps_the_previous_file_and_the_printed_answers(trained, lfw_paths, small_disk, kind, photos):
    """The output file cannot be finished: one line naming it and why, exit code 1, every
    answer printed, and the file as it was before the run (the rows went to a temporary
    file beside it, removed)."""
    import pyarrow as pa

    folder, preexec = small_disk
    output = folder / f"rows.{kind}"
    pq.write_table(pa.table({"previous": [1]}), output) if kind == "parquet" else output.write_text("previous\n1\n")
    before = output.read_bytes()
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), *lfw_paths[:photos],
               "--json", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, preexec_fn=preexec)
    reason = "File too large" if preexec else "No space left on device"
    assert result.returncode == 1 and f"recommend.py: error: --output {output}: cannot write the file ({reason})" in (
        result.stderr), result.stderr
    # both written as they go, but under a page here: the disk is full when the file is finished
    assert len(result.stdout.splitlines()) == photos and result.stderr.count("\n") == 1
    assert output.read_bytes() == before
    assert {p.name for p in folder.iterdir()} == {output.name, *["filler"] * (preexec is None)}


def start_on_lfw(trained, output, *flags):
    """recommend.py on every LFW photo in two workers, in its own process group, with a
    terminal's handling of SIGINT and SIGHUP (a runner started in the background, or under
    nohup, ignores them, and so would recommend.py)."""
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(LFW),
               "--n-jobs", "2", "--output", str(output), *flags]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True, preexec_fn=as_in_a_terminal)


def rest_of(process, *, timeout):
    """The rest of ``process``'s text output and its errors once it ends, after a
    ``readline()``: ``communicate()`` reads the pipe itself, past what ``readline`` had
    buffered (a line cut in two, seen once in a CI run)."""
    out, err = process.stdout.read(), process.stderr.read()
    process.wait(timeout=timeout)
    return out, err


def test_ctrl_c_stops_quietly_and_keeps_what_was_written(trained, tmp_path):
    """As a terminal's Ctrl-C: SIGINT to the whole process group, workers included."""
    output = tmp_path / "part.parquet"
    process = start_on_lfw(trained, output)
    first = process.stdout.readline()  # a photo has been answered
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert first and process.returncode == 130, err
    assert re.search(r"interrupted after \d+ of \d+ photos", err) and "Traceback" not in err
    assert len(pq.read_table(output)) >= 1  # a valid file with the photos answered so far


def unprivileged(command):
    """``command`` without root's power to read every file (as it is for another user)."""
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command] if os.geteuid() == 0 else command


def test_unreadable_folders_and_model_are_one_line_each(trained, tmp_path):
    """A folder we may not list is an error naming it, a photo inside it that photo's error,
    and the other photos are answered; a model we may not read is one line, no traceback."""
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(TWO_PEOPLE, locked / "a.jpg")
    locked.chmod(0)
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), "--json"]
    try:
        result = subprocess.run(unprivileged([*command, str(TWO_PEOPLE), str(locked), str(locked / "a.jpg")]),
                                capture_output=True, text=True, cwd=ROOT)
    finally:
        locked.chmod(0o755)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [r["image"] for r in records] == [str(TWO_PEOPLE), str(locked / "a.jpg")]
    assert len(records[0]["faces"]) == 2 and records[1]["error"] == "permission denied"
    assert f"recommend.py: error: {locked}: cannot read the folder (Permission denied)\n" in result.stderr
    model = Path(shutil.copy(trained["model"], tmp_path))
    shutil.copy(trained["out"] / "model_card.json", tmp_path)
    model.chmod(0)
    result = subprocess.run(unprivileged([sys.executable, str(ROOT / "recommend.py"), "--model", str(model),
                                          str(TWO_PEOPLE)]), capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"recommend.py: error: {model}: cannot read the model (Permission denied)\n"


def test_a_folder_read_recursively_says_what_it_cannot_read(trained, tmp_path):
    """``--recursive`` left out a sub-folder it may not list (pathlib's rglob skips it), and
    every folder scan a link or pipe named as a photo, without a word and with exit 0: each is
    now an error naming it, as when given, and the other photos are answered."""
    feed = tmp_path / "feed"
    (feed / "locked").mkdir(parents=True)
    shutil.copy(TWO_PEOPLE, feed / "a.jpg")
    shutil.copy(TWO_PEOPLE, feed / "locked" / "b.jpg")
    (feed / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(feed / "pipe.png")
    (feed / "locked").chmod(0)
    try:
        result = subprocess.run(unprivileged([sys.executable, str(ROOT / "recommend.py"), "--model",
                                              str(trained["model"]), "--json", "--recursive", str(feed)]),
                                capture_output=True, text=True, cwd=ROOT, timeout=300)
    finally:
        (feed / "locked").chmod(0o755)
    records = {Path(r["image"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert sorted(records) == ["a.jpg", "gone.jpg", "pipe.png"]
    assert len(records["a.jpg"]["faces"]) == 2
    assert records["gone.jpg"]["error"] and records["pipe.png"]["error"]
    assert f"recommend.py: error: {feed / 'locked'}: cannot read the folder (Permission denied)\n" in result.stderr


@pytest.mark.parametrize("number, word", [(signal.SIGTERM, "terminated"), (signal.SIGHUP, "hung up")])
@pytest.mark.parametrize("kill", [os.killpg, os.kill], ids=["process-group", "parent-only"])
def test_sigterm_and_sighup_stop_like_ctrl_c(trained, tmp_path, kill, number, word):
    """SIGTERM (a service manager, a timeout) or SIGHUP (the terminal or SSH session closed)
    to the group or to the parent alone: exit 143 or 129, no traceback, every photo printed is
    in a Parquet file that reads, the workers end.  (SIGHUP killed the run: no Parquet file,
    a temporary one left.)"""
    output = tmp_path / "part.parquet"
    process = start_on_lfw(trained, output, "--json")
    first = process.stdout.readline()
    workers = children(process.pid)
    kill(process.pid, number)
    out, err = rest_of(process, timeout=120)
    assert first and process.returncode == 128 + number, err
    assert re.search(rf"^recommend.py: {word} after \d+ of \d+ photos$", err, re.M) and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # no temporary file left
    printed = {json.loads(line)["image"] for line in [first, *out.splitlines()]}
    assert printed <= set(pq.read_table(output).column("image").to_pylist())
    assert len(workers) == 2 and ended(workers)


def test_under_nohup_a_hang_up_stops_nothing(trained, tmp_path):
    """nohup ignores SIGHUP, and so do the run and its workers (the workers took it again,
    and died at a hang-up)."""
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(LFW),
               "--n-jobs", "2", "--output", str(tmp_path / "rows.parquet"), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert process.stdout.readline()
    workers = children(process.pid)
    os.killpg(process.pid, signal.SIGHUP)
    time.sleep(1)
    assert len(workers) == 2 and all(map(alive, workers)) and process.poll() is None
    os.killpg(process.pid, signal.SIGTERM)
    _, err = rest_of(process, timeout=120)
    assert process.returncode == 143 and "hung up" not in err, err


def test_a_killed_run_keeps_the_previous_file_and_ends_its_workers(trained, tmp_path):
    """SIGKILL cannot be handled: the Parquet file from before the run stays whole (the rows
    go to a temporary file), and the workers end with their parent (PR_SET_PDEATHSIG)."""
    import pyarrow as pa

    output = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"previous": [1]}), output)
    before = output.read_bytes()
    process = start_on_lfw(trained, output)
    assert process.stdout.readline()
    workers = children(process.pid)
    process.kill()
    process.communicate(timeout=60)
    assert output.read_bytes() == before
    assert len(workers) == 2 and ended(workers)


def test_ctrl_c_while_the_libraries_load_is_quiet(trained, tmp_path):
    """Ctrl-C as soon as recommend.py's code runs (its SIGTERM handler is set: SigCgt in
    /proc), while it imports its libraries: exit 130, no traceback."""
    process = start_on_lfw(trained, tmp_path / "rows.parquet")
    deadline = time.time() + 30
    while not int(Path(f"/proc/{process.pid}/status").read_text().split("SigCgt:")[1].split()[0], 16) \
            & 1 << (signal.SIGTERM - 1):
        assert time.time() < deadline, "recommend.py set no SIGTERM handler"
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == "" and "Traceback" not in err, err


def test_tampered_model_is_refused(trained, tmp_path):
    model = tmp_path / "model.joblib"
    shutil.copy(trained["model"], model)
    shutil.copy(trained["out"] / "model_card.json", tmp_path / "model_card.json")
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model", str(model), str(TWO_PEOPLE)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "checksum does not match" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_a_process_answers_only_with_the_model_the_run_checked(trained, tmp_path):
    """The processes that answer (forked workers, a cluster's) load the model themselves: one
    replaced after the run checked it (retrained mid-run, or another copy at the same path
    on a worker's host) is refused, naming both checksums, where it answered for the rest."""
    from features.app.analysis import worker_state
    from features.model.model_io import ModelError
    from features.products.recommendations import load_catalog

    from recommend import analysis_settings, parse_args

    card = json.loads((trained["out"] / "model_card.json").read_text())
    catalog = load_catalog()
    settings = analysis_settings(parse_args(["--model", str(trained["model"]), str(TWO_PEOPLE)]), card, catalog)
    assert settings.model_sha256 == card["model_sha256"]  # for every path: here, forked, on a cluster
    model, products = worker_state(settings)
    assert len(model.answer(np.asarray(Image.open(TWO_PEOPLE).convert("RGB")))) == 2 and products == catalog
    other = "0123456789ab" + card["model_sha256"][12:]
    with pytest.raises(ModelError) as refused:
        worker_state(dataclasses.replace(settings, model_sha256=other))
    assert str(refused.value) == (f"{trained['model']}: another model than the one checked at the start "
                                  f"(checksum {card['model_sha256'][:12]}, checked 0123456789ab)")


def test_detector_flags_override_the_models_setting_and_say_so(trained):
    default = run(trained, TWO_PEOPLE, "--json")
    assert "overrides" not in default.stderr
    strict = run(trained, TWO_PEOPLE, "--json", "--detector", "hog", "--detection-threshold", "5")
    assert strict.returncode == 0, strict.stderr
    assert "--detector hog, --detection-threshold 5.0 overrides the model's face detection" in strict.stderr
    assert json.loads(strict.stdout)["faces"] == []  # no HOG face scores 5
    wrong = run(trained, TWO_PEOPLE, "--detector", "viola-jones")
    assert wrong.returncode == 2 and "unknown detector" in wrong.stderr


def thresholds_said(stderr):
    """The thresholds recommend.py announces for --min-probability / --precision."""
    line = next(line for line in stderr.splitlines() if "thresholds:" in line)
    return {label: float(value) for label, value in
            (item.split() for item in line.split("thresholds:")[1].split(","))}


def decided_by(records, thresholds):
    """Every judged face's labels are exactly the scores reaching the thresholds."""
    faces = [f for r in records for f in r["faces"] if f["quality"]["status"] == "ok"]
    assert faces
    for face in faces:
        for label, t in thresholds.items():
            if abs(face["scores"][label] - t) > 1e-4:  # scores are rounded to 4 decimals
                assert (label in face["labels"]) == (face["scores"][label] >= t), (label, face)


def test_min_probability_sets_the_thresholds(trained, feed):
    result = run(trained, feed, "--json", "--min-probability", "hat=0,eyewear=0.6")
    said = thresholds_said(result.stderr)
    assert said["hat"] == 0 and said["eyewear"] == 0.6
    records = [json.loads(line) for line in result.stdout.splitlines()]
    decided_by(records, said)
    judged = [f for r in records for f in r["faces"] if f["quality"]["status"] == "ok"]
    assert all("hat" in f["labels"] for f in judged)  # hat=0: every judged face


def test_minus_zero_is_announced_as_zero(trained):
    result = run(trained, TWO_PEOPLE, "--min-probability", "hat=-0")
    assert result.returncode == 0 and thresholds_said(result.stderr)["hat"] == 0
    assert "hat 0.000" in result.stderr and "-0.000" not in result.stderr


def test_precision_picks_thresholds_from_out_of_fold_points(trained, feed):
    from features.model.model_io import load_model

    result = run(trained, feed, "--json", "--precision", "0.9")
    said = thresholds_said(result.stderr)
    classifier = load_model(trained["model"])[0].pipeline[-1]
    for j, label in enumerate(classifier.labels):
        points = classifier.operating_points_[j]
        reached = points["precision"] >= 0.9
        if reached.any():
            assert said[label] == pytest.approx(points["threshold"][reached][points["recall"][reached].argmax()], abs=1e-3)
        else:
            assert f"{label} never reaches precision 0.9" in result.stderr
    decided_by([json.loads(line) for line in result.stdout.splitlines()], said)


def test_a_precision_s_warning_is_said_once(trained, feed):
    """Each worker process printed Python's own warning (with a line of source) beside
    recommend.py's one line.  A precision of 0.2 decides every label for far more faces than
    have it (under 20% do), whatever the model; whether a model reaches precision 0.9999 at all
    depends on its training (``test_classifier.py`` tests a precision none reaches)."""
    result = run(trained, feed, "--json", "--precision", "0.2", "--n-jobs", "2")
    said = [line for line in result.stderr.splitlines() if "at precision 0.2: decided for" in line]
    assert said and all(line.startswith("recommend.py: warning: ") for line in said), result.stderr
    assert len(said) == len(set(said)) and "UserWarning" not in result.stderr


@pytest.mark.parametrize("option", [("--min-probability", "scarf=0.5"), ("--min-probability", "hat=1.5"),
                                    ("--min-probability", "hat"), ("--min-probability", "hat=0.5,hat=0.6"),
                                    ("--min-probability", "hat=0.5", "--min-probability", "beard=0.5,hat=0.6"),
                                    ("--precision", "0"), ("--detection-threshold", "-1"),
                                    ("--detection-threshold", "nan", "--detector", "hog"),
                                    ("--detection-threshold", "-2", "--detector", "hog"),  # 100 faces in one
                                    ("--scheduler", "garbage"), ("--scheduler", "http://127.0.0.1:8786"),
                                    ("--precision", "0.9", "--min-probability", "hat=0.5,beard=0.5,eyewear=0.5")])
def test_bad_decision_options_are_usage_errors(trained, option):
    result = run(trained, TWO_PEOPLE, *option)
    assert result.returncode == 2 and option[0] in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""  # refused before any photo


def test_text_scores_read_on_the_side_of_their_threshold(trained, feed):
    """At two decimals 0.3555 and 0.3572 (LFW photos) both read "0.36" beside a threshold of
    0.3566, one face labelled and one not, and "beard 0.36 -> no label" under
    --min-probability beard=0.36.  Each threshold here is a score rounded up to two decimals,
    so that some face's score reads as it and is under it."""
    import re

    records = [json.loads(line) for line in run(trained, feed, "--json").stdout.splitlines()]
    scores = [f["scores"] for r in records for f in r["faces"] if f["quality"]["status"] == "ok"]
    thresholds = {label: min((round(s[label], 2) for s in scores if round(s[label], 2) > s[label] > 0.005),
                             default=0.5) for label in scores[0]}
    option = ("--min-probability", ",".join(f"{label}={t}" for label, t in thresholds.items()))
    json_faces = [f for line in run(trained, feed, "--json", *option).stdout.splitlines()
                  for f in json.loads(line)["faces"]]
    text = run(trained, feed, *option).stdout
    lines = re.findall(r"^  face \d+ at \[.*?\]: (.*) -> (.*)$", text, flags=re.M)
    assert len(lines) == len(json_faces)
    shown = []
    for face, (scores_text, labels_text) in zip(json_faces, lines):
        read = {label: value for label, value in (item.split() for item in scores_text.split(", "))}
        shown += read.values()
        if face["quality"]["status"] == "ok":
            for label, t in thresholds.items():
                assert (float(read[label]) >= t) == (label in labels_text.split(", ")), (label, t, read, labels_text)
    assert any(len(value) > 4 for value in shown)  # some score needed a third decimal


def test_a_score_is_shown_with_the_decimals_that_tell_it_from_its_threshold():
    from features.numbers import score_text

    assert score_text(0.72, 0.37) == "0.72" and score_text(0.5, float("inf")) == "0.50"
    assert score_text(0.3554, 0.3566) == "0.355" and score_text(0.3571, 0.3566) == "0.3571"
    assert score_text(0.3571, 0.36) == "0.357"


def test_min_probability_given_again_adds_its_labels(trained):
    """The last --min-probability replaced the others: a campaign's hat=0.99 was dropped, and
    a face at 0.96 got hat products."""
    result = run(trained, TWO_PEOPLE, "--min-probability", "hat=0.99", "--min-probability", "eyewear=0.6")
    assert result.returncode == 0 and thresholds_said(result.stderr) | {"beard": 0} == {"hat": 0.99, "beard": 0,
                                                                                         "eyewear": 0.6}


@pytest.mark.parametrize("option", [("",), ("--annotate", ""), ("--output", ""), ("--list", ""), ("--model", ""),
                                    ("--catalog", "")])
def test_an_empty_path_is_a_usage_error_not_the_working_folder(trained, tmp_path, option):
    """``recommend.py "$PHOTO"`` with the variable unset analysed every photo of the working
    folder, and ``--annotate "$OUT"`` wrote the copies there."""
    shutil.copy(TWO_PEOPLE, tmp_path)
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), str(TWO_PEOPLE),
               *option]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith(": empty (an unset variable?); give . for the working folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == [TWO_PEOPLE.name]


def test_text_never_says_wears_under_one_half(trained, feed):
    """Over a feed of news photos, at the lowest thresholds, every "wears" sits on a score >= 0.5."""
    import re

    result = run(trained, feed, "--min-probability", "hat=0,beard=0,eyewear=0")
    claims = re.findall(r"(\w+) (?:wears|has) [^(]*\((\d\.\d\d)\)", result.stdout)
    hedged = re.findall(r"may (?:wear|have) [^(]*\((\d\.\d\d)\)", result.stdout)
    assert claims or hedged
    assert all(float(p) >= 0.5 and word in ("likely",) for word, p in claims), claims
    assert all(float(p) < 0.5 for p in hedged)


def test_answering_needs_no_xgboost(trained):
    """The saved model keeps its boosters as numpy trees: loading it and answering a photo
    (with the second look at hats and the product types) imports no XGBoost and starts none
    of its threads."""
    code = ("import sys; from features.model.model_io import load_model; "
            "from features.vision.images import load_image; "
            f"model, _ = load_model({str(trained['model'])!r}); "
            f"answers = model.answer(load_image({str(LFW / 'Fred_Funk_0002.jpg')!r})); "
            "print(len(answers), answers[0].probabilities['hat'] > 0.5, 'xgboost' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.split() == ["1", "True", "False"], result.stderr


def pool_workers(pid):
    """The pool workers of the recommend.py process ``pid``: its children forked from it (the
    same command line; multiprocessing's resource tracker has its own)."""
    def command(process):
        try:
            return Path(f"/proc/{process}/cmdline").read_bytes()
        except FileNotFoundError:
            return None
    return [child for child in children(pid) if command(child) == command(pid)]


@pytest.mark.parametrize("n_jobs", [2, 1])
def test_a_worker_killed_mid_run_costs_no_answer(trained, n_jobs):
    """A worker that dies (killed here as the kernel's OOM killer would) broke the pool: the run
    ended with `BrokenProcessPool`, the photos still queued unanswered.  Now the photos it may
    have been running are analysed again, alone, and the rest in a new pool."""
    photos = sorted(LFW.glob("*.jpg"))[:60]
    process = subprocess.Popen([sys.executable, str(ROOT / "recommend.py"), *map(str, photos), "--model",
                                str(trained["model"]), "--json", "--n-jobs", str(n_jobs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = process.stdout.readline()
        os.kill(pool_workers(process.pid)[0], signal.SIGKILL)
        rest, errors = rest_of(process, timeout=60)
    finally:
        process.kill()
    records = [json.loads(line) for line in [first, *rest.splitlines()]]
    assert process.returncode == 0 and errors == "", errors
    assert [record["image"] for record in records] == list(map(str, photos))
    assert all(record["error"] is None for record in records)


@pytest.mark.parametrize("n_photos, n_jobs", [(6, 2), (1, 2), (3, 1)])
def test_photos_whose_workers_keep_dying_are_each_answered_as_lost(trained, n_photos, n_jobs):
    """Every worker is killed as soon as it appears: each photo is answered, as lost, and the
    run ends (exit 1), where it stopped at the first death with no photo answered.  One photo,
    or ``--n-jobs 1``, too: they ran in recommend.py's own process, where a library crashing
    on the photo ended the run with no line naming it."""
    photos = sorted(LFW.glob("*.jpg"))[:n_photos]
    process = subprocess.Popen([sys.executable, str(ROOT / "recommend.py"), *map(str, photos), "--model",
                                str(trained["model"]), "--json", "--n-jobs", str(n_jobs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 120  # a run that retried forever would hang the suite
    try:
        while process.poll() is None:
            assert time.monotonic() < deadline, "the run did not end"
            for worker in pool_workers(process.pid):
                os.kill(worker, signal.SIGKILL)
            time.sleep(0.01)
        output, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    lost = "the worker died while analysing this photo"
    assert process.returncode == 1
    assert [json.loads(line) for line in output.splitlines()] == [
        {"image": str(photo), "width": None, "height": None, "faces": [], "error": lost} for photo in photos]
    assert errors.splitlines() == [f"recommend.py: {photo}: {lost}" for photo in photos]
