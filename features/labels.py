"""What img2recommender predicts per face, in the order of every probability column."""

LABELS = ("hat", "beard", "eyewear")

#: Each label's product types, reported only when the label is on. Eyewear and headwear
#: types are single-choice (one class per face); facial-hair styles co-occur (a goatee with
#: a moustache), so each style is its own yes/no.
EYEWEAR_TYPES = ("clear", "dark")
HAT_TYPES = ("cap", "brimmed", "beanie", "other")
BEARD_STYLES = ("stubble", "moustache", "goatee", "full_beard")
TYPE_VALUES = {"eyewear": EYEWEAR_TYPES, "beard": BEARD_STYLES, "hat": HAT_TYPES}
