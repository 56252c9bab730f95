from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    seed: int,
    precision_floor: float,
    model: Output[Model],
    search: Output[Metrics],
):
    """Search logistic regression, XGBoost and their soft vote by stratified CV on train +
    validation; keep the one with the best out-of-fold recall at the precision floor."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    summary = steps.train_model(
        Path(train_data.path),
        Path(validation_data.path),
        Path(model.path),
        seed=seed,
        precision_floor=precision_floor,
    )
    model.metadata.update({"framework": "scikit-learn", "selected": summary["selected"]})
    for candidate in summary["candidates"]:
        name = candidate["name"]
        search.log_metric(f"{name}_cv_pr_auc", candidate["cv_average_precision"])
        search.log_metric(f"{name}_oof_recall_at_floor", candidate["oof_recall_at_precision"])
