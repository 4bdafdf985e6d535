"""The shape of a published record (:func:`features.app.records.public`), as pydantic reads it:
/api/csv checks the records it is sent against it, so that a record of another shape is
refused with what is wrong instead of written as a row of junk.

Only what a CSV row reads is checked (a quality record's status and reasons, a product's id
and name); other keys (a quality record's figures, a product's price) may be there and pass
as they are, but for ``types``, which the row holds whole.
"""
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from features.app.records import printable


def encodable(text):
    """``text``, or ValueError for a lone surrogate (JSON's ``"\\ud800"``), which no CSV can
    be written in."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not Unicode text (a lone surrogate)") from None
    return text


# Strict: a number sent as text, or true for 1, is refused rather than converted
Text = Annotated[str, Strict(), AfterValidator(encodable)]
Probability = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Pixels = Annotated[int, Strict(), Field(ge=-2 ** 31, lt=2 ** 31)]  # the Parquet rows' int32
Count = Annotated[int, Strict(), Field(ge=0, lt=2 ** 31)]
#: Every list and dict stops at its first error: a body of a million wrong items built a
#: million errors (gigabytes, the event loop held for seconds) to say the first.
FIRST_ERROR = Field(fail_fast=True)
Scores = Annotated[dict[Text, Probability], FIRST_ERROR]
OPEN = ConfigDict(extra="allow")
#: Longest error message: a key the client chose is part of it.
LONGEST_ERROR = 200


class Quality(TypedDict):
    __pydantic_config__ = OPEN
    status: Literal["ok", "uncertain"]
    reasons: list[Text]


class Types(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="forbid")  # written whole, as JSON, into a CSV cell
    eyewear: Scores
    hat: Scores
    beard: Scores
    hat_colour: Text


class Product(TypedDict):
    __pydantic_config__ = OPEN
    product_id: Text
    name: Text


class Face(TypedDict):
    __pydantic_config__ = OPEN
    box: Annotated[list[Pixels], Field(min_length=4, max_length=4, fail_fast=True)]
    scores: Scores
    labels: Annotated[list[Text], FIRST_ERROR]
    types: Types
    quality: Quality
    recommendations: Annotated[list[Product], FIRST_ERROR]


class Record(TypedDict):
    __pydantic_config__ = OPEN
    image: Text
    width: Count | None
    height: Count | None
    faces: Annotated[list[Face], FIRST_ERROR]
    error: Text | None


RECORDS = TypeAdapter(Annotated[list[Record], FIRST_ERROR])


class LabelShares(TypedDict):
    """A label in a profile: the share of the photos analysed and of the faces judged that show
    it, and its mean probability over those faces; null where there is none to count."""
    photo_share: float | None
    face_share: float | None
    mean_probability: float | None


class Profile(TypedDict):
    """``recommend.py --profile``'s summary of a feed (documented, not checked: it is made here)."""
    photos: int
    failed: int
    not_analysed: int
    faces: int
    faces_judged: int
    labels: dict[str, LabelShares]
    types: dict[str, dict[str, float]]
    headline: str
    recommendations: list[Product]


class Account(TypedDict):
    """/api/profile's answer: the records and the summary of ``recommend.py --profile``."""
    records: list[Record]
    profile: Profile


class Summary(TypedDict):
    """/api/summary's answer."""
    profile: Profile


class Refusal(TypedDict):
    """Every error answer: one line saying what is wrong (FastAPI's 422 is a list of errors;
    the server's is this, as its 400, 408, 413, 415 and 5xx are)."""
    detail: str


def checked_records(records):
    """``records`` as plain dicts, or ValueError naming, on one line, the first thing that is
    not as a published record has it (``"0.faces.0.box: List should have at least 4 items
    after validation, not 2"``)."""
    try:
        return RECORDS.validate_python(records)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "records"
        message = printable(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise ValueError(message if len(message) <= LONGEST_ERROR else message[:LONGEST_ERROR - 1] + "…") from None
