from kfp import dsl
from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    test_data: Input[Dataset],
    fingerprint: Input[Artifact],
    precision_floor: float,
    threshold_margin: float,
    seed: int,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    model_card: Output[Markdown],
):
    """Pick the threshold on held-out scores; measure on the test set; log for the KFP UI."""
    import json
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.training.evaluate import EvaluationConfig

    configure_logging()
    result = steps.evaluate_candidate(
        Path(model.path),
        train_path=Path(train_data.path),
        validation_path=Path(validation_data.path),
        test_path=Path(test_data.path),
        config=EvaluationConfig(
            precision_floor=precision_floor, threshold_margin=threshold_margin, seed=seed
        ),
        evaluation_path=Path(evaluation.path),
    )
    metrics.log_metric("threshold", round(result.threshold, 6))
    for name in ("recall", "precision", "f2", "roc_auc", "pr_auc", "flagged_share"):
        metrics.log_metric(f"test_{name}", round(float(result.test[name]), 6))
    for name, interval in result.intervals.items():
        metrics.log_metric(f"test_{name}_ci95_low", round(interval["low"], 6))
        metrics.log_metric(f"test_{name}_ci95_high", round(interval["high"], 6))
    Path(model_card.path).write_text(
        steps.candidate_model_card(
            Path(model.path), Path(evaluation.path), json.loads(Path(fingerprint.path).read_text())
        )
    )
    roc = result.roc_curve
    classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    classification.log_confusion_matrix(["no stroke", "stroke"], result.confusion_matrix)
