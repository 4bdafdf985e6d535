"""What img2recommender predicts per face, in the order of every probability column."""
from features.numbers import fixed, score_text

LABELS = ("hat", "beard", "eyewear")

#: Each label's product types, reported only when the label is on. Eyewear and headwear
#: types are single-choice (one class per face); facial-hair styles co-occur (a goatee with
#: a moustache), so each style is its own yes/no.
EYEWEAR_TYPES = ("clear", "dark")
HAT_TYPES = ("cap", "brimmed", "beanie", "other")
BEARD_STYLES = ("stubble", "moustache", "goatee", "full_beard")
#: In the order a face's likeliest types are written (annotated picture) and summed (profile).
TYPE_VALUES = {"eyewear": EYEWEAR_TYPES, "hat": HAT_TYPES, "beard": BEARD_STYLES}
#: A face's ``quality["status"]`` when it is judged: given labels, types and products (any
#: other status, "uncertain", keeps only its scores; :func:`features.vision.quality.face_quality`).
JUDGED = "ok"
#: A facial-hair style is seen on a face from this probability (given the beard): each style
#: is its own yes/no, decided at even odds.
STYLE_SEEN = 0.5


def judged(quality):
    """Whether a face with this quality record (``face["quality"]``) is judged."""
    return quality["status"] == JUDGED


def type_word(name):
    """How a type's (or a family's) name reads to people, in the text and on the page (its
    ``typeLine`` does the same): ``full beard``, ``hat colour``; the records keep the keys,
    ``full_beard``."""
    return name.replace("_", " ")


def likeliest(probabilities):
    """The most probable type of ``probabilities`` (type -> p), not the first: records that
    went through JSON (the page's CSV download) may come back with their keys sorted."""
    return max(probabilities, key=probabilities.get)


def seen_types(family, probabilities):
    """The types a face is taken to show in ``family``, given its label (the decision rule of
    the types, written once): the likeliest eyewear or hat type, every beard style from
    :data:`STYLE_SEEN`."""
    if family == "beard":
        return [style for style, p in probabilities.items() if p >= STYLE_SEEN]
    return [likeliest(probabilities)]


def type_text(family, probability):
    """A type's probability as the tools and the page write it: a beard style with the decimals
    that tell it from :data:`STYLE_SEEN` (0.499, which the CSV and the profile do not count,
    not "0.50"), any other type to two decimals."""
    return score_text(probability, STYLE_SEEN) if family == "beard" else fixed(probability, 2)
