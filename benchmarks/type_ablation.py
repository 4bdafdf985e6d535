"""Which feature blocks carry each product type: the types' grouped CV with each block alone.

    python benchmarks/type_ablation.py --cache /work/cache --out benchmarks/type_ablation.json

The same photos, label cleaning and folds as ``train.py`` (same seed), features read from the
feature cache; only the type models are fitted (``train.py --ablation`` does the same and
also the main classifier's ablation).
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
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "type_ablation.json")
    parser.add_argument("--n-estimators", type=int, default=150, help="trees per type model")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    from features.labels import LABELS
    from features.model.evaluation import grouped_folds
    from features.vision.transformer import BLOCKS, FaceFeatures, block_names
    from features.model.type_report import HEADLINE, type_ablation
    from features.model.types import TypeClassifier, type_labels
    from train import clean_labels, load_table, parse_args, skipped_photos

    train_args = parse_args(["--cache", str(args.cache)])
    data_dir, table, blocks = load_table(train_args)
    targets, flips = type_labels(data_dir, table["filename"])
    table = clean_labels(table, flips)[0]
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
    model = TypeClassifier(n_estimators=args.n_estimators, n_jobs=args.n_jobs, random_state=train_args.seed)
    started = time.time()
    ablation = type_ablation(model, X[found], T, fold[face], groups[face],
                             {b: np.isin(names, block_names(b)) for b in blocks})
    result = {"n_estimators": args.n_estimators, "seconds": round(time.time() - started, 1),
              "headline_metrics": HEADLINE, "ablation": ablation}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for target, per_block in ablation.items():
        print(f"{target:<11} " + "; ".join(f"{b} " + " ".join(f"{m} {v:.3f}" for m, v in s.items())
                                           for b, s in per_block.items()))


if __name__ == "__main__":
    main()
