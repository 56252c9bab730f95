from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate(
    model: Input[Model],
    evaluation: Input[Artifact],
    test_data: Input[Dataset],
    store_uri: str,
    min_recall: float,
    min_precision: float,
    min_roc_auc: float,
    champion_tolerance: float,
    max_cv_recall_width: float,
    report: Output[Markdown],
    decision: Output[Artifact],
) -> bool:
    """Repeated-CV bounds, test sanity and a paired champion comparison; the graph branches on
    the returned blessing.

    The single ``bool`` output (rather than a NamedTuple) keeps ``dsl.If`` evaluable by
    ``kfp.local`` too; every reason is in the Markdown report, and the ``decision`` artifact
    carries the production version judged against to promote.
    """
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.training.promotion_gate import GateThresholds

    configure_logging()
    result = steps.gate_candidate(
        Path(evaluation.path),
        Path(test_data.path),
        Path(model.path),
        store_uri=store_uri,
        thresholds=GateThresholds(
            min_recall=min_recall,
            min_precision=min_precision,
            min_roc_auc=min_roc_auc,
            champion_tolerance=champion_tolerance,
            max_cv_recall_width=max_cv_recall_width,
        ),
    )
    Path(report.path).write_text("# Promotion gate\n\n" + result.summary() + "\n")
    Path(decision.path).write_text(result.to_json())
    report.metadata.update({"blessed": result.blessed, "reasons": result.message()})
    decision.metadata.update(
        {"blessed": result.blessed, "champion_version": result.champion_version or ""}
    )
    return result.blessed
