"""The page in a real headless Chromium (Debian's), served by a real serve.py process."""
import json
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from itertools import count
from pathlib import Path

import httpx
import pytest

from conftest import APPLE_DOUBLE_FILE, LFW, children, ended, free_port, serving
from features.numbers import score_text
from features.app.text import format_types, share_text

MB = 2 ** 20
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1500")
# a beard, glasses, a hat and two people (the README's four photos), in name order as the page sorts them
PHOTOS = [LFW / f"{name}.jpg" for name in ("Chris_Whitney_0001", "Elton_John_0004", "Fred_Funk_0002",
                                           "Thaksin_Shinawatra_0005")]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's browser: apt-get install chromium chromium-driver (make test does it as root)")


@pytest.fixture
def browser():
    """Chromium, whose temporary files go to a folder removed after it: it leaves a folder for
    its single-instance socket in TMPDIR at every quit (one in /tmp per test, before).  Not
    the test's own folder: the socket's path would pass the 108 bytes a socket's may have."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    scratch = tempfile.mkdtemp(prefix="chromium-")
    try:
        service = Service(executable_path=str(CHROMEDRIVER), env={**os.environ, "TMPDIR": scratch})
        driver = webdriver.Chrome(service=service, options=options)
        yield driver
        driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # a helper of Chromium's may outlive quit()


def text_of(element, selector):
    from selenium.webdriver.common.by import By

    return [found.text for found in element.find_elements(By.CSS_SELECTOR, selector)]


def test_page_shows_each_face_its_labels_and_products(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    files = [("photos", (p.name, p.read_bytes())) for p in PHOTOS]
    account = httpx.post(server + "/api/profile", files=files, timeout=300).json()
    health = httpx.get(server + "/api/health").json()
    thresholds = health["model"]["thresholds"]

    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    # the model by its checksum: "Model 0.4.0" was the package's version; its thresholds in
    # words (a mark's tooltip alone, which a phone cannot point at)
    trained = health["model"]["trained_at"].replace("T", " ").replace("Z", " UTC")  # not the ISO stamp
    assert browser.find_element(By.ID, "model").text == (
        f"img2recommender {health['version']}, model {health['model']['sha256'][:12]} labels "
        + ", ".join(f"{label} at {round(thresholds[label], 4):g} or more" for label in ("hat", "beard", "eyewear"))
        + f"; trained {trained}")
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, PHOTOS)))
    WebDriverWait(browser, 180).until(
        lambda page: page.find_element(By.ID, "progress-text").text == f"{len(PHOTOS)} of {len(PHOTOS)} photos")

    cards = browser.find_elements(By.CSS_SELECTOR, "#photos .photo")
    assert [card.find_element(By.CSS_SELECTOR, "h2.name").text for card in cards] == [p.name for p in PHOTOS]
    for card, record in zip(cards, account["records"]):
        assert len(card.find_elements(By.CSS_SELECTOR, ".box")) == len(record["faces"])
        faces = card.find_elements(By.CSS_SELECTOR, "li.face")
        assert len(faces) == len(record["faces"])
        for shown, face in zip(faces, record["faces"]):
            assert text_of(shown, ".bar span:last-child") == [apart(p, thresholds[label])[0]
                                                               for label, p in face["scores"].items()]
            if face["quality"]["status"] != "ok":
                assert text_of(shown, ".label") == ["not judged: " + "; ".join(face["quality"]["reasons"])]
            else:
                assert text_of(shown, ".label") == (face["labels"] or ["no label: no product"])
            assert text_of(shown, ".types") == ([format_types(face["types"])] if face["types"] else [])
            assert text_of(shown, ".product .name") == [p["name"] for p in face["recommendations"]]
            # the reason without the name it ends with, given just above it
            assert text_of(shown, ".product .reason") == [p["reason"].removesuffix(f" → {p['name']}")
                                                          for p in face["recommendations"]]
    assert len(account["records"][3]["faces"]) == 2  # the two people are both boxed

    summary = browser.find_element(By.CSS_SELECTOR, ".summary")
    assert account["profile"]["headline"] in summary.find_element(By.TAG_NAME, "h2").text
    assert text_of(summary, ".product .name") == [p["name"] for p in account["profile"]["recommendations"]]
    assert text_of(summary, "td")[1::4] == [share_text(s["photo_share"]) for s in account["profile"]["labels"].values()]
    # 1 photo of 251 read "0%" (recommend.py's text too)
    shares = browser.execute_script("return [1 / 251, 249 / 250, 0.5, 0, 1, 1 / 300000, 1 / 8].map(percent)")
    assert shares == [share_text(share) for share in (1 / 251, 249 / 250, 0.5, 0, 1, 1 / 300000, 1 / 8)]
    assert shares == ["0.4%", "99.6%", "50%", "0%", "100%", "0.0003%", "13%"]  # 1/8: "12%" in Python's format
    # a score that is a half exactly reads alike in the text output and on the page
    assert browser.execute_script("return apart(0.125, 0.5)")[0] == score_text(0.125, 0.5) == "0.13"
    # types in the text's words and figures ("hat_colour", "full_beard" and 0.125's "0.12" were not)
    types = {"beard": {"full_beard": 0.125, "goatee": 0.1}, "hat": {"cap": 0.875}, "hat_colour": "navy"}
    assert browser.execute_script("return typeLine(arguments[0]).textContent", types) == format_types(types) \
        == "beard full beard 0.13, goatee 0.10; hat cap 0.88; hat colour navy"
    # the colour beside the hat's types, not after the beard's styles; without a hat type, where it is
    for types, said in (({"hat": {"cap": 0.875}, "hat_colour": "navy", "beard": {"goatee": 0.5}},
                         "hat cap 0.88; hat colour navy; beard goatee 0.5000"),
                        ({"eyewear": {"dark": 0.5}, "hat_colour": "navy", "beard": {"goatee": 0.5}},
                         "eyewear dark 0.50; hat colour navy; beard goatee 0.5000"),
                        # a style under the bar it is seen at does not read as on it
                        ({"beard": {"goatee": 0.499, "stubble": 0.2}, "eyewear": {"dark": 0.499}},
                         "beard goatee 0.499, stubble 0.20; eyewear dark 0.50")):
        # as JSON text: an object handed to the browser arrives with its keys sorted
        assert browser.execute_script("return typeLine(JSON.parse(arguments[0])).textContent",
                                      json.dumps(types)) == format_types(types) == said
    assert browser.find_element(By.ID, "download-csv").is_enabled()
    csv = browser.execute_async_script("csvText(state.records).then(arguments[arguments.length - 1])")
    assert csv.splitlines()[0].startswith("image,width,height,error,face,")
    assert len(csv.splitlines()) == 1 + sum(max(1, len(r["faces"])) for r in account["records"])

    screenshot = tmp_path / "web.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("IMG2REC_WEB_SCREENSHOT"):  # how the README's picture is made
        shutil.copy(screenshot, os.environ["IMG2REC_WEB_SCREENSHOT"])


def apart(probability, threshold):
    """The oracle of the page's ``apart``: a score and its threshold to two decimals, or more
    (up to four) until they differ, as JavaScript's toFixed rounds them."""
    decimals = 2
    while decimals < 4 and js_fixed(probability, decimals) == js_fixed(threshold, decimals):
        decimals += 1
    return js_fixed(probability, decimals), js_fixed(threshold, decimals)


def js_fixed(value, decimals):
    """JavaScript's ``toFixed``: half away from zero on the double's exact value."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def test_a_score_is_shown_apart_from_its_threshold(server, browser):
    """Scores of 0.3556 and 0.3647 against a threshold of 0.35665 all read "0.36" beside a mark
    titled "threshold 0.36", one face labelled and two not: the page shows the decimals that
    tell them apart."""
    browser.get(server + "/")
    for probability, threshold, expected in ((0.3556, 0.35665, ["0.356", "0.357"]), (0.3647, 0.35665, ["0.365", "0.357"]),
                                             (0.9, 0.36, ["0.90", "0.36"]), (0.3567, 0.35665, ["0.3567", "0.3567"])):
        assert browser.execute_script("return apart(arguments[0], arguments[1])", probability, threshold) == expected
        assert list(apart(probability, threshold)) == expected


def readable_sizes(size, limit):
    """The oracle of the page's ``overLimit``: both byte counts in MB from 1 MB up and in KB
    below, with the fewest decimals (from one) that tell them apart, a half rounded up (as
    ``toFixed`` does): not "0.1 MB over 0.0 MB", nor "20.0 MB over 20.0 MB"."""
    def text(n, decimals):
        scale, unit = (MB, "MB") if n >= MB else (1024, "KB")
        exact = Decimal(n) / scale  # a byte count over a power of two: a short decimal, exact
        return f"{exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)} {unit}"

    for decimals in count(1):
        texts = [text(n, decimals) for n in (size, limit)]
        if texts[0] != texts[1]:
            return texts


def test_a_photo_over_the_limit_is_not_sent_and_says_its_size(trained, browser, tmp_path, astronaut):
    """The page does not send a photo over the limit, and says its size beside the limit (the
    server, which cuts such a photo short, can only name the limit); its products-per-category
    box starts at the server's default."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from features.products.recommendations import PER_CATEGORY

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo, quality=95)
    limit = photo.stat().st_size - 1  # one byte too large: the sizes need several decimals
    with serving(trained["model"], tmp_path / "serve.log", "--max-photo-mb", repr(limit / 2 ** 20)) as (url, _):
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda page: "per photo" in page.find_element(By.ID, "limits").text)
        assert browser.find_element(By.ID, "limits").text.startswith(f"Up to {limit / 1024:.1f} KB per photo")
        browser.find_element(By.ID, "pick").send_keys(str(photo))
        status = WebDriverWait(browser, 30).until(lambda page: page.find_element(By.CSS_SELECTOR, ".photo.error .status"))
        assert status.text == "error: {} is over the limit of {} per photo".format(*readable_sizes(limit + 1, limit))
        assert "KB" in status.text and len(status.text.split()[1].split(".")[1]) > 1  # several decimals
        # halves, where rounding rules differ: 1.25 MB and 1280 bytes (1.25 KB)
        for size, most in ((int(1.3 * MB) + 1, int(1.25 * MB)), (1600, 1280), (21 * MB, 20 * MB)):
            said = browser.execute_script("return overLimit(arguments[0], arguments[1])", size, most)
            assert said == "{} is over the limit of {} per photo".format(*readable_sizes(size, most))
        assert browser.find_element(By.ID, "per-category").get_attribute("value") == str(PER_CATEGORY)


def test_a_file_name_with_quotes_is_shown_as_it_is(server, browser, tmp_path):
    """Chromium sends ``"`` in a file name as ``%22``: the card, the records and the CSV say the
    file's own name."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    name = 'say "hi" & <b>bold.jpg'
    shutil.copy(PHOTOS[0], tmp_path / name)
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys(str(tmp_path / name))
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    assert text_of(browser, "#photos .photo h2.name") == [name]
    faces = browser.execute_script("return state.records[0].faces.length")
    assert text_of(browser, ".summary p.muted") == [f"1 photo (0 failed), {faces} face{'' if faces == 1 else 's'}"]
    assert faces == 1  # the singular is what is shown
    assert browser.execute_script("return state.records.map((record) => record.image)") == [name]
    csv = browser.execute_async_script("csvText(state.records).then(arguments[arguments.length - 1])")
    assert csv.splitlines()[1].startswith('"say ""hi"" & <b>bold.jpg",')


@pytest.fixture(scope="module")
def limited(trained, tmp_path_factory):
    """serve.py with 3 photos per request and 1 MB per photo: drops go in several batches."""
    with serving(trained["model"], tmp_path_factory.mktemp("limited") / "serve.log", "--max-photos", "3",
                 "--max-photo-mb", "1") as (url, _):
        yield url


def content_of(element, selector):
    """The text of each element found, shown or folded away (a closed ``details``'s)."""
    from selenium.webdriver.common.by import By

    return [found.get_attribute("textContent") for found in element.find_elements(By.CSS_SELECTOR, selector)]


def summaries(browser):
    return [(title.split(":")[0], said) for title, said in zip(content_of(browser, ".summary h2"),
                                                              content_of(browser, ".summary p.muted"))]


def test_a_summary_counts_the_cards_of_its_range_refused_ones_too(limited, browser, tmp_path, astronaut, lfw_paths):
    """Each batch's summary names the cards it covers, and counts every photo of them: those
    the server could not read and the one over the size limit that was never sent are failed.
    Above them, the summary of all the photos (there was none), as the profile of all their
    records."""
    from features.products.recommendations import load_catalog, profile
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    big = tmp_path / "0-big.png"  # cards in name order: the big one, the broken one, then five photos
    Image.fromarray(np.kron(astronaut, np.ones((2, 2, 1), np.uint8))).save(big, compress_level=0)
    assert big.stat().st_size > MB
    (tmp_path / "1-broken.jpg").write_bytes(b"<html>not a photo</html>")
    for number, path in enumerate(lfw_paths[:5], start=2):
        shutil.copy(path, tmp_path / f"{number}-{Path(path).name}")
    browser.get(limited + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(str(p) for p in sorted(tmp_path.iterdir())))
    WebDriverWait(browser, 180).until(lambda page: len(page.find_elements(By.CSS_SELECTOR, ".summary")) == 3)
    records = browser.execute_script("return state.records")
    assert [r["image"] for r in records] == sorted(p.name for p in tmp_path.iterdir())
    faces = [len(r["faces"]) for r in records]
    judged = [sum(f["quality"]["status"] == "ok" for f in r["faces"]) for r in records]

    def counted(rows):  # "12 faces (3 not judged)": the faces' shares are of those judged
        found, unjudged = sum(faces[rows]), sum(faces[rows]) - sum(judged[rows])
        return f"{found} faces" + (f" ({unjudged} not judged)" if unjudged else "")

    assert summaries(browser) == [
        ("Account summary (all 7 photos)", f"7 photos (2 failed), {counted(slice(0, 7))}"),
        ("Account summary (photos 1–4)", f"4 photos (2 failed), {counted(slice(0, 4))}"),
        ("Account summary (photos 5–7)", f"3 photos (0 failed), {counted(slice(4, 7))}")]
    assert browser.find_element(By.ID, "progress-text").text == "7 of 7 photos (2 failed)"
    # the batches' summaries, which read as the account's, folded away under the drop's
    folded = browser.find_element(By.CSS_SELECTOR, "#summaries > details.batches")
    assert not folded.get_attribute("open") and len(folded.find_elements(By.CSS_SELECTOR, ".summary")) == 2
    assert folded.find_element(By.TAG_NAME, "summary").text == "Summaries per batch (2 batches)"
    # the shares' bases: the analysed photos (their head said "photos", under "4 photos")
    assert content_of(browser, ".summary th")[4:8] == ["label", "photos (of 2)", f"faces judged (of {sum(judged[:4])})",
                                                    "mean probability"]
    whole = profile(records, load_catalog())["profile"]
    first = browser.find_element(By.CSS_SELECTOR, ".summary")
    assert first.find_element(By.TAG_NAME, "h2").text == f"Account summary (all 7 photos): {whole['headline']}"
    assert text_of(first, "th")[1:3] == ["photos (of 5)", f"faces judged (of {sum(judged)})"]
    assert text_of(first, "td")[1::4] == [share_text(s["photo_share"]) for s in whole["labels"].values()]
    assert text_of(first, ".product .name") == [p["name"] for p in whole["recommendations"]]
    lines = {"hat": "Hats", "beard": "Beard care", "eyewear": "Eyewear"}  # a heading per line, in its order
    assert text_of(first, "h3") == [lines[c] for c in dict.fromkeys(p["category"] for p in whole["recommendations"])]
    # the drop's summary is the one downloaded (there was no way to keep it)
    assert browser.find_element(By.ID, "download-summary").is_enabled()
    assert browser.execute_script("return state.summary") == whole
    # one the server could not make is asked again on request (it was lost, and its download)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/summary*"]})
    browser.find_element(By.ID, "pick").send_keys("\n".join(str(p) for p in sorted(tmp_path.iterdir())))
    WebDriverWait(browser, 180).until(lambda page: page.find_elements(By.CSS_SELECTOR, "#summaries > .error-text"))
    unreachable = "the server cannot be reached (stopped or restarting); try again once it is back"
    assert text_of(browser, "#summaries > .error-text") == [f"No summary of all the photos: {unreachable} Summarise again"]
    assert not browser.find_element(By.ID, "download-summary").is_enabled()
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    browser.find_element(By.CSS_SELECTOR, "#summaries > .error-text button").click()
    assert browser.switch_to.active_element.get_attribute("id") == "summaries"  # not the page's start
    WebDriverWait(browser, 60).until(lambda page: page.find_element(By.ID, "download-summary").is_enabled())
    assert not browser.find_elements(By.CSS_SELECTOR, "#summaries > .error-text")
    assert summaries(browser)[0] == ("Account summary (all 7 photos)", f"7 photos (2 failed), {counted(slice(0, 7))}")
    assert browser.execute_script("return state.summary") == whole
    # records the server refuses (422) are refused again: said, and not offered again
    browser.execute_script("state.records[0].width = 'wide'; summariseDrop(state.run, state.controller.signal, 3, 2)")
    WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, "#summaries > .error-text"))
    refusal = httpx.post(limited + "/api/summary", json=browser.execute_script("return state.records"), timeout=60)
    assert refusal.status_code == 422
    assert text_of(browser, "#summaries > .error-text") == [f"No summary of all the photos: {refusal.json()['detail']}"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#summaries > .error-text button")


def test_a_new_drop_cancels_the_one_being_analysed(limited, browser, lfw_paths):
    """Picking photos while a drop is still being analysed: the page shows the new drop alone,
    and nothing of the old one arrives later (its request is aborted, its batches not sent)."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(limited + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(lfw_paths[:30]))  # 10 batches
    progress = WebDriverWait(browser, 120, poll_frequency=0.05).until(
        lambda page: (text := page.find_element(By.ID, "progress-text").text) != "0 of 30 photos" and text)
    assert progress != "30 of 30 photos"  # the first drop is still being analysed
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, PHOTOS)))
    WebDriverWait(browser, 120).until(lambda page: len(page.find_elements(By.CSS_SELECTOR, ".summary")) == 3)
    time.sleep(3)  # time for the old drop's next answers, were it still running
    assert browser.find_element(By.ID, "progress-text").text == "4 of 4 photos"
    assert text_of(browser, "#photos .photo h2.name") == [p.name for p in PHOTOS]
    assert browser.execute_script("return state.records.map((record) => record.image)") == [p.name for p in PHOTOS]
    assert [title for title, _ in summaries(browser)] == ["Account summary (all 4 photos)", "Account summary (photos 1–3)",
                                                          "Account summary (photo 4)"]
    assert browser.find_element(By.ID, "download-jsonl").is_enabled()


def test_stop_leaves_the_photos_still_waiting_not_analysed_and_a_retry_finishes_the_drop(limited, browser, lfw_paths):
    """Stop, while a drop of 10 requests is analysed: the photos without an answer say they
    were not analysed, nothing more arrives, and the photos answered are summarised, the
    summary saying it is partial (only a new drop stopped one); Retry sends those photos and
    the drop ends as if never stopped."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(limited + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    assert not browser.find_element(By.ID, "progress-box").is_displayed()  # before a drop (it showed, empty)
    browser.find_element(By.ID, "pick").send_keys("\n".join(lfw_paths[:30]))
    WebDriverWait(browser, 120, poll_frequency=0.05).until(
        lambda page: page.find_element(By.ID, "progress-text").text != "0 of 30 photos")
    browser.find_element(By.ID, "stop").click()
    WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, ".summary"))
    stopped = "not analysed: stopped on this page before its answer came"
    statuses = text_of(browser, "#photos .status")
    left = statuses.count(stopped)
    assert 0 < left < 30 and all("error" not in status for status in statuses[:30 - left]), statuses
    said = browser.find_element(By.ID, "progress-text").text
    assert said == f"{30 - left} of 30 photos ({left} not analysed)"  # not "30 of 30": read as done
    bar = browser.find_element(By.ID, "progress")
    assert (bar.get_property("value"), bar.get_property("max")) == (30 - left, 30)  # not full: photos not analysed
    assert not browser.find_element(By.ID, "stop").is_displayed()
    assert browser.switch_to.active_element.get_attribute("id") == "retry"  # not lost with the Stop pressed
    time.sleep(3)  # time for the stopped requests' next answers, were they still read
    assert text_of(browser, "#photos .status") == statuses
    assert content_of(browser, ".summary h2")[0].startswith(f"Account summary ({30 - left} of 30 photos): ")  # not "all"
    assert browser.find_element(By.ID, "announce").get_attribute("textContent") == f"Stopped: {said}"
    assert content_of(browser, ".summary p.muted")[0].startswith(f"30 photos (0 failed, {left} not analysed), ")
    assert content_of(browser, ".summary .error-text")[0] == (
        f"Partial: {left} of 30 photos not analysed (stopped on this page before its answer came): "
        "this summary leaves them out")
    # the server's summary of the drop counts them apart, not as failed (it said "failed": 15),
    # and so does its file, which names them
    server = browser.execute_script("return state.summary")
    assert (server["photos"], server["failed"], server["not_analysed"]) == (30 - left, 0, left)
    summary = json.loads(browser.execute_script("return summaryFile()"))
    assert (summary["profile"]["photos"], summary["profile"]["failed"], summary["profile"]["not_analysed"],
            len(summary["not_analysed"])) == (30 - left, 0, left, left)
    browser.find_element(By.ID, "retry").click()
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "30 of 30 photos"
                                      and page.find_elements(By.CSS_SELECTOR, ".summary"))
    assert all("error" not in status for status in text_of(browser, "#photos .status"))
    assert browser.find_element(By.ID, "progress").get_property("value") == 30
    assert browser.execute_script("return state.records.map((record) => record.image)") == [
        Path(path).name for path in lfw_paths[:30]]
    assert len(content_of(browser, ".summary")) == 1 and not content_of(browser, ".summary .error-text")
    assert browser.find_element(By.ID, "download-summary").is_enabled()
    # the focus handed on by each button that hid itself: Retry to Stop, Stop to the downloads
    assert browser.switch_to.active_element.get_attribute("id") == "download-jsonl"


def test_stop_leaves_the_previews_not_asked_yet_for_their_button_or_a_retry(limited, browser, lfw_paths, tmp_path):
    """A drop of 30 TIFFs, which Chromium cannot show: each is sent again for its preview.
    Stop stopped the analysis but not the previews still waiting, every photo sent again;
    those are left with a note and its button, and Retry asks them with the photos not
    analysed."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tiffs = []
    for path in lfw_paths[:30]:
        tiffs.append(tmp_path / f"{Path(path).stem}.tif")
        Image.open(path).save(tiffs[-1])
    browser.get(limited + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, tiffs)))
    WebDriverWait(browser, 120, poll_frequency=0.05).until(
        lambda page: page.find_element(By.ID, "progress-text").text != "0 of 30 photos")
    browser.find_element(By.ID, "stop").click()
    WebDriverWait(browser, 60).until(lambda page: page.find_element(By.ID, "retry").is_displayed()
                                     and not browser.execute_script("return previews.running"))
    notes = text_of(browser, ".preview-note")
    stopped = "(no preview yet: the browser cannot show this file, and Stop was pressed before it was asked) Ask again"
    assert 0 < notes.count(stopped) == len(notes) < 30, notes
    browser.find_element(By.ID, "retry").click()
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "30 of 30 photos"
                                      and not text_of(page, ".preview-note"))
    assert all(frame.is_displayed() for frame in browser.find_elements(By.CSS_SELECTOR, ".frame"))


def test_a_card_s_annotated_picture_is_the_api_s_saved_by_the_photo_s_name(server, browser, tmp_path):
    """A card's "Annotated picture" saves recommend.py --annotate's picture of its photo (the
    API's, with the drop's products per category) as NAME-annotated.jpg: a crowd on a card is
    250 px wide, its numbers shown only when pointed at."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    saved = tmp_path / "downloads"
    saved.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(saved)})
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "per-category").clear()
    browser.find_element(By.ID, "per-category").send_keys("1")
    browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[3]))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    browser.find_element(By.CSS_SELECTOR, ".photo button.annotated").click()
    name = f"{PHOTOS[3].stem}-annotated.jpg"
    WebDriverWait(browser, 120).until(lambda _: (saved / name).exists() and not list(saved.glob("*.crdownload")))
    with PHOTOS[3].open("rb") as photo:
        api = httpx.post(server + "/api/annotate", params={"per_category": 1}, files={"photo": (PHOTOS[3].name, photo)},
                         timeout=120)
    assert api.status_code == 200 and (saved / name).read_bytes() == api.content
    # the picture says which photo it is of, as uploaded (not the server's private copy of it)
    assert b"img2recommender annotated copy of " + PHOTOS[3].name.encode() + b"\xff" in api.content
    assert browser.find_element(By.CSS_SELECTOR, ".photo .annotated-note").text == ""


def test_the_csv_downloaded_is_the_api_s_behind_a_byte_order_mark_for_spreadsheets(server, browser, tmp_path):
    """The CSV button's file, as the browser saves it: the API's CSV for the same records
    behind UTF-8's byte-order mark, without which Excel read "Café Zoë.jpg" in the system's
    code page ("CafÃ© ZoÃ«.jpg"), under the drop's name."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "Café Zoë.jpg"
    shutil.copy(PHOTOS[0], photo)
    saved = tmp_path / "downloads"
    saved.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(saved)})
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys(str(photo))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    browser.find_element(By.ID, "download-csv").click()
    WebDriverWait(browser, 30).until(lambda _: [p for p in saved.iterdir() if p.suffix == ".csv"])
    [file] = saved.iterdir()
    assert file.name == f"img2recommender-{browser.execute_script('return state.stamp')}-1-photo.csv"
    records = browser.execute_script("return JSON.stringify(state.records)")  # in its keys' order, as sent
    api = httpx.post(server + "/api/csv", content=records, headers={"Content-Type": "application/json"}).content
    assert not api.startswith(b"\xef\xbb\xbf") and file.read_bytes() == b"\xef\xbb\xbf" + api
    assert file.read_text(encoding="utf-8-sig").splitlines()[1].startswith("Café Zoë.jpg,")


def test_a_retry_says_a_photo_over_a_limit_lowered_since_the_drop_on_its_card(trained, browser, tmp_path):
    """serve.py restarted on its port with a lower size limit between a drop and its retry:
    the photo now over it is said on its card, as at a drop, not sent (its 413 failed every
    photo of its request, at every retry)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serving(trained["model"], tmp_path / "before.log") as (url, _):
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/profile*"]})
        browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, PHOTOS[:2])))
        WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "progress-text").text
                                         == "0 of 2 photos (2 not analysed)")
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    port = int(url.rsplit(":", 1)[1])
    with serving(trained["model"], tmp_path / "after.log", "--max-photo-mb", "0.008", port=port):
        limit = httpx.get(url + "/api/health").json()["limits"]["max_photo_bytes"]
        assert PHOTOS[1].stat().st_size <= limit < PHOTOS[0].stat().st_size  # the first photo over it
        browser.find_element(By.ID, "retry").click()
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text
                                          == "2 of 2 photos (1 failed)")
        statuses = text_of(browser, "#photos .status")
    assert statuses[0].startswith("error: ") and "is over the limit of" in statuses[0] and "not analysed" not in statuses[0]
    assert statuses[1].startswith("250×250: ")
    assert not browser.find_element(By.ID, "retry").is_displayed()
    failed = browser.find_element(By.CSS_SELECTOR, "#photos .photo.error .status")  # a photo's error: red (was grey)
    assert failed.text == statuses[0] and failed.value_of_css_property("color") == "rgba(187, 0, 0, 1)"


def test_a_download_that_fails_says_so(trained, browser, tmp_path):
    """The CSV is made by the server: when it cannot answer (here it has stopped), the page
    says so beside the button, not only in the browser's console."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serving(trained["model"], tmp_path / "serve.log") as (url, process):
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
        WebDriverWait(browser, 120).until(
            lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
        process.terminate()
        process.wait(timeout=30)
        browser.find_element(By.ID, "download-csv").click()
        WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "download-error").text)
        assert browser.find_element(By.ID, "download-error").text.startswith("The CSV could not be made: ")


def test_the_api_docs_render_every_route_offline(server, browser):
    """/docs showed "Unable to render this definition": swagger-ui-bundle's Swagger UI 4.15
    cannot read the OpenAPI 3.1 FastAPI writes.  The page lists each route, from local files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/docs")
    WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    shown = set(text_of(browser, ".opblock-summary-path"))
    assert {"/api/analyze", "/api/profile", "/api/annotate", "/api/preview", "/api/health", "/api/csv", "/api/catalog"} <= shown
    assert "Unable to render" not in browser.page_source


def test_a_wrong_products_per_category_or_no_photo_is_said_once_and_nothing_is_sent(server, browser, tmp_path):
    """A box of 0, 25 or 1.5 sent the drop, and the server refused every photo for it (each card
    red, "not analysed: per_category: ..."); a drop of files none of which is a photo did
    nothing at all.  Each is said once beside the drop zone, and no photo is sent."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    box = browser.find_element(By.ID, "per-category")
    assert box.get_attribute("max") == str(httpx.get(server + "/api/health").json()["limits"]["max_per_category"])
    for value in ("0", "25", "1.5"):
        box.clear()
        box.send_keys(value)
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
        # checked once /api/health has answered the drop (it raced the first look here)
        WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "drop-error").text)
        assert browser.find_element(By.ID, "drop-error").text == "Products per category: a whole number from 1 to 20"
        assert not browser.find_elements(By.CSS_SELECTOR, "#photos .photo")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    box.clear()
    box.send_keys("1")
    browser.find_element(By.ID, "pick").send_keys(str(notes))
    assert browser.find_element(By.ID, "drop-error").text == ("No photo among the 1 file(s) (JPEG, PNG, WebP, AVIF, HEIC, "
                                                              "GIF, BMP or TIFF)")
    # a Mac's AppleDouble files picked alone (they look like photos by name) say what they are
    doubles = [tmp_path / "._IMG_0001.JPG", tmp_path / "._IMG_0002.JPG"]
    for double in doubles:
        double.write_bytes(APPLE_DOUBLE_FILE)
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, doubles)))
    WebDriverWait(browser, 30).until(lambda page: "AppleDouble" in page.find_element(By.ID, "drop-error").text)
    assert browser.find_element(By.ID, "drop-error").text == (
        "No photo among the 2 file(s) (JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP or TIFF): ._IMG_0001.JPG, ._IMG_0002.JPG "
        "are a Mac's AppleDouble files (Finder data kept beside photos), not photos")
    browser.find_element(By.ID, "pick").send_keys(str(doubles[0]))
    WebDriverWait(browser, 30).until(lambda page: "0002" not in page.find_element(By.ID, "drop-error").text)
    assert browser.find_element(By.ID, "drop-error").text.endswith(
        ": ._IMG_0001.JPG is a Mac's AppleDouble file (Finder data kept beside a photo), not a photo")
    browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    assert browser.find_element(By.ID, "drop-error").text == ""
    faces = httpx.post(server + "/api/analyze", params={"per_category": 1},
                       files=[("photos", (PHOTOS[0].name, PHOTOS[0].read_bytes()))], timeout=300).json()[0]["faces"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#photos .product")) == sum(len(f["recommendations"]) for f in faces)
    # "2e0" passes the box's check as 2, and is sent as 2: sent as typed, every photo was refused;
    # a file that is not a photo, beside one, is said (it was left out without a word)
    box.clear()
    box.send_keys("2e0")
    browser.find_element(By.ID, "pick").send_keys(f"{notes}\n{PHOTOS[0]}")
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    assert not browser.find_elements(By.CSS_SELECTOR, "#photos .photo.error")
    assert browser.find_element(By.ID, "drop-error").text == ("1 file not sent, not a photo (JPEG, PNG, WebP, AVIF, HEIC, "
                                                              "GIF, BMP or TIFF): notes.txt")
    faces = httpx.post(server + "/api/analyze", params={"per_category": 2},
                       files=[("photos", (PHOTOS[0].name, PHOTOS[0].read_bytes()))], timeout=300).json()[0]["faces"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#photos .product")) == sum(len(f["recommendations"]) for f in faces)


def page_sends_nothing(browser, url, model_line, reason):
    """Open the page on a server that cannot analyse: its model line reads ``model_line``, and
    a drop sends nothing and says ``reason``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "model").text == model_line)
    browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "drop-error").text)
    assert browser.find_element(By.ID, "drop-error").text == f"Nothing was sent: {reason}"
    assert not browser.find_elements(By.CSS_SELECTOR, "#photos .photo")


def test_a_server_that_cannot_be_reached_is_said_in_words_and_nothing_is_lost(trained, browser, tmp_path):
    """A drop while the page had no answer from /api/health (the browser blocks it here) did
    nothing, and the console said "Uncaught TypeError: Failed to fetch"; photos sent to a
    server that stopped read "not analysed: Failed to fetch", under "1 of 1 photo"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serving(trained["model"], tmp_path / "serve.log") as (url, process):
        unreachable = "the server cannot be reached (stopped or restarting); try again once it is back"
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/health"]})
        page_sends_nothing(browser, url, f"No answer from the server: {unreachable}", unreachable)
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))  # the same drop again, once it answers
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
        assert browser.find_element(By.ID, "drop-error").text == ""
        # a server that answers its health but not the photos: each card says so
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/profile*"]})
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[1]))
        WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "progress-text").text
                                         == "0 of 1 photo (1 not analysed)")
        assert text_of(browser, "#photos .status") == [f"not analysed: {unreachable}"]
        # in ink, outlined dashed: not a photo's error in red (nothing is wrong with it), nor grey
        assert browser.find_elements(By.CSS_SELECTOR, "#photos .photo.unanalysed") and not browser.find_elements(
            By.CSS_SELECTOR, "#photos .photo.error")
        assert browser.find_element(By.CSS_SELECTOR, "#photos .status").value_of_css_property("color") == "rgba(29, 35, 42, 1)"
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
        shown = text_of(browser, "#photos .photo")
        # a drop once the server has stopped: said, and the results shown stay (they were wiped
        # for a card saying the server could not be reached)
        process.terminate()
        process.wait(timeout=30)
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[1]))
        WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "drop-error").text)
        assert browser.find_element(By.ID, "drop-error").text == f"Nothing was sent: {unreachable}"
        assert text_of(browser, "#photos .photo") == shown
        assert browser.find_element(By.ID, "progress-text").text == "1 of 1 photo"
        assert browser.find_element(By.ID, "download-csv").is_enabled()


def test_a_server_whose_workers_cannot_load_its_model_is_said_as_an_answer(trained, browser, tmp_path):
    """/api/health's 503 (the model file replaced, the workers started again refusing it) was
    "No answer from the server: <its reason>" on a page opened then: the server did answer.
    A drop then sends nothing and says why; once the model it started with is back, a drop
    is analysed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from features.model.model_io import load_model, save_model

    served = tmp_path / "model" / "model.joblib"
    served.parent.mkdir()
    for name in ("model.joblib", "model_card.json"):
        shutil.copy(trained["out"] / name, served.parent)
    with serving(served, tmp_path / "serve.log") as (url, process):
        model, card = load_model(served)
        save_model(model.with_decisions(min_probability={"hat": 0.0}), card, served)
        workers = children(process.pid)
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        assert ended(workers)
        browser.get(url + "/")  # the photo that finds the workers cannot start again
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text
                                          == "0 of 1 photo (1 not analysed)")
        why = httpx.get(url + "/api/health").json()["detail"]
        assert why.startswith(f"{served}: another model than the one checked at the start")
        assert text_of(browser, "#photos .status") == [f"not analysed: {why}"]
        page_sends_nothing(browser, url, f"The server cannot analyse photos: {why}", why)
        for name in ("model.joblib", "model_card.json"):  # the model it started with, put back
            shutil.copy(trained["out"] / name, served.parent)
        browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
        assert browser.find_element(By.ID, "drop-error").text == ""
        assert browser.find_element(By.ID, "model").text.startswith("img2recommender ")


def test_a_drop_numbered_as_posted_keeps_its_order(server, browser, tmp_path):
    """Numbers in names by value, as recommend.py orders a folder: post_10.jpg came before
    post_2.jpg, on the cards and in the records the downloads are made of."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from recommend import name_order

    names = ["post_1.jpg", "post_2.jpg", "post_9.jpg", "post_10.jpg", "post_11.jpg"]
    for name in names:
        shutil.copy(PHOTOS[1], tmp_path / name)
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(str(tmp_path / name) for name in reversed(names)))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "5 of 5 photos")
    assert text_of(browser, "#photos h2.name") == names
    assert browser.execute_script("return state.records.map((r) => r.image)") == names
    # the very order of recommend.py's name_order (the browser's locale order was another)
    odd = ["a01.jpg", "a1.jpg", "a001.jpg", "adam.jpg", "b 1.jpg", "b.jpg", "b/2.jpg", "b/10.jpg", "émile.jpg",
           "eve.jpg", "img_2.jpg", "IMG_10.jpg", "photo ٢.jpg", "photo ١٠.jpg", "post_10.jpg", "post1.jpg", "x_1.jpg",
           "x-2.jpg", "Zoe.jpg", "n/99999999999999999999.jpg", "n/100000000000000000000.jpg"]
    expected = [str(path) for path in sorted(map(Path, odd), key=name_order)]
    assert browser.execute_script("return arguments[0].slice().sort(byName)", odd[::-1]) == expected


def test_a_face_at_the_photo_s_top_edge_shows_its_tag_inside_the_picture(server, browser, tmp_path):
    """A face cut by the photo's top: its number tag stood above the picture, cut off by the
    card.  It goes inside the box, and is seen whole; a face lower keeps its tag above its box."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with Image.open(LFW / "Billy_Andrade_0001.jpg") as photo:
        photo.crop((0, 92, 250, 250)).save(tmp_path / "top_edge.jpg")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join([str(tmp_path / "top_edge.jpg"), str(PHOTOS[1])]))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "2 of 2 photos")
    whole, cut = browser.find_elements(By.CSS_SELECTOR, "#photos .photo")
    assert text_of(browser, "#photos h2.name") == [PHOTOS[1].name, "top_edge.jpg"]
    place = ("const tag = arguments[0].querySelector('.box span').getBoundingClientRect(), "
             "box = arguments[0].querySelector('.box').getBoundingClientRect(), "
             "frame = arguments[0].querySelector('.frame').getBoundingClientRect(); "
             "return [tag.top - frame.top, tag.top - box.top, tag.height]")
    tag_in_frame, tag_in_box, height = browser.execute_script(place, cut)
    assert height > 10 and tag_in_frame >= 0 and tag_in_box >= 0  # whole, inside the picture and the box
    tag_in_frame, tag_in_box, height = browser.execute_script(place, whole)
    assert tag_in_frame >= 0 and tag_in_box == pytest.approx(-height, abs=1)  # above its box, as before


def test_a_320_px_screen_holds_the_page_and_text_follows_the_browser_s_size(server, browser):
    """A phone 320 px wide (or 1280 px at 400% zoom): the summary's table ran 27 px past the
    screen.  A browser's own text size (set larger, not zoomed) sized the page's text not at
    all: every size was in px."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 320, "height": 640, "deviceScaleFactor": 2, "mobile": True})
    try:
        browser.get(server + "/")
        WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, PHOTOS[:3])))
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "3 of 3 photos"
                                          and page.find_elements(By.CSS_SELECTOR, ".summary table"))  # it may come after
        assert browser.find_element(By.CSS_SELECTOR, ".summary table").is_displayed()
        assert browser.execute_script("return document.documentElement.scrollWidth") == 320
        # the "add" box kept beside its words: they ran on the next line, below the number box
        assert browser.execute_script("""
            const box = document.getElementById("add").getBoundingClientRect();
            const words = document.createRange();
            words.selectNodeContents(document.getElementById("add").parentElement.lastChild);
            const lines = [...words.getClientRects()];
            return lines.length === 1 && lines[0].top < box.bottom && lines[0].bottom > box.top;""")
        browser.execute_script("document.documentElement.style.fontSize = '32px'")  # as the browser's setting does
        assert browser.execute_script("return getComputedStyle(document.body).fontSize") == "30px"  # 15 of 16
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_photos_of_one_name_in_two_folders_are_told_apart(server, browser, tmp_path):
    """A phone's folders hold IMG_0001.JPG in each of 100APPLE and 101APPLE: both cards, both
    records and both CSV rows read "IMG_0001.JPG" (the server keeps no folder of a name).  The
    page names each photo with its folders inside the drop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for folder, photo in (("100APPLE", PHOTOS[0]), ("101APPLE", PHOTOS[1])):
        (tmp_path / "DCIM" / folder).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "DCIM" / folder / "IMG_0001.JPG")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick-folder").send_keys(str(tmp_path / "DCIM"))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "2 of 2 photos")
    names = ["DCIM/100APPLE/IMG_0001.JPG", "DCIM/101APPLE/IMG_0001.JPG"]
    assert text_of(browser, "#photos h2.name") == names
    assert browser.execute_script("return state.records.map((r) => r.image)") == names
    csv = browser.execute_async_script("csvText(state.records).then(arguments[arguments.length - 1])")
    assert {line.split(",")[0] for line in csv.splitlines()[1:]} == set(names)


def test_a_photo_the_browser_cannot_show_is_shown_as_the_server_reads_it(server, browser, tmp_path):
    """Chromium shows no TIFF and no HEIC: the card had a broken-image icon with the face
    boxes drawn over it, a 5-px sliver, then a note in its place (an iPhone's drop had cards
    without pictures).  The server makes a JPEG of each (/api/preview), under which the boxes
    sit; a file the server cannot read either says why once, in its error (a note said it too,
    and a preview still waiting sent the file again)."""
    import pillow_heif  # its encoder: the project reads HEIC with pi-heif, a decoder alone
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photos = [tmp_path / "Elton_John_0004.tif", tmp_path / "IMG_0001.HEIC", tmp_path / "broken.tif"]
    Image.open(PHOTOS[1]).save(photos[0])
    pillow_heif.from_pillow(Image.open(PHOTOS[1])).save(photos[1], quality=90)
    photos[2].write_bytes(b"II*\x00 cut short")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, photos)))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text
                                      == "3 of 3 photos (1 failed)" and not text_of(page, ".preview-note"))
    assert browser.find_element(By.ID, "drop-error").text == ""
    *shown, broken = browser.find_elements(By.CSS_SELECTOR, "#photos .photo")  # in name order: capitals first
    why = "a TIFF file that cannot be decoded (corrupt, or a kind of TIFF not read)"
    assert broken.find_element(By.CSS_SELECTOR, ".status").text == f"error: {why}"
    assert not broken.find_element(By.CSS_SELECTOR, ".frame").is_displayed()
    assert why not in broken.text.replace(broken.find_element(By.CSS_SELECTOR, ".status").text, "")
    assert not browser.execute_script("return previews.waiting.length + previews.failed.length")
    for card in shown:
        assert card.find_element(By.CSS_SELECTOR, ".status").text.startswith("250×250: 1 face")
        assert card.find_element(By.CSS_SELECTOR, ".frame").is_displayed() and not text_of(card, ".preview-note")
        img = card.find_element(By.CSS_SELECTOR, "img")
        assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img) == [250, 250]
        # the boxes over the picture, marked at its width (hidden, every box measured 0 px: small)
        box = card.find_element(By.CSS_SELECTOR, ".box")
        assert box.size["width"] > 36 and "small" not in box.get_attribute("class")
    # a preview the server could not make for its own sake (down, stopping) is asked again: by
    # its own button, or by Retry with the photos not analysed (it stayed a note for good)
    unreachable = "the server cannot be reached (stopped or restarting); try again once it is back"
    browser.execute_cdp_cmd("Network.enable", {})
    for blocked, again in ((["*/api/preview"], "Ask again"), (["*/api/preview", "*/api/profile*"], "retry")):
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": blocked})
        browser.find_element(By.ID, "pick").send_keys(str(photos[1]))
        answered = "1 of 1 photo" if again == "Ask again" else "0 of 1 photo (1 not analysed)"  # its analysis blocked too
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text.startswith(
            answered) and page.find_elements(By.CSS_SELECTOR, ".preview-note button"))
        assert text_of(browser, ".preview-note") == [f"(no preview yet: the browser cannot show this file, and the "
                                                     f"server made none: {unreachable}) Ask again"]
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.find_element(By.CSS_SELECTOR, ".preview-note button" if again == "Ask again" else "#retry").click()
        if again == "Ask again":  # the button gone, the focus on the photo's name (it fell to the page's start)
            assert browser.switch_to.active_element.get_attribute("class") == "name"
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo"
                                          and page.find_element(By.CSS_SELECTOR, ".frame").is_displayed())
        assert not text_of(browser, ".preview-note")


def test_a_summary_gives_no_share_of_nothing(server, browser, tmp_path, no_face_image):
    """A drop of a photo without a face read "0%" of no face and a mean probability of 0.00
    over none; a drop of photos that all failed, "0%" of no photo."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    Image.fromarray(no_face_image).save(tmp_path / "scenery.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    for photo, done, heads, cells in (
            ("scenery.png", "1 of 1 photo", ["photos (of 1)", "faces judged (of 0)"], ["0%", "–", "–"]),
            ("broken.jpg", "1 of 1 photo (1 failed)", ["photos (of 0)", "faces judged (of 0)"], ["–", "–", "–"])):
        browser.find_element(By.ID, "pick").send_keys(str(tmp_path / photo))
        WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == done
                                          and page.find_elements(By.CSS_SELECTOR, ".summary td"))
        assert text_of(browser, ".summary th")[1:3] == heads
        assert text_of(browser, ".summary td") == [cell for label in ("hat", "beard", "eyewear") for cell in
                                                   [label, *cells]]


def test_the_pickers_are_reached_from_the_keyboard_and_the_drop_zone_is_no_button(server, browser):
    """The drop zone was a button holding the pickers and the number box, which a button's
    children are not to a screen reader; the first tab stops are the pickers, and Enter opens
    the photo picker."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server + "/")
    browser.execute_script("window.picked = 0; document.getElementById('pick').addEventListener('click', "
                           "(event) => { window.picked += 1; event.preventDefault(); });")
    drop = browser.find_element(By.ID, "drop")
    assert drop.get_attribute("role") is None and drop.get_attribute("tabindex") is None
    assert drop.accessible_name == "Drop photos or a folder here"
    keys = ActionChains(browser)  # keys pressed, not typed into the file input (selenium takes those for a path)
    keys.send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "pick"
    keys.send_keys(Keys.ENTER).perform()
    assert browser.execute_script("return window.picked") == 1
    keys.send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "pick-folder"


def test_a_crowd_s_small_faces_show_their_numbers_when_pointed_at_and_one_not_judged_is_grey(
        server, browser, tmp_path, lfw_paths):
    """Six LFW photos in a row of a 1200x900 photo, the last blurred (not judged), and a
    larger face: a box under 36 px on screen shows its tag only while it or its line in the
    list is pointed at (a crowd's tags covered its faces); the face not judged has no label's
    colour in its bars (beard 0.87 past its threshold, beside "not judged"); the faces
    without a product can be left out of the list (a crowd's made a page 15,000 px long)."""
    from PIL import Image, ImageFilter
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    canvas = Image.new("RGB", (1200, 900), (200, 200, 200))
    for number, path in enumerate(lfw_paths[:6]):
        photo = Image.open(path).resize((150, 150))
        canvas.paste(photo.filter(ImageFilter.GaussianBlur(2)) if number == 5 else photo, (40 + 190 * number, 100))
    canvas.paste(Image.open(lfw_paths[6]).resize((300, 300)), (1010, 500))
    canvas.save(tmp_path / "row.jpg")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "per-category").get_attribute("value"))
    browser.find_element(By.ID, "per-category").clear()  # empty: the server's default, said in the box
    browser.find_element(By.ID, "pick").send_keys(str(tmp_path / "row.jpg"))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    assert browser.find_element(By.ID, "per-category").get_attribute("value") == "2"
    assert browser.find_element(By.ID, "announce").get_attribute("textContent") == "Done: 1 of 1 photo"
    browser.find_element(By.ID, "per-category").send_keys("0")  # "20": the cards keep their 2 products
    assert browser.find_element(By.ID, "per-category-note").text == "(for the next new drop)"
    # a summary of photos some of which the server never looked at says so (it read as whole)
    stopping = "not analysed: the server is stopping; send it again once it is back"
    partial = browser.execute_script(
        "state.records.push({...state.records[0], faces: [], error: arguments[0]}); "
        "showSummary(state.summary, {first: 0, last: 2}); "
        "return document.querySelector('#summaries .summary:last-child .error-text').textContent", stopping)
    assert partial == ("Partial: 1 of 2 photos not analysed (the server is stopping; send it again once it is "
                       "back): this summary leaves them out")
    # downloads named by the drop, not all "results.csv"; a partial summary's names what it
    # leaves out: the files as the browser saves them
    saved = tmp_path / "downloads"
    saved.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(saved)})
    for button in ("download-jsonl", "download-summary"):
        browser.find_element(By.ID, button).click()
    stamp = browser.execute_script("return state.stamp")
    names = [f"img2recommender-{stamp}-1-photo.jsonl", f"img2recommender-{stamp}-1-photo-summary.json"]
    WebDriverWait(browser, 30).until(lambda _: sorted(p.name for p in saved.iterdir()) == sorted(names))
    lines = (saved / names[0]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == browser.execute_script("return state.records")
    assert json.loads((saved / names[1]).read_text(encoding="utf-8"))["not_analysed"] == ["row.jpg"]
    boxes = browser.find_elements(By.CSS_SELECTOR, ".box")
    items = browser.find_elements(By.CSS_SELECTOR, "li.face")
    assert len(boxes) == len(items) == 7
    widths = [box.rect["width"] for box in boxes]
    small = ["small" in box.get_attribute("class").split() for box in boxes]
    assert small == [width < 36 for width in widths] and any(small)
    # at every change of the photo's width (a window made narrower: one column, larger photos)
    browser.set_window_size(500, 1500)

    def marked():
        return [("small" in box.get_attribute("class").split(), box.rect["width"] < 36) for box in boxes]

    WebDriverWait(browser, 10).until(lambda _: all(mark == narrow for mark, narrow in marked()))
    assert [mark for mark, _ in marked()] != small  # some box changed sides
    browser.set_window_size(*(int(size) for size in FLAGS[-1].split("=")[1].split(",")))
    WebDriverWait(browser, 10).until(lambda _: [mark for mark, _ in marked()] == small)
    assert [box.find_element(By.TAG_NAME, "span").is_displayed() for box in boxes] == [not s for s in small]
    number = small.index(True)
    ActionChains(browser).move_to_element(items[number]).perform()
    assert "lit" in boxes[number].get_attribute("class") and boxes[number].find_element(By.TAG_NAME, "span").is_displayed()
    records = browser.execute_script("return state.records")
    unjudged = [i for i, face in enumerate(records[0]["faces"]) if face["quality"]["status"] != "ok"]
    assert len(unjudged) == 1
    fills = [fill.value_of_css_property("background-color")
             for item in items for fill in item.find_elements(By.CSS_SELECTOR, ".fill")]
    grey = "rgba(138, 147, 158, 1)"  # --none-box
    assert [fills[3 * i:3 * i + 3] == [grey] * 3 for i in range(7)] == [i in unjudged for i in range(7)]
    # one tab stop for the list, not one per face (two crowds made 114): the arrow keys, Home
    # and End move between its faces, each lighting its box
    from selenium.webdriver.common.keys import Keys

    assert [item.get_attribute("tabindex") for item in items] == ["0"] + ["-1"] * 6
    browser.execute_script("arguments[0].focus()", items[0])
    for key, at in ((Keys.ARROW_DOWN, 1), (Keys.END, 6), (Keys.ARROW_UP, 5), (Keys.HOME, 0)):
        ActionChains(browser).send_keys(key).perform()
        assert browser.switch_to.active_element == items[at] and "lit" in boxes[at].get_attribute("class")
        assert [item.get_attribute("tabindex") for item in items].count("0") == 1
    items[3].find_element(By.CSS_SELECTOR, ".bar").click()  # a face clicked takes the tab stop (two stops)
    assert [item.get_attribute("tabindex") for item in items] == ["-1"] * 3 + ["0"] + ["-1"] * 3
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()
    assert [item.get_attribute("tabindex") for item in items] == ["-1"] * 4 + ["0"] + ["-1"] * 2
    # the faces without a product left out of the list on request, each face keeping its box's number
    browser.find_element(By.ID, "only-products").click()
    given = [bool(face["recommendations"]) for face in records[0]["faces"]]
    assert not all(given) and [item.is_displayed() for item in items] == given
    assert [item.get_attribute("value") for item in items] == [str(n) for n in range(1, 8)]
    assert all(box.is_displayed() for box in boxes if "small" not in box.get_attribute("class"))
    stops = [item for item in items if item.get_attribute("tabindex") == "0"]  # the tab stop on a face shown
    assert len(stops) == 1 and stops[0].is_displayed()
    browser.execute_script("arguments[0].focus()", stops[0])
    ActionChains(browser).send_keys(Keys.END).perform()
    assert browser.switch_to.active_element == [item for item, shown in zip(items, given) if shown][-1]


def test_a_card_whose_faces_all_lack_products_says_so_under_the_filter_and_a_bar_names_its_threshold(
        server, browser):
    """With "list only the faces with products", a card whose faces have none read "1 face"
    above nothing; and the threshold's mark was only a tooltip, which a screen reader does
    not read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photos = [LFW / "Amanda_Bynes_0001.jpg", PHOTOS[2]]  # a bare face, a hat
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, photos)))
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "2 of 2 photos")
    records = browser.execute_script("return state.records")
    given = [[bool(face["recommendations"]) for face in record["faces"]] for record in records]
    assert given == [[False], [True]]
    bare, hat = browser.find_elements(By.CSS_SELECTOR, "#photos .photo")
    assert not bare.find_element(By.CSS_SELECTOR, ".none-with-products").is_displayed()
    browser.find_element(By.ID, "only-products").click()
    assert text_of(bare, ".none-with-products") == ["(no product for its face)"]
    assert not hat.find_elements(By.CSS_SELECTOR, ".none-with-products")
    thresholds = browser.execute_script("return state.health.model.thresholds")
    tracks = hat.find_elements(By.CSS_SELECTOR, ".bar .track")
    scores = records[1]["faces"][0]["scores"]
    labels = browser.execute_script("return state.health.model.labels")  # the bars' order (selenium sorts keys)
    said = [", threshold ".join(apart(scores[label], thresholds[label])) for label in labels]
    assert [track.accessible_name for track in tracks] == said
    # the face's line begins with its box's number, for a screen reader (the list's numbers are
    # not read with the face focused); each score before its threshold (it read "hat threshold
    # 0.37 0.00"), the score shown beside the bar not said twice
    face = hat.find_element(By.CSS_SELECTOR, "li.face")
    assert face.get_attribute("textContent").startswith(f"Face #1: {labels[0]}")
    assert [value.get_attribute("aria-hidden") for value in face.find_elements(By.CSS_SELECTOR, ".bar span:last-child")] == [
        "true"] * len(labels)
    browser.find_element(By.ID, "only-products").click()
    assert not bare.find_element(By.CSS_SELECTOR, ".none-with-products").is_displayed()


def drop_onto_the_page(browser, paths):
    """Drag ``paths`` (files or folders) from the disk onto the drop zone and let go, as a file
    manager does: Chromium's own drag events (DevTools' Input.dispatchDragEvent), which hand
    the page real entries, folders too."""
    from selenium.webdriver.common.by import By

    drop = browser.find_element(By.ID, "drop")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", drop)
    x, y = browser.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                  "return [r.x + r.width / 2, r.y + r.height / 2];", drop)
    data = {"items": [], "files": [str(path) for path in paths], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        browser.execute_cdp_cmd("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})


def test_a_dropped_folder_is_analysed_with_its_folders_in_the_names_and_an_empty_one_is_said(server, browser,
                                                                                            tmp_path):
    """The drop itself was never tested (only the pickers were): a folder dragged onto the page
    is read through its entries, every photo under it analysed and named with its folders; an
    empty folder dropped said nothing at all."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "empty").mkdir()
    (tmp_path / "trip" / "day2").mkdir(parents=True)
    shutil.copy(PHOTOS[0], tmp_path / "trip" / "a.jpg")
    shutil.copy(PHOTOS[1], tmp_path / "trip" / "day2" / "b.jpg")
    (tmp_path / "trip" / "notes.txt").write_text("not a photo")
    (tmp_path / "trip" / ".DS_Store").write_bytes(b"\0")  # a Mac's, in every folder: not named
    (tmp_path / "trip" / "._a.jpg").write_bytes(APPLE_DOUBLE_FILE)  # a Mac's, beside a photo it copied: no card
    (tmp_path / "trip" / ".thumbnails").mkdir()  # a camera's copies, not read by recommend.py --recursive: no card
    shutil.copy(PHOTOS[0], tmp_path / "trip" / ".thumbnails" / "a.jpg")
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    drop_onto_the_page(browser, [tmp_path / "empty"])
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "drop-error").text)
    assert browser.find_element(By.ID, "drop-error").text == "No file in what was dropped or picked"
    drop_onto_the_page(browser, [tmp_path / "trip"])
    WebDriverWait(browser, 120).until(lambda page: page.find_element(By.ID, "progress-text").text == "2 of 2 photos")
    assert browser.find_element(By.ID, "drop-error").text == ("1 file not sent, not a photo (JPEG, PNG, WebP, AVIF, "
                                                              "HEIC, GIF, BMP or TIFF): trip/notes.txt")
    assert text_of(browser, "#photos h2.name") == ["trip/a.jpg", "trip/day2/b.jpg"]
    assert browser.execute_script("return state.records.map((r) => r.image)") == ["trip/a.jpg", "trip/day2/b.jpg"]
    assert all(record["faces"] for record in browser.execute_script("return state.records"))


@contextmanager
def cutting_proxy(upstream):
    """A proxy in front of ``upstream`` that passes everything through but ends each
    /api/profile answer cleanly after its first line (as a proxy with a short timeout may);
    yields its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.forward(None)

        def do_POST(self):
            self.forward(self.rfile.read(int(self.headers["Content-Length"])))

        def forward(self, body):
            with httpx.stream(self.command, upstream + self.path, content=body,
                              headers={"Content-Type": self.headers.get("Content-Type", "")},
                              timeout=300) as answer:
                payload = (next(answer.iter_lines()) + "\n").encode() if self.path.startswith("/api/profile") \
                    else answer.read()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers["content-type"])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_an_answer_cut_short_on_the_way_marks_the_photos_it_left_out_and_a_retry_sends_them(trained, browser, tmp_path):
    """An answer that ends cleanly before every photo has its line (a proxy's doing): the
    photos left out say so, and the count says they were not analysed; they said "waiting…"
    for good.  Retry sends them again, each card answered in place (here cut short again
    after one photo, so twice), and the summary is of the whole drop, partial until every
    photo has its answer; the drop was to be made again whole.  serve.py restarted with
    another model between the drop and a retry gets nothing: one drop, two models."""
    from features.model.model_io import load_model, save_model
    from features.products.recommendations import load_catalog, profile
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model, card = load_model(trained["model"])
    other = tmp_path / "other" / trained["model"].name  # the same model with another threshold
    save_model(model.with_decisions(min_probability={"hat": 0.9}), dict(card, thresholds={**card["thresholds"], "hat": 0.9}),
               other)
    theirs = json.loads(other.with_name("model_card.json").read_text())["model_sha256"]
    port = free_port()  # serve.py restarted on it behind the proxy, the page open all along
    with cutting_proxy(f"http://127.0.0.1:{port}") as url:
        with serving(trained["model"], tmp_path / "first.log", port=port):
            browser.get(url + "/")
            WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
            browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, PHOTOS[:3])))
            WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text
                                              == "1 of 3 photos (2 not analysed)")
        statuses = text_of(browser, "#photos .status")
        cut_short = "the server's answer ended before this photo's line (cut short on the way); try again"
        assert "error" not in statuses[0] and statuses[1:] == [f"not analysed: {cut_short}"] * 2, statuses
        assert not browser.find_elements(By.CSS_SELECTOR, ".summary")  # the answer's last line, cut off
        first = browser.find_element(By.CSS_SELECTOR, "#photos .photo").text
        retry = browser.find_element(By.ID, "retry")
        assert retry.text == "Retry the 2 photos not analysed"
        with serving(other, tmp_path / "other.log", port=port):  # nothing sent: one drop, two models
            retry.click()
            WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "download-error").text)
        assert browser.find_element(By.ID, "download-error").text == (  # beside the button, not above the drop zone
            f"Not sent: the server now answers with another model ({theirs[:12]}, not "
            f"{card['model_sha256'][:12]}); drop all the photos again")
        assert text_of(browser, "#photos .status")[1:] == [f"not analysed: {cut_short}"] * 2
        with serving(trained["model"], tmp_path / "again.log", port=port) as (server, _):
            retry.click()
            WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text
                                              == "2 of 3 photos (1 not analysed)" and page.find_elements(By.CSS_SELECTOR, ".summary"))
            statuses = text_of(browser, "#photos .status")
            assert "error" not in statuses[1] and statuses[2] == f"not analysed: {cut_short}", statuses
            assert text_of(browser, ".summary .error-text") == [
                f"Partial: 1 of 3 photos not analysed ({cut_short}): this summary leaves them out"]
            assert browser.find_element(By.ID, "retry").text == "Retry the 1 photo not analysed"
            browser.find_element(By.ID, "retry").click()
            WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "3 of 3 photos"
                                              and page.find_elements(By.CSS_SELECTOR, ".summary"))
            assert not browser.find_element(By.ID, "retry").is_displayed()
            assert browser.find_element(By.CSS_SELECTOR, "#photos .photo").text == first  # kept as it was
            records = browser.execute_script("return state.records")
            files = [("photos", (p.name, p.read_bytes())) for p in PHOTOS[:3]]
            direct = httpx.post(server + "/api/analyze", files=files, timeout=300).json()
    assert records == direct  # each photo's answer, whichever request brought it
    whole = profile(records, load_catalog())["profile"]
    assert content_of(browser, ".summary h2") == [f"Account summary: {whole['headline']}"]
    assert not content_of(browser, ".summary .error-text")


def test_photos_added_to_a_drop_done_follow_its_cards_under_one_summary_of_all(server, browser):
    """A drop replaced the results shown: photos forgotten from a feed of fifty meant the fifty
    again. With "add to the photos shown" ticked (offered once a drop is done), a drop's
    photos follow the cards shown, answered as the whole drop's with its products per
    category, and one summary of all of them replaces the drop's (a server answering with
    another model since adds nothing: the retry's check, tested with a restart there);
    unticked, a drop replaces."""
    from features.products.recommendations import load_catalog, profile
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    first, then = PHOTOS[2:], PHOTOS[:2]
    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda page: "trained" in page.find_element(By.ID, "model").text)
    add = browser.find_element(By.ID, "add")
    assert not add.is_enabled()  # nothing shown to add to
    browser.find_element(By.ID, "per-category").clear()
    browser.find_element(By.ID, "per-category").send_keys("1")
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, first)))
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "2 of 2 photos"
                                      and page.find_elements(By.CSS_SELECTOR, ".summary"))
    add.click()
    browser.find_element(By.ID, "per-category").send_keys("5")  # "15": for the next new drop, not this one's photos
    browser.find_element(By.ID, "pick").send_keys("\n".join(map(str, then)))
    # one more while those are analysed: refused (its run cut off theirs, their cards left waiting)
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "progress-text").text.endswith("of 4 photos"))
    # every text it shows, kept as it shows: it goes once the photos are done, which may be
    # before a poll reads it (a fresh clone's CI once waited 30 s for a message gone by)
    browser.execute_script("""const said = document.getElementById("drop-error"); window.dropErrors = [];
        new MutationObserver(() => dropErrors.push(said.textContent)).observe(said, {childList: true, characterData: true, subtree: true});""")
    browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
    said = WebDriverWait(browser, 30).until(lambda page: next(filter(None, page.execute_script("return dropErrors")), ""))
    assert said == (
        "Not added (1 photo): the photos shown are still being analysed; drop them again once they are done (or "
        'untick "add to the photos shown" to replace them)')
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "4 of 4 photos"
                                      and page.find_elements(By.CSS_SELECTOR, ".summary"))
    assert browser.find_element(By.ID, "drop-error").text == ""  # it stood beside "Done" until the next drop
    assert text_of(browser, "#photos h2.name") == [p.name for p in first + then]
    assert add.is_selected() and add.is_enabled() and browser.find_element(By.ID, "download-csv").is_enabled()
    records = browser.execute_script("return state.records")
    files = [("photos", (p.name, p.read_bytes())) for p in first + then]
    assert records == httpx.post(server + "/api/analyze?per_category=1", files=files, timeout=300).json()
    whole = profile(records, load_catalog(), per_category=1)["profile"]
    assert content_of(browser, ".summary h2") == [f"Account summary: {whole['headline']}"]
    assert text_of(browser, ".summary .product .name") == [p["name"] for p in whole["recommendations"]]
    assert text_of(browser, ".summary p.muted")[0].startswith("4 photos (0 failed)")
    # a photo shown already is added again, as a feed may post a picture twice, and said
    browser.find_element(By.ID, "pick").send_keys(str(first[0]))
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "5 of 5 photos"
                                      and page.find_elements(By.CSS_SELECTOR, ".summary"))
    assert browser.find_element(By.ID, "drop-error").text == f"1 photo already shown added again (each post counts): " \
        f"{first[0].name}"
    assert text_of(browser, ".summary p.muted")[0].startswith("5 photos (0 failed)")
    add.click()  # unticked: a new drop
    browser.find_element(By.ID, "pick").send_keys(str(PHOTOS[0]))
    WebDriverWait(browser, 180).until(lambda page: page.find_element(By.ID, "progress-text").text == "1 of 1 photo")
    assert text_of(browser, "#photos h2.name") == [PHOTOS[0].name]
