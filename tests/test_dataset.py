"""Reading labelled datasets in both layouts, and clear errors naming the row."""
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import APPLE_DOUBLE_FILE
from features.labels import LABELS
from features.model.dataset import DatasetError, default_data_dir, load_dataset


def test_shared_dataset(celeba_labels):
    table = load_dataset(default_data_dir())
    assert list(table.columns) == ["filename", *LABELS, "identity"]
    assert len(table) == len(celeba_labels) and table[list(LABELS)].isin([0, 1]).all().all()
    assert table["hat"].sum() == celeba_labels["hat"].sum()


def test_data_folder_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMG2REC_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path


def write_csv(folder, rows, columns=("filename", *LABELS, "identity")):
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=list(columns)).to_csv(folder / "labels.csv", index=False)
    return folder


@pytest.fixture
def photos(tmp_path, celeba_paths):
    """Three real photos in a fresh folder (the test's copy, never the repository)."""
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    for path in celeba_paths[:3]:
        shutil.copy(path, folder / "images")
    return folder, sorted(p.name for p in (folder / "images").iterdir())


def test_labels_csv(photos):
    folder, names = photos
    write_csv(folder, [(names[0], 1, 0, 0, "7"), (names[1], 0, 1, 1, "7"), (names[2], 0, 0, 0, "9")])
    table = load_dataset(folder)
    assert table["filename"].tolist() == [str(folder / "images" / n) for n in names]
    assert table[["hat", "beard", "eyewear"]].values.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert table["identity"].tolist() == ["7", "7", "9"]


def test_a_relative_data_folder_gives_absolute_paths(photos, tmp_path, celeba_paths, monkeypatch):
    """A Dask cluster's workers read the photos from their own working folders: the paths
    must not depend on this one, in either layout."""
    folder, names = photos
    write_csv(folder, [(names[0], 1, 0, 0, "7"), (names[1], 0, 1, 1, "7"), (names[2], 0, 0, 0, "9")])
    (tmp_path / "folders" / "hat").mkdir(parents=True)
    shutil.copy(celeba_paths[0], tmp_path / "folders" / "hat")
    monkeypatch.chdir(tmp_path)
    assert load_dataset(Path("data"))["filename"].tolist() == [str(folder / "images" / n) for n in names]
    assert load_dataset(Path("folders"))["filename"].tolist() == [
        str(tmp_path / "folders" / "hat" / Path(celeba_paths[0]).name)]


@pytest.mark.parametrize("rows, columns, message", [
    ([("a", 1, 0, 0)], ("filename", "hat", "beard", "glasses"), "missing column.*eyewear"),
    ([("a", 1, 0, 0, 1)], ("filename", *LABELS, "smile"), "unknown column.*smile"),
    ([("{0}", 2, 0, 0)], ("filename", *LABELS), "line 2: hat='2'"),
    ([("{0}", 1, 0, 0), ("{1}", 0, "yes", 0)], ("filename", *LABELS), "line 3: beard='yes'"),
    ([("{0}", 1, 0, 0), ("{0}", 0, 0, 0)], ("filename", *LABELS), "line 3: .* duplicate of line 2"),
    ([("{0}", 1, 0, 0), ("missing.jpg", 0, 0, 0)], ("filename", *LABELS), "line 3: .*missing.jpg does not exist"),
    ([("{0}", 1, 0, 0), ("./{0}", 0, 0, 0)], ("filename", *LABELS), "line 3: ./.* duplicate of line 2"),
    ([("{0}", 1, 0, 0, "7"), ("{1}", 0, 0, 0, " ")], ("filename", *LABELS, "identity"), "line 3: empty identity"),
    # each of these was a traceback, or said less than this
    ([("{0}", 1, 0, 0, 1)], ("filename", *LABELS, "hat"), "column 'hat' given 2 times in the header"),
    ([("{0}", 1, 0, 0, "x")], ("filename", *LABELS, ""), "unknown column.*''"),
    ([], ("filename", *LABELS), "no photos \\(a header and no rows\\)"),
    ([("{0}", 1, 0, 0), (".", 0, 0, 0)], ("filename", *LABELS), "line 3: .*images is a folder, not a photo"),
])
def test_malformed_labels_name_the_row(photos, rows, columns, message):
    folder, names = photos
    rows = [tuple(v.format(*names) if isinstance(v, str) else v for v in row) for row in rows]
    write_csv(folder, rows, columns)
    with pytest.raises(DatasetError, match=message):
        load_dataset(folder)


def test_empty_labels_file_and_padded_header(photos):
    """An empty file is one line naming it; spaces around a column's name are not a missing column."""
    folder, names = photos
    (folder / "labels.csv").write_text("")
    with pytest.raises(DatasetError, match="labels.csv: not a readable CSV"):
        load_dataset(folder)
    (folder / "labels.csv").write_text(f"filename, hat, beard ,eyewear\r\n{names[0]},1,0,0\r\n")
    assert load_dataset(folder)[list(LABELS)].values.tolist() == [[1, 0, 0]]
    with pytest.raises(DatasetError, match="a file; give the dataset folder"):
        load_dataset(folder / "labels.csv")


def test_a_header_split_by_semicolons_is_said(photos):
    """A spreadsheet's export where the comma is the decimal mark: the header read as one
    column, and the error named every column as missing."""
    folder, names = photos
    (folder / "labels.csv").write_text(f"filename;hat;beard;eyewear\n{names[0]};1;0;0\n")
    with pytest.raises(DatasetError) as error:
        load_dataset(folder)
    assert str(error.value).endswith("labels.csv: missing column(s) beard, eyewear, filename, hat: its columns are "
                                     "separated by semicolons; save it with commas")
    (folder / "labels.csv").write_text(f"filename;hat;beard;eyewear;identity\n{names[0]};1;0;0;Smith, John\n")
    with pytest.raises(DatasetError) as error:  # the comma in a name split the row first
        load_dataset(folder)
    assert str(error.value).endswith("labels.csv, line 2: 2 fields, the header has 1: its columns are separated by "
                                     "semicolons; save it with commas")


def test_fields_past_the_header(photos):
    """A spreadsheet's export that ends every row with a comma reads as without; a field with
    something in it past the header names its line (pandas took the first column as the index
    when the first row had one: a TypeError in train.py)."""
    folder, names = photos
    (folder / "labels.csv").write_text(f"filename,hat,beard,eyewear\n{names[0]},1,0,0,\n{names[1]},0,1,0,\n")
    assert load_dataset(folder)[list(LABELS)].values.tolist() == [[1, 0, 0], [0, 1, 0]]
    # on a later row only (pandas fixed the width from the first), after a blank line, with a BOM
    (folder / "labels.csv").write_text(f"\ufefffilename,hat,beard,eyewear\n{names[0]},1,0,0\n\n{names[1]},0,1,0,,\n",
                                       encoding="utf-8")
    assert load_dataset(folder)[list(LABELS)].values.tolist() == [[1, 0, 0], [0, 1, 0]]
    (folder / "labels.csv").write_text(f"filename,hat,beard,eyewear\n{names[0]},1,0,0\n\n{names[1]},0,2,0\n")
    with pytest.raises(DatasetError, match=r"labels.csv, line 4: beard='2'"):  # the blank line counts
        load_dataset(folder)
    (folder / "labels.csv").write_text(f"filename,hat,beard,eyewear\n{names[0]},1,0,0,x\n{names[1]},0,1,0\n")
    with pytest.raises(DatasetError, match=r"labels.csv, line 2: 5 fields, the header has 4$"):
        load_dataset(folder)


def test_a_line_of_spaces_or_empty_fields_is_a_blank_line(photos):
    folder, names = photos
    (folder / "labels.csv").write_text(f"filename,hat,beard,eyewear\n{names[0]},1,0,0\n   \n,,,\n{names[1]},0,1,0\n")
    assert load_dataset(folder)[list(LABELS)].values.tolist() == [[1, 0, 0], [0, 1, 0]]


def test_a_row_naming_a_pipe_says_so(photos):
    folder, names = photos
    os.mkfifo(folder / "images" / "pipe.jpg")
    (folder / "labels.csv").write_text(f"filename,hat,beard,eyewear\n{names[0]},1,0,0\npipe.jpg,0,0,0\n")
    with pytest.raises(DatasetError, match=r"line 3: .*pipe.jpg is not a regular file \(a device, pipe or socket\)$"):
        load_dataset(folder)


def test_a_dataset_folder_whose_path_is_not_utf8_is_named(tmp_path, celeba_paths):
    """pandas (pyarrow's text) refused the photos' paths with a traceback."""
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.makedirs(folder + b"/hat")
    shutil.copy(celeba_paths[0], folder + b"/hat/a.jpg")
    with pytest.raises(DatasetError, match=r"caf\\xe9': a folder path that is not UTF-8; rename it$"):
        load_dataset(os.fsdecode(folder))


def test_a_photo_name_not_utf8_in_a_label_folder_is_named(tmp_path, celeba_paths):
    """pandas (pyarrow's text) refused it with a traceback."""
    (tmp_path / "hat").mkdir()
    shutil.copy(celeba_paths[0], os.fsencode(tmp_path / "hat") + b"/caf\xe9.jpg")
    with pytest.raises(DatasetError, match=r"hat/b'caf\\xe9.jpg' is a file name that is not UTF-8; rename it$"):
        load_dataset(tmp_path)


def test_label_folders_with_multiple_labels(tmp_path, celeba_paths):
    for label, paths in {"hat": celeba_paths[:2], "beard": celeba_paths[1:3], "none": celeba_paths[3:4]}.items():
        (tmp_path / label).mkdir()
        for path in paths:
            shutil.copy(path, tmp_path / label)
    (tmp_path / "hat" / f"._{Path(celeba_paths[0]).name}").write_bytes(APPLE_DOUBLE_FILE)  # a Mac's copy: no photo
    table = load_dataset(tmp_path).set_index("filename")
    by_name = {p.split("/")[-1]: row for p, row in table.iterrows()}
    names = [p.split("/")[-1] for p in celeba_paths[:4]]
    assert by_name[names[1]][["hat", "beard", "eyewear"]].tolist() == [1, 1, 0]
    assert by_name[names[0]][["hat", "beard", "eyewear"]].tolist() == [1, 0, 0]
    assert by_name[names[3]][["hat", "beard", "eyewear"]].tolist() == [0, 0, 0]
    assert "identity" not in table.columns
    # in the photos' order, not the folders' (beard/ first, none/ last: --limit took labelled ones)
    assert list(by_name) == sorted(names)


def test_photo_in_none_and_a_label_is_an_error(tmp_path, celeba_paths):
    for label in ("none", "hat"):
        (tmp_path / label).mkdir()
        shutil.copy(celeba_paths[0], tmp_path / label)
    with pytest.raises(DatasetError, match="none/ and in hat/"):
        load_dataset(tmp_path)


def test_different_photos_of_one_name_in_two_folders_is_an_error(tmp_path, celeba_paths):
    """One name in two folders means one photo with two labels; two different photos would
    silently become one."""
    for label, path in (("hat", celeba_paths[0]), ("beard", celeba_paths[1])):
        (tmp_path / label).mkdir()
        shutil.copy(path, tmp_path / label / "photo.jpg")
    with pytest.raises(DatasetError, match="hat/photo.jpg and beard/photo.jpg are different photos"):
        load_dataset(tmp_path)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset folder"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="neither a labels.csv"):
        load_dataset(tmp_path)
