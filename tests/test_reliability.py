"""Odd but valid photos find their faces; broken ones fail alone; bombs cost no memory; a
broken catalog or model card stops a run with one line."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from features.files import StagedFile, write_atomically
from features.vision.faces import detect_faces
from features.vision.images import load_image
from conftest import LFW, ROOT


def variants(astronaut, folder):
    """The astronaut saved in every format a feed brings, each named oddly."""
    image = Image.fromarray(astronaut)
    made = {}
    made["gray"] = folder / "gray photo.jpg"
    image.convert("L").save(made["gray"], quality=95)
    made["cmyk"] = folder / "cmyk.JPG"
    image.convert("CMYK").save(made["cmyk"], quality=95)
    made["png16"] = folder / "sixteen-bit.png"
    Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257).save(made["png16"])
    made["rgba"] = folder / "alpha.PNG"
    image.convert("RGBA").save(made["rgba"])
    made["palette"] = folder / "palette.gif"
    image.convert("P", palette=Image.Palette.ADAPTIVE).save(made["palette"])
    made["webp"] = folder / "photo.webp"
    image.save(made["webp"], quality=95)
    made["exif"] = folder / "turned ünïcode.jpeg"
    exif = Image.Exif()
    exif[0x0112] = 3  # stored upside down
    image.transpose(Image.Transpose.ROTATE_180).save(made["exif"], quality=95, exif=exif)
    made["large"] = folder / "large.jpg"
    Image.fromarray(np.kron(astronaut, np.ones((8, 8, 1), np.uint8))).save(made["large"], quality=90)
    return made


@pytest.fixture(scope="module")
def odd_photos(tmp_path_factory, astronaut):
    return variants(astronaut, tmp_path_factory.mktemp("odd"))


@pytest.mark.parametrize("kind", ["gray", "cmyk", "png16", "rgba", "palette", "webp", "exif", "large"])
def test_valid_odd_photos_find_the_face(odd_photos, astronaut, kind):
    reference = detect_faces(astronaut)[0].box
    image = load_image(odd_photos[kind])
    faces = detect_faces(image)
    scale = image.shape[0] / astronaut.shape[0]
    # JPEG noise can add a weak false face on the suit; the real face must be among them
    assert min(np.abs(np.array(face.box) / scale - reference).max() for face in faces) < 10


def test_tiny_photo_has_no_face_and_no_error(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (12, 9), (200, 150, 120)).save(path)
    assert detect_faces(load_image(path)) == []


@pytest.mark.parametrize("detector", ["blazeface", "hog", "mmod"])
def test_very_thin_photos_have_no_face_and_no_error(tmp_path, detector):
    """A strip of a real photo 3000 pixels long and 1 or 5 wide: every detector's downscaled
    copy keeps a pixel a side (OpenCV refuses a size 0) and MMOD's network is not run on
    a copy too thin for it (dlib refuses it)."""
    from features.vision.faces import detection_settings

    row = np.asarray(Image.open(sorted(LFW.glob("*.jpg"))[0]).convert("RGB").resize((3000, 5)))
    for name, strip in (("3000x1", row[:1]), ("1x3000", row[:1].transpose(1, 0, 2)),
                        ("5x3000", row.transpose(1, 0, 2))):
        Image.fromarray(np.ascontiguousarray(strip)).save(tmp_path / f"{name}.png")
        image = load_image(tmp_path / f"{name}.png")
        assert f"{image.shape[1]}x{image.shape[0]}" == name
        assert detect_faces(image, settings=detection_settings(detector, None)) == [], name


def test_an_unknown_error_is_named_with_its_module():
    """OpenCV's exception is called "error": a photo's error line names it cv2.error, not
    "error: error: ..." (this very resize is what a 3000x1 photo used to fail on), as do the
    server's 500 and recommend.py's own last line (they wrote the bare name)."""
    import cv2

    from features.app.analysis import exception_text

    with pytest.raises(cv2.error) as caught:
        cv2.resize(np.zeros((1, 3000, 3), np.uint8), None, fx=0.3, fy=0.3)
    assert exception_text(caught.value).startswith("cv2.error: OpenCV(") and "\n" not in exception_text(caught.value)
    assert exception_text(ValueError("x\ny")) == "ValueError: x"


def test_decompression_bomb_is_refused_without_a_memory_spike(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(bomb)  # 900 Mpx: decoding would take ~900 MB
    # VmHWM (peak resident memory) starts afresh at exec, unlike ru_maxrss
    code = ("import sys; sys.path.insert(0, sys.argv[2]);"
            "from features.vision.images import load_image, ImageError\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageError as e:\n    print(e)\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    result = subprocess.run([sys.executable, "-c", code, str(bomb), str(ROOT)], capture_output=True, text=True)
    message, peak_kb = result.stdout.strip().splitlines()
    assert message.endswith("over the limit of 50 megapixels: save it smaller")
    assert int(peak_kb) < 300_000


def test_unreadable_file(celeba_paths):
    """A file its reader may not open. Root reads everything, so as root the loader runs as
    the unprivileged user nobody (setpriv), which real permissions then stop."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    path = folder / "locked.jpg"
    path.write_bytes(open(celeba_paths[0], "rb").read())
    path.chmod(0)
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from features.vision.images import load_image, ImageError\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageError as e:\n    print(e)")
    command = [sys.executable, "-c", code, str(path), str(ROOT)]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        probe = subprocess.run(command[:4] + [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                               "import features.vision.images", str(ROOT)], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("user nobody cannot read this checkout")
    result = subprocess.run(command, capture_output=True, text=True)
    shutil.rmtree(folder)
    assert result.stdout.strip() == f"{path}: permission denied", result.stderr


def test_feed_of_broken_and_odd_files(trained, odd_photos, tmp_path, celeba_paths):
    """recommend.py answers every good photo, fails each broken one alone, exit code 1."""
    folder = odd_photos["gray"].parent
    broken = {"empty.jpg": b"", "page.jpg": b"<!doctype html><html></html>",
              "cut.jpg": open(celeba_paths[1], "rb").read()[:700],
              "noise.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2048)}
    for name, data in broken.items():
        (folder / name).write_bytes(data)
    Image.new("1", (30000, 30000)).save(folder / "bomb.png")
    result = subprocess.run([sys.executable, str(ROOT / "recommend.py"), str(folder), "--json",
                             "--model", str(trained["model"])], capture_output=True, text=True, cwd=ROOT)
    records = {r["image"].split("/")[-1]: r for r in map(json.loads, result.stdout.splitlines())}
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for name in [*broken, "bomb.png"]:
        assert records[name]["error"] and records[name]["faces"] == [], name
        assert f"{name}: " in result.stderr
    for path in odd_photos.values():
        assert records[path.name]["error"] is None and len(records[path.name]["faces"]) >= 1, path.name


def assert_refused(message, photo, *options):
    """recommend.py and serve.py each stop with the one line ``message`` starts and exit code 1,
    recommend.py before it answers a photo."""
    for script, own in (("recommend.py", [str(photo), "--json"]), ("serve.py", ["--port", "0", "--workers", "1"])):
        result = subprocess.run([sys.executable, str(ROOT / script), *own, *options], capture_output=True, text=True,
                                cwd=ROOT)
        assert result.returncode == 1 and result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"{script}: error: {message}"), result.stderr


@pytest.mark.parametrize("added, line, problem", [
    ("HAT-999,hat", 55, "no name, price (the row has fewer fields than the header)"),
    ("HAT-999,hat,Cap,1e400,,,cap", 55, "price '1e400' is not a price"),  # JSON has no Infinity
    # an unquoted comma: the row made the settings unhashable (a TypeError at the first photo)
    ("HAT-999,hat,Cap,9,,,cap,white,Mesh-back, trucker", 55, "1 field(s) more than the header"),
])
def test_a_broken_catalog_line_is_refused_in_one_line(trained, celeba_paths, tmp_path, added, line, problem):
    catalog = tmp_path / "products.csv"
    catalog.write_text((ROOT / "data" / "products.csv").read_text(encoding="utf-8") + added + "\n", encoding="utf-8")
    assert len(catalog.read_text(encoding="utf-8").splitlines()) == line
    assert_refused(f"{catalog}, line {line}: {problem}", celeba_paths[0], "--model", str(trained["model"]),
                   "--catalog", str(catalog))


def test_a_catalog_without_a_category_is_refused_in_one_line(trained, celeba_paths, tmp_path):
    """Without a hat product a face decided hat would be told "We recommend hat products" and
    shown none: the catalog is refused at the start, by recommend.py and serve.py alike."""
    catalog = tmp_path / "products.csv"
    lines = (ROOT / "data" / "products.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    catalog.write_text("".join(line for line in lines if not line.startswith("HAT")), encoding="utf-8")
    assert_refused(f"{catalog}: no hat product (every category needs one: hat, beard, eyewear)",
                   celeba_paths[0], "--model", str(trained["model"]), "--catalog", str(catalog))


def test_a_model_card_that_is_not_an_object_is_refused_in_one_line(trained, celeba_paths, tmp_path):
    model = Path(shutil.copy(trained["model"], tmp_path))
    card = json.loads((trained["out"] / "model_card.json").read_text())
    (tmp_path / "model_card.json").write_text(json.dumps([card]))
    assert_refused(f"{tmp_path / 'model_card.json'}: not a JSON object", celeba_paths[0], "--model", str(model))


@pytest.mark.parametrize("edit, problem", [
    (lambda card: card.pop("networks"), "its card records no networks (made by an older version of img2recommender); "
                                         "retrain with: python train.py"),
    (lambda card: card["networks"].update({"efficientnet_lite0.onnx": "0" * 64}),
     "trained with other networks than features/vision/models holds (efficientnet_lite0.onnx); retrain with: "
     "python train.py"),
    (lambda card: card["networks"].update({"retired.onnx": "0" * 64}),
     "trained with other networks than features/vision/models holds (retired.onnx)"),
])
def test_a_model_trained_with_other_networks_is_refused_in_one_line(trained, celeba_paths, tmp_path, edit, problem):
    """The features come from the networks in ``features/vision/models``: a model whose card
    records other ones (a network exported again since, one gone) would be fed features it was
    not trained on.  The card is the record, checked against the files here."""
    model = Path(shutil.copy(trained["model"], tmp_path))
    card = json.loads((trained["out"] / "model_card.json").read_text())
    edit(card)
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert_refused(f"{model}: {problem}", celeba_paths[0], "--model", str(model))


def test_a_model_of_other_feature_rows_is_refused_in_one_line(trained, celeba_paths, tmp_path):
    """A model trained before the lower face's CNN crop loaded and then failed on every photo
    with scikit-learn's column count: recommend.py refuses it before the first photo."""
    model = Path(shutil.copy(trained["model"], tmp_path))
    card = json.loads((trained["out"] / "model_card.json").read_text())
    card["feature_blocks"]["cnn"] = 2560
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert_refused(f"{model}: its feature rows are not this code's (cnn: 2560 columns, this code makes 3840); "
                   "retrain with: python train.py", celeba_paths[0], "--model", str(model))


@pytest.mark.parametrize("edit, problem", [
    (lambda card: card.pop("detector"), "no detector;"),
    (lambda card: card.update(detector=None), "detector None is not an object"),
    (lambda card: card["detector"].update(upsample="2"), "detector.upsample '2' is not an integer"),
    (lambda card: card["detector"].update(method="sonar"), "detector: unknown detector 'sonar'"),
    (lambda card: card["thresholds"].pop("hat"), "no thresholds.hat;"),
    (lambda card: card["thresholds"].update(beard="0.4"), "thresholds.beard '0.4' is not a number"),
    (lambda card: card["thresholds"].update(beard=1.5), "thresholds.beard 1.5 is not a probability"),
    (lambda card: card.update(labels=["hat"]), "labels ['hat'] are not ['hat', 'beard', 'eyewear']"),
    (lambda card: card["dataset"].update(n_used=None), "dataset.n_used None is not an integer"),
    (lambda card: card.update(library_versions=[]), "library_versions is not an object"),
])
def test_a_model_card_edited_by_hand_is_refused_in_one_line(trained, celeba_paths, tmp_path, edit, problem):
    """The checksum covers the model, not the card: the entries recommend.py and serve.py
    read are checked before any photo."""
    model = Path(shutil.copy(trained["model"], tmp_path))
    card = json.loads((trained["out"] / "model_card.json").read_text())
    edit(card)
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert_refused(f"{tmp_path / 'model_card.json'}: {problem}", celeba_paths[0], "--model", str(model))


def test_a_file_written_whole_keeps_its_mode_and_only_an_output_follows_its_link(tmp_path):
    """``--output`` over a file made private left it readable by all after each run, and over a
    link made the link a file of its own, the file it named left as it was.  Every file written
    whole keeps the mode of the file it replaces (its permissions: no set-user-ID bit); a link
    is followed only where the user named it (``--output``): a stale link in an output folder
    (an annotated copy's name) must not lead a write outside it."""
    private = tmp_path / "rows.parquet"
    private.write_text("old")
    private.chmod(0o4600)
    write_atomically(private, lambda staged: Path(staged).write_text("new"))
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "rows.parquet"
    target.write_text("old")
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    staged = StagedFile(link, follow_link=True)
    Path(staged.name).write_text("new")
    staged.publish()
    assert link.is_symlink() and target.read_text() == "new"
    write_atomically(link, lambda staged: Path(staged).write_text("annotated"))  # not a link to follow
    assert not link.is_symlink() and link.read_text() == "annotated" and target.read_text() == "new"
    fresh = tmp_path / "fresh.json"
    write_atomically(fresh, lambda staged: Path(staged).write_text("{}"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["x" * 251 + ".jpg", "写" * 83 + ".jpg"])  # 255 and 253 bytes: they fit
def test_a_long_name_that_fits_is_written_whole(tmp_path, name):
    """The staged file's name adds 14 bytes to the target's: an annotated copy or an --output
    named over 241 bytes could not be written ("File name too long")."""
    target = tmp_path / name
    write_atomically(target, lambda temporary: Path(temporary).write_bytes(b"whole"))
    staged = StagedFile(target)
    staged.discard()
    assert target.read_bytes() == b"whole" and [p.name for p in tmp_path.iterdir()] == [name]
