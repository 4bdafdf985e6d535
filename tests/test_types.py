"""Learned types on real shared photos: labels and their cleaning, the classifier's contract,
five held-out people, and the types through recommend.py with a saved model."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import CELEBA, ROOT, black_and_white
from features.model.types import BEARD_STYLES, MISSING, TARGETS, TypeClassifier, type_labels
from features.vision.transformer import MAIN_BLOCKS, block_names

#: One real photo per type the issue names, each of a person left out of the fixture's fit.
EXAMPLES = {"sunglasses": "000373.jpg", "clear glasses": "000152.jpg", "cap": "000196.jpg",
            "beanie": "000672.jpg", "goatee": "000206.jpg"}


@pytest.fixture(scope="module")
def targets(celeba_paths):
    return type_labels(CELEBA, celeba_paths)


@pytest.fixture(scope="module")
def type_rows(trained, targets, celeba_labels, celeba_paths):
    """Real feature rows of the typed photos and the first 500 (the main row cached by the
    session's train.py run, with the hat crop's block), without the people of
    :data:`EXAMPLES`: ``(X, T, groups, names, example rows)``."""
    from features.vision.transformer import FaceFeatures

    T, _ = targets
    held_out = celeba_labels["identity"][celeba_labels["filename"].isin(EXAMPLES.values())]
    typed_rows = (T["eyewear"] != MISSING) | (T["hat"] != MISSING)
    rows = np.flatnonzero(((np.arange(len(T)) < 500) | typed_rows) & ~celeba_labels["identity"].isin(held_out))
    extractor = FaceFeatures(hat_cnn=True, n_jobs=2, cache_dir=trained["out"] / "feature-cache", on_error="nan").fit()
    X = extractor.transform([celeba_paths[i] for i in rows] + [str(CELEBA / "images" / n) for n in EXAMPLES.values()])
    X_fit, X_examples = X[:len(rows)], X[len(rows):]
    found = ~np.isnan(X_fit).all(axis=1)
    return (X_fit[found], T.iloc[rows[found]].reset_index(drop=True), celeba_labels["identity"].to_numpy()[rows[found]],
            extractor.get_feature_names_out(), dict(zip(EXAMPLES, X_examples)))


@pytest.fixture(scope="module")
def typed(type_rows):
    """A TypeClassifier fitted on :func:`type_rows`, and the rows of :data:`EXAMPLES`."""
    X, T, groups, names, examples = type_rows
    model = TypeClassifier(n_estimators=100, feature_names=names, n_jobs=2).fit(X, T, groups=groups)
    return model, examples


def test_labels_cleaning_and_the_full_beard_definition(targets):
    T, flips = targets
    assert len(flips["eyewear"]) == 12 and len(flips["hat"]) == 6  # the `none` rows: label errors
    assert set(T.columns) == set(TARGETS) | {"beard"}
    assert (T["eyewear"] != MISSING).sum() == 507 and set(T["eyewear"]) == {"clear", "dark", MISSING}
    assert (T["hat"] != MISSING).sum() == 372 and set(T["hat"]) - {MISSING} == {"cap", "brimmed", "beanie", "other"}
    assert "unsure" not in set(T["hat_colour"])
    hair = pd.read_csv(CELEBA / "facial_hair.csv")
    full = (hair["no_beard"] == 0) & (hair["sideburns"] == 1)
    assert (T["full_beard"] == "1").sum() == full.sum() == 469
    assert set(T.loc[T["full_beard"] == "1", "beard"]) == {"1"}  # a full beard is a beard


def test_classifier_contract(typed):
    model, _ = typed
    assert set(model.estimators_) == set(TARGETS)  # every target had enough photos
    assert list(model.classes_["eyewear"]) == ["clear", "dark"]
    assert set(model.classes_["hat"]) == {"beanie", "brimmed", "cap", "other"}
    main = sum(len(block_names(block)) for block in MAIN_BLOCKS)  # 5,876 columns, then the hat crop's 1,280
    assert model.get_params()["n_estimators"] == 100 and model.n_features_in_ == main + len(block_names("hat_cnn"))
    # the members each target was given (LINEAR, TREES), each reading its own columns
    assert set(model.estimators_["hat"]) == {"linear"} and set(model.estimators_["eyewear"]) == {"trees"}
    assert set(model.estimators_["goatee"]) == {"linear", "trees"}
    names = np.asarray(model.feature_names)
    assert {n.split("__")[0] for n in names[model.columns_["hat"]["linear"]]} == {"hat", "context", "forehead"}
    assert not any(n.startswith("hat__") for n in names[model.columns_["goatee"]["trees"]])
    with pytest.raises(Exception, match="not fitted"):
        TypeClassifier().predict_proba(np.zeros((1, main)))


def test_member_margins_are_the_fitted_models_own(typed):
    """The linear members' margins, computed without scikit-learn's per-call checks, are the
    fitted pipeline's ``decision_function``; the boosters are kept as their trees in numpy
    (whose margins are XGBoost's: ``tests/test_classifier.py``)."""
    from features.model.trees import TreeMargins
    from features.model.types import member_margin

    model, rows = typed
    X = np.array(list(rows.values()), dtype=np.float32)
    for target in ("hat", "goatee"):
        for name, member in model.estimators_[target].items():
            columns = X[:, model.columns_[target][name]]
            if name == "linear":
                assert np.allclose(member_margin(member, columns), member.decision_function(columns), atol=1e-4)
            else:
                assert isinstance(member, TreeMargins) and member_margin(member, columns).shape == (len(X),)


def test_members_without_their_columns_are_left_out(type_rows):
    """With the colour block alone (a block ablation) eyewear's booster still has columns, the
    headwear type's linear member has none: that target is not fitted, not guessed."""
    X, T, groups, names, _ = type_rows
    colour = np.char.find(names.astype(str), "__colour_") >= 0
    model = TypeClassifier(n_estimators=20, feature_names=names[colour], targets=("eyewear", "hat"), n_jobs=2)
    model.fit(X[:, colour], T, groups=groups)
    assert set(model.estimators_) == {"eyewear"} and set(model.predict_proba(X[:3, colour])) == {"eyewear"}


def test_rows_without_the_hat_block_get_no_headwear_type(typed):
    """The hat crop's block is computed for faces past the gate only: a row without it gets NaN
    headwear probabilities, not a guess, and the other targets still score it."""
    model, rows = typed
    X = np.array(list(rows.values()))
    X[0, -1280:] = np.nan
    proba = model.predict_proba(X)
    assert np.isnan(proba["hat"][0]).all() and not np.isnan(proba["hat"][1:]).any()
    assert not np.isnan(proba["eyewear"]).any() and not np.isnan(proba["goatee"]).any()


def test_five_held_out_people(typed):
    model, rows = typed
    every = [("hat", "beard", "eyewear")] * len(rows)
    types = dict(zip(rows, model.face_types(np.array(list(rows.values())), every)))
    top = {name: {f: next(iter(t[f])) for f in ("eyewear", "hat")} for name, t in types.items()}
    assert top["sunglasses"]["eyewear"] == "dark"
    assert top["clear glasses"]["eyewear"] == "clear"
    assert top["cap"]["hat"] == "cap"
    assert top["beanie"]["hat"] == "beanie"
    # the fixture's styles are learned from about 1,400 photos: the goatee wearer is told from
    # the others by the goatee probability, not by a sure one
    goatee = {name: t["beard"]["goatee"] for name, t in types.items()}
    assert max(goatee, key=goatee.get) == "goatee"
    for t in types.values():
        probabilities = list(t["eyewear"].values())
        assert sum(probabilities) == pytest.approx(1, abs=1e-3) and probabilities == sorted(probabilities)[::-1]


def test_types_only_for_labels_that_are_on(typed):
    model, rows = typed
    X = np.array(list(rows.values()))
    faces = model.face_types(X, [[], ["eyewear"], ["hat"], ["beard"], ["hat", "eyewear"]])
    assert faces[0] == {}
    assert set(faces[1]) == {"eyewear"} and set(faces[3]) == {"beard"}
    assert set(faces[2]) == {"hat", "hat_colour"} and set(faces[4]) == {"hat", "hat_colour", "eyewear"}
    assert set(faces[3]["beard"]) == set(BEARD_STYLES)
    assert model.face_types(X[:0], []) == []
    # a black-and-white photo: the headwear type, no colour (its trained read is not asked)
    assert set(model.face_types(X[2:3], [["hat"]], in_colour=False)[0]) == {"hat"}


def test_types_through_recommend_with_a_saved_model(trained, typed, tmp_path):
    """The session's model with the fixture's types, saved as train.py saves it: recommend.py
    checks it, loads it and shows the types in JSON, text and Parquet, under 5 ms per face."""
    from features.model.model_io import load_model, save_model
    from features.model.photo_model import PhotoModel
    from features.products.recommendations import describe

    model, card = load_model(trained["model"])
    model_path = tmp_path / "model.joblib"
    save_model(PhotoModel(model.pipeline, types=typed[0]), {k: v for k, v in card.items() if k not in ("model_sha256", "library_versions")},
               model_path)
    photos = [str(CELEBA / "images" / name) for name in EXAMPLES.values()]
    command = [sys.executable, str(ROOT / "recommend.py"), "--model", str(model_path), *photos, "--n-jobs", "1"]
    result = subprocess.run(command + ["--json", "--output", str(tmp_path / "out.parquet")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    records = dict(zip(EXAMPLES, map(json.loads, result.stdout.splitlines())))
    for record in records.values():
        for face in record["faces"]:
            families = {"hat_colour": "hat"}
            assert {families.get(f, f) for f in face["types"]} == set(face["labels"])
    sunglasses = records["sunglasses"]["faces"][0]
    assert sunglasses["labels"] == ["eyewear"] and next(iter(sunglasses["types"]["eyewear"])) == "dark"
    first = sunglasses["recommendations"][0]
    said = describe("eyewear", sunglasses["scores"]["eyewear"])
    assert first["reason"] == f"{said}; dark sunglasses, {sunglasses['types']['eyewear']['dark']:.2f} → {first['name']}"
    table = pd.read_parquet(tmp_path / "out.parquet")
    assert table["eyewear_type"].iloc[0] == "dark"
    assert json.loads(table["types"].iloc[0]) == sunglasses["types"]
    text = subprocess.run(command, capture_output=True, text=True, cwd=ROOT).stdout
    assert "types: eyewear dark" in text


def test_the_hat_crop_only_past_the_gate(trained, typed, lfw_paths):
    """``PhotoModel`` embeds the hat crop only for the faces whose first hat probability
    passes the gate, and answers as the whole pipeline does, which embeds it for every face; a
    hat wearer without it (decided below the gate by a lowered threshold) gets it for the
    headwear type: the held-out cap and beanie are told apart from their photos."""
    from features.model.model_io import load_model
    from features.model.photo_model import PhotoModel
    from features.vision.images import load_image

    model = PhotoModel(load_model(trained["model"])[0].pipeline, types=typed[0])
    classifier = model.pipeline[-1]
    looked = []
    for path in [CELEBA / "images" / EXAMPLES[name] for name in ("cap", "beanie")] + lfw_paths[:8]:
        image = load_image(path)
        faces = model.faces(image)
        X = model.feature_rows(image, faces)
        assert X.shape[1] == model.types.n_features_in_ == model.pipeline[0].n_features_out_
        embedded = ~np.isnan(X[:, -1280:]).all(axis=1)
        np.testing.assert_array_equal(embedded, classifier.needs_block(X))
        np.testing.assert_allclose(classifier.predict_proba(X),
                                   model.pipeline.predict_proba([(image, face) for face in faces]), atol=1e-6)
        looked += embedded.tolist()
    assert looked[0] and looked[1] and not all(looked)  # the cap and the beanie, not every news face
    for name in ("cap", "beanie"):
        image = load_image(CELEBA / "images" / EXAMPLES[name])
        faces = model.faces(image)[:1]
        X = model.feature_rows(image, faces)
        X[:, -1280:] = np.nan
        types = model.face_types(image, faces, X, [("hat",)])[0]
        assert next(iter(types["hat"])) == name and types["hat_colour"]
        assert set(model.face_types(image, faces, X, [("beard",)])[0]) == {"beard"}
        # the same photo in black and white: its type, but no colour to name
        grey = black_and_white(image)
        X = model.feature_rows(grey, faces)
        assert set(model.face_types(grey, faces, X, [("hat",)])[0]) == {"hat"}


def test_measured_hat_colour_not_in_black_and_white(trained, type_rows):
    """A model that kept the measured colour read (as the shipped one): the cap's colour is
    read from its photo, and not from the photo in black and white, which keeps its type."""
    from features.model.model_io import load_model
    from features.model.photo_model import PhotoModel
    from features.vision.images import load_image

    X, T, groups, names, _ = type_rows
    types = TypeClassifier(n_estimators=50, feature_names=names, targets=("hat",), n_jobs=2).fit(X, T, groups=groups)
    model = PhotoModel(load_model(trained["model"])[0].pipeline, types=types)
    assert not model.types.reads_colour
    image = load_image(CELEBA / "images" / EXAMPLES["cap"])
    grey = black_and_white(image)
    for photo, colour in ((image, "black"), (grey, None)):  # the black cap of tests/test_colours.py
        faces = model.faces(photo)[:1]
        types = model.face_types(photo, faces, model.feature_rows(photo, faces), [("hat",)])[0]
        assert "hat" in types and types.get("hat_colour") == colour


def test_calibration_does_not_see_the_held_out_people():
    """A booster's columns are screened inside each calibration fold: types learned from
    columns of pure noise stay near their share on new rows (with the screen fitted on every
    row the calibration trusted the margins and spread them from 0.04 to 0.93 here)."""
    for seed in range(2):
        rng = np.random.default_rng(seed)
        T = pd.DataFrame(MISSING, index=range(400), columns=list(TARGETS))
        T["eyewear"] = np.where(rng.random(400) < 0.4, "dark", "clear")
        X = rng.normal(size=(400, 5000)).astype(np.float32)
        model = TypeClassifier(targets=("eyewear",), screen_columns=30, n_estimators=60, random_state=seed).fit(X, T)
        dark = model.predict_proba(rng.normal(size=(400, 5000)).astype(np.float32))["eyewear"][:, 1]
        assert dark.std() < 0.05 and abs(dark.mean() - (T["eyewear"] == "dark").mean()) < 0.1, (dark.std(), dark.mean())


def test_beard_styles_are_calibrated_given_a_beard(type_rows):
    """A style is learned from every photo but calibrated on the bearded ones, where it is
    shown: P(goatee | beard), higher there than a map fitted on every photo gives (the rule
    without the ``beard`` column), with the same ranking (the same members).  How well it is
    calibrated is measured out of fold by train.py (README, "Product types")."""
    X, T, groups, names, _ = type_rows
    bearded = T["beard"].to_numpy() == "1"
    scores = {}
    for rule, labels in (("given", T), ("every", T.drop(columns="beard"))):
        model = TypeClassifier(n_estimators=60, feature_names=names, targets=("goatee",), n_jobs=2)
        scores[rule] = model.fit(X, labels, groups=groups).predict_proba(X[bearded])["goatee"][:, 1]
    assert scores["given"].mean() > scores["every"].mean() + 0.05  # in sample: not a calibration check
    assert np.array_equal(np.argsort(scores["given"], kind="stable"), np.argsort(scores["every"], kind="stable"))


def test_a_style_no_bearded_photo_shows_is_left_out():
    """A style's map is fitted on the bearded photos: when none of them has it, the style is
    left out (as a class too rare to learn is), not a failed fit."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 12)).astype(np.float32)
    goatee = np.where(np.arange(240) % 4 == 0, "1", "0")
    beard = np.where(goatee == "1", "0", np.where(np.arange(240) % 3 == 0, "1", "0"))
    T = pd.DataFrame({"goatee": goatee, "stubble": np.where(np.arange(240) % 2 == 0, "1", "0"), "beard": beard})
    model = TypeClassifier(n_estimators=10, targets=("goatee", "stubble")).fit(X, T, groups=np.arange(240) // 2)
    assert set(model.classes_) == {"stubble"}


def test_type_files_are_all_three_or_none_with_their_columns(tmp_path, celeba_paths):
    """Two of the three files, or one without a column the types read, is one line naming it,
    before any photo is read (not a KeyError after the features)."""
    from features.model.dataset import DatasetError

    for name in ("hat_type.csv", "facial_hair.csv"):
        (tmp_path / name).write_bytes((CELEBA / name).read_bytes())
    with pytest.raises(DatasetError, match="without eyewear_type.csv; the type models need all three"):
        type_labels(tmp_path, celeba_paths)
    (tmp_path / "eyewear_type.csv").write_text("filename,kind\n000093.jpg,dark\n")
    with pytest.raises(DatasetError, match="eyewear_type.csv: missing column.s. eyewear_type"):
        type_labels(tmp_path, celeba_paths)
    (tmp_path / "eyewear_type.csv").write_text("")
    with pytest.raises(DatasetError, match="eyewear_type.csv: not a readable CSV"):
        type_labels(tmp_path, celeba_paths)
    # pandas' "cannot reindex on an axis with duplicate labels", naming no file, was the error
    (tmp_path / "eyewear_type.csv").write_text("filename,eyewear_type\n000093.jpg,dark\n000152.jpg,clear\n"
                                               "000093.jpg,clear\n")
    with pytest.raises(DatasetError, match=r"eyewear_type.csv, line 4: 000093.jpg is a duplicate of line 2$"):
        type_labels(tmp_path, celeba_paths)


def copied_type_files(folder, **rewrite):
    """The shared set's three type files copied into ``folder``, each ``rewrite[stem]``
    (a function of its lines) applied first."""
    for name in ("eyewear_type.csv", "hat_type.csv", "facial_hair.csv"):
        lines = (CELEBA / name).read_text().splitlines()
        (folder / name).write_text("\n".join(rewrite.get(name.split(".")[0], list)(lines)) + "\n")


def test_a_photo_the_facial_hair_file_does_not_list_has_no_styles(tmp_path, celeba_paths):
    """A photo missing from ``facial_hair.csv`` has no beard styles and no ``beard`` label
    (it was "bearded, no style": a negative of every style in the maps fitted given a beard);
    the others keep theirs, and the styles' models leave it out."""
    photos = celeba_paths[:300]
    listed, _ = type_labels(CELEBA, photos)
    unlisted = {"000001.jpg", "000003.jpg"}  # no beard in CelebA: "bearded" was the whole error
    copied_type_files(tmp_path, facial_hair=lambda lines: [line for line in lines if line.split(",")[0] not in unlisted])
    T, _ = type_labels(tmp_path, photos)
    gone = np.isin([p.rsplit("/", 1)[-1] for p in photos], sorted(unlisted))
    assert gone.sum() == 2
    hair = [*BEARD_STYLES, "beard"]
    assert (T.loc[gone, hair] == MISSING).all().all()
    pd.testing.assert_frame_equal(T[~gone], listed[~gone])
    assert not (listed.loc[gone, hair] == MISSING).any().any()
    rows = TypeClassifier(targets=("stubble",)).target_rows("stubble", np.zeros((len(T), 1)), T, np.arange(len(T)))[1]
    assert not np.isin(np.flatnonzero(gone), rows).any()


@pytest.mark.parametrize("stem, line, edit, said", [
    # CelebA's own -1/1 coding: no_beard -1 (a beard) was read as "0", every style as "-1"
    ("facial_hair", 2, lambda row: row.replace(",0,0,0,0,1,", ",-1,-1,-1,-1,1,"),
     r"facial_hair.csv, line 2: stubble='-1', expected 0 or 1$"),
    ("facial_hair", 3, lambda row: row.replace(",1,", ",,", 1), r"facial_hair.csv, line 3: no_beard='', expected 0 or 1$"),
    ("hat_type", 2, lambda row: row.replace(",cap,", ",Cap,"),
     r"hat_type.csv, line 2: hat_type='Cap', expected one of cap, brimmed, beanie, other, none, unsure$"),
    ("hat_type", 2, lambda row: row.replace(",black,", ",Black,"),
     r"hat_type.csv, line 2: hat_colour='Black', expected one of black, white, grey, .*, pink, multi, unsure$"),
    ("eyewear_type", 2, lambda row: row.replace(",dark,", ",sunglasses,"),
     r"eyewear_type.csv, line 2: eyewear_type='sunglasses', expected one of clear, dark, none, unsure$"),
])
def test_a_type_file_value_it_does_not_take_is_said_with_its_line(tmp_path, celeba_paths, stem, line, edit, said):
    """Each type file's values are checked as labels.csv's are: a value the column does not
    take was a class of its own (``Cap``, never matched by the catalog and refused by
    /api/summary) or, in CelebA's -1/1 coding, a beard read as none."""
    from features.model.dataset import DatasetError

    def changed(lines):
        lines = list(lines)
        before = lines[line - 1]
        lines[line - 1] = edit(before)
        assert lines[line - 1] != before
        return lines

    copied_type_files(tmp_path, **{stem: changed})
    with pytest.raises(DatasetError, match=said):
        type_labels(tmp_path, celeba_paths[:300])


def test_type_file_values_are_read_without_their_spaces(tmp_path, celeba_paths):
    """As in labels.csv, " cap" is cap (the check would otherwise refuse it)."""
    spaced = {"eyewear_type": lambda lines: [lines[0]] + [line.replace(",dark,", ", dark ,") for line in lines[1:]],
              "hat_type": lambda lines: [lines[0]] + [line.replace(",cap,", ", cap,") for line in lines[1:]],
              "facial_hair": lambda lines: [lines[0]] + [line.replace(",1,", ", 1,") for line in lines[1:]]}
    copied_type_files(tmp_path, **spaced)
    pd.testing.assert_frame_equal(type_labels(tmp_path, celeba_paths[:400])[0], type_labels(CELEBA, celeba_paths[:400])[0])


def test_a_fold_without_a_model_of_a_target_is_said_not_dropped():
    """A fold whose training side has too few photos of a class has no model of the target:
    its rows stay unscored, the report's scores are of the other folds, and the report says
    which fold and why (the fold was left out of ``n`` and the fold mean unsaid)."""
    from features.model.type_report import out_of_fold_types, train_types, type_cv_report

    rng = np.random.default_rng(0)
    groups = np.arange(300) // 3
    fold = groups % 3
    # 14 dark: 11 in fold 0, so fold 0's model learns from 3 and has no eyewear model
    dark = np.zeros(300, bool)
    dark[np.flatnonzero(fold == 0)[:11]] = dark[np.flatnonzero(fold == 1)[:2]] = dark[np.flatnonzero(fold == 2)[:1]] = True
    T = pd.DataFrame(MISSING, index=range(300), columns=list(TARGETS))
    T["eyewear"] = np.where(dark, "dark", "clear")
    X = (rng.normal(size=(300, 6)) + dark[:, None]).astype(np.float32)
    model = TypeClassifier(targets=("eyewear",), n_estimators=10, screen_columns=6)
    classes, values, skipped = out_of_fold_types(model, X, T, fold, groups)["eyewear"]
    assert [s["fold"] for s in skipped] == [0] and "fewer than two classes" in skipped[0]["why"]
    assert np.isnan(values[fold == 0]).all() and not np.isnan(values[fold != 0]).any()
    report = type_cv_report(T, {"eyewear": (classes, values, skipped)}, fold)
    assert report["eyewear"]["n"] == (fold != 0).sum()
    _, report = train_types(X, T, fold, groups, [], feature_names=None, detection=None, n_jobs=1, random_state=0)
    assert report["skipped_folds"] == {"eyewear": skipped} and "hat_colour_reads" not in report


def test_hats_without_a_trained_colour_read_are_left_out_of_both_reads(celeba_paths):
    """A hat of a fold without a colour model (its row NaN) was read as the first colour,
    "beige", against the trained read; it is left out of both reads' scores, and counted."""
    from features.model.type_report import compare_colour_reads
    from features.vision.faces import detection_settings

    T, _ = type_labels(CELEBA, celeba_paths)
    hats = np.flatnonzero(~np.isin(T["hat_colour"].to_numpy(), (MISSING, "beige")))[:8]
    T = T.iloc[hats].reset_index(drop=True)
    classes = np.array(sorted({"beige", *T["hat_colour"]}))
    values = (classes == T["hat_colour"].to_numpy()[:, None]).astype(float)  # the trained read right on each
    values[5:] = np.nan
    reads = compare_colour_reads(T, {"hat_colour": (classes, values, [{"fold": 1, "why": "too few"}])},
                                 [celeba_paths[i] for i in hats], detection=detection_settings())
    assert reads["trained"]["n"] == reads["measured"]["n"] == 5 and reads["left_out"] == 3
    assert reads["trained"]["accuracy"] == 1.0


def test_the_calibration_folds_follow_the_seed():
    """The folds a type's calibration is fitted over were shuffled with seed 0 whatever the
    classifier's ``random_state`` (train.py's ``--seed``), which reached its boosters only."""
    rng = np.random.default_rng(0)
    T = pd.DataFrame({"eyewear": np.where(rng.random(300) < 0.4, "dark", "clear")})
    X, groups = rng.normal(size=(300, 8)).astype(np.float32), np.arange(300) // 3

    def folds(seed):
        splits = TypeClassifier(targets=("eyewear",), random_state=seed).target_rows("eyewear", X, T, groups)[2]
        return [test.tolist() for _, test in splits]

    assert folds(1) == folds(1) and folds(0) != folds(1)
