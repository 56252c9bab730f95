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
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    uri, metadata = steps.assemble_retraining_data(
        Path(summary.path),
        store_uri=store_uri,
        requests_uri=requests_uri,
        until=until,
        data_path=Path(training_data.path),
    )
    training_data.metadata.update(metadata)
    return uri
