from kfp import dsl
from kfp.dsl import Artifact, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(
    model_uri: str,
    version: str,
    manifests: Output[Artifact],
) -> str:
    """Emit the KServe ServingRuntime + InferenceService YAML; apply it (or fail) in a cluster."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    result = steps.deploy_version(
        model_uri,
        version=version,
        manifest_path=Path(manifests.path),
    )
    manifests.metadata.update(result)
    return str(result["message"])
