"""The saved model: one object that finds the faces of a photo and answers for each.

``train.py`` saves a :class:`PhotoModel`; ``recommend.py``, its workers and the web server
call :meth:`PhotoModel.answer` (and :meth:`~PhotoModel.with_detection` /
:meth:`~PhotoModel.with_decisions` for their options) and never reach into the pipeline: how
faces are detected, where each decision threshold lies, which faces are not judged and which
product types a face shows are the model's own business.  Only ``benchmarks/bench.py``
steps through the pipeline, to time each stage.
"""
import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from features.labels import judged
from features.vision.colours import hat_colour, in_colour
from features.vision.quality import face_quality
from features.vision.transformer import gated_extractor, main_extractor


@dataclass(frozen=True)
class FaceAnswer:
    """What the model says about one face of a photo.

    Attributes
    ----------
    box : tuple of int
        ``(left, top, right, bottom)``, clipped to the photo (the detected face's).
    probabilities : dict of str to float
        Calibrated probability per label.
    labels : tuple of str
        The labels the model decides are present (its own thresholds); none for a face of
        ``"uncertain"`` quality.
    types : dict
        Product types of the labels that are on, as conditional probabilities
        (:meth:`features.model.types.TypeClassifier.face_types`); ``{}`` for a model without.
    quality : dict
        :func:`features.vision.quality.face_quality`: size, sharpness, yaw, edge, ``status``.
    """

    box: tuple
    probabilities: dict
    labels: tuple
    types: dict
    quality: dict


class PhotoModel:
    """A fitted ``Pipeline([("features", FaceFeatures), ("classifier", GatedClassifier)])``,
    with the product types, answering the photo-level questions users ask.

    The pipeline alone gives the same probabilities, computing the hat crop for every face;
    :meth:`answer` computes it only for the faces past the classifier's gate.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted; its feature step carries the detection settings used in training.
    types : TypeClassifier, optional
        Fitted on the same feature rows; types are reported for the labels that are on.
    """

    def __init__(self, pipeline, *, types=None):
        self.pipeline = pipeline
        self.types = types

    @property
    def labels(self):
        """Label names, in the order of probability columns."""
        return tuple(self.pipeline[-1].labels)

    @property
    def thresholds(self):
        """Decision threshold per label."""
        return dict(zip(self.labels, self.pipeline[-1].thresholds_.tolist()))

    @property
    def detection(self):
        """How the model finds faces (:class:`features.vision.faces.DetectionSettings`), as in
        training."""
        return self.pipeline[0].detection

    def faces(self, image):
        """Every face of an RGB photo, largest first, found as in training."""
        return self.pipeline[0].find_faces(image)

    @cached_property
    def _extractors(self):
        """The feature step split: the main blocks, and the gated block alone."""
        return main_extractor(self.pipeline[0]), gated_extractor(self.pipeline[0])

    def feature_rows(self, image, faces):
        """The feature rows of ``faces`` of ``image``, shape (len(faces), n_features): the main
        blocks of every face, the gated block of the faces past the classifier's gate (NaN for
        the others)."""
        main, gated = self._extractors
        pairs = [(image, face) for face in faces]
        X = np.hstack([main.transform(pairs), np.full((len(faces), gated.n_features_out_), np.nan, np.float32)])
        self._fill_gated(X, pairs, self.pipeline[-1].needs_block(X))
        return X

    def _fill_gated(self, X, pairs, rows):
        """Compute the gated block of ``rows`` of ``X`` that lack it, in place."""
        gated = self._extractors[1]
        rows = np.flatnonzero(rows & np.isnan(X[:, -gated.n_features_out_:]).all(axis=1))
        if len(rows):
            X[rows, -gated.n_features_out_:] = gated.transform([pairs[i] for i in rows])

    def answer(self, image):
        """Find every face of an RGB photo and answer for each.

        Returns
        -------
        list of FaceAnswer
            Largest face first.
        """
        faces = self.faces(image)
        if not faces:
            return []
        X = self.feature_rows(image, faces)
        probabilities = self.pipeline[-1].predict_proba(X)
        qualities = [face_quality(image, face) for face in faces]
        # an uncertain face keeps its scores, not decisions
        labels = [tuple(label for label, on in zip(self.labels, decided) if on and judged(quality))
                  for decided, quality in zip(self.pipeline[-1].decide(probabilities), qualities)]
        types = self.face_types(image, faces, X, labels)
        return [FaceAnswer(box=tuple(int(v) for v in face.box),
                           probabilities={label: float(p) for label, p in zip(self.labels, row)},
                           labels=on, types=face_types, quality=quality)
                for face, row, on, face_types, quality in zip(faces, probabilities, labels, types, qualities)]

    def face_types(self, image, faces, X, labels):
        """The ``types`` of ``faces`` of ``image`` (feature rows ``X``, decided ``labels``).  The
        headwear type reads the gated block, which a hat wearer past the gate has already (one
        decided below it, by a lowered threshold, gets it here); the hat colour is measured
        (:func:`hat_colour`) when the model kept no trained read, and named by neither read
        in a black-and-white photo (:func:`in_colour`)."""
        if self.types is None:
            return [{} for _ in labels]
        hats = np.array(["hat" in on for on in labels])
        if hats.any():
            X = X.copy()
            self._fill_gated(X, [(image, face) for face in faces], hats)
        coloured = bool(hats.any()) and in_colour(image)  # asked only where a hat needs its colour
        measured = [hat_colour(image, face) if "hat" in on and coloured and not self.types.reads_colour else None
                    for face, on in zip(faces, labels)]
        return self.types.face_types(X, labels, measured_colours=measured, in_colour=coloured)

    def with_detection(self, settings):
        """A copy detecting with other settings (``recommend.py``'s override)."""
        return self._with_step(0, copy.copy(self.pipeline[0]).set_params(detection=settings))

    def with_decisions(self, *, min_probability=None, precision=None):
        """A copy deciding by other thresholds (``recommend.py``'s ``--min-probability`` and
        ``--precision``; see :meth:`ThresholdDecisions.with_thresholds`)."""
        return self._with_step(-1, self.pipeline[-1].with_thresholds(min_probability=min_probability,
                                                                     precision=precision))

    def _with_step(self, index, estimator):
        """A copy with one pipeline step replaced; the fitted parts are shared, not copied."""
        steps = list(self.pipeline.steps)
        steps[index] = (steps[index][0], estimator)
        pipeline = copy.copy(self.pipeline)
        pipeline.steps = steps
        return PhotoModel(pipeline, types=self.types)
