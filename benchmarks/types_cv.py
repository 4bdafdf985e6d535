"""The product types' grouped CV alone, and which feature blocks carry each type.

    python benchmarks/types_cv.py --cache artifacts/feature-cache [--ablation]

``train.py``'s own steps (same photos, label cleaning, folds, seed and type models), features
read from the feature cache, without the main classifier's CV and fit: the types' half of
``train.py`` (and of ``train.py --ablation``) when CPU is short.  Writes OUT/types_report.json.
"""
import argparse
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="feature cache of train.py")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts", help="folder for types_report.json")
    parser.add_argument("--ablation", action="store_true", help="also each feature block alone")
    parser.add_argument("--n-jobs", type=int, default=1, help="XGBoost threads")
    args = parser.parse_args()

    from features.model.types import type_labels
    from train import clean_labels, extract, load_table, make_extractor, parse_args, skipped_photos, split_photos, type_models

    train_args = parse_args(["--cache", str(args.cache), "--out", str(args.out), "--n-jobs", str(args.n_jobs),
                             *(["--ablation"] if args.ablation else [])])
    data_dir, table, blocks = load_table(train_args)
    targets, flips = type_labels(data_dir, table["filename"])
    table, _ = clean_labels(table, flips)
    extractor = make_extractor(train_args, blocks)
    X = extract(extractor, table["filename"])
    found, readable, _ = skipped_photos(table, X, train_args.max_skipped)
    split = split_photos(table, readable, found, n_splits=train_args.n_splits, seed=train_args.seed)
    face = split.face
    args.out.mkdir(parents=True, exist_ok=True)
    type_models(train_args, X[found], targets[readable].reset_index(drop=True)[face].reset_index(drop=True),
                split.fold[face], split.groups[face], split.kept["filename"].to_numpy()[face], extractor)


if __name__ == "__main__":
    main()
