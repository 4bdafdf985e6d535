"""One photo end to end: faces, calibrated scores per face, what the crops show, products.

Lives in a module (not in recommend.py) so that worker processes can import it; each
process loads the model and catalog once, and forked workers inherit dlib's models from
:func:`preload`.
"""
import traceback
import warnings
from functools import lru_cache

import numpy as np

from features.annotation import annotate, save_rgb
from features.faces import detect_faces, detector, landmark_predictor
from features.images import ImageError, load_image
from features.model_io import load_model
from features.quality import face_quality
from features.recommendations import headline, load_catalog, read_attributes, recommend_products
from features.regions import REGIONS, extract_regions


@lru_cache(maxsize=None)
def worker_state(model_path, catalog_path, decision=((), None)):
    """The model and catalog, loaded once per process; one thread each, since photos are
    spread over processes. ``decision``: ``(min_probability items, precision)`` for
    :meth:`~features.classifier.MultiLabelClassifier.with_thresholds`."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the main process said it
        pipeline, _ = load_model(model_path)
        pipeline.set_params(classifier__n_jobs=1)
        min_probability, precision = decision
        if min_probability or precision is not None:
            classifier = pipeline.named_steps["classifier"]
            pipeline.steps[-1] = ("classifier", classifier.with_thresholds(
                min_probability=dict(min_probability), precision=precision))
    return pipeline, load_catalog(catalog_path)


def preload():
    """Load dlib's two models once, before forking the workers, which inherit them.

    The rest of a worker's start (importing scikit-learn and XGBoost, unpickling the model,
    opening onnxruntime's sessions: about 1 s) runs in each worker, side by side: a
    loaded booster has started XGBoost's OpenMP threads and onnxruntime its own, and a
    process forked after that can hang.
    """
    detector()
    landmark_predictor()


def analyse_photo(path, pipeline, catalog, *, per_category=2, threshold=0.0, annotate_to=None):
    """Everything recommend.py says about one photo, as the JSON Lines record (plus each
    face's ``attributes`` and ``headline``)."""
    image = load_image(path)
    faces = detect_faces(image, threshold=threshold)
    classifier = pipeline.named_steps["classifier"]
    probabilities = pipeline.predict_proba([(image, face) for face in faces]) if faces else []
    results = []
    for face, row in zip(faces, probabilities):
        scores = {label: round(float(p), 4) for label, p in zip(classifier.labels, row)}
        labels = [label for label, p, t in zip(classifier.labels, row, classifier.thresholds_) if p >= t]
        quality = face_quality(image, face)
        labels = labels if quality["status"] == "ok" else []  # scores shown, nothing decided
        attributes = read_attributes(extract_regions(image, face, regions=REGIONS))
        box = np.clip(face.box, 0, [image.shape[1], image.shape[0]] * 2).tolist()
        results.append({"box": box, "scores": scores, "labels": labels, "quality": quality,
                        "recommendations": recommend_products(scores, labels, attributes, catalog,
                                                              per_category=per_category),
                        "headline": headline(labels, scores, quality), "attributes": attributes})
    if annotate_to is not None:
        save_rgb(annotate_to, annotate(image, results))
    return {"image": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": results, "error": None}


def analyse_chunk(jobs, model_path, catalog_path, per_category, threshold, debug, decision=((), None)):
    """Analyse ``(path, annotate_to)`` jobs in one process; a failing photo becomes an error record."""
    pipeline, catalog = worker_state(model_path, catalog_path, decision)
    records = []
    for path, annotate_to in jobs:
        try:
            records.append(analyse_photo(path, pipeline, catalog, per_category=per_category,
                                         threshold=threshold, annotate_to=annotate_to))
        except ImageError as exc:
            records.append(error_record(path, exc.reason))
        except Exception as exc:  # one bad photo must not stop a feed
            if debug:
                traceback.print_exc()
            records.append(error_record(path, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    return records


def error_record(path, reason):
    return {"image": str(path), "width": None, "height": None, "faces": [], "error": reason}
