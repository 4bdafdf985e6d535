"""Labelled training folders to one DataFrame: ``filename``, ``hat``, ``beard``, ``eyewear``
(0/1) and, when known, ``identity``."""
import csv
import filecmp
import os
from pathlib import Path

from features.files import missing_columns, other_separator
from features.labels import LABELS
from features.vision.images import PHOTO_SUFFIXES, apple_double

#: Where the training data lives unless ``--data`` or this environment variable says otherwise.
DATA_ENV = "IMG2REC_DATA"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "celeba-hbe"


class DatasetError(ValueError):
    """A dataset folder or labels file that cannot be trained on; the message names the row."""


def default_data_dir():
    """``$IMG2REC_DATA`` if set, else ``../shared/datasets/celeba-hbe`` beside the repository."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA)


def load_dataset(folder):
    """Read a labelled dataset folder.

    Two layouts are accepted: ``labels.csv`` (``filename`` relative to ``images/`` or the
    folder, the three label columns, optional ``identity``), or the original project's
    folders ``hat/``, ``beard/``, ``eyewear/``, ``none/`` of photos, where a file name found in
    several folders carries several labels.

    Returns
    -------
    DataFrame
        ``filename`` (absolute path), ``hat``, ``beard``, ``eyewear`` as int 0/1, and
        ``identity`` when the labels file has it.

    Raises
    ------
    DatasetError
        Naming the row (labels.csv line number) of a missing file, a value other than 0/1, a
        duplicate, or an unknown or missing column.
    """
    folder = Path(folder)
    if not is_utf8(str(folder.absolute())):
        raise DatasetError(f"{os.fsencode(folder.absolute())!r}: a folder path that is not UTF-8; rename it")
    if folder.is_file():
        raise DatasetError(f"{folder}: a file; give the dataset folder (the one holding labels.csv)")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    if (folder / "labels.csv").is_file():
        return read_labels_csv(folder / "labels.csv")
    if any((folder / name).is_dir() for name in LABELS + ("none",)):
        return read_label_folders(folder)
    raise DatasetError(f"{folder}: neither a labels.csv nor hat/, beard/, eyewear/, none/ folders")


def read_labels_csv(path):
    table = read_csv(path)
    columns = set(table.columns)
    if missing := missing_columns(path, table.columns, {"filename", *LABELS}):
        raise DatasetError(missing)
    unknown = columns - {"filename", "identity", *LABELS}
    if unknown:
        raise DatasetError(f"{path}: unknown column(s) {', '.join(map(repr, sorted(unknown)))}; expected "
                           "filename, hat, beard, eyewear and optionally identity")
    if table.empty:
        raise DatasetError(f"{path}: no photos (a header and no rows)")
    images = path.parent / "images"
    # absolute: a Dask cluster's workers read the photos from their own working folders
    base = (images if images.is_dir() else path.parent).absolute()
    seen = {}
    for line, row in table.iterrows():
        name = row["filename"].strip()
        if not name:
            raise DatasetError(f"{path}, line {line}: empty filename")
        photo = os.path.normpath(base / name)  # ./a.jpg and a.jpg are one photo
        if photo in seen:
            raise DatasetError(f"{path}, line {line}: {name} is a duplicate of line {seen[photo]}")
        seen[photo] = line
        for label in LABELS:
            if row[label].strip() not in ("0", "1"):
                raise DatasetError(f"{path}, line {line}: {label}={row[label]!r}, expected 0 or 1")
        # blank people would all be one person, held out together
        if "identity" in row and not row["identity"].strip():
            raise DatasetError(f"{path}, line {line}: empty identity; give every photo its person, "
                               "or leave the column out (each photo is then its own person)")
        if not os.path.isfile(photo):
            reason = ("is a folder, not a photo" if os.path.isdir(photo) else
                      "is not a regular file (a device, pipe or socket)" if os.path.exists(photo) else "does not exist")
            raise DatasetError(f"{path}, line {line}: {photo} {reason}")
    table["filename"] = list(seen)
    for label in LABELS:
        table[label] = table[label].str.strip().astype(int)
    if "identity" in table:
        table["identity"] = table["identity"].str.strip()
    return table.reset_index(drop=True)


def read_csv(path):
    """A labels CSV as text columns with their names stripped, indexed by each row's line, or a
    one-line DatasetError.

    Read with Python's csv rather than pandas, which took the first column as the index when
    the first row had one field more than the header, and refused a later row's: empty fields
    past the header's are let go (a spreadsheet's export can end rows with a comma), a field
    with something in it names its line, and a short row is filled with empty fields (each
    column's own check then names it).  Blank lines are skipped."""
    import pandas as pd  # here, not at the top: importing the module stays cheap

    lines, rows = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
            reader = csv.reader(handle)
            header = next(reader, [])
            for fields in reader:
                if not any(field.strip() for field in fields):  # blank, or spaces, or a spreadsheet's ",,,"
                    continue
                if any(field.strip() for field in fields[len(header):]):
                    raise DatasetError(f"{path}, line {reader.line_num}: {len(fields)} fields, the header has "
                                       f"{len(header)}{other_separator(header)}")
                lines.append(reader.line_num)
                rows.append(fields[:len(header)] + [""] * (len(header) - len(fields)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    if not header:
        raise DatasetError(f"{path}: not a readable CSV (no header)")
    names = [name.strip() for name in header]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise DatasetError(f"{path}: column {twice[0]!r} given {names.count(twice[0])} times in the header")
    return pd.DataFrame(rows, columns=names, index=lines, dtype=str)


def same_file(first, second):
    """Whether two files hold the same bytes; a DatasetError naming them when either cannot be
    read (which photo the name's labels belong to cannot then be told)."""
    try:
        return filecmp.cmp(first, second, shallow=False)
    except OSError as exc:
        raise DatasetError(f"{first} and {second}: one name in two label folders, and they cannot be "
                           f"compared ({exc.strerror or exc})") from None


def read_label_folders(folder):
    import pandas as pd

    labels = {}
    for label in LABELS + ("none",):
        for photo in sorted((folder / label).glob("*")) if (folder / label).is_dir() else []:
            if photo.suffix.lower() not in PHOTO_SUFFIXES or apple_double(photo):
                continue
            if not is_utf8(photo.name):
                raise DatasetError(f"{folder}: {label}/{photo.name.encode(errors='surrogateescape')!r} is a "
                                   "file name that is not UTF-8; rename it")
            entry = labels.setdefault(photo.name, {"filename": str(photo.absolute()), **dict.fromkeys(LABELS, 0),
                                                   "folders": []})
            if entry["folders"] and not same_file(entry["filename"], photo):
                raise DatasetError(f"{folder}: {entry['folders'][0]}/{photo.name} and {label}/{photo.name} are "
                                   "different photos; a name in several folders is one photo with several labels")
            entry["folders"].append(label)
            if label != "none":
                entry[label] = 1
    for name, entry in labels.items():
        if "none" in entry["folders"] and len(entry["folders"]) > 1:
            others = ", ".join(f"{f}/" for f in entry["folders"] if f != "none")
            raise DatasetError(f"{folder}: {name} is in none/ and in {others}")
    if not labels:
        raise DatasetError(f"{folder}: the label folders hold no photos")
    table = pd.DataFrame(list(labels.values())).drop(columns="folders")
    # by the photo's name, not its path, which put every hat/ photo before none/: the first N
    # of --limit were nearly all labelled
    table["name"] = [Path(path).name for path in table["filename"]]
    return table.sort_values("name", ignore_index=True).drop(columns="name")


def is_utf8(name):
    """Whether a file name (as Python reads Linux's bytes) is UTF-8: pandas keeps text in
    pyarrow, which refused the others with a traceback."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
