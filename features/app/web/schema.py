"""The shape of a published record (:func:`features.app.records.public`), as pydantic reads it:
/api/csv checks the records it is sent against it, so that a record of another shape is
refused with what is wrong instead of written as a row of junk.

Only what a CSV row reads is checked; other keys (a quality record's figures, a product's
name) may be there and pass as they are.
"""
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
OPEN = ConfigDict(extra="allow")


class Quality(TypedDict):
    __pydantic_config__ = OPEN
    status: Literal["ok", "uncertain"]


class Types(TypedDict, total=False):
    __pydantic_config__ = OPEN
    eyewear: dict[str, Probability]
    hat: dict[str, Probability]
    beard: dict[str, Probability]
    hat_colour: str


class Product(TypedDict):
    __pydantic_config__ = OPEN
    product_id: str


class Face(TypedDict):
    __pydantic_config__ = OPEN
    box: tuple[int, int, int, int]
    scores: dict[str, Probability]
    labels: list[str]
    types: Types
    quality: Quality
    recommendations: list[Product]


class Record(TypedDict):
    __pydantic_config__ = OPEN
    image: str
    width: Count | None
    height: Count | None
    faces: list[Face]
    error: str | None


RECORDS = TypeAdapter(list[Record])


def checked_records(records):
    """``records`` as plain dicts, or ValueError naming the first thing that is not as a
    published record has it (``"0.faces.0.box: Input should be a valid integer"``)."""
    try:
        return RECORDS.validate_python(records)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "records"
        raise ValueError(f"{where}: {error['msg']}") from None
