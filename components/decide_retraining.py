from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def decide_retraining(
    summary: Input[Artifact], store_uri: str, cooldown_hours: float, decision: Output[Markdown]
) -> bool:
    """Retrain when the monitor recommends it and no cool-down holds it back."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    retrain, metadata = steps.decide_on_retraining(
        Path(summary.path),
        store_uri=store_uri,
        cooldown_hours=cooldown_hours,
        decision_path=Path(decision.path),
    )
    decision.metadata.update(metadata)
    return retrain
