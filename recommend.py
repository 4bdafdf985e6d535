"""Recommend hat, beard-care and eyewear products for every face in photos.

    python recommend.py photo.jpg
    python recommend.py feed/ --json --annotate out/
    python recommend.py feed/ --profile
    python recommend.py --list photos.txt --scheduler tcp://HOST:8786 --output results.parquet

Exit codes: ``python recommend.py --help`` (its epilog, written once there).
"""
import argparse
import json
import os
import re
import sys
import traceback
import warnings
from contextlib import closing, contextmanager
from pathlib import Path

from features.app.cli import given_path, precision, tell
from features.stops import Stopped, StopSignals, as_stopped


def parse_args(argv=None):
    from features.app.cli import DefaultsHelpFormatter, Parser
    from features.app.cluster import scheduler_address
    from features.app.workers import CPUS, check_workers
    from features.model.model_io import MODEL
    from features.products.recommendations import CATALOG, PER_CATEGORY

    parser = Parser(
        description="Find every face in photos, score hat / beard / eyewear with calibrated "
                    "probabilities and recommend products.",
        epilog="exit code: 0 when every photo was read; 1 when any photo failed (the others "
               "still answered), none was given (an empty folder or list), or the model, the "
               "catalog, the --list file or an output cannot be used; 2 for wrong usage; "
               "130 when stopped by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (what was answered stays "
               "printed and written)",
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="PATH", type=given_path,
                        help="photos, or folders of photos (taken in name order, numbers by value; a photo "
                             "given twice is answered, and counted by --profile, twice)")
    parser.add_argument("--list", type=given_path, metavar="FILE",
                        help="also read paths of photos or folders from FILE: one per line (spaces around "
                             "a name dropped; a line starting with # is a comment: write ./#name.jpg), or a "
                             "CSV with a path, image or filename column (relative paths: from the working "
                             "folder)")
    parser.add_argument("--recursive", action="store_true",
                        help="descend into sub-folders (not into links to folders, which could loop, nor "
                             "into hidden ones, such as a camera's .thumbnails)")
    parser.add_argument("--model", type=given_path, default=MODEL,
                        help="model made by train.py (its model_card.json must sit beside it)")
    parser.add_argument("--catalog", type=given_path, default=CATALOG,
                        help="product catalog CSV")
    parser.add_argument("--per-category", type=int, default=PER_CATEGORY,
                        help="products recommended per category a face has")
    parser.add_argument("--detector", metavar="NAME", default=None,
                        help="face detector (blazeface, hog, mmod, blazeface_short) instead of "
                             "the one the model was trained with (default: the model's)")
    parser.add_argument("--detection-threshold", type=float, default=None,
                        help="detector score threshold instead of the model's: lower finds more "
                             "faces, and more false ones (default: the model's)")
    parser.add_argument("--min-probability", type=min_probabilities, action=MergedLabels, default={},
                        metavar="LABEL=P,...",
                        help="decide a label when its calibrated probability reaches P, e.g. "
                             "hat=0.8,eyewear=0.6 (other labels: --precision or the model's own); "
                             "may be given again for other labels")
    parser.add_argument("--precision", type=precision, default=None, metavar="P",
                        help="for the other labels, the threshold of the best recall at this "
                             "out-of-fold precision of the training people (e.g. 0.9)")
    parser.add_argument("--json", action="store_true", help="JSON Lines: one line per photo")
    parser.add_argument("--profile", action="store_true",
                        help="also treat all photos as one account's feed and recommend for it")
    parser.add_argument("--annotate", type=given_path, metavar="DIR",
                        help="write a copy of each photo with faces, scores and products drawn, "
                             "as NAME.jpg (NAME-2.jpg, ... for more photos of one name), into a folder that holds "
                             "none of the photos (a file there of a copy's name is replaced only if it is an "
                             "earlier copy)")
    parser.add_argument("--n-jobs", type=int, default=CPUS,
                        help="worker processes, at most 4 per CPU (photos travel to them in chunks); with "
                             "--scheduler, the cluster's workers that the chunks are sized for")
    parser.add_argument("--output", type=given_path, metavar="FILE",
                        help="also write the results to FILE.parquet (for programs) or FILE.csv (for "
                             "spreadsheets), one row per face (or per photo without a face); the file is "
                             "replaced when the run ends, and a run that cannot finish it leaves it as it was")
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="run the photos on the Dask cluster at ADDRESS (tcp://host:8786); its "
                             "scheduler and workers need this project installed (make install) "
                             "and the same paths")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    args = parser.parse_args(argv)
    if not args.paths and args.list is None:
        parser.error("give at least one PATH or --list FILE")
    if args.per_category < 1:
        parser.error(f"--per-category {args.per_category}: must be at least 1")
    if args.scheduler is None:
        try:
            check_workers(args.n_jobs)
        except ValueError as exc:
            parser.error(f"--n-jobs {exc}")
    elif args.n_jobs < 1:  # a cluster's workers are its own: there --n-jobs only sizes the chunks
        parser.error(f"--n-jobs {args.n_jobs}: must be at least 1")
    if args.detector is not None:
        from features.vision.faces import DETECTORS

        if args.detector not in DETECTORS:
            parser.error(f"--detector: unknown detector {args.detector!r}; use one of {', '.join(DETECTORS)}")
    try:
        if args.precision is not None:  # analysis loads OpenCV and dlib: not for every --help
            from features.app.analysis import check_precision

            check_precision(args.min_probability, args.precision)
    except ValueError as exc:
        parser.error(f"--precision {exc.args[0].replace('min_probability', '--min-probability')}")
    from features.app.outputs import SINKS

    if args.output is not None and args.output.suffix.lower() not in SINKS:
        parser.error(f"--output {args.output}: name it FILE.parquet (for programs) or FILE.csv (for spreadsheets)")
    return args


def min_probabilities(text):
    """``hat=0.8,eyewear=0.6`` -> {"hat": 0.8, "eyewear": 0.6} (argparse type)."""
    from features.app.analysis import parse_min_probability

    try:
        return parse_min_probability(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class MergedLabels(argparse.Action):
    """``--min-probability`` given again adds its labels (the last one given replaced the
    others: ``hat=0.99`` then ``eyewear=0.6`` decided hats at the model's 0.37); a label given
    twice is a usage error, as within one."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest)
        if twice := sorted(set(given) & set(values)):
            parser.error(f"{option_string}: {twice[0]} is given twice")
        setattr(namespace, self.dest, {**given, **values})


def analysis_settings(args, card, catalog):
    """The run's :class:`~features.app.analysis.AnalysisSettings` from the command line, the
    model's ``card`` and the ``catalog``, as checked here: the processes that load the model
    (forked workers, a cluster's) use it only if it is that model, and this catalog."""
    from features.app.analysis import AnalysisSettings, frozen_catalog

    return AnalysisSettings(model=args.model.resolve(), catalog=frozen_catalog(catalog),
                            per_category=args.per_category, detector=args.detector,
                            detection_threshold=args.detection_threshold,
                            min_probability=tuple(sorted(args.min_probability.items())),
                            precision=args.precision, debug=args.debug, model_sha256=card["model_sha256"])


def announce_thresholds(settings, chosen=None):
    """Say on stderr which thresholds ``--min-probability`` / ``--precision`` chose, and which
    label cannot reach the precision asked, is decided by it far beyond its wearers, or gets a
    threshold under the model's own (:func:`~features.app.analysis.deciding`):
    ``chosen``, a worker's answer (:func:`run_forked`), else worked out here, which loads the
    model in this process."""
    from features.app.analysis import decision_thresholds

    thresholds, notes = chosen or decision_thresholds(settings)
    for note in notes:
        tell(f"recommend.py: warning: {note}")
    tell("recommend.py: thresholds: " + ", ".join(f"{label} {t:.4f}" for label, t in thresholds.items()))


def read_list(path):
    """Photo paths from a text file (one per line, # comments) or a CSV with a path, image or
    filename column; a CSV of one column without that header is a list of paths, its first
    line one of them.  Read once (``/dev/stdin`` works).  A NUL byte, which no path holds,
    means a file of another kind (UTF-16 text, a photo given as the list): ValueError, not a
    "photo" per line."""
    data = path.read_bytes()
    if b"\0" in data:
        raise ValueError("not a list of paths: it holds NUL bytes (UTF-16 text, or not text at all); "
                         "save it as UTF-8")
    # utf-8-sig: a byte-order mark is not part of the first path; a name that is not UTF-8
    # (Linux names are bytes) reads as the file it names
    text = data.decode("utf-8-sig", "surrogateescape")
    if path.suffix.lower() == ".csv":
        rows = csv_rows(text)
        header = [name.strip().lower() for name in rows[0][1]] if rows else []
        column = next((header.index(c) for c in ("path", "image", "filename") if c in header), None)
        if column is not None:
            for line, row in rows[1:]:  # a comma in a name, unquoted, gives a field more
                if len(row) <= column or any(field.strip() for field in row[len(header):]):
                    raise ValueError(f"line {line} has {len(row)} fields, the header {len(header)}")
            return [Path(row[column].strip()) for _, row in rows[1:] if row[column].strip()]
        if len(header) > 1:
            raise ValueError(f"no path, image or filename column (columns: {', '.join(rows[0][1])})")
    lines = (line.strip() for line in text.splitlines())
    return [Path(line) for line in lines if line and not line.startswith("#")]


def csv_rows(text):
    """The non-blank rows of a CSV text, each with its line number; ValueError when it cannot
    be read as CSV."""
    import csv
    import io

    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        return [(reader.line_num, row) for row in reader if any(field.strip() for field in row)]
    except csv.Error as exc:
        raise ValueError(str(exc)) from None


def collect_photos(paths, *, recursive=False):
    """Photos named by the command line, in order: files as given, folders' photos by name.

    A path that does not exist, or that we may not look at, is kept, so that it is reported
    as that photo's error.

    Returns
    -------
    photos : list of Path
    empty : list of (Path, list of Path)
        The folders without a photo, each with the files in it that are not photos (said on
        stderr, naming them: a wrong folder is otherwise silent).
    unreadable : list of (Path, str)
        The folders that cannot be listed, and why (each an error on stderr; the rest runs).
    left_out : list of (Path, list of Path)
        Per folder given that holds photos, the files in it that are not photos, where there
        are any: said on stderr, as the page says the files of a drop it does not send (a
        folder without photos is said as such).
    below : list of (Path, list of Path)
        Without ``recursive``, per folder given that holds photos, the sub-folders whose photos
        ``--recursive`` would add (:func:`photo_folders`), where there are any: said on stderr
        (they were left out without a word).
    """
    photos, empty, unreadable, left_out, below = [], [], [], [], []
    for path in map(Path, paths):
        if not os.path.isdir(path):  # False, not an error, for a path we may not look at
            photos.append(path)
            continue
        inside, cannot, others = folder_photos(path, recursive=recursive)
        photos += inside
        unreadable += cannot
        empty += [] if inside or cannot else [(path, others)]
        left_out += [(path, others)] if others and inside else []
        held = [] if recursive or not inside else photo_folders(path)
        below += [(path, held)] if held else []
    return photos, empty, unreadable, left_out, below


def folder_photos(folder, *, recursive=False):
    """The photos in ``folder`` (and its sub-folders: :func:`walked`), in :func:`name_order`,
    the folders that cannot be listed with why, and the other files, but those no one put
    there (hidden ones, such as a Mac's ``.DS_Store``, and
    :data:`~features.vision.images.SYSTEM_FILES`).  Every name with a photo's suffix that is
    not a folder counts (:func:`photo_name`), so that a dangling link or a pipe named ``.jpg``
    is an error naming it, as when it is given, not left out without a word (as were
    sub-folders we may not list: pathlib's ``rglob`` skips them)."""
    from features.vision.images import SYSTEM_FILES

    unreadable, found, others = [], [], []
    for path in walked(folder, recursive=recursive, onerror=lambda exc: unreadable.append(
            (Path(exc.filename), exc.strerror or str(exc)))):
        if photo_name(path):
            found.append(path)
        elif path.name not in SYSTEM_FILES and not path.name.startswith("."):
            others.append(path)
    return sorted(found, key=name_order), unreadable, sorted(others, key=name_order)


def walked(folder, *, recursive=False, onerror=None):
    """Yield the files of ``folder`` (with ``recursive``, and of its sub-folders, not through
    links to folders, which could loop, nor into hidden ones: an Android camera's
    ``.thumbnails`` held a copy of every photo); ``onerror`` as :func:`os.walk`'s."""
    for where, folders, names in os.walk(folder, onerror=onerror):
        folders[:] = [name for name in folders if not name.startswith(".")] if recursive else []
        yield from (Path(where) / name for name in names)


def photo_name(path):
    """Whether a folder's file counts as a photo: a photo's suffix, and not a Mac's
    AppleDouble file (``._IMG_0001.JPG``, Finder data)."""
    from features.vision.images import PHOTO_SUFFIXES, apple_double

    return path.suffix.lower() in PHOTO_SUFFIXES and not apple_double(path)


def photo_folders(folder):
    """The sub-folders of ``folder`` whose photos ``--recursive`` would add (one in them or
    below), in :func:`name_order`; none where they cannot be listed."""
    try:
        subs = [folder / entry.name for entry in os.scandir(folder)
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted((sub for sub in subs if any(map(photo_name, walked(sub, recursive=True)))), key=name_order)


def not_photos(files, folder):
    """``2 files that are not photos (brief.pdf, notes.txt)``: a warning's words for the files
    of ``folder`` that are not photos."""
    from features.products.recommendations import counted

    return (f"{counted(len(files), 'file')} that {'is not a photo' if len(files) == 1 else 'are not photos'} "
            f"({first_names(files, folder)})")


def first_names(paths, folder):
    """The first three of ``paths`` named from ``folder``, and "..." for more: a warning's list."""
    from features.app.records import path_text

    return ", ".join(path_text(path.relative_to(folder)) for path in paths[:3]) + ", ..." * (len(paths) > 3)


def name_order(path):
    """Sort key of a path: folder by folder, by name, with numbers by value, so that a feed
    numbered as it was posted keeps its order (``post_2.jpg`` before ``post_10.jpg``, which
    plain name order put first), other characters by their code; the page orders a drop
    alike (``static/app.js``'s ``byName``)."""
    # split on digit runs: odd places hold the numbers, and the parts always line up by type
    return [[int(run) if i % 2 else run for i, run in enumerate(re.split(r"([0-9]+)", part))]
            for part in path.parts], str(path)


def annotation_targets(photos, folder):
    """A distinct output file for each photo in ``folder`` (``name.jpg``, ``name-2.jpg``, ...),
    its stem cut to keep the name within a file name's bytes (a second photo of a 251-byte
    name could not get its copy: ``-2`` took it past 255)."""
    from features.files import fitting_name

    if folder is None:
        return [None] * len(photos)
    targets, used = [], set()
    for photo in photos:
        stem, n = photo.stem, 1
        while (name := fitting_name(stem, f"{'' if n == 1 else f'-{n}'}.jpg")) in used:
            n += 1
        used.add(name)
        targets.append(folder / name)
    return targets


def photos_inside(folder, photos):
    """The photos given that lie in ``folder`` (as named, or behind a link): annotated copies
    written there could replace any photo of the folder, given or not (``a.png``'s copy is
    ``a.jpg``)."""
    folder = os.path.realpath(folder)
    return [photo for photo in photos if folder in (os.path.realpath(photo.parent),
                                                    os.path.dirname(os.path.realpath(photo)))]


def run_photos(photos, targets, args, settings, *, chosen=None):
    """Yield each photo's record in input order: in ``--n-jobs`` forked processes, or on the
    Dask cluster at ``--scheduler`` (``targets``: each photo's annotated copy, or None;
    ``chosen``: see :func:`run_forked`).

    Never in this process, even for one photo: a library that crashes on a photo (a decoder's
    segmentation fault) ended the run with no line naming the photo, where a worker's death
    costs that photo alone (:func:`run_forked`); forking the worker costs no measurable time
    (README, "Performance").
    """
    jobs = list(zip(photos, targets))
    workers = min(args.n_jobs, len(jobs))
    # small chunks keep both workers busy to the end; a cluster's tasks cost more to send
    size = max(1, min(16 if args.scheduler else 4, -(-len(jobs) // (4 * workers))))
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    if args.scheduler:
        return run_on_cluster(chunks, settings, args.scheduler)
    return run_forked(chunks, settings, workers, chosen=chosen)


def run_forked(chunks, settings, workers, *, chosen=None):
    """In worker processes forked once dlib's models are loaded (they inherit them).

    A worker that dies (killed for its memory, a library that crashed) breaks its pool and
    every chunk not yet answered.  The first ``workers + 1`` of those (the likeliest to have
    been running: workers take chunks in order) are run again one photo at a time, where a
    photo that kills its worker again is answered as lost; the rest go to a new pool.  If the
    photo lay further on (a slow chunk ahead of it), that pool breaks on it in turn, and it is
    then among the first.  So one such photo costs its own answer, not the run's, and each
    break at least ``workers + 1`` chunks of pooled work.

    ``chosen``, a dict, gets the thresholds the workers decided by (``"thresholds"``:
    :func:`~features.app.analysis.decision_thresholds`), asked of the last pool, whose workers
    hold the model: worked out after the run, they cost a second load of it, here.
    """
    from concurrent.futures.process import BrokenProcessPool

    from features.app.analysis import decision_thresholds, preload

    preload()
    while chunks:
        with forked_pool(workers) as pool:
            broken = yield from until_broken(pool, chunks, settings)
            if broken is None and chosen is not None:
                try:
                    chosen["thresholds"] = pool.submit(decision_thresholds, settings).result()
                except BrokenProcessPool:  # a worker gone after the last photo: worked out here
                    pass
        if broken is None:
            return
        done, _ = broken
        yield from run_alone([job for chunk in chunks[done:done + workers + 1] for job in chunk], settings)
        chunks = chunks[done + workers + 1:]


def run_alone(jobs, settings):
    """The records of ``jobs``, each run alone in a pool of one worker, in order: when the worker
    dies, the job it was running is the first one unanswered."""
    from features.app.analysis import lost_record

    while jobs:
        with forked_pool(1) as pool:
            broken = yield from until_broken(pool, [[job] for job in jobs], settings)
        if broken is None:
            return
        done, handed = broken
        if handed:  # the worker's one job when it died
            yield lost_record(jobs[done][0])
            done += 1
        jobs = jobs[done:]


def until_broken(pool, chunks, settings):
    """Yield the records of ``chunks`` analysed in ``pool``, in order; return None when every
    chunk was answered, else ``(answered, handed)``: how many chunks were answered before a
    worker's death broke the pool, and whether the next one had been handed to the pool (it
    may have been running) or not (the pool broke while they were handed out)."""
    from concurrent.futures.process import BrokenProcessPool

    from features.app.analysis import analyse_chunk

    # submitted, not pool.map: leaving map early cancels its futures, and on Python 3.11 the
    # pool's thread then fails, with a traceback, to mark them broken once the workers end
    futures = []
    for chunk in chunks:
        try:
            futures.append(pool.submit(analyse_chunk, chunk, settings))
        except BrokenProcessPool:  # a worker died while the chunks were being handed out
            break
    for done, future in enumerate(futures):
        try:
            records = future.result()
        except BrokenProcessPool:
            return done, True
        yield from records
    return None if len(futures) == len(chunks) else (len(futures), False)


@contextmanager
def forked_pool(workers):
    """A process pool of ``workers`` forked from this process, which end with it.  Leaving the
    block early (a signal, a closed pipe) stops them; leaving it at the end waits for them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from features.app.workers import end_with_parent

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=end_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        for worker in multiprocessing.active_children():
            worker.terminate()
        pool.shutdown(wait=False)
        raise
    # every chunk answered, or the pool broken: waiting costs nothing, while after
    # shutdown(wait=False) CPython's exit can race the pool's manager thread and print a
    # traceback (seen once in the tests: "Bad file descriptor" at exit; the family of
    # python/cpython#132969)
    pool.shutdown(wait=True)


def run_on_cluster(chunks, settings, address):
    """On a Dask cluster; workers get absolute paths, records keep the paths as given, and
    load the model only if it is the one checked here."""
    from features.app.analysis import analyse_chunk_on_worker, lost_record
    from features.app.cluster import connect, map_in_order
    from features.app.records import path_text

    def lost(job):
        return lost_record(job[0])

    remote = [[(Path(path).absolute(), target and target.absolute()) for path, target in chunk]
              for chunk in chunks]
    given = (path for chunk in chunks for path, _ in chunk)
    client = connect(address)
    try:
        for records in map_in_order(client, analyse_chunk_on_worker, remote, settings, lost=lost):
            for record in records:
                yield {**record, "image": path_text(next(given))}
    finally:  # the run's tasks still queued are dropped with it
        client.close()


def main(argv=None):
    signals = StopSignals()  # first: Ctrl-C while the libraries load is a quiet exit too
    args = parse_args(argv)
    if sys.stdout is None:  # started with it closed (>&-): every answer was dropped, and the exit 0
        tell("recommend.py: error: standard output is closed: the answers have nowhere to go "
             "(> /dev/null drops them)")
        return 2
    # a stdout that is not UTF-8 (PYTHONIOENCODING=latin-1, a cp1252 console) takes what it
    # cannot write as \u2192: the reasons' arrow ended the run before its first answer
    sys.stdout.reconfigure(errors="backslashreplace")
    from features.app.analysis import app_card, check_detection
    from features.app.outputs import OutputError, output_sink
    from features.app.records import path_text
    from features.model.model_io import ModelError
    from features.products.recommendations import CatalogError, counted, load_catalog

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            card = app_card(args.model)
        for warning in caught:
            tell(f"recommend.py: warning: {warning.message}")
        catalog = load_catalog(args.catalog)
    except (ModelError, CatalogError) as exc:
        tell(f"recommend.py: error: {exc}")
        return 1
    try:
        check_detection(card, args.detector, args.detection_threshold)
    except ValueError as exc:
        tell(f"recommend.py: error: --detection-threshold: {exc}")
        return 2
    try:
        listed = read_list(args.list) if args.list else []
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # not "[Errno 2] ...: 'NAME'"
        tell(f"recommend.py: error: {args.list}: cannot read the list ({reason})")
        return 1
    # a folder in the list as on the command line (it was "is a directory, not a photo")
    photos, empty, unreadable, left_out, below = collect_photos([*args.paths, *listed], recursive=args.recursive)
    for folder, reason in unreadable:
        tell(f"recommend.py: error: {path_text(folder)}: cannot read the folder ({reason})")
    for folder, others in left_out:  # as the page names the files of a drop it does not send
        tell(f"recommend.py: warning: {path_text(folder)}: left out {not_photos(others, folder)}")
    for folder, subs in below:  # not the --annotate folder, whose copies are this run's output
        subs = [sub for sub in subs if not (args.annotate and os.path.realpath(sub) == os.path.realpath(args.annotate))]
        if subs:
            tell(f"recommend.py: warning: {path_text(folder)}: left out {counted(len(subs), 'sub-folder')} with "
                 f"photos ({first_names(subs, folder)}; --recursive reads {'it' if len(subs) == 1 else 'them'})")
    for folder, others in empty:
        nested = not args.recursive and any(p.is_dir() for p in folder.iterdir())
        tell(f"recommend.py: warning: {path_text(folder)}: no photos in this folder"
             + (" (--recursive reads its sub-folders)" if nested else "")
             + (f"; it holds {not_photos(others, folder)}" if others else ""))
    if not photos:
        if not unreadable:  # else said above
            given = [*args.paths, *([args.list] if args.list else [])]  # the list's folders may be empty too
            tell("recommend.py: error: no photos found in " + ", ".join(map(path_text, given)))
        return 1
    if args.detector or args.detection_threshold is not None:
        given = ", ".join(f"{flag} {value}" for flag, value in (("--detector", args.detector),
                          ("--detection-threshold", args.detection_threshold)) if value is not None)
        tell(f"recommend.py: {given} overrides the model's face detection setting")
    # the outputs are opened before any photo is analysed: their errors cost no work
    targets = annotation_targets(photos, args.annotate)
    try:
        check_annotate_folder(args.annotate, photos, targets)
        sink = output_sink(args.output) if args.output else None
    except (OSError, OutputError) as exc:
        tell(f"recommend.py: error: {exc}")
        return 1
    except AnnotateError as exc:
        tell(f"recommend.py: error: {exc}")
        return 2
    try:
        settings = analysis_settings(args, card, catalog)
        chosen = {} if args.min_probability or args.precision is not None else None
        records, failed, code = answer_photos(photos, targets, args, settings, sink, signals,
                                              failed=len(unreadable), chosen=chosen)
    except OutputError as exc:
        tell(f"recommend.py: error: {exc}")
        return 1
    if sink:  # what was answered is written, however the photos ended
        try:
            with signals.held():
                sink.close()
        except OutputError as exc:
            tell(f"recommend.py: error: {exc}")
            return 1
    if code is not None:
        return code
    if chosen is not None:
        # after the photos: loading the model here would import scikit-learn, which starts
        # threads, before the workers fork from this process
        try:
            announce_thresholds(settings, chosen.get("thresholds"))
        except (ModelError, OSError) as exc:  # a model replaced or removed since the start
            tell(f"recommend.py: error: {exc}")
            return 1
    if args.profile:
        from features.app.text import format_profile
        from features.products.recommendations import profile

        summary = profile(records, catalog, per_category=args.per_category)
        try:
            answer(json.dumps(summary) if args.json else format_profile(summary))
        except BrokenPipeError:
            stdout_gone()
        except StdoutError as exc:
            stdout_gone()
            tell(f"recommend.py: error: {exc}")
            return 1
    return 1 if failed else 0


class AnnotateError(ValueError):
    """An ``--annotate`` folder whose copies would replace a photo (a usage error)."""


def check_annotate_folder(folder, photos, targets):
    """Make the ``--annotate`` folder and check it can be written (OSError), holds none of
    the photos, and holds nothing but annotated copies where the photos' copies (``targets``)
    go (AnnotateError): a copy replaced a photo of the folder that was not given, without a
    word.  Nothing for no folder."""
    from features.app.annotation import is_annotated_copy
    from features.app.records import path_text
    from features.files import writable_folder

    if folder is None:
        return
    writable_folder(folder, "--annotate")
    inside = photos_inside(folder, photos)
    if inside:
        raise AnnotateError(f"--annotate {path_text(folder)}: the folder holds the photo {path_text(inside[0])}, "
                            "and annotated copies could replace its photos; choose a folder without them")
    # a folder there is not replaced: that copy alone cannot be written, and says so (a link
    # to one would be replaced: it is not a copy either)
    taken = [target for target in targets if os.path.lexists(target) and not is_annotated_copy(target)
             and not (os.path.isdir(target) and not os.path.islink(target))]
    if taken:
        more = f" ({len(taken)} such files there)" if len(taken) > 1 else ""
        raise AnnotateError(f"--annotate {path_text(folder)}: {path_text(taken[0])} is not an annotated copy, and a "
                            f"photo's copy would replace it{more}; choose another folder, or move "
                            f"{'them' if more else 'it'}")


def answer_photos(photos, targets, args, settings, sink, signals, *, failed=0, chosen=None):
    """Print each photo's record in input order (and add it to ``sink``), until the photos
    end, the reader goes away or a signal stops the run (``targets``: each photo's annotated
    copy, or None; ``settings``: the analysis's, :func:`analysis_settings`; ``chosen``: see
    :func:`run_forked`).

    An OutputError of ``sink`` is raised, with the photos answered: the file is removed, so
    there is no use in answering more photos for it.

    Returns
    -------
    records : list of dict
        Every record, kept for ``--profile`` only.
    failed : int
        ``failed`` (what failed before, such as folders that cannot be listed) and the photos
        answered with an error or without the annotated copy asked for.
    code : int or None
        The exit code when the run ended early, else None.
    """
    from features.app.analysis import exception_text
    from features.app.cluster import ClusterError
    from features.app.outputs import OutputError
    from features.app.records import path_text, public
    from features.app.text import format_text
    from features.model.model_io import ModelError

    records, answered = [], 0
    try:
        # closed here, however the loop ends, not by the garbage collector: its workers or its
        # cluster client are let go at a known point, where an error is not printed and dropped
        with closing(run_photos(photos, targets, args, settings, chosen=chosen)) as answers:
            # the records first: zip asks them for one more, so that they end (a pool shut down as it should)
            for record, target in zip(answers, targets):
                signals.check()  # a stop lost in a finaliser (a Dask future's) stops the run here
                with signals.held():  # a signal waits: each record is written and printed whole
                    if sink:  # before printing: a photo printed is in the file too
                        sink.add(record)
                    if args.profile:
                        records.append(record)
                    answered += 1
                    failed += record["error"] is not None or "annotation_error" in record
                    if record["error"]:
                        tell(f"recommend.py: {record['image']}: {record['error']}")
                    if "annotation_error" in record:
                        tell(f"recommend.py: error: {path_text(target)}: cannot write the annotated copy "
                             f"({record['annotation_error']})")
                    answer(json.dumps(public(record)) if args.json else format_text(record))
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        stdout_gone()
        return records, failed, 1 if failed else 0
    except StdoutError as exc:
        stdout_gone()
        tell(f"recommend.py: error: {exc}; stopped after {answered} of {len(photos)} photos")
        return records, failed, 1
    except Stopped as stop:  # Ctrl-C, SIGTERM, SIGHUP: what was answered stays printed and written
        tell(f"recommend.py: {stop.word} after {answered} of {len(photos)} photos")  # a terminal gone: EIO
        return records, failed, stop.code
    except OutputError as exc:
        raise OutputError(f"{exc}; stopped after {answered} of {len(photos)} photos") from None
    except (ClusterError, ModelError) as exc:  # ModelError: a model replaced since the run checked it
        tell(f"recommend.py: error: {exc}")
        return records, failed, 1
    except Exception as exc:  # a lost worker or cluster; each photo's own errors are records
        if args.debug:
            traceback.print_exc()
        tell(f"recommend.py: error: {exception_text(exc)}")
        return records, failed, 1
    return records, failed, None


class StdoutError(OSError):
    """Standard output cannot be written (a full disk, a closed descriptor); not its reader
    going away, which is BrokenPipeError."""


def answer(text):
    """Print ``text`` on stdout, now; StdoutError when it cannot be written (it was a
    traceback for the profile, and a bare OSError for a record)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StdoutError(f"cannot write the answers to standard output ({exc.strerror or exc})") from None


def stdout_gone():
    """The reader of stdout went away (``| head``): what is left goes to /dev/null, so that
    neither more printing nor the flush at exit raises BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:  # before the photos: nothing to keep
        sys.exit(as_stopped(stop).code)
