"""The product types' grouped CV alone, and which feature blocks carry each type.

    python benchmarks/types_cv.py --cache /work/cache --out benchmarks/types_cv.json [--ablation]

The same photos, label cleaning, folds and type models as ``train.py`` (same seed, same
functions), features read from the feature cache, without the main classifier's CV and fit:
the types' half of ``train.py`` (and of ``train.py --ablation``) when CPU is short.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="feature cache of train.py")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "types_cv.json")
    parser.add_argument("--ablation", action="store_true", help="also each feature block alone")
    parser.add_argument("--n-jobs", type=int, default=1, help="XGBoost threads")
    args = parser.parse_args()

    from features.dataset import LABELS
    from features.evaluation import grouped_folds
    from features.transformer import BLOCKS, FaceFeatures, block_names
    from features.type_report import format_type_report, train_types, type_ablation
    from features.types import type_labels
    from train import clean_labels, load_table, parse_args, skipped_photos

    train_args = parse_args(["--cache", str(args.cache)])
    data_dir, table, blocks = load_table(train_args)
    targets, flips = type_labels(data_dir, table["filename"])
    table, flipped = clean_labels(table, flips)
    extractor = FaceFeatures(**{b: True for b in BLOCKS}, n_jobs=args.n_jobs, cache_dir=args.cache.resolve(),
                             detection_threshold=train_args.detection_threshold, on_error="nan").fit()
    X = extractor.transform(table["filename"])
    found, readable, _ = skipped_photos(table, X, train_args.max_skipped)
    kept = table[readable].reset_index(drop=True)
    groups = kept["identity"].to_numpy()
    fold = grouped_folds(kept[list(LABELS)].to_numpy(), groups, n_splits=train_args.n_splits,
                         random_state=train_args.seed)
    face = found[readable]
    T = targets[readable].reset_index(drop=True)[face].reset_index(drop=True)
    names = extractor.get_feature_names_out()
    started = time.time()
    model, report = train_types(X[found], T, fold[face], groups[face], kept["filename"].to_numpy()[face],
                                detection_threshold=train_args.detection_threshold, n_jobs=args.n_jobs,
                                random_state=train_args.seed)
    report.update(seconds=round(time.time() - started, 1), label_errors_flipped=flipped)
    print(format_type_report(report["targets"]))
    print(json.dumps(report.get("hat_colour_reads"), indent=1))
    if args.ablation:
        names = extractor.get_feature_names_out()
        report["ablation"] = type_ablation(model, X[found], T, fold[face], groups[face],
                                           {b: np.isin(names, block_names(b)) for b in blocks})
    args.out.write_text(json.dumps(report, indent=2) + "\n")

if __name__ == "__main__":
    main()
