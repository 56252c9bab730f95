from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate(
    evaluation: Input[Artifact],
    test_data: Input[Dataset],
    store_uri: str,
    min_recall: float,
    min_precision: float,
    min_roc_auc: float,
    champion_tolerance: float,
    report: Output[Markdown],
) -> bool:
    """Named thresholds plus champion/challenger; the graph branches on the returned blessing.

    The single ``bool`` output (rather than a NamedTuple) keeps ``dsl.If`` evaluable by
    ``kfp.local`` too; every reason is in the Markdown report.
    """
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.training.promotion_gate import GateThresholds

    configure_logging()
    decision = steps.gate_candidate(
        Path(evaluation.path),
        Path(test_data.path),
        store_uri=store_uri,
        thresholds=GateThresholds(
            min_recall=min_recall,
            min_precision=min_precision,
            min_roc_auc=min_roc_auc,
            champion_tolerance=champion_tolerance,
        ),
    )
    Path(report.path).write_text("# Promotion gate\n\n" + decision.summary() + "\n")
    report.metadata.update({"blessed": decision.blessed, "reasons": decision.message()})
    return decision.blessed
