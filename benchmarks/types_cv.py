"""The product types' grouped CV alone, and which feature blocks carry each type.

    python benchmarks/types_cv.py --cache artifacts/feature-cache [--ablation]
    python benchmarks/types_cv.py --cache artifacts/feature-cache --fold-seeds 8 --targets hat

``train.py``'s own steps (same photos, label cleaning, folds, seed and type models), features
read from the feature cache, without the main classifier's CV and fit: the types' half of
``train.py`` (and of ``train.py --ablation``) when CPU is short.  Writes OUT/types_report.json.

``--fold-seeds N`` instead scores the types over N draws of the grouped folds (seeds 0 to
N-1; ``train.py`` uses seed 0): with 34 beanies a single draw's score moves by more than the
gaps between settings, and every setting of the headwear type was chosen on draw 0.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fold_draws(X, T, split_for, seeds, *, feature_names, type_names):
    """The headline scores of ``type_names`` over the folds of each seed: {seed: {target:
    {score: mean over folds}}}."""
    from features.model.type_report import HEADLINE, out_of_fold_types, type_cv_report
    from features.model.types import TypeClassifier

    scores = {}
    for seed in seeds:
        split = split_for(seed)
        faces = T[split.face].reset_index(drop=True)
        model = TypeClassifier(feature_names=feature_names, targets=type_names)
        report = type_cv_report(faces, out_of_fold_types(model, X, faces, split.fold[split.face],
                                                         split.groups[split.face]), split.fold[split.face])
        scores[seed] = {t: {m: report[t][m]["mean"] for m in HEADLINE[t] if m in report[t]} for t in report}
        print(f"folds of seed {seed}: " + "; ".join(
            f"{t} " + ", ".join(f"{m} {v:.3f}" for m, v in s.items()) for t, s in scores[seed].items()), flush=True)
    return scores


def main():
    from features.model.model_io import ARTIFACTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="feature cache of train.py")
    parser.add_argument("--out", type=Path, default=ARTIFACTS, help="folder for types_report.json")
    parser.add_argument("--ablation", action="store_true", help="also each feature block alone")
    parser.add_argument("--fold-seeds", type=int, default=None, metavar="N",
                        help="score over the folds of seeds 0..N-1 instead (nothing written)")
    parser.add_argument("--targets", default=None, help="with --fold-seeds: comma-separated type targets "
                                                         "(default: all)")
    parser.add_argument("--n-jobs", type=int, default=1, help="XGBoost threads")
    args = parser.parse_args()

    from features.model.types import TARGETS
    from train import extract, load_table, make_extractor, parse_args, skipped_photos, split_photos, type_models

    type_names = tuple(args.targets.split(",")) if args.targets else TARGETS
    if set(type_names) - set(TARGETS):
        parser.error(f"--targets: expected some of {', '.join(TARGETS)}")
    train_args = parse_args(["--cache", str(args.cache), "--out", str(args.out), "--n-jobs", str(args.n_jobs),
                             *(["--ablation"] if args.ablation else [])])
    labelled, blocks = load_table(train_args)  # the labels cleaned by the type files, as train.py's
    table = labelled.table
    extractor = make_extractor(train_args, blocks)
    X, lost = extract(extractor, table["filename"])
    found, readable, _ = skipped_photos(table, X, train_args.max_skipped, known=lost)
    T = labelled.T[readable].reset_index(drop=True)

    def split_for(seed):
        return split_photos(table, readable, found, n_splits=train_args.n_splits, seed=seed)

    if args.fold_seeds:
        scores = fold_draws(X[found], T, split_for, range(args.fold_seeds),
                            feature_names=extractor.get_feature_names_out(), type_names=type_names)
        for target in scores[0]:
            for m in scores[0][target]:
                values = [s[target][m] for s in scores.values()]
                print(f"{target} {m} over {len(values)} fold draws: mean {np.mean(values):.3f}, sd "
                      f"{np.std(values):.3f}, {min(values):.3f} to {max(values):.3f} (seed 0: {values[0]:.3f})")
        return
    split = split_for(train_args.seed)
    face = split.face
    args.out.mkdir(parents=True, exist_ok=True)
    type_models(train_args, X[found], T[face].reset_index(drop=True), split.fold[face], split.groups[face],
                split.kept["filename"].to_numpy()[face], extractor, args.out)


if __name__ == "__main__":
    main()
