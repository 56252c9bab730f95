"""``report.html``: one self-contained page (inline CSS and SVG, no scripts, no external assets).

Verdict first, then the per-feature table with small reference-vs-window bar charts, prediction
drift, data quality and realised performance. Only aggregate shares are shown, never a row.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from stroke_mlops.monitoring.summary import (
    DataQuality,
    Distribution,
    DriftResult,
    Interval,
    MonitorSummary,
    Performance,
)

_NUMERIC_KINDS = ("numeric", "score")
REFERENCE_COLOUR = "#8a9bb0"
WINDOW_COLOUR = "#d9822b"
RETRAIN_COLOUR, NONE_COLOUR, INSUFFICIENT_COLOUR = "#b00020", "#1b7f3b", "#8a6d00"


def headline(summary: MonitorSummary) -> tuple[str, str]:
    """(colour, verdict line) of the page's first box."""
    if summary.recommendation == "data_quality_alarm":
        return INSUFFICIENT_COLOUR, "Data-quality alarm: the window's data cannot be trusted"
    if summary.recommendation == "insufficient_data":
        return INSUFFICIENT_COLOUR, "Insufficient data: no verdict"
    if summary.recommendation == "none":
        return NONE_COLOUR, "No drift detected"
    if summary.drift_detected:
        return RETRAIN_COLOUR, "Drift detected: retraining recommended"
    return RETRAIN_COLOUR, "Realised recall under the gate's floor: retraining recommended"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#1d232b;line-height:1.4;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea;padding-bottom:4px}
.meta{color:#5a6675;font-size:13px}
.verdict{border-radius:8px;padding:14px 18px;color:#fff;margin:16px 0}
.verdict b{font-size:20px;display:block}.verdict ul{margin:6px 0 0 18px;padding:0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e6ebf0;vertical-align:middle}
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
th.num{text-align:right}
.tag{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.drift{background:#fde2e4;color:#9b0018}.ok{background:#e1f3e7;color:#17652f}
.na{background:#f1ecd8;color:#6b5600}.nt{background:#eceff3;color:#4a5563}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #dde3ea;border-radius:8px;
padding:10px 14px;min-width:150px}.card b{display:block;font-size:20px}
.card small{color:#5a6675}
"""


def _tag(verdict: str) -> str:
    css = {"drift": "drift", "no drift": "ok", "insufficient_data": "na"}.get(verdict, "nt")
    return f'<span class="tag {css}">{html.escape(verdict)}</span>'


def _p(value: float) -> str:
    return "&lt;1e-12" if value < 1e-12 else f"{value:.2g}"


def _lower_bound(label: str) -> str:
    """The axis text of a numeric group: its lower edge ("a–b" → a, "≥ a" → a, "< b" → "")."""
    if label.startswith("≥ "):
        return label[2:]
    return "" if label.startswith("< ") else label.split("–", 1)[0]


def bar_chart(
    distribution: Distribution | None,
    *,
    numeric: bool = False,
    width: int = 360,
    height: int = 96,
) -> str:
    """Reference (grey) and window (orange) shares per bin as an inline SVG.

    Numeric groups are labelled at their lower edges, like an axis; levels by name.
    """
    if distribution is None or not distribution.labels:
        return ""
    count = len(distribution.labels)
    top = max([*distribution.reference, *distribution.window, 1e-9])
    plot_height = height - 26
    slot = width / count
    bar = max(slot / 2 - 1.5, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    every = 1 if count <= 6 else 2
    for index, (label, ref, win) in enumerate(
        zip(distribution.labels, distribution.reference, distribution.window, strict=True)
    ):
        x = index * slot + 1
        bars = ((0.0, ref, REFERENCE_COLOUR, "reference"), (bar, win, WINDOW_COLOUR, "window"))
        for offset, share, colour, who in bars:
            h = share / top * plot_height
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{plot_height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{html.escape(label)}: {who} '
                f"{share:.1%}</title></rect>"
            )
        if numeric:
            if index % every == 0 and (text := _lower_bound(label)):
                parts.append(
                    f'<line x1="{x - 1:.1f}" y1="{plot_height}" x2="{x - 1:.1f}" '
                    f'y2="{plot_height + 4}" stroke="#8795a5"/>'
                    f'<text x="{x - 1:.1f}" y="{height - 12}" font-size="9" '
                    f'text-anchor="middle" fill="#5a6675">{html.escape(text)}</text>'
                )
        elif count <= 6 or index % every == 0:
            text = label if len(label) <= 14 else label[:13] + "…"
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 12}" font-size="9" '
                f'text-anchor="middle" fill="#5a6675">{html.escape(text)}</text>'
            )
    parts.append(
        f'<line x1="0" y1="{plot_height}" x2="{width}" y2="{plot_height}" stroke="#c5ced8"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _rows(results: Iterable[DriftResult]) -> str:
    out = []
    for r in results:
        out.append(
            "<tr>"
            f"<td><b>{html.escape(r.name)}</b><br><small>{html.escape(r.note)}</small></td>"
            f"<td>{_tag(r.verdict)}</td>"
            f"<td>{html.escape(r.test)}</td>"
            f'<td class="num">{r.statistic:.3g}</td>'
            f'<td class="num">{_p(r.p_value)}</td>'
            f'<td class="num">{_p(r.adjusted_p_value)}</td>'
            f'<td class="num">{r.distance:.3f}<br>'
            f"<small>{html.escape(r.distance_name)}</small></td>"
            f"<td>{bar_chart(r.distribution, numeric=r.kind in _NUMERIC_KINDS)}</td>"
            "</tr>"
        )
    return "".join(out)


_TABLE_HEAD = (
    "<table><tr><th>check</th><th>verdict</th><th>test</th><th>statistic</th><th>p-value</th>"
    "<th>Holm-adjusted</th><th>distance</th><th>reference vs window</th></tr>"
)


def _card(title: str, value: str, note: str = "") -> str:
    small = f"<small>{note}</small>" if note else ""
    return f'<div class="card"><small>{title}</small><b>{value}</b>{small}</div>'


def _interval_card(title: str, interval: Interval) -> str:
    if interval.value is None or interval.low is None or interval.high is None:
        return _card(title, "n/a")
    return _card(title, f"{interval.value:.3f}", f"95% CI {interval.low:.3f}–{interval.high:.3f}")


def _performance_section(performance: Performance) -> str:
    cards = ""
    if performance.status == "ok":
        cards = (
            '<div class="cards">'
            + _interval_card("realised recall", performance.recall)
            + _interval_card("realised precision", performance.precision)
            + _card(
                "labelled rows / strokes",
                f"{performance.labelled_rows} / {performance.labelled_positives}",
            )
            + _card("gate recall floor", f"{performance.recall_floor:.2f}")
            + "</div>"
        )
    return f"{cards}<p>{html.escape(performance.message)}</p>"


def _interval_bar(interval: Interval, floor: float, *, width: int = 220) -> str:
    """A 0–1 axis with the interval as a bar, the estimate as a dot and the floor as a line."""
    if interval.value is None or interval.low is None or interval.high is None:
        return ""
    height, y = 26, 11

    def x(share: float) -> float:
        return 6 + share * (width - 12)

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>95% CI {interval.low:.3f}–'
        f"{interval.high:.3f}; gate floor {floor:.2f}</title>"
        f'<line x1="{x(0):.1f}" y1="{y}" x2="{x(1):.1f}" y2="{y}" stroke="#dde3ea"/>'
        f'<line x1="{x(floor):.1f}" y1="2" x2="{x(floor):.1f}" y2="{y + 8}" stroke="#b00020" '
        'stroke-dasharray="2 2"/>'
        f'<rect x="{x(interval.low):.1f}" y="{y - 3}" '
        f'width="{max(x(interval.high) - x(interval.low), 1):.1f}" height="6" rx="3" '
        f'fill="{WINDOW_COLOUR}" opacity="0.45"/>'
        f'<circle cx="{x(interval.value):.1f}" cy="{y}" r="3.5" fill="{WINDOW_COLOUR}"/>'
        f'<text x="{x(0):.1f}" y="{height - 1}" font-size="8" fill="#5a6675">0</text>'
        f'<text x="{x(1):.1f}" y="{height - 1}" font-size="8" fill="#5a6675" '
        'text-anchor="end">1</text></svg>'
    )


def _versions_section(summary: MonitorSummary) -> str:
    """Each model version the window holds: rows, decisions, realised recall and precision."""
    total = sum(v.rows for v in summary.versions) or 1
    floor = summary.performance.recall_floor
    rows = []
    for v in summary.versions:
        production = v.version == summary.model_version
        name = html.escape(v.version) + (
            ' <span class="tag ok">production</span>' if production else ""
        )
        rate = "n/a" if v.positive_rate is None else f"{v.positive_rate:.1%}"
        recall = _interval_text(v.recall) or (
            f"too few labels ({v.labelled_positives} strokes)"
            if v.labelled_positives < summary.performance.min_labelled_positives
            else "n/a"
        )
        rows.append(
            f"<tr><td><b>{name}</b></td><td class='num'>{v.rows}</td>"
            f"<td class='num'>{v.rows / total:.1%}</td><td class='num'>{rate}</td>"
            f"<td class='num'>{v.labelled_rows} / {v.labelled_positives}</td>"
            f"<td class='num'>{recall}</td><td>{_interval_bar(v.recall, floor)}</td>"
            f"<td class='num'>{_interval_text(v.precision) or 'n/a'}</td></tr>"
        )
    return (
        "<p>The window holds requests answered by more than one model version (a traffic "
        "split). Drift above is judged for the production version only; here each version's "
        "own rows, positive-decision rate and realised performance on its labelled rows (Wilson "
        f"95 % intervals, shown from {summary.performance.min_labelled_positives} labelled "
        "strokes; the dashed line is the gate's recall floor). <code>stroke-mlops compare</code> "
        "gives the verdict between two versions.</p>"
        "<table><tr><th>version</th><th class=num>rows</th><th class=num>share</th>"
        "<th class=num>positive decisions</th><th class=num>labelled rows / strokes</th>"
        "<th class=num>realised recall (95% CI)</th><th>recall on 0–1, gate floor dashed</th>"
        f"<th class=num>realised precision (95% CI)</th></tr>{''.join(rows)}</table>"
    )


def _interval_text(interval: Interval) -> str:
    if interval.value is None or interval.low is None or interval.high is None:
        return ""
    return f"{interval.value:.3f} <small>({interval.low:.3f}–{interval.high:.3f})</small>"


def _quality_section(quality: DataQuality) -> str:
    missing_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='num'>{share:.1%}</td>"
        f"<td class='num'>{quality.reference_missing_rate.get(name, 0.0):.1%}</td></tr>"
        for name, share in quality.missing_rate.items()
    )
    reason_rows = "".join(
        f"<tr><td>{html.escape(reason)}</td><td class='num'>{count}</td></tr>"
        for reason, count in quality.refusal_reasons.items()
    )
    reason_rows += "".join(
        f"<tr><td>logged record left out: {html.escape(reason)}</td>"
        f"<td class='num'>{count}</td></tr>"
        for reason, count in quality.invalid_records.items()
    )
    return (
        '<div class="cards" style="align-items:flex-start;flex-wrap:nowrap"><div><table><tr>'
        "<th>feature</th>"
        "<th>missing (window)</th><th>missing (reference)</th></tr>"
        f"{missing_rows}</table></div><div style='flex:1'><table><tr><th>refusal reason</th>"
        "<th>requests</th>"
        f"</tr>{reason_rows or '<tr><td colspan=2>none</td></tr>'}</table>"
        f'<p class="meta">{quality.accepted_requests} accepted and {quality.refused_requests} '
        f"refused requests of this version; {quality.other_version_requests} requests of other "
        f"versions not judged; {quality.unreadable_records} unreadable lines; "
        f"{sum(quality.invalid_records.values())} records left out (schema); "
        f"{quality.duplicate_records} duplicate records counted once; "
        f"{quality.objects_read} log objects read, {quality.unreadable_objects} unreadable; "
        f"{quality.quarantined_labels} stored label lines quarantined, "
        f"{quality.conflicting_label_ids} conflicting label ids left out.</p></div></div>"
    )


def render_report(summary: MonitorSummary) -> str:
    """The whole page for a summary."""
    colour, verdict = headline(summary)
    window = f"{summary.since or 'first logged request'} → {summary.until or 'last'}"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in summary.reasons)
    quality, prediction = summary.data_quality, summary.prediction
    checks = [*summary.features, *prediction.checks]
    drifted = sum(r.verdict == "drift" for r in checks)
    requests = quality.refused_requests + quality.accepted_requests
    cards = (
        _card("rows in window", str(summary.rows), f"minimum {summary.min_rows}")
        + _card("drifted checks", f"{drifted} of {len(checks)}", f"Holm, α = {summary.alpha:g}")
        + _card(
            "positive decisions",
            f"{prediction.window_positive_rate:.1%}",
            f"reference {prediction.reference_positive_rate:.1%}",
        )
        + _card(
            "refused requests",
            f"{quality.refused_rate:.1%}",
            f"{quality.refused_requests} of {requests}",
        )
    )
    legend = (
        f'<p class="legend">Each check compares this window with the reference set (held-out '
        f"rows of this version).<span style='background:{REFERENCE_COLOUR}'></span>reference"
        f"<span style='background:{WINDOW_COLOUR}'></span>window. Numeric bars are the "
        "reference's deciles (about 10 % each, less where values tie), labelled at their lower "
        "edges: where an orange bar stands above its grey one, the window has more rows.</p>"
    )
    title = html.escape(summary.model_version)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Monitor: {title}</title><style>{_CSS}</style></head><body>"
        "<h1>Stroke model monitor</h1>"
        f'<div class="meta">model version <b>{title}</b> · window {html.escape(window)} · '
        f"{summary.rows} rows judged against {summary.reference_rows} reference rows · "
        f"generated {html.escape(summary.generated_at)}"
        + (
            f' · <a href="#versions">{len(summary.versions)} model versions</a> answered in '
            "this window"
            if len(summary.versions) > 1
            else ""
        )
        + "</div>"
        f'<div class="verdict" style="background:{colour}"><b>{verdict}</b>'
        f"<ul>{reasons}</ul></div>"
        f'<div class="cards">{cards}</div>'
        f"<h2 id=features>Features</h2>{legend}{_TABLE_HEAD}{_rows(summary.features)}</table>"
        "<h2 id=predictions>Predictions</h2>"
        f"<p>Threshold {prediction.threshold:.4f}: the window flags "
        f"{prediction.window_positive_rate:.1%} of rows, the reference "
        f"{prediction.reference_positive_rate:.1%}.</p>"
        f"{_TABLE_HEAD}{_rows(prediction.checks)}</table>"
        f"<h2 id=quality>Data quality</h2>{_quality_section(quality)}"
        "<h2 id=performance>Realised performance (feedback labels)"
        + (f" of {title}" if len(summary.versions) > 1 else "")
        + "</h2>"
        f"{_performance_section(summary.performance)}"
        + (
            f"<h2 id=versions>Model versions</h2>{_versions_section(summary)}"
            if len(summary.versions) > 1
            else ""
        )
        + "</body></html>\n"
    )
