from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def preprocess(
    raw_data: Input[Dataset],
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    train_data: Output[Dataset],
    validation_data: Output[Dataset],
    test_data: Output[Dataset],
    fingerprint: Output[Artifact],
):
    """Clean, split stratified by the target, and fingerprint the data."""
    import json
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    info = steps.clean_and_split(
        Path(raw_data.path),
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        train_path=Path(train_data.path),
        validation_path=Path(validation_data.path),
        test_path=Path(test_data.path),
    )
    Path(fingerprint.path).write_text(json.dumps(info, indent=2))
    fingerprint.metadata.update({"raw_sha256": info["raw_sha256"], "seed": seed})
    for name, artifact in (
        ("train", train_data),
        ("validation", validation_data),
        ("test", test_data),
    ):
        artifact.metadata.update(info["parts"][name])
        artifact.metadata["sha256"] = info[f"{name}_sha256"]
