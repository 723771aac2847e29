"""The side-by-side benchmark's Markdown table."""

from __future__ import annotations

from benchmarks.report import ROWS, RunFigures, format_cell, render_table
from benchmarks.stats import IntervalStats, spread

PACING = IntervalStats(
    packets=3000, mean_ms=20.0, sd_ms=0.1, p99_dev_ms=0.2, max_dev_ms=1.0, gaps=0
)


def runs(cpu: list[float]) -> list[RunFigures]:
    return [RunFigures(cpu_per_call_minute=c, pacing=PACING) for c in cpu]


def cells(table: str, label: str) -> list[str]:
    for line in table.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if parts[0] == label:
            return parts[1:]
    raise AssertionError(f"no row {label!r} in\n{table}")


def test_cell_shows_median_range_and_ratio() -> None:
    assert format_cell(spread([1.0, 3.0, 2.0]), "{:.2f}") == "2.00 (1.00-3.00)"
    assert format_cell(spread([2.0]), "{:.1f}", spread([1.0])) == "2.0 [2.00x]"
    assert format_cell(None, "{:.2f}") == "-"
    assert format_cell(spread([2.0]), "{:.1f}", spread([0.0])) == "2.0"
    assert format_cell(spread([50.0]), "{:.0f}", spread([2.0])) == "50 [25.0x]"
    assert format_cell(spread([900.0]), "{:.0f}", spread([2.0])) == "900 [450x]"


def test_table_has_a_column_per_caller_and_a_row_per_figure() -> None:
    table = render_table({"intercom": runs([1.2, 1.3, 1.4]), "baresip": runs([0.7, 0.65, 0.8])})
    lines = table.splitlines()
    assert lines[0] == "| figure | intercom | baresip |"
    assert lines[1] == "|---|---|---|"
    assert len(lines) == 2 + len(ROWS)
    intercom, baresip = cells(table, "CPU s per call-minute")
    assert intercom == "1.30 (1.20-1.40) [1.86x]"
    assert baresip == "0.70 (0.65-0.80)"  # the baseline has no ratio to itself
    # the mean interval is no "more is worse" figure: no ratio there
    assert cells(table, "RTP send interval mean (ms)") == ["20.000 (20.000-20.000)"] * 2


def test_missing_figures_and_extra_rows() -> None:
    table = render_table(
        {"intercom": [RunFigures(error="died")], "baresip": runs([0.7])},
        extra_rows=[("refused INVITEs per CPU-second (flood)", {"intercom": "12,000"})],
    )
    assert cells(table, "CPU s per call-minute") == ["-", "0.70"]
    assert cells(table, "refused INVITEs per CPU-second (flood)") == ["12,000", "-"]
