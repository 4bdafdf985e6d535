"""One photo end to end: faces, calibrated scores and types per face, products.

Lives in a module (not in recommend.py) so that worker processes can import it; each
process loads the model once, the catalog travels with the settings, and forked workers
inherit dlib's landmark model from :func:`preload`.
"""
import traceback
import warnings
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

from features.app.annotation import annotate, copy_comment, save_rgb
from features.app.records import path_text
from features.numbers import score_text
from features.labels import LABELS, judged
from features.vision.faces import DetectionSettings, detection_settings, landmark_predictor
from features.vision.images import ImageError, load_image
from features.model.model_io import RETRAIN, ModelError, card_path, check_model, load_model
from features.products.recommendations import PER_CATEGORY, headline, recommend_products


@dataclass(frozen=True)
class AnalysisSettings:
    """How photos are analysed: the model file, the catalog, and one run's overrides of the
    model's own settings (None or empty: the model's).  Hashable, so that a worker process
    keeps its model, with the overrides applied, and catalog per settings.

    Attributes
    ----------
    model : Path
        Absolute (workers may run elsewhere).
    catalog : tuple
        The products the run loaded and checked, as :func:`frozen_catalog` gives them: the
        workers read no catalog file, so an edit made mid-run, or another copy on a worker's
        host, cannot answer for it.
    per_category : int
        Products per category a face has.
    detector : str, optional
    detection_threshold : float, optional
        Detect with these instead of the model's settings.
    min_probability : tuple of (str, float)
        Fixed thresholds for some labels, sorted by label.
    precision : float, optional
        For the other labels, the threshold of the best recall at this out-of-fold precision.
    debug : bool
        Print the traceback of a photo that fails.
    model_sha256 : str, optional
        The checksum the model must have (its card's, as the run checked it): a Dask worker's
        host may hold another model at the same path, and a model retrained mid-run would
        answer for the rest of it, both passing for the run's.
    """

    model: Path
    catalog: tuple
    per_category: int = PER_CATEGORY
    detector: str | None = None
    detection_threshold: float | None = None
    min_probability: tuple = ()
    precision: float | None = None
    debug: bool = False
    model_sha256: str | None = None


def check_precision(min_probability, precision):
    """ValueError when ``precision`` would set no label: ``min_probability`` (label -> P) sets
    them all (recommend.py's --precision, the API's ``precision``)."""
    if precision is not None and set(LABELS) <= set(min_probability):
        raise ValueError("would set no label: min_probability sets them all")


def parse_min_probability(text):
    """``"hat=0.8,eyewear=0.6"`` -> ``{"hat": 0.8, "eyewear": 0.6}``; ValueError, in one line,
    for anything else."""
    chosen = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, value = (part.strip() for part in item.partition("="))
        if label in chosen:
            raise ValueError(f"{item!r}: {label} is given twice")
        try:
            chosen[label] = float(value) + 0.0  # -0 is 0, announced as 0.000
        except ValueError:
            raise ValueError(f"{item!r}: expected LABEL=P, e.g. hat=0.8") from None
        if label not in LABELS or not 0 <= chosen[label] <= 1:
            raise ValueError(f"{item!r}: LABEL is one of {', '.join(LABELS)} and P in [0, 1]")
    return chosen


def app_card(model_path):
    """:func:`~features.model.model_io.check_model`, and the card's entries that recommend.py
    and serve.py read (``labels``, ``thresholds``, ``detector``, ``dataset.n_used``): the
    checksum covers the model, not its card, so a card edited by hand is a one-line
    ModelError that names the entry, not a KeyError further on."""
    card = check_model(model_path)
    try:
        check_card_entries(card)
    except ValueError as exc:
        raise ModelError(f"{card_path(model_path)}: {exc}; {RETRAIN}") from None
    return card


#: What a card's detection setting must be, by the type of its default: (types, in words).
KINDS = {bool: ((bool,), "true or false"), int: ((int,), "an integer"),
         float: ((int, float), "a number"), str: ((str,), "a string")}


def check_card_entries(card):
    """ValueError, in words naming the entry, for a card entry the app cannot use."""
    def entry(*keys):
        value = card  # an object: read_card checks
        for depth, key in enumerate(keys):
            if not isinstance(value, dict):
                raise ValueError(f"{'.'.join(keys[:depth])} {value!r} is not an object")
            if key not in value:
                raise ValueError(f"no {'.'.join(keys[:depth + 1])}")
            value = value[key]
        return value

    def check(value, name, kind):
        types, words = KINDS[kind]
        if not isinstance(value, types) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"{name} {value!r} is not {words}")

    if entry("labels") != list(LABELS):  # what train.py writes, and the order of every score
        raise ValueError(f"labels {card['labels']!r} are not {list(LABELS)}")
    for label in LABELS:
        check(entry("thresholds", label), f"thresholds.{label}", float)
        if not 0 <= card["thresholds"][label] <= 1:
            raise ValueError(f"thresholds.{label} {card['thresholds'][label]!r} is not a probability")
    for setting in fields(DetectionSettings):
        check(entry("detector", setting.name), f"detector.{setting.name}", type(setting.default))
    try:
        DetectionSettings(**card["detector"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"detector: {exc}") from None
    check(entry("dataset", "n_used"), "dataset.n_used", int)


def check_detection(card, detector=None, threshold=None):
    """The detection setting that ``--detector`` / ``--detection-threshold`` give the model of
    ``card``: checked once, before any photo (ValueError, in one line, for a threshold the
    detector cannot use)."""
    return detection_settings(detector, threshold, base=DetectionSettings(**card["detector"]))


@lru_cache(maxsize=8)  # a few option sets per worker (a web server's requests may vary them)
def worker_state(settings):
    """The model and catalog of ``settings``, with the run's overrides applied."""
    model = process_model(settings.model, settings.model_sha256)
    if settings.detector is not None or settings.detection_threshold is not None:
        model = model.with_detection(detection_settings(settings.detector, settings.detection_threshold,
                                                        base=model.detection))
    if settings.min_probability or settings.precision is not None:
        model = deciding(model, settings)[0]
    return model, [dict(product) for product in settings.catalog]


def deciding(model, settings):
    """``model`` deciding by ``settings``' thresholds, and what to know of a label's, one line
    each (it never reaches ``settings.precision`` out of fold, decides far more faces than
    have it, or falls under the model's own threshold): the run or request says it, once,
    where the photos' workers would say it once per worker."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category=UserWarning)
        chosen = model.with_decisions(min_probability=dict(settings.min_probability), precision=settings.precision)
    return chosen, [str(warning.message) for warning in caught]


def check_card_is_model(settings, card):
    """ModelError when ``card``'s thresholds or detector are not the model's own, a card edited
    by hand (the checksum covers the model, not its card): the web app shows the card's, and
    the model decides by its own.  Loads the model: in a worker."""
    def entries(thresholds, detector):  # as the card names them: thresholds.hat, detector.threshold, ...
        return {f"{part}.{name}": value for part, values in (("thresholds", thresholds), ("detector", detector))
                for name, value in values.items()}

    model = process_model(settings.model, settings.model_sha256)
    own = entries(model.thresholds, asdict(model.detection))
    told = entries(card["thresholds"], card["detector"])
    for entry, value in own.items():
        if told.get(entry) != value:
            raise ModelError(f"{card_path(settings.model)}: {entry} {told.get(entry)!r} is not the model's "
                             f"({value!r}): the card was edited; {RETRAIN}, or put the model's back")


def decision_thresholds(settings):
    """The thresholds photos are decided by under ``settings`` (label -> threshold; infinity:
    the label decides nothing) and what to know of them (:func:`deciding`).  Loads the
    model (scikit-learn's threads): in a worker, or once a run's workers are done."""
    chosen, notes = deciding(process_model(settings.model, settings.model_sha256), settings)
    return chosen.thresholds, notes


@lru_cache(maxsize=2)
def process_model(path, model_sha256=None):
    """The model at ``path``, loaded once per process, so that every option set the process
    answers with is the same model: loading it again for a new one (a web request's options)
    answered with a model retrained since the start, while /api/health named the first.  Refused
    when its checksum is not ``model_sha256`` (the one the run or server checked at its
    start; None: any)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the main process said it
        model, card = load_model(path)
    if model_sha256 not in (None, card["model_sha256"]):
        raise ModelError(f"{path}: another model than the one checked at the start (checksum "
                         f"{card['model_sha256'][:12]}, checked {model_sha256[:12]})")
    return model


def frozen_catalog(catalog):
    """``catalog`` (:func:`~features.products.recommendations.load_catalog`'s products) as
    :class:`AnalysisSettings` carry it: hashable."""
    return tuple(tuple(product.items()) for product in catalog)


def preload():
    """Load dlib's landmark model (100 MB, 0.3 s) once, before forking the workers, which
    inherit it.

    The rest of a worker's start (importing scikit-learn, unpickling the model, opening
    onnxruntime's sessions for the detector and the embeddings: about 1 s) runs in each
    worker, side by side: onnxruntime starts threads, and a process forked after that can
    hang.
    """
    landmark_predictor()


def shown_score(probability, threshold, *, decided=None):
    """``probability`` to 4 decimals, the nearest, or a step of 0.0001 towards its decision
    where the nearest would cross ``threshold``: a label's score never shows under the
    threshold it passed (0.37064999 decided at 0.3706498 showed 0.3706), nor an undecided
    one's at or over it.  ``decided`` None (a face not judged): the nearest.  (Every score was
    moved towards its decision, its threshold near or not: 0.00066 showed 0.0006, and a score
    changed with a request's thresholds.)"""
    shown = round(probability, 4)
    if decided is True and shown < threshold:
        return round(shown + 0.0001, 4)
    if decided is False and shown >= threshold:
        return round(shown - 0.0001, 4)
    return shown


def analyse_photo(path, model, catalog, *, per_category=PER_CATEGORY, annotate_to=None):
    """Everything recommend.py says about one photo, as the JSON Lines record (plus each
    face's ``headline`` and ``score_texts``, and ``annotation_error``, the reason the annotated
    copy could not be written to ``annotate_to``, when it could not: the analysis is kept all
    the same)."""
    image = load_image(path)
    results, thresholds = [], model.thresholds
    for answer in model.answer(image):
        labels = list(answer.labels)
        scores = {label: shown_score(p, thresholds[label], decided=label in labels if judged(answer.quality) else None)
                  for label, p in answer.probabilities.items()}
        results.append({"box": list(answer.box), "scores": scores, "labels": labels,
                        "score_texts": {label: score_text(score, thresholds[label]) for label, score in scores.items()},
                        "types": answer.types, "quality": answer.quality,
                        "recommendations": recommend_products(scores, labels, answer.types, catalog,
                                                              per_category=per_category),
                        "headline": headline(scores, labels, answer.quality)})
    record = {"image": path_text(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
              "faces": results, "error": None}
    if annotate_to is not None and (reason := write_annotated(annotate_to, image, results, source=path)):
        record["annotation_error"] = reason
    return record


def write_annotated(path, image, faces, *, source):
    """Write the annotated copy of the photo at ``source`` to ``path``; the reason it cannot
    be (a full disk, a folder removed, a drawing that fails), else None: a side output that
    fails must not cost the photo its analysis."""
    try:
        save_rgb(path, annotate(image, faces), comment=copy_comment(source))
    except OSError as exc:
        return exc.strerror or str(exc)
    except Exception as exc:  # the reason alone: the path is said by the caller
        return exception_text(exc)
    return None


def analyse_chunk(jobs, settings):
    """Analyse ``(path, annotate_to)`` jobs in one process with :class:`AnalysisSettings`; a
    failing photo becomes an error record."""
    from threadpoolctl import threadpool_limits

    model, catalog = worker_state(settings)
    with threadpool_limits(1):  # one photo per process at a time: no thread pools inside
        return [analyse_job(path, model, catalog, per_category=settings.per_category, annotate_to=annotate_to,
                            debug=settings.debug)
                for path, annotate_to in jobs]


def analyse_chunk_on_worker(jobs, settings):
    """:func:`analyse_chunk` on a Dask worker, where a model that will not load is a
    ClusterError naming the worker (:func:`unusable_on_worker`): the client checked its own
    copy, and the model's own advice, "make one with: python train.py", is wrong there."""
    try:
        worker_state(settings)
    except ModelError as exc:
        raise unusable_on_worker(exc, settings) from None
    return analyse_chunk(jobs, settings)


def unusable_on_worker(exc, settings):
    """The ClusterError of ``exc``, the model's error on this Dask worker: a file it cannot
    read is at another path on its host (a file system not shared, or mounted elsewhere)."""
    from distributed import get_worker

    from features.app.cluster import ClusterError

    where = f"the worker at {get_worker().address}"
    try:
        for name in (settings.model, card_path(settings.model)):
            open(name, "rb").close()
    except OSError as error:
        return ClusterError(f"{where} cannot read the model at {settings.model} ({error.strerror}): it must "
                            "be at the same path on every host (README, Scaling out on Dask)")
    return ClusterError(f"{where}: {exc}: every host needs the same file (README, Scaling out on Dask)")


def analyse_job(path, model, catalog, *, per_category, annotate_to, debug):
    """One photo's record; a photo that fails becomes its error record."""
    try:
        return analyse_photo(path, model, catalog, per_category=per_category, annotate_to=annotate_to)
    except ImageError as exc:
        return error_record(path, exc.reason)
    except Exception as exc:  # one bad photo must not stop a feed
        if debug:
            traceback.print_exc()
        return error_record(path, exception_text(exc))


def exception_text(exc):
    """An unexpected exception in one line, named: ``ValueError: ...``, or with its module
    where it is not Python's own: ``cv2.error``, which alone read "error: error: ..." after
    recommend.py's "error:"."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {exc}".splitlines()[0]


def error_record(path, reason):
    return {"image": path_text(path), "width": None, "height": None, "faces": [], "error": reason}


def lost_record(path):
    """The record of a photo whose worker process died on it (killed for its memory, or a
    library that crashed): the photo's answer is lost, not the run's."""
    return error_record(path, "the worker died while analysing this photo")
