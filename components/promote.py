from kfp import dsl

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote(store_uri: str, version: str) -> str:
    """Move the production pointer to the new version: one small object, written last."""
    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    pointer = steps.promote_version(store_uri, version)
    return str(pointer["version"])
