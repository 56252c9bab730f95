from kfp import dsl
from kfp.dsl import Markdown, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def infra_validate(store_uri: str, version: str, report: Output[Markdown]):
    """Start the real model server on the published version; promotion needs it to pass."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    result = steps.infra_validate_version(store_uri, version, Path(report.path))
    report.metadata.update(result)
