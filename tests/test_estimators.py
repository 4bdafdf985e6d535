"""scikit-learn's own estimator contract (``check_estimator``) where it applies.

``MultiLabelClassifier`` and ``GatedClassifier`` run every check; those listed below do not
apply to them, by design: the target is 0/1 per label for a fixed tuple of labels
(absent/present), and they always predict one column per label.  ``FaceFeatures`` (photos in, not numbers) and
``TypeClassifier`` (a table of type names per target, fitted only inside train.py) take
inputs that the checks cannot generate, so they are tested on real photos instead
(tests/test_transformer.py, tests/test_types.py).
"""
import warnings

from sklearn.utils.estimator_checks import check_estimator

from features.model.classifier import MultiLabelClassifier
from features.model.gated import GatedClassifier

ZERO_ONE = "the target is 0/1 per label (absent/present); other class values are refused"
FIXED_LABELS = "the labels are a parameter; a Y with another number of columns is refused"
NOT_APPLICABLE = {
    "check_estimators_dtypes": ZERO_ONE,
    "check_classifier_data_not_an_array": ZERO_ONE,
    "check_classifiers_classes": ZERO_ONE,
    "check_fit2d_1feature": ZERO_ONE,
    "check_classifiers_train": "predictions are always 2-D, one column per label",
    "check_classifier_multioutput": FIXED_LABELS,
    "check_classifiers_multilabel_representation_invariance": FIXED_LABELS,
    "check_classifiers_multilabel_output_format_predict": FIXED_LABELS,
    "check_classifiers_multilabel_output_format_predict_proba": FIXED_LABELS,
    "check_classifiers_multilabel_output_format_decision_function": FIXED_LABELS,
}


def failed_checks(estimator):
    """The checks ``estimator`` fails, beyond those that do not apply: {name: first line}."""
    failed = {}

    def record(*, estimator, check_name, exception, status, expected_to_fail, expected_to_fail_reason):
        if status == "failed" and not expected_to_fail:
            failed[check_name] = str(exception).splitlines()[0] if str(exception) else type(exception).__name__

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(estimator, expected_failed_checks=NOT_APPLICABLE, on_fail=None, on_skip=None,
                        callback=record)
    return failed


def boosters():
    return MultiLabelClassifier(labels=("a",), n_estimators=5, screen_columns=None, calibration_folds=2)


def test_multilabel_classifier_passes_check_estimator():
    assert not failed_checks(boosters())


def test_gated_classifier_passes_check_estimator():
    # the last column is the gated block; a gate of 0.3 sends some rows to the second look
    assert not failed_checks(GatedClassifier(boosters(), boosters(), label="a", gate=0.3, n_gated_columns=1))
