"""The side-by-side benchmark's figures per run, and the Markdown table made of them.

Pure: :func:`render_table` takes every caller's runs and returns Markdown text; the plot is
drawn by :mod:`benchmarks.plot` in the bench venv (matplotlib is no product dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from benchmarks.stats import IntervalStats, Spread, spread

BASELINE = "baresip"
"""The caller every ratio is taken against."""


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What one run of one caller measured; None where that part of the run failed."""

    cpu_per_call_minute: float | None = None  #: user+sys CPU-s per minute of call
    idle_cpu_per_hour: float | None = None  #: user+sys CPU-s per registered hour, no call
    rss_steady_mib: float | None = None  #: median VmRSS over the call
    rss_peak_mib: float | None = None  #: VmHWM at the end of the call
    pacing: IntervalStats | None = None  #: RTP send intervals seen on the wire
    start_to_register_s: float | None = None  #: process start to its first REGISTER on lo
    press_to_invite_s: float | None = None  #: press or dial command to its INVITE on lo
    error: str | None = None  #: why the run stopped early, if it did

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a label, how to read the figure from a run, its format."""

    label: str
    read: Callable[[RunFigures], float | None]
    fmt: str
    ratio: bool = True  #: show the ratio of the median to the baseline's median


def _pacing(read: Callable[[IntervalStats], float]) -> Callable[[RunFigures], float | None]:
    return lambda run: None if run.pacing is None else read(run.pacing)


ROWS: tuple[Row, ...] = (
    Row("CPU s per call-minute", lambda r: r.cpu_per_call_minute, "{:.2f}"),
    Row("idle CPU s per registered hour", lambda r: r.idle_cpu_per_hour, "{:.3f}"),
    Row("RSS steady in the call (MiB)", lambda r: r.rss_steady_mib, "{:.1f}"),
    Row("RSS peak, VmHWM (MiB)", lambda r: r.rss_peak_mib, "{:.1f}"),
    Row("RTP send interval mean (ms)", _pacing(lambda p: p.mean_ms), "{:.3f}", ratio=False),
    Row("RTP send interval SD (ms)", _pacing(lambda p: p.sd_ms), "{:.3f}"),
    Row("RTP p99 deviation from 20 ms (ms)", _pacing(lambda p: p.p99_dev_ms), "{:.2f}"),
    Row("RTP max deviation from 20 ms (ms)", _pacing(lambda p: p.max_dev_ms), "{:.2f}"),
    Row("RTP gaps (intervals > 30 ms)", _pacing(lambda p: float(p.gaps)), "{:.0f}", ratio=False),
    Row("start to first REGISTER (s)", lambda r: r.start_to_register_s, "{:.3f}"),
    Row("press or dial to INVITE (s)", lambda r: r.press_to_invite_s, "{:.4f}"),
)


def figure_spread(runs: Sequence[RunFigures], row: Row) -> Spread | None:
    """The row's figure over the runs that have it, or None if none has."""
    values = [v for v in (row.read(run) for run in runs) if v is not None]
    return spread(values) if values else None


def format_cell(value: Spread | None, fmt: str, baseline: Spread | None = None) -> str:
    """``median (min-max)``, with `` [1.71x]`` when a baseline median is given and non-zero;
    ``-`` for no figure."""
    if value is None:
        return "-"
    text = fmt.format(value.median)
    if value.runs > 1:
        text += f" ({fmt.format(value.low)}-{fmt.format(value.high)})"
    if baseline is not None and baseline.median != 0:
        ratio = value.median / baseline.median
        digits = 2 if ratio < 10 else 1 if ratio < 100 else 0
        text += f" [{ratio:.{digits}f}x]"
    return text


def render_table(
    results: Mapping[str, Sequence[RunFigures]],
    extra_rows: Sequence[tuple[str, Mapping[str, str]]] = (),
    baseline: str = BASELINE,
) -> str:
    """The Markdown table: one column per caller (in ``results`` order), one row per figure,
    each cell the median over runs with min-max, and its ratio to ``baseline``'s median.
    ``extra_rows``: (label, caller -> cell text) for figures measured once (flood)."""
    callers = list(results)
    lines = [
        "| figure | " + " | ".join(callers) + " |",
        "|---|" + "---|" * len(callers),
    ]
    for row in ROWS:
        base = figure_spread(results[baseline], row) if baseline in results else None
        cells = []
        for caller in callers:
            value = figure_spread(results[caller], row)
            ratio_to = base if row.ratio and caller != baseline else None
            cells.append(format_cell(value, row.fmt, ratio_to))
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    for label, cells_by_caller in extra_rows:
        cells = [cells_by_caller.get(caller, "-") for caller in callers]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
