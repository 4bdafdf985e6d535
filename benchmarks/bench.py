"""Benchmark img2recommender against face_recognition's standard dlib pipeline.

Prints figures and writes benchmarks/results.json:
per-stage median and 95th percentile ms per face; reading a 12-megapixel photo in Display P3
(converted to sRGB) against the same photo without its profile; end-to-end recommend.py with 1 and 2
workers beside the reference in as many processes (median of 3 runs) and the cold start for
one photo (median of 5), each run in turn with the reference's; train.py from scratch and
with a warm feature cache; and the peak memory of each command.

    python benchmarks/bench.py [--photos 300] [--skip-train]
"""
import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LFW = ROOT.parent / "shared" / "datasets" / "lfw-photos" / "images"
#: A real photo whose ICC profile is Display P3 (a phone's colour space), enlarged to a phone's
#: 12 megapixels for the cost of converting its colours to sRGB.
WIDE_GAMUT = ROOT.parent / "shared" / "datasets" / "wild-dev" / "images" / "yolov5_bus.jpg"
PHONE_SIZE = (4032, 3024)
RUNS = 3  # end-to-end runs per command
COLD_RUNS = 5


def process_tree_rss(pid):
    """Resident memory (bytes) of a process and all its descendants."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += int((Path("/proc") / str(current) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        todo += children.get(current, [])
    return total


def timed(command, **kwargs):
    """Run a command; return wall seconds and the peak memory of its whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    peak = 0
    while process.poll() is None:
        peak = max(peak, process_tree_rss(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:  # a crashed reference once read as 0.1 s
        raise RuntimeError(f"{command} failed: {process.stderr.read().decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_mb": round(peak / 2**20)}


def alternate(ours, reference, *, runs):
    """Median seconds and peak MB of two commands, each run ``runs`` times in turn, so that
    a noisy moment of the machine hits both."""
    measured = [[], []]
    for _ in range(runs):
        for command, values in zip((ours, reference), measured):
            values.append(timed(command, cwd=ROOT))
    return [{"seconds": round(float(np.median([run["seconds"] for run in values])), 2),
             "peak_mb": int(np.median([run["peak_mb"] for run in values]))} for values in measured]


def stage_times(photos, model_path):
    """Per-face ms of every stage (one process, one thread, warm models): decoding, the model's
    faces (detection and landmarks), each feature block on its own, the hat crop's CNN (the
    second look, for the faces past the gate), the product types (with every label on and the
    hat crop embedded, as every face decided a hat has it: the most a face's types can cost;
    with every label but the hat; and for the labels the model decided), the model's whole
    answer (faces, features, probabilities, decisions, types) and the product choice; and how
    many faces passed the gate."""
    from features.app.analysis import AnalysisSettings, frozen_catalog, worker_state
    from features.vision.descriptors import HOG_CELLS, colour_histogram, hog_descriptor
    from features.vision.embeddings import cnn_embeddings, face_descriptor
    from features.vision.images import load_image
    from features.products.recommendations import load_catalog, recommend_products
    from features.vision.regions import REGIONS, extract_regions
    from features.vision.transformer import CNN_CROPS

    settings = AnalysisSettings(model=model_path.resolve(), catalog=frozen_catalog(load_catalog()))
    model, catalog = worker_state(settings)  # as recommend.py's workers
    per_photo = ("decode", "faces", "types_as_decided", "answer")  # timed once per photo, spread over its faces
    times = {name: [] for name in ("decode", "faces", "align_and_crop", "hog", "colour", "face_descriptor",
                                   "cnn", "hat_crop_cnn", "types", "types_without_hat", "types_as_decided", "answer",
                                   "recommend")}
    past_gate = 0
    clock = time.perf_counter
    for path in photos:
        t = clock(); image = load_image(path); times["decode"].append(clock() - t)
        t = clock(); faces = model.faces(image); times["faces"].append(clock() - t)
        for face in faces:  # the feature blocks one by one, as the model's extractor runs them
            t = clock(); crops = extract_regions(image, face); times["align_and_crop"].append(clock() - t)
            t = clock(); [hog_descriptor(crops[r], HOG_CELLS[r]) for r in REGIONS]; times["hog"].append(clock() - t)
            t = clock(); [colour_histogram(crops[r]) for r in REGIONS]; times["colour"].append(clock() - t)
            t = clock(); face_descriptor(image, face); times["face_descriptor"].append(clock() - t)
            t = clock(); cnn_embeddings([crops[name] for name in CNN_CROPS]); times["cnn"].append(clock() - t)
            t = clock(); cnn_embeddings([crops["hat"]]); times["hat_crop_cnn"].append(clock() - t)
            row = model.pipeline[0].transform([(image, face)])  # every block, the hat crop's too
            past_gate += int(model.pipeline[-1].needs_block(row)[0])
            t = clock()  # every parent label on: the most a face's types can cost
            model.face_types(image, [face], row, [model.labels])
            times["types"].append(clock() - t)
            t = clock()  # every label but the hat: no colour to read
            model.face_types(image, [face], row, [tuple(label for label in model.labels if label != "hat")])
            times["types_without_hat"].append(clock() - t)
        t = clock(); answers = model.answer(image); times["answer"].append(clock() - t)
        if answers:  # the types of the labels the model decided: what a photo's faces pay
            rows = model.feature_rows(image, faces)
            t = clock()
            model.face_types(image, faces, rows, [answer.labels for answer in answers])
            times["types_as_decided"].append(clock() - t)
        for answer in answers:
            t = clock()
            recommend_products(answer.probabilities, answer.labels, answer.types, catalog)
            times["recommend"].append(clock() - t)
    per_face = {}
    n_faces = len(times["recommend"])
    for name, values in times.items():
        ms = np.array(values) * 1000
        if name in per_photo:
            ms = ms * len(values) / max(n_faces, 1)
        per_face[name] = {"median_ms": round(float(np.median(ms)), 2), "mean_ms": round(float(np.mean(ms)), 2),
                          "p95_ms": round(float(np.percentile(ms, 95)), 2)}
    return per_face, n_faces, past_gate


def colour_conversion_times(calls=5):
    """Median ms to read :data:`WIDE_GAMUT` at :data:`PHONE_SIZE` with its Display P3 profile
    (its colours converted to sRGB) and without it, the two read in turn."""
    from PIL import Image

    from features.vision.images import load_image

    folder = Path(tempfile.mkdtemp(prefix="bench-p3-"))
    with Image.open(WIDE_GAMUT) as photo:
        phone = photo.convert("RGB").resize(PHONE_SIZE)
        phone.save(folder / "p3.jpg", quality=92, icc_profile=photo.info["icc_profile"])
        phone.save(folder / "plain.jpg", quality=92)
    times = {"display_p3": [], "no_profile": []}
    for _ in range(calls):
        for name, file in (("display_p3", "p3.jpg"), ("no_profile", "plain.jpg")):
            t = time.perf_counter(); load_image(folder / file); times[name].append(time.perf_counter() - t)
    shutil.rmtree(folder, ignore_errors=True)
    return {name: round(float(np.median(values)) * 1000, 1) for name, values in times.items()}


def main():
    from features.model.model_io import MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300, help="LFW photos to use")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--skip-train", action="store_true", help="leave out the train.py timings")
    args = parser.parse_args()
    python = sys.executable
    if not args.model.exists():
        sys.exit(f"bench.py: no model at {args.model}; run: python train.py")
    if importlib.util.find_spec("face_recognition") is None:
        sys.exit("bench.py: the reference pipeline needs face_recognition; run: make bench (it installs "
                 "face_recognition 1.3.0 without its dependencies)")
    photos = sorted(LFW.glob("*.jpg"))[:args.photos]
    folder = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    for photo in photos:
        shutil.copy(photo, folder)
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version(), "photos": len(photos),
                           "date": time.strftime("%Y-%m-%d")}}

    print(f"{len(photos)} LFW photos (250x250), {os.cpu_count()} CPUs")
    stages, n_faces, past_gate = stage_times(photos, args.model)
    results["stages_per_face"] = stages
    results["machine"]["faces"] = n_faces
    results["faces_past_the_hat_gate"] = past_gate
    print(f"\nper stage, ms per face ({n_faces} faces, {past_gate} past the hat gate: their hat crop embedded):")
    for name, value in stages.items():
        print(f"  {name:<16} median {value['median_ms']:8.2f}   mean {value['mean_ms']:8.2f}   p95 {value['p95_ms']:8.2f}")

    results["decode_12mp_ms"] = colour = colour_conversion_times()
    print(f"\nreading a {PHONE_SIZE[0]}x{PHONE_SIZE[1]} JPEG (median ms): in Display P3, converted to sRGB "
          f"{colour['display_p3']}, without a profile {colour['no_profile']}")

    end_to_end = {}
    for workers in (1, 2):
        ours, reference = alternate(
            [python, str(ROOT / "recommend.py"), str(folder), "--json", "--model", str(args.model),
             "--n-jobs", str(workers)],
            [python, str(ROOT / "benchmarks" / "reference_face_recognition.py"), str(folder),
             "--processes", str(workers)], runs=RUNS)
        end_to_end[workers] = {"ours": ours, "reference": reference,
                               "ours_photos_per_s": round(len(photos) / ours["seconds"], 1),
                               "reference_photos_per_s": round(len(photos) / reference["seconds"], 1),
                               "ratio_ours_to_reference": round(ours["seconds"] / reference["seconds"], 2)}
    single = Path(tempfile.mkdtemp(prefix="bench-one-"))
    shutil.copy(photos[0], single)
    cold_ours, cold_ref = alternate(
        [python, str(ROOT / "recommend.py"), str(photos[0]), "--model", str(args.model)],
        [python, str(ROOT / "benchmarks" / "reference_face_recognition.py"), str(single)], runs=COLD_RUNS)
    results["end_to_end"] = end_to_end
    results["cold_start"] = {"ours": cold_ours, "reference": cold_ref,
                             "ratio_ours_to_reference": round(cold_ours["seconds"] / cold_ref["seconds"], 2)}
    results["speedup_2_workers"] = round(end_to_end[1]["ours"]["seconds"] / end_to_end[2]["ours"]["seconds"], 2)
    print(f"\nend to end (imports and model loading included; medians of {RUNS} runs):")
    for workers, value in end_to_end.items():
        print(f"  {workers} worker(s): ours {value['ours']['seconds']:.1f} s ({value['ours_photos_per_s']} photos/s, "
              f"peak {value['ours']['peak_mb']} MB), reference {value['reference']['seconds']:.1f} s "
              f"({value['reference_photos_per_s']} photos/s, peak {value['reference']['peak_mb']} MB), "
              f"ours/reference {value['ratio_ours_to_reference']}")
    print(f"  2 workers vs 1: {results['speedup_2_workers']}x")
    print(f"  cold start, one photo (median of {COLD_RUNS}): ours {cold_ours['seconds']:.2f} s, "
          f"reference {cold_ref['seconds']:.2f} s, "
          f"ratio {results['cold_start']['ratio_ours_to_reference']}")

    if not args.skip_train:
        out = Path(tempfile.mkdtemp(prefix="bench-train-"))
        command = [python, str(ROOT / "train.py"), "--out", str(out), "--no-plots"]
        cold = timed(command, cwd=ROOT)
        warm = timed(command, cwd=ROOT)
        results["train"] = {"from_scratch": cold, "warm_cache": warm}
        print(f"\ntrain.py on the shared photos: from scratch {cold['seconds']:.0f} s (peak {cold['peak_mb']} MB), "
              f"warm cache {warm['seconds']:.0f} s (peak {warm['peak_mb']} MB)")
        shutil.rmtree(out, ignore_errors=True)

    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(single, ignore_errors=True)
    path = ROOT / "benchmarks" / "results.json"  # this run's figures only
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
