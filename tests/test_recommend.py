"""recommend.py end to end through the real CLI, with a model trained in this session."""
import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from conftest import LFW, ROOT

TWO_PEOPLE = LFW / "Thaksin_Shinawatra_0005.jpg"


def run(trained, *args):
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(trained["model"]), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


def check_record(record):
    assert set(record) == {"image", "width", "height", "faces", "error"}
    for face in record["faces"]:
        assert set(face) == {"box", "scores", "labels", "types", "recommendations"}
        assert {"hat" if f == "hat_colour" else f for f in face["types"]} <= set(face["labels"])
        assert len(face["box"]) == 4 and set(face["scores"]) == {"hat", "beard", "eyewear"}
        assert all(0 <= p <= 1 for p in face["scores"].values())
        for product in face["recommendations"]:
            assert set(product) == {"product_id", "category", "name", "price", "score", "reason"}
            assert product["category"] in face["labels"]  # only categories the face has
        if not face["labels"]:
            assert face["recommendations"] == []


@pytest.fixture(scope="module")
def feed(tmp_path_factory, lfw_paths, astronaut):
    """A folder of real photos, with a photo without a face and a broken file among them."""
    folder = tmp_path_factory.mktemp("feed")
    for path in lfw_paths[:6] + [str(TWO_PEOPLE)]:
        shutil.copy(path, folder)
    Image.fromarray(astronaut).save(folder / "astronaut photo é.PNG")
    from skimage import data
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    (folder / "broken.jpg").write_bytes(b"<html>this is not a photo</html>")
    return folder


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
    result = run(trained, TWO_PEOPLE)
    assert result.returncode == 0, result.stderr
    assert "2 faces" in result.stdout and "face 2 at" in result.stdout
    assert "We recommend" in result.stdout or "no product" in result.stdout


def test_missing_path_is_reported_not_fatal(trained, tmp_path):
    result = run(trained, tmp_path / "nope.jpg", TWO_PEOPLE, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["error"] == "no such file" and len(records[1]["faces"]) == 2
    assert result.returncode == 1


def test_annotate_writes_images_that_open(trained, feed, tmp_path):
    out = tmp_path / "annotated"
    run(trained, feed, "--annotate", out, "--n-jobs", "2")
    written = sorted(p.name for p in out.iterdir())
    assert f"{TWO_PEOPLE.stem}.jpg" in written and "broken.jpg" not in written
    with Image.open(out / f"{TWO_PEOPLE.stem}.jpg") as image:
        assert image.size[0] >= 250


def test_profile_of_a_folder(trained, feed):
    result = run(trained, feed, "--profile", "--json")
    lines = result.stdout.strip().splitlines()
    profile = json.loads(lines[-1])["profile"]
    assert profile["photos"] == len(lines) - 2 and profile["failed"] == 1
    assert set(profile["labels"]) == {"hat", "beard", "eyewear"}
    for stats in profile["labels"].values():
        assert 0 <= stats["photo_share"] <= 1 and 0 <= stats["mean_probability"] <= 1
    seen = {label for label, stats in profile["labels"].items() if stats["photo_share"] > 0}
    assert {p["category"] for p in profile["recommendations"]} <= seen
    assert profile["headline"].startswith("We recommend") == bool(seen)


def test_parallel_and_serial_runs_agree(trained, feed):
    serial = run(trained, feed, "--json", "--n-jobs", "1").stdout
    parallel = run(trained, feed, "--json", "--n-jobs", "2").stdout
    assert serial == parallel


def test_usage_and_model_errors(trained, tmp_path):
    assert run(trained).returncode == 2
    missing = subprocess.run([sys.executable, str(ROOT / "recommend.py"), "--model",
                              str(tmp_path / "none.joblib"), str(TWO_PEOPLE)],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 1 and "python train.py" in missing.stderr
    assert "Traceback" not in missing.stderr


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
