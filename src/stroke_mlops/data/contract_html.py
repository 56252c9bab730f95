"""The contract report as one self-contained HTML page (inline CSS, no scripts or assets)."""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stroke_mlops.data.contract import ContractReport


_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,
Helvetica,Arial,sans-serif;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#59636e;margin:0 0 16px}
.banner{border-radius:8px;padding:14px 18px;margin:0 0 16px;font-size:16px;font-weight:600;
border:1px solid}
.banner.pass{background:#dafbe1;border-color:#4ac26b;color:#116329}
.banner.fail{background:#ffebe9;border-color:#ff8182;color:#a40e26}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 8px}
.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#59636e;font-size:12px}
ul.problems{background:#fff;border:1px solid #ff8182;border-radius:8px;padding:10px 10px 10px 30px;
margin:0}
ul.problems li{margin:4px 0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d1d9e0;
border-radius:8px;overflow:hidden}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid #eaeef2}
th{background:#f0f3f6;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#59636e}
tr.failed td{background:#fff5f5}tr.notrun td{background:#fffbea}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#59636e}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;
white-space:nowrap}
.badge.passed{background:#dafbe1;color:#116329}.badge.failed{background:#ffebe9;color:#a40e26}
.badge.notrun{background:#fff8c5;color:#7d4e00}
.notes{color:#59636e;font-size:13px}
footer{color:#59636e;font-size:12px;margin-top:24px}
"""


def render_html(report: ContractReport) -> str:
    e = html.escape
    stats = report.statistics
    verdict = "passed" if report.success else "failed"
    headline = (
        f"Data contract passed: all {stats['expectations']} expectations met"
        if report.success
        else f"Data contract failed: {stats['failed']} of {stats['expectations']} expectations "
        f"not met" + (f", {stats['not_run']} not run" if stats["not_run"] else "")
    )
    cards = [
        (f"{int(stats['rows']):,}", "rows"),
        (str(stats["columns"]), "columns"),
        (f"{int(stats['missing_values']):,}", "missing values"),
        (str(stats["passed"]), "expectations met"),
        (str(stats["failed"]), "not met"),
        (str(stats["not_run"]), "not run"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Data contract {e(verdict)}: {e(report.source)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Data contract <code>{e(report.suite_name)}</code></h1>",
        f'<p class="sub">Source: {e(report.source)}</p>',
        f'<div class="banner {"pass" if report.success else "fail"}">{e(headline)}</div>',
        '<div class="cards">',
        *(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>' for v, k in cards),
        "</div>",
    ]
    if not report.success:
        problems = report.to_text().splitlines()[1:]
        parts += [
            "<h2>What to fix</h2>",
            '<ul class="problems">',
            *(f"<li>{e(p.removeprefix('  - '))}</li>" for p in problems),
            "</ul>",
        ]
    parts += [
        "<h2>Expectations</h2>",
        "<table><thead><tr><th>Status</th><th>Column</th><th>Expected</th><th>Observed</th>"
        "<th>Why</th></tr></thead><tbody>",
    ]
    for outcome in sorted(report.outcomes, key=lambda o: o.status == "passed"):
        css = outcome.status.replace(" ", "")
        parts.append(
            f'<tr class="{css}"><td><span class="badge {css}">{e(outcome.status)}</span></td>'
            f"<td>{e(outcome.column or '(table)')}<br><code>{e(outcome.expectation)}</code></td>"
            f"<td>{e(outcome.expected)}</td><td>{e(outcome.observed)}</td>"
            f'<td class="notes">{e(outcome.notes)}</td></tr>'
        )
    parts += [
        "</tbody></table>",
        "<h2>Columns</h2>",
        "<table><thead><tr><th>Column</th><th>dtype</th><th>Present</th><th>Missing</th>"
        "<th>Distinct</th><th>Min</th><th>Mean</th><th>Max</th><th>Most frequent</th></tr>"
        "</thead><tbody>",
    ]
    for column in report.columns:
        top = ", ".join(f"{value} ({count:,})" for value, count in column.top_values)
        numbers = (
            "".join(
                f'<td class="num">{e(_format_stat(v))}</td>'
                for v in (column.minimum, column.mean, column.maximum)
            )
            if column.mean is not None
            else '<td class="num"></td>' * 3
        )
        parts.append(
            f"<tr><td>{e(column.name)}</td><td><code>{e(column.dtype)}</code></td>"
            f'<td class="num">{column.present:,}</td><td class="num">{column.missing:,}</td>'
            f'<td class="num">{column.distinct:,}</td>{numbers}<td>{e(top)}</td></tr>'
        )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts += [
        "</tbody></table>",
        f"<footer>{report.evaluated} expectations evaluated by Great Expectations in "
        f"{stats['seconds']} s; line numbers count the CSV header as line 1. "
        f"Generated {e(generated)}.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _format_stat(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:.4g}"
