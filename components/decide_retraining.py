from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def decide_retraining(
    summary: Input[Artifact], store_uri: str, cooldown_hours: float, decision: Output[Markdown]
) -> bool:
    """Retrain when the monitor recommends it and no cool-down holds it back."""
    import json
    from pathlib import Path

    from stroke_mlops.logs import configure_logging
    from stroke_mlops.monitoring.retraining import decide_retraining as decide

    configure_logging()
    result = decide(
        json.loads(Path(summary.path).read_text()),
        store_uri=store_uri,
        cooldown_hours=cooldown_hours,
    )
    Path(decision.path).write_text(result.to_markdown())
    decision.metadata.update({"retrain": result.retrain, "reason": result.reason})
    return result.retrain
