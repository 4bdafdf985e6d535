"""The feature side as one scikit-learn transformer: photos (or faces) in, one row per face out."""
import copy
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from features.vision.descriptors import HOG_CELLS, HSV_BINS, colour_histogram, hog_descriptor, hog_size
from features.vision.embeddings import CNN_SIZE, FACE_DESCRIPTOR_SIZE, cnn_embeddings, face_descriptor
from features.vision.faces import DEFAULT_DETECTION, detect_faces
from features.files import content_digest, write_atomically
from features.vision.images import DECODE_VERSION, ImageError, as_rgb
from features.vision.networks import networks_key
from features.vision.regions import REGION_SIZES, REGIONS, extract_regions

#: Bump a block's version when its extraction changes, so older cached rows are not reused.
BLOCK_VERSIONS = {"hog": 2, "colour": 1, "face_descriptor": 1, "cnn": 3, "hat_cnn": 1}
#: Crops that the frozen ImageNet CNN embeds, in column order.
CNN_CROPS = ("context", "eyes", "lower_face")
BLOCKS = tuple(BLOCK_VERSIONS)
#: Blocks computed only for the faces that might show a hat (``GatedClassifier``): the hat
#: crop's embedding, read by the hat decision's second look and by the headwear type.
GATED_BLOCKS = ("hat_cnn",)
#: The blocks of every face's row, the main one, which a training run may choose among.
MAIN_BLOCKS = tuple(b for b in BLOCKS if b not in GATED_BLOCKS)


def gated_names():
    """Column names of the :data:`GATED_BLOCKS`, last in every row that has them."""
    return [name for block in GATED_BLOCKS for name in block_names(block)]


def block_names(block):
    """Column names of one feature block, ``region__block_index``."""
    if block == "hog":
        return [f"{region}__hog_{i}" for region in REGIONS
                for i in range(hog_size(REGION_SIZES[region], HOG_CELLS[region]))]
    if block == "colour":
        bins = [f"h{h}s{s}v{v}" for h in range(HSV_BINS[0]) for s in range(HSV_BINS[1])
                for v in range(HSV_BINS[2])]
        return [f"{region}__colour_{b}" for region in REGIONS for b in bins]
    if block == "face_descriptor":
        return [f"face__descriptor_{i}" for i in range(FACE_DESCRIPTOR_SIZE)]
    if block == "cnn":
        return [f"{crop}__cnn_{i}" for crop in CNN_CROPS for i in range(CNN_SIZE)]
    if block == "hat_cnn":
        return [f"hat__cnn_{i}" for i in range(CNN_SIZE)]
    raise ValueError(f"unknown feature block {block!r}; expected one of {BLOCKS}")


def describe_faces(pairs, blocks):
    """Feature rows for ``(image, face)`` pairs, the CNN run once over all of them.

    Returns
    -------
    ndarray of shape (len(pairs), n_features), float32
    """
    if not pairs:
        return np.zeros((0, sum(len(block_names(b)) for b in blocks)), np.float32)
    embedded_crops = (CNN_CROPS if "cnn" in blocks else ()) + (("hat",) if "hat_cnn" in blocks else ())
    wanted = (REGIONS if {"hog", "colour"} & set(blocks) else ()) + embedded_crops
    crops = [extract_regions(image, face, regions=wanted) for image, face in pairs]
    columns = []
    if "hog" in blocks:
        columns.append(np.array([np.concatenate([hog_descriptor(c[r], HOG_CELLS[r]) for r in REGIONS]) for c in crops]))
    if "colour" in blocks:
        columns.append(np.array([np.concatenate([colour_histogram(c[r]) for r in REGIONS]) for c in crops]))
    if "face_descriptor" in blocks:
        columns.append(np.array([face_descriptor(image, face) for image, face in pairs]))
    if embedded_crops:  # the CNN runs once over every crop it embeds
        embedded = cnn_embeddings([c[name] for c in crops for name in embedded_crops])
        columns.append(embedded.reshape(len(pairs), len(embedded_crops) * CNN_SIZE))
    return np.hstack([np.asarray(col, dtype=np.float32).reshape(len(pairs), -1) for col in columns])


class FaceFeatures(TransformerMixin, BaseEstimator):
    """Turn photos, or given faces of photos, into one feature row per face.

    Each item of ``X`` is a photo path, an RGB array (its largest face is described), or an
    ``(image, Face)`` pair (that face is described: how ``recommend.py`` scores every face).
    A photo in which no face is found gives a row of NaN, which XGBoost reads as missing and
    ``train.py`` leaves out of training and reports.

    Parameters
    ----------
    hog, colour, face_descriptor, cnn : bool
        Switch each feature block on or off (see README for sizes and costs).
    hat_cnn : bool
        The CNN embedding of the ``hat`` crop (a :data:`GATED_BLOCKS` block, last in the row):
        :class:`features.model.photo_model.PhotoModel` computes it only for the faces whose
        hat probability passes the gate of :class:`features.model.gated.GatedClassifier`.
    n_jobs : int
        Processes for extraction (photos travel in chunks; each process loads the models once).
    cache_dir : str or Path, optional
        Cache rows of photo files here, keyed by file content and these settings.
    detection : DetectionSettings
        How faces are found in photos given as paths or arrays (the trained model carries it,
        so ``recommend.py`` detects as training did).
    on_error : {"raise", "nan"}
        What an unreadable photo does: raise :class:`~features.vision.images.ImageError`, or give a
        row of NaN.
    progress : bool
        Show a progress bar over chunks.
    """

    def __init__(self, *, hog=True, colour=True, face_descriptor=True, cnn=True, hat_cnn=False, n_jobs=1,
                 cache_dir=None, detection=DEFAULT_DETECTION, on_error="raise", progress=False):
        self.hog = hog
        self.colour = colour
        self.face_descriptor = face_descriptor
        self.cnn = cnn
        self.hat_cnn = hat_cnn
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir
        self.detection = detection
        self.on_error = on_error
        self.progress = progress

    @property
    def blocks(self):
        """Names of the blocks switched on, in column order."""
        return tuple(b for b in BLOCKS if getattr(self, b))

    def fit(self, X=None, y=None):
        """Check the settings; nothing is learned (every network is frozen)."""
        if not self.blocks:
            raise ValueError("FaceFeatures needs at least one feature block switched on")
        if self.on_error not in ("raise", "nan"):
            raise ValueError(f"on_error must be 'raise' or 'nan', got {self.on_error!r}")
        self.feature_names_out_ = np.array([n for b in self.blocks for n in block_names(b)], dtype=object)
        self.n_features_out_ = len(self.feature_names_out_)
        return self

    def get_feature_names_out(self, input_features=None):
        """Column names, ``region__block_index`` (regions: forehead, eye_band, jaw, face,
        context, eyes, lower_face, hat)."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def find_faces(self, image):
        """Every face of an RGB photo, largest first, with these detection settings."""
        return detect_faces(image, settings=self.detection)

    def transform(self, X):
        """Feature matrix of shape ``(len(X), n_features_out_)``, float32, NaN rows for no face."""
        check_is_fitted(self, "feature_names_out_")
        items = list(X)
        if not items:
            return np.zeros((0, self.n_features_out_), np.float32)
        chunks = chunked(items, self.n_jobs)
        if self.n_jobs in (None, 1) or len(chunks) == 1:
            results = map(self._transform_chunk, chunks)
        else:
            results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
                delayed(self._transform_chunk)(c) for c in chunks)
        if self.progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(chunks), unit="chunk", desc="features")
        return np.vstack(list(results))

    def _transform_chunk(self, items):
        widths = {b: len(block_names(b)) for b in self.blocks}
        starts = dict(zip(self.blocks, np.cumsum([0, *widths.values()])))
        rows = np.full((len(items), self.n_features_out_), np.nan, dtype=np.float32)
        todo = {}  # blocks still to compute -> [(row, image, face, cache files)]
        for i, item in enumerate(items):
            if isinstance(item, tuple):
                todo.setdefault(self.blocks, []).append((i, as_rgb(item[0]), item[1], {}))
                continue
            files = self._cache_files(item)
            cached = {b: row for b in self.blocks
                      if b in files and (row := cached_row(files[b], widths[b])) is not None}
            for block, row in cached.items():
                rows[i, starts[block]:starts[block] + widths[block]] = row
            missing = tuple(b for b in self.blocks if b not in cached)
            if not missing:
                continue
            try:
                image = as_rgb(item)
            except ImageError:
                if self.on_error == "raise":
                    raise
                continue
            todo.setdefault(missing, []).append((i, image, next(iter(self.find_faces(image)), None), files))
        for blocks, group in todo.items():
            found = [(i, image, face) for i, image, face, _ in group if face is not None]
            values = describe_faces([(image, face) for _, image, face in found], blocks)
            offset = 0
            for block in blocks:
                cols = slice(starts[block], starts[block] + widths[block])
                rows[[i for i, _, _ in found], cols] = values[:, offset:offset + widths[block]]
                offset += widths[block]
                for i, _, _, files in group:
                    if block in files:
                        save_atomically(files[block], rows[i, cols])
        return rows

    def _cache_files(self, item):
        """Cache file of each block for a photo file, keyed by its content and the settings
        that change its row; {} if uncached."""
        if self.cache_dir is None or not isinstance(item, (str, Path)):
            return {}
        if (digest := content_digest(item)) is None:
            return {}
        folder = Path(self.cache_dir)
        return {block: folder / f"{block}-v{BLOCK_VERSIONS[block]}-{cache_tag(self.detection)}"
                / digest[:2] / f"{digest}.npy" for block in self.blocks}


def cache_tag(detection):
    """What a cached row's folder name says besides its block: the detection settings, the
    network files (:func:`~features.vision.networks.networks_key`) and the photo decoder's
    version (a photo in Display P3 read anew in sRGB gives other rows)."""
    return f"{detection.key}-nets{networks_key()}-decode{DECODE_VERSION}"


def chunked(items, n_jobs):
    """``items`` in chunks of up to 64, about four per job: a chunk's photos share one call (and
    its network sessions), and several per job keep every job busy to the end."""
    size = max(1, min(64, -(-len(items) // max(1, 4 * abs(n_jobs or 1)))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def cached_row(path, width):
    """A block's cached row, or None when there is none or it cannot be used: the cache is
    written without a flush to disk, so a crash can leave a file cut short, which is then
    computed again and rewritten rather than stop every later run."""
    try:
        row = np.load(path)
    except (OSError, ValueError, EOFError):
        return None
    return row if row.shape == (width,) else None


def gated_extractor(extractor):
    """An extractor of the :data:`GATED_BLOCKS` alone, detecting as ``extractor`` does."""
    return copy.copy(extractor).set_params(**{b: b in GATED_BLOCKS for b in BLOCKS}).fit()


def main_extractor(extractor):
    """An extractor of ``extractor``'s blocks without the :data:`GATED_BLOCKS`."""
    return copy.copy(extractor).set_params(**{b: False for b in GATED_BLOCKS}).fit()


def save_atomically(path, array):
    """Write an .npy cache file so that a reader never sees half of it."""
    def write(temporary):
        with open(temporary, "wb") as handle:  # a handle: np.save would append .npy to a name
            np.save(handle, array)

    write_atomically(path, write, durable=False)
