from typing import NamedTuple

from kfp import dsl

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def collect_window(
    requests_uri: str,
    window_hours: float,
    until: str,
) -> NamedTuple("Window", [("since", str), ("until", str), ("objects", int)]):  # type: ignore[valid-type]
    """Resolve the window [until - window_hours, until) (until "" = now) and list its logs."""
    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    return steps.collect_request_window(requests_uri, window_hours=window_hours, until=until)
