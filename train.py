"""Train img2recommender: features -> calibrated one-vs-rest XGBoost, with an honest
grouped cross-validation report.

    python train.py                       # the shared CelebA hat/beard/eyewear photos
    python train.py --data DIR --ablation

Writes artifacts/model.joblib (a PhotoModel around the fitted scikit-learn Pipeline), model_card.json,
cv_report.json / .csv, oof_scores.csv, types_report.json, ablation.json (--ablation) and ROC,
precision-recall and reliability plots.
"""
import copy
import dataclasses
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from features.stops import Stopped, StopSignals, as_stopped, quick_stops

with quick_stops("train.py") if __name__ == "__main__" else nullcontext():  # Ctrl-C: no import's traceback
    import numpy as np
    import pandas as pd
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from features.model.classifier import (CALIBRATIONS, F1_PLATEAU, MultiLabelClassifier, TooFewExamples,
                                           calibration_shortfall, people_text)
    from features.app.cli import DefaultsHelpFormatter, Parser, given_path, precision, tell
    from features.app.cluster import ClusterError, scheduler_address
    from features.app.records import printable
    from features.app.workers import CPUS, check_workers
    from features.labels import LABELS
    from features.files import content_digest, removed_if_left_empty, replace_keeping_mode, writable_folder
    from features.model.dataset import DATA_ENV, DatasetError, default_data_dir, load_dataset
    from features.model.model_io import ARTIFACTS, MODEL, card_path
    from features.vision.faces import DEFAULT_DETECTION, DETECTORS, detection_settings
    from features.vision.transformer import MAIN_BLOCKS


def parse_args(argv=None):
    parser = Parser(
        description="Train the hat/beard/eyewear model and report grouped cross-validation.",
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--data", type=given_path, default=None,
                        help=f"dataset folder (labels.csv + images/, or hat/ beard/ eyewear/ none/); "
                             f"default ${DATA_ENV} or {default_data_dir()}")
    parser.add_argument("--out", type=given_path, default=ARTIFACTS, help="output folder")
    parser.add_argument("--cache", type=given_path, default=None,
                        help="feature cache folder (default OUT/feature-cache)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N photos of the dataset, in labels.csv's order or the "
                             "label folders' photos by name (quick runs)")
    parser.add_argument("--blocks", default=",".join(MAIN_BLOCKS),
                        help=f"feature blocks of the main row, comma-separated, each once, of {', '.join(MAIN_BLOCKS)} "
                             "(the hat crop's embedding, for the second look at hats, is always added)")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTION.method,
                        help="face detector; the saved model carries it, so recommend.py detects "
                             "as training did")
    parser.add_argument("--detection-threshold", type=float, default=None,
                        help="detector score threshold (default: the detector's usual one)")
    parser.add_argument("--n-splits", type=int, default=5, help="cross-validation folds")
    classifier = MultiLabelClassifier().get_params()  # its defaults, written once
    parser.add_argument("--calibration", choices=CALIBRATIONS, default=classifier["calibration"],
                        help="map from the boosters' margins to probabilities (README: measured)")
    parser.add_argument("--calibration-folds", type=int, default=classifier["calibration_folds"],
                        help="grouped folds that cross-fit each label's boosters and calibration")
    parser.add_argument("--n-estimators", type=int, default=classifier["n_estimators"],
                        help="boosting rounds of each XGBoost model")
    parser.add_argument("--learning-rate", type=float, default=classifier["learning_rate"],
                        help="XGBoost's learning rate (eta)")
    parser.add_argument("--max-depth", type=int, default=classifier["max_depth"], help="depth of XGBoost's trees")
    parser.add_argument("--min-precision", type=precision, default=None,
                        help="choose each threshold for the best recall at this out-of-fold "
                             "precision (default: the best F1, the middle of the thresholds near it)")
    parser.add_argument("--max-skipped", type=float, default=0.2,
                        help="stop when more than this share of photos is unreadable or faceless")
    parser.add_argument("--ablation", action="store_true",
                        help="also cross-validate each feature block alone (OUT/ablation.json)")
    parser.add_argument("--n-jobs", type=int, default=CPUS,
                        help="processes for feature extraction, threads for XGBoost (at most 4 per CPU)")
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="extract features on the Dask cluster at ADDRESS (tcp://host:8786); "
                             "the classifiers are still fitted here")
    parser.add_argument("--no-tight-copies", action="store_true",
                        help="train on the photos alone, without their copies cut tight above the brows and mirrored")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the folds, the tight copies' cuts and the classifiers")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = parser.parse_args(argv)
    # checked before any photo is read: a wrong number would otherwise surface minutes later
    for flag, value, least in (("--limit", args.limit, 1), ("--n-splits", args.n_splits, 2),
                               ("--calibration-folds", args.calibration_folds, 2),
                               ("--n-estimators", args.n_estimators, 1), ("--max-depth", args.max_depth, 1)):
        if value is not None and value < least:
            parser.error(f"{flag} {value}: must be at least {least}")
    try:
        check_workers(args.n_jobs)
    except ValueError as exc:
        parser.error(f"--n-jobs {exc}")
    if not 0 < args.learning_rate <= 1:  # NaN and inf too: XGBoost's own range
        parser.error(f"--learning-rate {args.learning_rate}: must be over 0 and at most 1")
    if not 0 <= args.seed < 2 ** 32:  # NumPy's and XGBoost's seeds
        parser.error(f"--seed {args.seed}: must be from 0 to 2**32 - 1")
    if not 0 <= args.max_skipped <= 1:
        parser.error(f"--max-skipped {args.max_skipped}: must be in [0, 1]")
    try:
        detection_settings(args.detector, args.detection_threshold)
    except ValueError as exc:
        parser.error(f"--detection-threshold: {exc}")
    try:
        main_blocks(args.blocks)
    except ValueError as exc:
        parser.error(f"--blocks {exc}")
    return args


def dataset_fingerprint(table):
    """SHA-256 over each photo's name, labels and content (none for a photo that cannot be
    read, skipped by then: it ended the run after the final fit): same data, same
    fingerprint."""
    digest = hashlib.sha256()
    for row in table.itertuples(index=False):
        digest.update(os.fsencode(Path(row.filename).name))
        digest.update(bytes([getattr(row, label) for label in LABELS]))
        digest.update(bytes.fromhex(content_digest(row.filename) or ""))
    return digest.hexdigest()


def skipped_reasons(paths, known):
    """Why each photo gave no features: the reason ``known`` already (path -> reason), the
    loader's one-line error, or no face found."""
    from features.vision.images import ImageError, load_image

    reasons = []
    for path in paths:
        if path in known:  # not loaded again: a photo that killed its workers
            reasons.append(known[path])
            continue
        try:
            load_image(path)
            reasons.append("no face found")
        except ImageError as exc:
            reasons.append(exc.reason)
    return reasons


def extract(extractor, paths, *, scheduler=None):
    """Feature rows of the photos, here or (with a scheduler address) on a Dask cluster, and
    the reason of each photo the cluster left out (path -> reason)."""
    if scheduler is None:
        from joblib.externals.loky import get_reusable_executor

        X = extractor.transform(paths)
        if extractor.n_jobs != 1:
            # joblib keeps its worker processes for reuse; training needs their memory instead
            get_reusable_executor().shutdown(wait=True)
        return X, {}
    return extract_on_cluster(extractor, list(paths), scheduler)


#: Why a photo that kept killing the workers that extracted it has no features.
WORKER_DIED = "the worker died while extracting its features"


def extract_on_cluster(extractor, paths, scheduler):
    """Feature rows of the photos, computed on the Dask cluster at ``scheduler`` in chunks (as
    ``recommend.py --scheduler`` runs its photos: :func:`features.app.cluster.map_in_order`),
    and the photos left out (path -> reason): one that keeps killing its worker is left out,
    as an unreadable one is."""
    from tqdm import tqdm

    from features.app.cluster import cluster_threads, connect, map_in_order
    from features.vision.transformer import chunked

    def left_out(path):
        # through the progress bar, which would otherwise draw over the line
        tqdm.write(f"train.py: warning: {path}: {WORKER_DIED}; left out", file=sys.stderr)
        lost[path] = WORKER_DIED
        return np.full(extractor.n_features_out_, np.nan, np.float32)

    lost = {}
    if not paths:
        return np.zeros((0, extractor.n_features_out_), np.float32), lost

    client = connect(scheduler)
    try:
        # one photo at a time on each worker thread; the extractor's own n_jobs is this machine's
        remote = copy.copy(extractor).set_params(n_jobs=1, progress=False)
        chunks = chunked(paths, cluster_threads(client))
        results = map_in_order(client, remote.transform, chunks, lost=left_out)
        if extractor.progress:
            results = tqdm(results, total=len(chunks), unit="chunk", desc="features")
        return np.vstack([row for rows in results for row in rows]), lost
    finally:
        client.close()


def check_positives(Y, n_splits, *, identity=None, among="photos with a face"):
    """A DatasetError when a label has too few positive photos (``among``: which), or the
    photos too few people (``identity``, when the labels give it), to cross-validate:
    scikit-learn's splitter said so in a traceback, once every photo's features were read."""
    for j, label in enumerate(LABELS):
        positives = int(Y[:, j].sum())
        if positives < 2 * n_splits:
            raise DatasetError(f"label {label!r} has {positives} positive {among}; "
                               f"{n_splits}-fold cross-validation needs at least {2 * n_splits}")
    if identity is not None and (people := len(set(identity))) < n_splits:
        raise DatasetError(f"the {among} are of {people_text(people)} (identity); {n_splits}-fold "
                           f"cross-validation needs at least {n_splits}")


def check_folds(table, *, n_splits, calibration_folds, seed):
    """A DatasetError when the calibration folds (the classifier's own rule) cannot be made of
    the final fit's photos, or of a training side of the cross-validation's folds (those the
    run makes of the photos, every one read): that failed inside the first fold, once every
    photo's features were read.  (The faces found may hold fewer, which the classifier says
    in its turn.)"""
    from features.model.evaluation import grouped_folds

    Y, groups, _ = photo_groups(table)
    sides = [("", " or fewer --calibration-folds", np.ones(len(Y), dtype=bool))]
    fold = grouped_folds(Y, groups, n_splits=n_splits, random_state=seed)
    sides += [(f", training side of cross-validation fold {k + 1}", ", or fewer --n-splits or --calibration-folds",
               fold != k) for k in range(n_splits)]
    for where, fewer, rows in sides:
        for j, label in enumerate(LABELS):
            if short := calibration_shortfall(Y[rows, j], groups[rows], calibration_folds, noun="photos"):
                raise DatasetError(f"label {label!r}{where}: {short}; use more photos{fewer}")


def photo_groups(table):
    """Each photo's labels and person (``identity``, else the photo itself), as the folds
    group them, and the column they are grouped by: for the run and for its check before any
    photo is read."""
    grouping = "identity" if "identity" in table else "filename"
    return table[list(LABELS)].to_numpy(), table[grouping].to_numpy(), grouping


def tight_copies(extractor, paths, *, seed):
    """The :class:`~features.model.tight_copies.Copies` of the photos at ``paths`` (their
    face rows, in order)."""
    from features.model.tight_copies import Copies, tight_copy_files

    files, source = tight_copy_files(extractor, paths, seed=seed)
    return Copies.with_a_face(extract(extractor, files)[0], source)  # here: the copies live on this machine


def cache_folder(args):
    """``--cache``, by default a folder of ``--out``."""
    return args.cache or args.out / "feature-cache"


#: Every report a run can write beside the model; those a run does not write (an older run's
#: ``--ablation`` or plots) are removed as its model moves in: the reports are the model's own.
REPORTS = ("cv_report.json", "cv_report.csv", "oof_scores.csv", "types_report.json", "ablation.json",
           "roc.png", "precision_recall.png", "reliability.png")


def make_extractor(args, blocks):
    """The feature extractor of a training run: the blocks asked for, the detector, the cache."""
    from features.vision.transformer import BLOCKS, GATED_BLOCKS, FaceFeatures

    return FaceFeatures(**{b: b in blocks or b in GATED_BLOCKS for b in BLOCKS}, n_jobs=args.n_jobs,
                        cache_dir=cache_folder(args).resolve(),
                        detection=detection_settings(args.detector, args.detection_threshold),
                        on_error="nan", progress=sys.stderr.isatty()).fit()


def make_classifier(*, calibration, calibration_folds, n_estimators, learning_rate, max_depth,
                    min_precision, n_jobs, seed):
    """The main classifier: every label on the main row, and a second look at hats with the
    hat crop's embedding for the faces past the gate."""
    from sklearn.base import clone

    from features.model.gated import GatedClassifier
    from features.vision.transformer import gated_names

    boosters = MultiLabelClassifier(calibration=calibration, calibration_folds=calibration_folds,
                                    n_estimators=n_estimators, learning_rate=learning_rate,
                                    max_depth=max_depth, min_precision=min_precision,
                                    n_jobs=n_jobs, random_state=seed)
    return GatedClassifier(boosters, clone(boosters), label="hat", n_jobs=n_jobs,
                           n_gated_columns=len(gated_names()))


def cross_validate(classifier, X, Y, fold, groups, *, copies=None):
    """Report, out-of-fold scores (calibrated and raw), each fold model's thresholds and the
    report on the tight copies of held-out people (None without ``copies``).

    ``copies``: :class:`~features.model.tight_copies.Copies`, each trained on in every fold
    but its photo's.
    """
    from features.model.evaluation import cv_report, out_of_fold

    extra = None if copies is None else (copies.X, Y[copies.source], fold[copies.source], groups[copies.source])
    proba, raw, fold_thresholds, copies_proba = out_of_fold(classifier, X, Y, fold, groups, extra=extra)
    copies_report = None
    if copies is not None:  # each copy decided at its fold's thresholds, though a fold may have none
        rows = np.searchsorted(np.unique(fold), np.unique(extra[2]))
        copies_report = cv_report(extra[1], copies_proba, LABELS, extra[2], fold_thresholds[rows])
    return cv_report(Y, proba, LABELS, fold, fold_thresholds), proba, raw, fold_thresholds, copies_report


def calibration_figures(Y, proba):
    """The calibration report of the pooled out-of-fold scores, printed."""
    from features.model.evaluation import calibration_report, format_calibration

    calibration = calibration_report(Y, proba, LABELS)
    print("\ncalibration, pooled out-of-fold scores (ECE: 10 equal-width bins):")
    print(format_calibration(calibration))
    return calibration


# XGBoost's functions that its native code calls back through ctypes: a KeyboardInterrupt raised
# in one is printed and dropped there, and XGBoost goes on with a half-read matrix. Measured with
# Ctrl-C during cross-validation: a run that finished anyway, a failed check, a double free.
XGBOOST_CALLBACKS = {"_next_wrapper", "_reset_wrapper", "_log_callback"}


def in_xgboost_callback(frame):
    """Whether ``frame`` runs one of :data:`XGBOOST_CALLBACKS`, where a signal must wait."""
    code = frame.f_code
    return code.co_name in XGBOOST_CALLBACKS and f"{os.sep}xgboost{os.sep}" in code.co_filename


def previous_kept(args):
    """What a failed or stopped run says it left as it was: where, once the options are read
    (several runs may be going at once)."""
    return f"the previous model, card and reports{f' in {args.out}' if args else ''} are untouched"


def main(argv=None):
    signals = StopSignals(unsafe=in_xgboost_callback)
    args = None
    try:
        args = parse_args(argv)
        with own_workers():
            code = run(args, time.time(), signals)
    except (DatasetError, OSError, ClusterError) as exc:  # OSError: unreachable scheduler, full disk, ...
        tell(f"train.py: error: {printable(str(exc))}")  # a file name's line break split the line
        return 1
    except TerminatedWorkerError as exc:  # it was a traceback of 36 lines
        codes = re.search(r"exit codes of the workers are (\{.*?\})", str(exc))
        tell(f"train.py: error: a worker process died (exit {codes[1] if codes else 'unknown'}: killed for its "
             f"memory, or crashed on a photo); {previous_kept(args)}")
        return 1
    except TooFewExamples as exc:  # inside a training fold: the photos are too few to split further
        tell(f"train.py: error: {exc}; use more photos, or fewer --n-splits or --calibration-folds")
        return 1
    except KeyboardInterrupt as interrupt:
        stop = as_stopped(interrupt)
        tell(f"train.py: {stop.word}; {previous_kept(args)}")
        return stop.code
    if signals.pending:  # came once the model started to move in: the run is done
        stop = Stopped(signals.pending)
        tell(f"train.py: {stop.word} once the model and its reports were in place")
        return stop.code
    return code


@contextmanager
def own_workers():
    """joblib's settings for this run: each worker process ends with it (killed outright, it
    left its two workers holding about 400 MB each, for good) and is deaf to a hang-up
    (:func:`~features.app.workers.train_worker`); and the resource trackers of
    joblib and multiprocessing started deaf to SIGHUP, as they make themselves to Ctrl-C and
    SIGTERM (a terminal's hang-up killed them, and the trackers started again printed 48
    lines of warnings and tracebacks beside the run's one)."""
    from multiprocessing import resource_tracker

    from joblib import parallel_config
    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    from features.app.workers import train_worker

    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # kept by the processes started now
    try:
        loky_tracker.ensure_running()
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    with parallel_config(backend="loky", initializer=train_worker, initargs=(os.getpid(),)):
        yield


@dataclasses.dataclass(frozen=True)
class Labelled:
    """The photos a run trains on, read and checked before any photo is (:func:`load_table`)."""

    folder: Path  # the dataset's
    table: pd.DataFrame  # filename, the labels (cleaned by the type files), identity when given
    T: object  # DataFrame: the type labels of each photo (type_labels); None without type files
    flipped: dict  # label -> photos flipped to 0 as label errors of the source


def load_table(args):
    """The :class:`Labelled` photos to train on (``--data``, ``--limit``; labels cleaned by
    the type files, :func:`clean_labels`), checked for the folds, and the blocks asked for."""
    from features.model.types import type_labels

    data_dir = args.data or default_data_dir()
    table = whole = load_dataset(data_dir)
    if args.limit:
        table = whole.iloc[:args.limit].reset_index(drop=True)
    T, flips = type_labels(data_dir, table["filename"])
    table, flipped = clean_labels(table, flips)
    try:  # the faces found are checked again
        check_positives(table[list(LABELS)].to_numpy(), args.n_splits, identity=table.get("identity"),
                        among="photos")
        check_folds(table, n_splits=args.n_splits, calibration_folds=args.calibration_folds, seed=args.seed)
    except DatasetError as exc:  # --help calls it "quick runs": what to raise it to is not guessed
        if len(table) < len(whole):
            raise DatasetError(f"{exc} (--limit {args.limit}: give more of the dataset's photos)") from None
        raise
    return Labelled(data_dir, table, T, flipped), main_blocks(args.blocks)


def main_blocks(text):
    """The blocks of ``--blocks`` (comma-separated, each once, the gated ones left out: they
    are always added, last), or ValueError."""
    blocks = tuple(b.strip() for b in text.split(",") if b.strip())
    if set(blocks) - set(MAIN_BLOCKS) or not blocks or len(set(blocks)) < len(blocks):
        raise ValueError(f"{text!r}: expected some of {', '.join(MAIN_BLOCKS)}, each once")
    return blocks


def skipped_photos(table, X, max_skipped, *, known=None):
    """Which photos have a face, which could be read, and why the others were skipped
    (``known``: the reasons :func:`extract` gave, path -> reason).

    Returns
    -------
    found, readable : ndarray of bool
        A face row; a photo that could be read (with a face or without).
    skipped : DataFrame
        ``filename`` and ``reason`` of every photo without a face row.
    """
    found = ~np.isnan(X).all(axis=1)
    skipped = pd.DataFrame({"filename": table.loc[~found, "filename"],
                            "reason": skipped_reasons(table.loc[~found, "filename"], known or {})})
    if len(skipped) > max_skipped * len(table):
        raise DatasetError(f"{len(skipped)} of {len(table)} photos unusable, over --max-skipped "
                           f"{max_skipped:.0%}; first: {skipped.iloc[0].filename}: {skipped.iloc[0].reason}")
    readable = found.copy()
    readable[skipped.index[skipped.reason == "no face found"]] = True
    return found, readable, skipped


def detection_rows(Y, found):
    """Photos with a face found, overall and among each label's positives."""
    rows = {"all": (len(Y), int(found.sum()))}
    rows.update({label: (int(Y[:, j].sum()), int(found[Y[:, j] == 1].sum()))
                 for j, label in enumerate(LABELS)})
    return {name: {"photos": n, "found": k, "share": k / max(n, 1)} for name, (n, k) in rows.items()}


def format_detection(rows):
    return "\n".join(f"{name:<9}{row['found']:>6} of {row['photos']:<6} ({row['share']:.1%})"
                     for name, row in rows.items())


def types_card(types, report):
    """What the model card says about the type models: classes and headline CV scores."""
    from features.model.type_report import HEADLINE

    card = {target: {"classes": [str(c) for c in classes],
                     **{m: report["targets"][target][m]["mean"] for m in HEADLINE[target]
                        if m in report["targets"].get(target, {})}}
            for target, classes in types.classes_.items()}
    if "hat_colour_reads" in report:
        card["hat_colour_read"] = report["hat_colour_reads"]["kept"]
    return card


def clean_labels(table, flips):
    """Flip the parent labels that the finer label files call errors (a hat or glasses that
    is not there); the input table is left as it was.

    Returns
    -------
    table : DataFrame
    flipped : dict of str to int
        Label -> photos flipped to 0.
    """
    table = table.copy()
    names = table["filename"].map(lambda f: Path(f).name)
    flipped = {}
    for label, photos in flips.items():
        rows = names.isin(photos) & (table[label] == 1)
        table.loc[rows, label] = 0
        flipped[label] = int(rows.sum())
    return table, flipped


def type_models(args, X, T, fold, groups, paths, extractor, out):
    """Cross-validate and fit the type models (issue 13); print their report and save it
    into ``out``.

    ``X`` holds the feature rows of ``paths``, with every block of ``extractor``; ``T`` their
    type labels (:func:`features.model.types.type_labels`).

    Returns
    -------
    TypeClassifier
    dict
        The report written to ``types_report.json``.
    """
    from features.files import write_json_atomically
    from features.model.type_report import format_type_report, train_types, type_ablation
    from features.vision.transformer import block_names

    names = extractor.get_feature_names_out()
    started = time.time()
    model, report = train_types(X, T, fold, groups, paths, feature_names=names, detection=extractor.detection,
                                n_jobs=args.n_jobs, random_state=args.seed)
    report["seconds"] = round(time.time() - started, 1)
    print(f"\ntypes, given their parent label, out-of-fold over the same folds ({report['seconds']:.0f} s):")
    print(format_type_report(report["targets"]))
    folds = len(np.unique(fold))
    for target, skipped in report["skipped_folds"].items():
        print(f"{target}: no type model in {len(skipped)} of {folds} folds ({skipped[0]['why']}): "
              + ("left out of the report" if len(skipped) == folds else "its scores are of the other folds"))
    for target, why in model.skipped_.items():  # its products then go by the label alone
        print(f"{target}: no type model ({why}): its products are chosen without it")
    if "hat_colour_reads" in report:
        reads = report["hat_colour_reads"]
        print("hat colour against the labels: " + "; ".join(
            f"{read} {reads[read]['accuracy']:.3f} (black/navy swaps {reads[read]['dark_swaps']}, "
            f"white/beige/grey swaps {reads[read]['light_swaps']})" for read in ("trained", "measured"))
            + f"; kept: {reads['kept']}")
    if args.ablation:
        blocks = extractor.blocks
        report["ablation"] = type_ablation(model, X, T, fold, groups,
                                           {b: np.isin(names, block_names(b)) for b in blocks})
        for target, blocks in report["ablation"].items():
            print(f"ablation {target:<11} " + "; ".join(
                f"{block} " + " ".join(f"{m} {v:.3f}" for m, v in scores.items()) for block, scores in blocks.items()))
    write_json_atomically(out / "types_report.json", report)
    return model, report


@dataclasses.dataclass(frozen=True)
class Split:
    """The readable photos, their people and folds, and which of them gave a face row.

    Folds cover every readable photo, so that a photo without a face still counts (as a
    miss) in the end-to-end scores; models are fitted and scored on the faces found.
    """

    kept: pd.DataFrame  # readable photos
    Y: np.ndarray  # their labels
    groups: np.ndarray  # their people (or photos)
    fold: np.ndarray  # their CV fold
    face: np.ndarray  # bool: a face row was found
    grouping: str  # "identity" or "filename"


def split_photos(table, readable, face_rows, *, n_splits, seed):
    from features.model.evaluation import grouped_folds

    kept = table[readable].reset_index(drop=True)
    Y, groups, grouping = photo_groups(kept)
    check_positives(Y[face_rows[readable]], n_splits,  # first: too few cannot be split
                    identity=groups[face_rows[readable]] if grouping == "identity" else None)
    return Split(kept, Y, groups, grouped_folds(Y, groups, n_splits=n_splits, random_state=seed),
                 face_rows[readable], grouping)


def evaluate(classifier, X, split, *, copies=None):
    """Cross-validate on the faces found, then end to end; print the tables.

    Returns
    -------
    dict
        ``report``, ``end_to_end``, ``detection``, ``calibration`` (for the files), ``proba``,
        ``raw`` (out-of-fold scores of the faces), ``tight_copies`` (the report on the copies
        of held-out people, or None) and ``seconds``.
    """
    from features.model.evaluation import cv_report, format_report

    started = time.time()
    face = split.face
    report, proba, raw, fold_thresholds, copies_report = cross_validate(
        classifier, X, split.Y[face], split.fold[face], split.groups[face], copies=copies)
    seconds = time.time() - started
    end_to_end = np.zeros(split.Y.shape)
    end_to_end[face] = proba
    e2e_report = cv_report(split.Y, end_to_end, LABELS, split.fold, fold_thresholds)
    detection = detection_rows(split.Y, face)
    print(f"\n{len(np.unique(split.fold))}-fold cross-validation grouped by {split.grouping}, out-of-fold "
          f"only ({seconds:.0f} s); photos with a face found:")
    print(format_report(report))
    print("\nend to end, every readable photo (no face found = probability 0):")
    print(format_report(e2e_report))
    if copies_report is not None:
        print(f"\ntight copies of the held-out people ({len(copies.source)}, cut above the brows, mirrored; "
              f"trained on in the other folds):")
        print(format_report(copies_report))
    print("\nphotos with a face found:")
    print(format_detection(detection))
    return {"report": report, "end_to_end": e2e_report, "detection": detection,
            "calibration": calibration_figures(split.Y[face], proba), "proba": proba, "raw": raw,
            "tight_copies": copies_report, "seconds": seconds}


def write_reports(out, split, cv, skipped, *, n_splits, seed, plots):
    """cv_report.json and .csv, and the plots; returns the report's ``cv`` header."""
    from features.files import write_atomically, write_json_atomically

    out.mkdir(parents=True, exist_ok=True)
    # n_photos_read: the photos scored end to end, a face found or not (the card's dataset.n_photos
    # counts the unreadable ones too)
    header = {"splitter": "StratifiedGroupKFold", "n_splits": n_splits, "groups": split.grouping,
              "shuffle": True, "random_state": seed, "n_photos_read": len(split.kept),
              "n_faces_found": int(split.face.sum())}
    write_json_atomically(out / "cv_report.json", {
        "cv": header, "labels": cv["report"], "end_to_end": cv["end_to_end"], "tight_copies": cv["tight_copies"],
        "calibration": cv["calibration"], "detection": cv["detection"],
        "skipped": skipped.to_dict("records")})
    rows = [{"scope": scope, "label": label, "metric": m, **v}
            for scope, part in (("faces_found", cv["report"]), ("end_to_end", cv["end_to_end"]))
            for label, s in part.items() for m, v in s.items() if isinstance(v, dict)]
    write_atomically(out / "cv_report.csv", lambda p: pd.DataFrame(rows).to_csv(p, index=False))
    # every face's out-of-fold probabilities, for studies of the scores (benchmarks/quality_check.py)
    scores = split.kept.loc[split.face, ["filename", *LABELS]].assign(fold=split.fold[split.face])
    scores[[f"p_{label}" for label in LABELS]] = cv["proba"]
    write_atomically(out / "oof_scores.csv", lambda p: scores.to_csv(p, index=False))
    if plots:
        from features.model.plots import save_curves

        save_curves(split.Y[split.face], cv["proba"], LABELS, cv["raw"], out)
    return header


def block_ablation(classifier, X, split, copies, extractor, blocks, report, out):
    """Cross-validate each feature block alone (with the copies' same columns); ablation.json."""
    from features.files import write_json_atomically
    from features.model.evaluation import format_report
    from features.vision.transformer import block_names

    face = split.face
    ablation = {"all": {"n_features": int(X.shape[1]), "labels": report}}  # the main CV
    for block in blocks:
        cols = np.isin(extractor.get_feature_names_out(), block_names(block))
        block_report = cross_validate(classifier, X[:, cols], split.Y[face], split.fold[face], split.groups[face],
                                      copies=None if copies is None else copies.columns(cols))[0]
        ablation[block] = {"n_features": int(cols.sum()), "labels": block_report}
        print(f"\nablation: {block} alone ({cols.sum()} features)\n{format_report(block_report)}")
    write_json_atomically(out / "ablation.json", ablation)


def model_card(args, *, data_dir, table, X, split, copies, cv, header, skipped, final, extractor,
               types, types_report, flipped, seconds):
    """What model_card.json says about the model, its data and its scores."""
    from features.model.evaluation import decision_table
    from features.model.tight_copies import TIGHT_SHARES
    from features.vision.transformer import block_names

    face = split.face
    return {
        "labels": list(LABELS),
        "thresholds": dict(zip(LABELS, final.thresholds_.tolist())),
        "threshold_rule": (f"best recall at precision >= {args.min_precision}"
                           if args.min_precision else f"max F1: the median threshold within {F1_PLATEAU} of it")
                          + " on the model's own cross-fitted out-of-fold scores of its training people "
                          + ("(their photos and tight copies; decisions: the photos alone)" if copies is not None
                             else "(their photos)"),
        "calibration": {label: {k: v for k, v in c.items() if k != "bins"} for label, c in cv["calibration"].items()},
        "decisions": decision_table(split.Y[face], cv["proba"], LABELS, final.thresholds_),
        "feature_blocks": {b: len(block_names(b)) for b in extractor.blocks},
        "n_features": int(X.shape[1]),
        "columns_per_booster": {**{label: [len(c) for c in columns] for label, columns in zip(LABELS, final.first_.columns_)},
                                f"{final.label} (second look)": [len(c) for c in final.second_.columns_[0]]},
        "classifier": {**{k: v for k, v in final.first.get_params().items() if k != "thresholds"},
                       "second_look": {"label": final.label, "gate": final.gate}},
        "dataset": {"path": str(data_dir), "n_photos": len(table), "n_used": int(face.sum()),
                    "n_skipped": len(skipped), "positives": dict(zip(LABELS, split.Y[face].sum(0).tolist())),
                    "fingerprint": dataset_fingerprint(table)},
        "training_seconds": seconds,
        "cv": header,
        "cv_scores": {label: {m: s[m]["mean"] for m in ("roc_auc", "average_precision", "f1", "brier")}
                      for label, s in cv["report"].items()},
        "end_to_end_cv_scores": {label: {m: s[m]["mean"] for m in ("roc_auc", "average_precision", "f1")}
                                 for label, s in cv["end_to_end"].items()},
        "detection": cv["detection"],
        "tight_copies": None if copies is None else {
            "n": len(copies.source), "shares": list(TIGHT_SHARES), "mirrored": True,
            "cv_scores": {label: {m: s[m]["mean"] for m in ("roc_auc", "f1", "recall")}
                          for label, s in cv["tight_copies"].items()}},
        "detector": dataclasses.asdict(extractor.detection),
        "label_errors_flipped": flipped,
        "types": types_card(types, types_report) if types is not None else None,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # UTC, shown by serve.py
    }


def run(args, started, signals):
    """Check the dataset and the output folders, then train (:func:`train`)."""
    labelled, blocks = load_table(args)
    # every file but the model is made here and moved into --out at the end, so that a run that
    # fails or is stopped leaves the previous run's reports beside its model; made first, so
    # that an --out or --cache that cannot be written is said before any photo is read
    with removed_if_left_empty(args.out), removed_if_left_empty(cache_folder(args)):
        staging = Path(tempfile.mkdtemp(dir=writable_folder(args.out, "--out"), prefix=".train-"))
        try:
            # a folder where a file goes could not be replaced once the model was in
            if in_the_way := sorted(name for name in (MODEL.name, card_path(MODEL).name, *REPORTS)
                                    if (args.out / name).is_dir()):
                raise OSError(f"--out {args.out}: {in_the_way[0]} is a folder; the run writes a file there")
            writable_folder(cache_folder(args), "--cache")
            return train(args, started, labelled, blocks, staging, signals)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def train(args, started, labelled, blocks, staging, signals):
    """The run itself: features, cross-validation, types, the final fit; the reports are
    written into ``staging`` and moved into ``--out`` after the model."""
    from sklearn.pipeline import Pipeline

    from features.model.model_io import save_model
    from features.model.photo_model import PhotoModel
    from features.model.types import TYPE_FILES

    data_dir, table, T, flipped = labelled.folder, labelled.table, labelled.T, labelled.flipped
    print(f"dataset: {data_dir} ({len(table)} photos); blocks: {', '.join(blocks)}; labels flipped "
          f"to 0 as label errors of the source: {flipped or 'none'}")
    extractor = make_extractor(args, blocks)
    extraction_started = time.time()
    X, lost = extract(extractor, table["filename"], scheduler=args.scheduler)
    extraction_seconds = time.time() - extraction_started
    found, readable, skipped = skipped_photos(table, X, args.max_skipped, known=lost)
    print(f"features: {X.shape[1]} per face, {extraction_seconds:.0f} s; "
          f"skipped {len(skipped)} of {len(table)} photos "
          f"({(~readable).sum()} unreadable, {(readable & ~found).sum()} without a face)")
    split = split_photos(table, readable, found, n_splits=args.n_splits, seed=args.seed)
    X = X[found]
    copies = None
    if not args.no_tight_copies:
        copies_started = time.time()
        copies = tight_copies(extractor, split.kept["filename"].to_numpy()[split.face], seed=args.seed)
        print(f"tight copies: {len(copies.source)} of {len(X)} photos, cut above the brows and mirrored, "
              f"{time.time() - copies_started:.0f} s")

    classifier = make_classifier(calibration=args.calibration, calibration_folds=args.calibration_folds,
                                 n_estimators=args.n_estimators, learning_rate=args.learning_rate,
                                 max_depth=args.max_depth, min_precision=args.min_precision,
                                 n_jobs=args.n_jobs, seed=args.seed)
    cv = evaluate(classifier, X, split, copies=copies)
    header = write_reports(staging, split, cv, skipped, n_splits=args.n_splits, seed=args.seed,
                           plots=not args.no_plots)
    if args.ablation:
        block_ablation(classifier.first, X, split, copies, extractor, blocks, cv["report"], staging)
    types = types_report = None
    if T is None:  # the products within a category then go by the label alone
        print(f"\ntypes: none ({data_dir} has no {', '.join(TYPE_FILES)}): products within a category are "
              "chosen without them")
    else:
        types, types_report = type_models(
            args, X, T[readable].reset_index(drop=True)[split.face].reset_index(drop=True),
            split.fold[split.face], split.groups[split.face], split.kept["filename"].to_numpy()[split.face],
            extractor, staging)

    fit_started = time.time()
    Y, groups = split.Y[split.face], split.groups[split.face]
    if copies is not None:
        X, Y, groups = (np.vstack([X, copies.X]), np.vstack([Y, Y[copies.source]]),
                        np.concatenate([groups, groups[copies.source]]))
    final = classifier.fit(X, Y, groups=groups)
    # the saved model detects faces exactly as training did; only the plumbing changes
    extractor.set_params(n_jobs=1, cache_dir=None, on_error="raise", progress=False)
    model = PhotoModel(Pipeline([("features", extractor), ("classifier", final)]), types=types)
    seconds = {"features": round(extraction_seconds, 1), "cv": round(cv["seconds"], 1),
               "final_fit": round(time.time() - fit_started, 1), "total": round(time.time() - started, 1)}
    card = model_card(args, data_dir=data_dir, table=table, X=X, split=split, copies=copies, cv=cv,
                      header=header, skipped=skipped, final=final, extractor=extractor, types=types,
                      types_report=types_report, flipped=flipped, seconds=seconds)
    model_path = args.out / MODEL.name
    reports = sorted(p.name for p in staging.iterdir())
    signals.hold()  # the model and its reports move in whole, and the run ends as it does
    save_model(model, card, model_path)
    try:
        for name in reports:  # the model is in place: its reports follow, an older run's others go
            replace_keeping_mode(staging / name, args.out / name)
        for name in set(REPORTS) - set(reports):
            (args.out / name).unlink(missing_ok=True)
    except OSError as exc:  # a file made unchangeable (chattr +i): said as what it is
        raise OSError(f"the model and its card are in place, but not every report: {exc}") from None
    print("\nthresholds the model decides at (on every photo's out-of-fold scores; the tables' thresh is the "
          "mean of each fold model's own): " + ", ".join(f"{label} {threshold:.3f}" for label, threshold
                                                            in card["thresholds"].items()))
    print(f"model: {model_path} (card: {model_path.with_name('model_card.json')}; reports beside them: "
          f"{', '.join(reports)}); {time.time() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:  # between the imports and main's handlers: nothing written yet
        sys.exit(as_stopped(stop).code)
