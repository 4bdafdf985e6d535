"""One photo end to end: faces, calibrated scores and types per face, products.

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
from features.recommendations import hat_colour, headline, load_catalog, recommend_products
from features.regions import extract_regions


@lru_cache(maxsize=None)
def worker_state(model_path, catalog_path):
    """The model and catalog, loaded once per process; one thread each, since photos are
    spread over processes."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the main process said it
        pipeline, _ = load_model(model_path)
    return pipeline.set_params(classifier__n_jobs=1), load_catalog(catalog_path)


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
    face's ``headline``)."""
    image = load_image(path)
    faces = detect_faces(image, threshold=threshold)
    classifier = pipeline.named_steps["classifier"]
    X = pipeline[:-1].transform([(image, face) for face in faces]) if faces else np.zeros((0, 0))
    probabilities = classifier.predict_proba(X) if faces else []
    decided = [[label for label, p, t in zip(classifier.labels, row, classifier.thresholds_) if p >= t]
               for row in probabilities]
    types = predict_types(classifier, X, decided, image, faces)
    results = []
    for face, row, labels, face_types in zip(faces, probabilities, decided, types):
        scores = {label: round(float(p), 4) for label, p in zip(classifier.labels, row)}
        box = np.clip(face.box, 0, [image.shape[1], image.shape[0]] * 2).tolist()
        results.append({"box": box, "scores": scores, "labels": labels, "types": face_types,
                        "recommendations": recommend_products(scores, labels, face_types, catalog,
                                                              per_category=per_category),
                        "headline": headline(labels, scores)})
    if annotate_to is not None:
        save_rgb(annotate_to, annotate(image, results))
    return {"image": str(path), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": results, "error": None}


def predict_types(classifier, X, labels, image, faces):
    """Each face's ``types`` from the model's type classifier (``{}`` each for a model
    trained without types); the hat colour is measured on the crop when the model kept no
    trained colour read."""
    types = getattr(classifier, "types_", None)
    if types is None:
        return [{} for _ in faces]
    measured = [hat_colour(extract_regions(image, face, regions=("forehead",))["forehead"])
                if "hat" in on and "hat_colour" not in types.estimators_ else None
                for face, on in zip(faces, labels)]
    return types.face_types(X, labels, measured_colours=measured)


def analyse_chunk(jobs, model_path, catalog_path, per_category, threshold, debug):
    """Analyse ``(path, annotate_to)`` jobs in one process; a failing photo becomes an error record."""
    pipeline, catalog = worker_state(model_path, catalog_path)
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
