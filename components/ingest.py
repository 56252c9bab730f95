from kfp import dsl
from kfp.dsl import Dataset, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(data_uri: str, raw_data: Output[Dataset]):
    """Copy the raw CSV (path, s3:// or https://) into a Dataset artifact, byte for byte."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    info = steps.ingest_raw_data(data_uri, Path(raw_data.path))
    raw_data.metadata.update(info)
