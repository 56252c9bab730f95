from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate_data(
    raw_data: Input[Dataset],
    report: Output[HTML],
) -> NamedTuple("ContractResult", [("passed", bool), ("failures", str)]):  # type: ignore[valid-type]
    """Run the Great Expectations data contract; the HTML report renders in the KFP UI."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    passed, failures, statistics = steps.validate_raw_data(Path(raw_data.path), Path(report.path))
    report.metadata.update({"passed": passed, **statistics})
    return (passed, failures)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def enforce_contract(passed: bool, failures: str):
    """Fail the run, before any training, with every contract failure in the message."""
    from stroke_mlops.data.enforcement import enforce_contract

    enforce_contract(passed, failures)
