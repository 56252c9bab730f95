from kfp import dsl
from kfp.dsl import Artifact, Input

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(store_uri: str, version: str, gate_decision: Input[Artifact]) -> str:
    """Move the production pointer to the new version, only if production is still the champion
    the gate judged it against (one conditional write; otherwise the step fails, unchanged)."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.training.promotion_gate import GateDecision

    configure_logging()
    judged = GateDecision.from_json(Path(gate_decision.path).read_text())
    pointer = steps.promote_version(store_uri, version, judged_against=judged.champion_version)
    return str(pointer["version"])
