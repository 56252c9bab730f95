"""The contributions chart: horizontal bars laid out here, drawn as inline SVG by the template.

No JavaScript and nothing fetched: the page must work where nothing outside the machine loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 190
VALUE_WIDTH = 70
ROW_HEIGHT = 26
BAR_HEIGHT = 16
TOP = 8


@dataclass(frozen=True)
class Bar:
    feature: str
    label: str
    contribution: float  # in probability
    x: float
    y: float
    width: float
    raises_risk: bool

    @property
    def text(self) -> str:
        """The contribution in percentage points, signed."""
        return f"{self.contribution * 100:+.1f} pp"


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    zero_x: float
    label_width: int
    value_x: float


def contribution_chart(contributions: Mapping[str, float], labels: Mapping[str, str]) -> Chart:
    """Bars sorted by size, right of the zero line when they raise the risk, left otherwise."""
    ordered = sorted(contributions.items(), key=lambda item: abs(item[1]), reverse=True)
    plot_left, plot_right = LABEL_WIDTH, WIDTH - VALUE_WIDTH
    largest_up = max([v for _, v in ordered if v > 0], default=0.0)
    largest_down = max([-v for _, v in ordered if v < 0], default=0.0)
    span = (largest_up + largest_down) or 1.0
    zero_x = plot_left + (plot_right - plot_left) * largest_down / span
    scale = (plot_right - plot_left) / span
    bars = []
    for row, (feature, value) in enumerate(ordered):
        length = abs(value) * scale
        bars.append(
            Bar(
                feature=feature,
                label=labels.get(feature, feature),
                contribution=value,
                x=zero_x if value >= 0 else zero_x - length,
                y=TOP + row * ROW_HEIGHT,
                width=max(length, 0.5),
                raises_risk=value > 0,
            )
        )
    return Chart(
        bars=tuple(bars),
        width=WIDTH,
        height=TOP * 2 + ROW_HEIGHT * len(bars),
        zero_x=zero_x,
        label_width=LABEL_WIDTH - 8,
        value_x=plot_right + 6,
    )
