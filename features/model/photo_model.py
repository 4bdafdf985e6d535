"""The saved model: one object that finds the faces of a photo and answers for each.

``train.py`` saves a :class:`PhotoModel`; ``recommend.py``, its workers, the benchmarks and
the web server call :meth:`PhotoModel.answer` and never reach into the pipeline: how faces
are detected, which labels there are and where each decision threshold lies are the
model's own business.
"""
import copy
from dataclasses import dataclass

import numpy as np

from features.vision.quality import face_quality
from features.vision.regions import REGIONS, extract_regions


@dataclass(frozen=True)
class FaceAnswer:
    """What the model says about one face of a photo.

    Attributes
    ----------
    face : Face
        The detected face (box as found, landmarks, detector score).
    box : tuple of int
        ``(left, top, right, bottom)`` clipped to the photo.
    probabilities : dict of str to float
        Calibrated probability per label.
    labels : tuple of str
        The labels the model decides are present (its own thresholds); none for a face of
        ``"uncertain"`` quality.
    quality : dict
        :func:`features.vision.quality.face_quality`: size, sharpness, yaw, edge, ``status``.
    regions : dict of str to ndarray
        The ``forehead``, ``eye_band`` and ``jaw`` crops that product rules read.
    """

    face: object
    box: tuple
    probabilities: dict
    labels: tuple
    quality: dict
    regions: dict


class PhotoModel:
    """A fitted ``Pipeline([("features", FaceFeatures), ("classifier", MultiLabelClassifier)])``
    with the photo-level questions users ask of it.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted; its feature step carries the detection settings used in training.
    """

    def __init__(self, pipeline):
        self.pipeline = pipeline

    @property
    def labels(self):
        """Label names, in the order of probability columns."""
        return tuple(self.pipeline[-1].labels)

    @property
    def thresholds(self):
        """Decision threshold per label."""
        return dict(zip(self.labels, self.pipeline[-1].thresholds_.tolist()))

    @property
    def n_features(self):
        return self.pipeline[0].n_features_out_

    def faces(self, image):
        """Every face of an RGB photo, largest first, found as in training."""
        return self.pipeline[0].find_faces(image)

    def predict_proba(self, image, faces):
        """Calibrated probabilities of ``faces`` of ``image``, shape (len(faces), n_labels)."""
        if not faces:
            return np.zeros((0, len(self.labels)))
        return self.pipeline.predict_proba([(image, face) for face in faces])

    def answer(self, image):
        """Find every face of an RGB photo and answer for each.

        Returns
        -------
        list of FaceAnswer
            Largest face first.
        """
        faces = self.faces(image)
        probabilities = self.predict_proba(image, faces)
        decisions = self.pipeline[-1].decide(probabilities)
        height, width = image.shape[:2]
        answers = []
        for face, row, decided in zip(faces, probabilities, decisions):
            quality = face_quality(image, face)
            judged = quality["status"] == "ok"  # an uncertain face keeps its scores, not decisions
            left, top, right, bottom = face.box
            box = (max(0, left), max(0, top), min(width, right), min(height, bottom))
            answers.append(FaceAnswer(
                face=face, box=tuple(int(v) for v in box),
                probabilities={label: float(p) for label, p in zip(self.labels, row)},
                labels=tuple(label for label, on in zip(self.labels, decided) if on and judged),
                quality=quality,
                regions=extract_regions(image, face, regions=REGIONS)))
        return answers

    @property
    def detection(self):
        """How the model finds faces (:class:`features.vision.faces.DetectionSettings`), as in training."""
        return self.pipeline[0].detection

    def with_detection(self, settings):
        """A copy detecting with other settings (``recommend.py``'s override)."""
        features = copy.copy(self.pipeline[0]).set_params(detection=settings)
        return self._with_step(0, features)

    def with_decisions(self, *, min_probability=None, precision=None):
        """A copy deciding by other thresholds (``recommend.py``'s ``--min-probability`` and
        ``--precision``; see :meth:`MultiLabelClassifier.with_thresholds`)."""
        classifier = self.pipeline[-1].with_thresholds(min_probability=min_probability,
                                                       precision=precision)
        return self._with_step(-1, classifier)

    def _with_step(self, index, estimator):
        """A copy with one pipeline step replaced; the fitted parts are shared, not copied."""
        steps = list(self.pipeline.steps)
        steps[index] = (steps[index][0], estimator)
        pipeline = copy.copy(self.pipeline)
        pipeline.steps = steps
        return PhotoModel(pipeline)

    def set_n_jobs(self, n_jobs):
        """Threads for the classifier's boosters (workers use one each); returns self."""
        self.pipeline.set_params(classifier__n_jobs=n_jobs)
        return self
