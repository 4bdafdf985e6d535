"""Training copies of each photo cut tight above the brows, as many photos outside CelebA are
framed, and mirrored left to right: over three refits, level with unmirrored copies or a
little higher on other photos (README, "Mirrored copies"). ``train.py`` trains on them and
scores the held-out people's copies apart."""
import dataclasses
from pathlib import Path

import numpy as np

#: How far above the brows a copy is cut, in face heights (brows to chin), drawn uniformly.
#: CelebA's portraits leave room above the head (the forehead crop reaches past the photo in
#: 1-3% of them), wild-dev's photos often do not (37% of its faces; 40-60% of the crop for
#: the tightly framed hats the model missed). Every photo gets one copy, so that the label
#: shares, and with them the calibration, stay the photos' own.
TIGHT_SHARES = (0.2, 0.7)

#: The marker every whole JPEG file ends with (a copy is written without a flush to disk).
JPEG_END = b"\xff\xd9"


@dataclasses.dataclass
class Copies:
    """Feature rows of tight copies and, for each, the face row of the photo it copies."""

    X: np.ndarray
    source: np.ndarray

    @classmethod
    def with_a_face(cls, X, source):
        """The copies among feature rows ``X`` (of the photos ``source``) whose face was found."""
        found = ~np.isnan(X).all(axis=1)
        return cls(X[found], np.asarray(source)[found])

    def columns(self, cols):
        """The same copies with only the feature columns ``cols`` (a block's, for the ablation)."""
        return Copies(self.X[:, cols], self.source)


def tight_copy(path, share, folder, extractor):
    """One photo cut ``share`` face heights above its brows and mirrored, written once as
    JPEG into ``folder`` and read from there after; None without a face, when already cut
    tighter, or when the photo cannot be read any more."""
    import cv2

    from features.files import content_digest, write_atomically
    from features.vision.images import load_image
    from features.vision.regions import cut_above_brows

    if (digest := content_digest(path)) is None:  # gone since its features were read
        return None
    copy = Path(folder) / f"{digest}-{share:.3f}-mirrored.jpg"
    if copy.exists() and copy.read_bytes().endswith(JPEG_END):  # one cut short by a crash is made again
        return copy
    image = load_image(path)
    face = next(iter(extractor.find_faces(image)), None)
    cut = None if face is None else cut_above_brows(image, face, share)
    if cut is None:
        return None
    encoded = cv2.imencode(".jpg", cv2.cvtColor(cv2.flip(cut, 1), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    write_atomically(copy, lambda p: Path(p).write_bytes(encoded.tobytes()), durable=False)
    return copy


def tight_copy_files(extractor, paths, *, seed):
    """The tight copies of the photos at ``paths``, each cut at a share of
    :data:`TIGHT_SHARES` drawn with ``seed`` and kept beside ``extractor``'s feature cache.

    Returns
    -------
    files : list of Path
        The copies made.
    source : ndarray of int
        For each, the index in ``paths`` of the photo it copies.
    """
    from joblib import Parallel, delayed

    from features.vision.transformer import cache_tag

    folder = Path(extractor.cache_dir) / f"tight-copies-{cache_tag(extractor.detection)}"
    folder.mkdir(parents=True, exist_ok=True)
    shares = np.random.default_rng(seed).uniform(*TIGHT_SHARES, size=len(paths))
    made = Parallel(n_jobs=extractor.n_jobs)(delayed(tight_copy)(path, share, folder, extractor)
                                              for path, share in zip(paths, shares))
    source = np.flatnonzero([copy is not None for copy in made])
    return [made[i] for i in source], source
