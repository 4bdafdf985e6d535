"""What a photo's record looks like to the outside: recommend.py's JSON Lines, its Parquet
rows, and the web API's records and CSV."""
import csv
import io
import json
import os
import re

from features.labels import LABELS, seen_types

#: Characters a terminal acts on, or a reader splits lines at, rather than shows: C0 and C1
#: controls, DEL, Unicode's line and paragraph separators, and its bidirectional marks and
#: overrides (U+202E in a file name drew the rest of its line reversed).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: The keys of a published record; an ``annotation_error`` stays inside (recommend.py and
#: the web app say it on their own).
PUBLIC_KEYS = ("image", "width", "height", "faces", "error")
#: The keys of each face in a published record; the ``headline`` and ``score_texts`` stay
#: inside (the text output, the annotated copy and the profile use them, the published
#: record does not).
PUBLIC_FACE_KEYS = ("box", "scores", "labels", "types", "quality", "recommendations")
#: One flat row per face (or per photo without a face): each column and its Arrow type.  A
#: face not judged says why (a spreadsheet said "uncertain" where the page said "not judged:
#: face 33 px wide, under 36 px"); products by id and by name (ids alone sent the reader to
#: the catalog).
ROW_COLUMNS = {"image": "string", "width": "int32", "height": "int32", "error": "string", "face": "int32",
               "left": "int32", "top": "int32", "right": "int32", "bottom": "int32",
               **dict.fromkeys(LABELS, "float64"), "labels": "string", "status": "string",
               "quality_reasons": "string", "eyewear_type": "string", "hat_type": "string", "hat_colour": "string",
               "beard_styles": "string", "types": "string", "products": "string", "product_names": "string"}


def path_text(path):
    """A photo's path as its record's ``image``: a file name that is not UTF-8 (Linux names
    are bytes) shows each byte that is not as ``\\xff`` and the rest as it is, the same in
    text, JSON and Parquet (Python's own str of it cannot be printed or written to either);
    a control character shows as Python writes it (``\\n``), so that a name holding a line
    break cannot break a line of the text output or of an error."""
    return printable(os.fsencode(path).decode("utf-8", "backslashreplace"))


def printable(text):
    """``text`` with each control character, line separator or lone surrogate as Python writes
    it (``\\n``, ``\\udfff``): one line of UTF-8, whatever a client or a file name put in it."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def public(record):
    """The JSON Lines record: only :data:`PUBLIC_KEYS`, and per face only :data:`PUBLIC_FACE_KEYS`."""
    return {**{k: record[k] for k in PUBLIC_KEYS},
            "faces": [{k: face[k] for k in PUBLIC_FACE_KEYS} for face in record["faces"]]}


def flat_rows(record):
    """A photo's record as rows of :data:`ROW_COLUMNS`: one per face, or one with empty face
    columns."""
    base = {"image": record["image"], "width": record["width"], "height": record["height"],
            "error": record["error"]}
    if not record["faces"]:
        return [{**dict.fromkeys(ROW_COLUMNS), **base}]
    return [{**base, "face": number, **dict(zip(("left", "top", "right", "bottom"), face["box"])),
             **face["scores"], "labels": ",".join(face["labels"]), "status": face["quality"]["status"],
             "quality_reasons": "; ".join(face["quality"]["reasons"]), **type_columns(face["types"]),
             "products": ",".join(r["product_id"] for r in face["recommendations"]),
             "product_names": "; ".join(r["name"] for r in face["recommendations"])}
            for number, face in enumerate(record["faces"], start=1)]


def type_columns(types):
    """A face's types as flat columns: the types it is seen to show
    (:func:`~features.labels.seen_types`: the likeliest eyewear and hat type, the beard styles
    that are likely), the hat colour, and every probability as a JSON string."""
    def seen(family):
        return ",".join(seen_types(family, types[family])) if types.get(family) else None

    return {"eyewear_type": seen("eyewear"), "hat_type": seen("hat"), "hat_colour": types.get("hat_colour"),
            "beard_styles": seen("beard"), "types": json.dumps(types) if types else None}


def csv_text(records):
    """Records as CSV text with the columns of :data:`ROW_COLUMNS` (the web page's download),
    each text that a spreadsheet would run as a formula quoted (:func:`spreadsheet_text`)."""
    out = io.StringIO()
    writer = csv_writer(out)
    for record in records:
        writer.writerows(map(spreadsheet_row, flat_rows(record)))
    return out.getvalue()


#: How a cell a spreadsheet reads as a formula starts (OWASP's "CSV injection"): an uploaded
#: photo named ``=HYPERLINK(...).png`` would run in whoever opens the download.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_writer(file):
    """A CSV writer of :data:`ROW_COLUMNS` rows to ``file``, its header written: the web page's
    download and ``recommend.py --output FILE.csv`` alike."""
    writer = csv.DictWriter(file, fieldnames=list(ROW_COLUMNS), lineterminator="\n")
    writer.writeheader()
    return writer


def spreadsheet_row(row):
    """A row of :func:`flat_rows` with each text a spreadsheet would run as a formula quoted."""
    return {key: spreadsheet_text(value) for key, value in row.items()}


def spreadsheet_text(value):
    """``value``, or a text that starts as a formula behind a ``'`` (shown, not run); numbers
    are left as they are."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
