from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def assemble_training_data(
    summary: Input[Artifact],
    store_uri: str,
    requests_uri: str,
    until: str,
    training_data: Output[Dataset],
) -> str:
    """Production's training CSV + labelled production rows, kept in the store by sha256;
    records the retraining attempt (the cool-down counts from it). Returns the data URI."""
    import json
    from dataclasses import asdict
    from datetime import datetime
    from pathlib import Path

    from stroke_mlops.logs import configure_logging
    from stroke_mlops.monitoring import retraining

    configure_logging()
    assembled = retraining.assemble_training_data(
        store_uri, requests_uri, until=datetime.fromisoformat(until)
    )
    retraining.record_attempt(
        store_uri, retraining.attempt_record(assembled, json.loads(Path(summary.path).read_text()))
    )
    Path(training_data.path).write_bytes(retraining.read_kept_dataset(store_uri, assembled.sha256))
    training_data.metadata.update(asdict(assembled))
    return assembled.uri
