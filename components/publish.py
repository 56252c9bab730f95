from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def publish(
    model: Input[Model],
    evaluation: Input[Artifact],
    fingerprint: Input[Artifact],
    raw_data: Input[Dataset],
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    gate_report: Input[Markdown],
    store_uri: str,
    published_model: Output[Model],
    model_card: Output[Markdown],
) -> NamedTuple("Published", [("version", str), ("model_uri", str)]):  # type: ignore[valid-type]
    """Write an immutable, verified model version to the store (the pointer does not move);
    keep the raw training CSV there by its sha256, for retraining."""
    import json
    import shutil
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.registry.model_dir import MODEL_CARD_FILE

    configure_logging()
    version, model_uri = steps.publish_candidate(
        Path(model.path),
        evaluation_path=Path(evaluation.path),
        fingerprint=json.loads(Path(fingerprint.path).read_text()),
        train_path=Path(train_data.path),
        test_path=Path(test_data.path),
        gate_summary=Path(gate_report.path).read_text().split("\n", 2)[-1],
        store_uri=store_uri,
        published_path=Path(published_model.path),
        raw_path=Path(raw_data.path),
    )
    shutil.copyfile(Path(published_model.path) / MODEL_CARD_FILE, model_card.path)
    published_model.metadata.update({"version": version, "uri": model_uri})
    return (version, model_uri)
