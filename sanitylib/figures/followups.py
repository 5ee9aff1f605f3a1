"""Figures of the chapter "After the paper": the MPRT variants step by step, and the tests that
give one number per map (eMPRT, random logit, input invariance).

Similarities (rank correlation, SSIM, Pearson) live in [-1, 1]: their axes stop there, and an
interval that reaches past it (a t interval over few images can) is cut at the axis;
:func:`cut_note` says so in a figure's caption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sanitylib.figures.plotting import DASHES, MARKERS
from sanitylib.figures.style import color_for, page_size
from sanitylib.methods.similarity import METRIC_RANGES

__all__ = ["CORRELATION", "cut_intervals", "cut_note", "followup_curves", "followup_points",
           "recommendation_heatmap"]

#: The range of a similarity to the original maps (a correlation), where its axes stop.
CORRELATION = (-1.0, 1.0)
#: Room beyond the range, so that points at ±1 stay whole.
_MARGIN = 0.05


def _limits(rows: pd.DataFrame) -> tuple[float, float] | None:
    """The range of the metric of ``rows`` (a ``metric`` column), or a correlation's when they
    have none; None for an unbounded metric (eMPRT's entropy ratio)."""
    if "metric" not in rows or rows.empty:
        return CORRELATION
    ranges = {METRIC_RANGES.get(m) if m in METRIC_RANGES else None for m in set(rows["metric"])}
    return ranges.pop() if len(ranges) == 1 else None


def cut_intervals(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``summary`` (``low``, ``high``, and ``metric`` where there is one; without it
    a correlation) whose interval reaches past the range of its metric: the figures cut them."""
    if "metric" in summary:
        ranges = summary["metric"].map(lambda m: METRIC_RANGES.get(m) if m in METRIC_RANGES
                                       else (-np.inf, np.inf))
        low = np.array([r[0] for r in ranges], dtype=float)
        high = np.array([r[1] for r in ranges], dtype=float)
    else:
        low, high = CORRELATION
    return summary[(summary["low"] < low) | (summary["high"] > high)]


def cut_note(summary: pd.DataFrame) -> str:
    """A sentence for a caption when intervals of ``summary`` reach past ±1 (cut at the axis);
    empty otherwise."""
    cut = cut_intervals(summary)
    if cut.empty:
        return ""
    finite = cut[np.isfinite(cut["low"]) & np.isfinite(cut["high"])]
    plural = "s reach" if len(cut) > 1 else " reaches"
    note = f"{len(cut)} interval{plural} past ±1 (few images) and {'are' if len(cut) > 1 else 'is'} cut at the axis"
    if finite.empty:
        return note + "."
    widest = finite.assign(width=finite["high"] - finite["low"]).sort_values("width").iloc[-1]
    return note + f"; the widest runs from {widest['low']:.1f} to {widest['high']:.1f}."


def followup_curves(summary: pd.DataFrame, tests: Sequence[str], methods: Sequence[str],
                    test_labels: Mapping[str, str], labels: Mapping[str, str],
                    floor: float | None = None) -> Figure:
    """Similarity to the original maps against the number of blocks randomized, one panel per
    test (top-down, bottom-up, smooth MPRT): ``summary`` rows of (test, method, step, mean, low,
    high). ``floor``: the random-map mean, drawn dotted. The axis is the correlation's [-1, 1];
    intervals beyond it are cut (:func:`cut_note`). Methods differ in colour, marker and dash;
    the controls (``control_*``) are dotted; the legend sits under the panels."""
    legend_rows = -(-(len(methods) + (floor is not None)) // 3)
    fig, axes = plt.subplots(1, len(tests), squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(6.8, 2.8 + 0.22 * legend_rows))
    low, high = CORRELATION
    for ax, test in zip(axes[0], tests):
        rows = summary[summary.test == test]
        for i, method in enumerate(methods):
            part = rows[rows.method == method].sort_values("step")
            if part.empty:
                continue
            control = method.startswith("control_")
            line, = ax.plot(part["step"], part["mean"].clip(low, high),
                            marker=MARKERS[i % len(MARKERS)], ms=3.5,
                            color=color_for(methods, method), label=labels.get(method, method),
                            ls=":" if control else DASHES[i % len(DASHES)], lw=1.2)
            ax.fill_between(part["step"], part["low"].clip(low, high),
                            part["high"].clip(low, high), color=line.get_color(), alpha=0.12)
        if floor is not None:
            ax.axhline(floor, color="0.4", lw=1.0, ls=(0, (1, 3)), label="random maps (mean)")
        ax.set_title(test_labels.get(test, test))
        ax.set_xlabel("blocks randomized")
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_ylim(low - _MARGIN, high + _MARGIN)
        ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    axes[0, 0].set_ylabel("similarity to\noriginal maps")
    handles, names = axes[0, 0].get_legend_handles_labels()
    for ax in axes[0, 1:]:  # methods that ran only under a later test
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    fig.legend(handles, names, loc="outside lower center", ncols=3, frameon=False)
    return fig


def followup_points(summary: pd.DataFrame, tests: Sequence[str], methods: Sequence[str],
                    test_labels: Mapping[str, str], labels: Mapping[str, str],
                    directions: Mapping[str, str]) -> Figure:
    """Mean and interval per method (rows), one panel per single-number test: ``summary`` rows
    of (test, method, metric, mean, low, high); each panel says which way is better. A panel of
    a similarity (SSIM, Pearson) stops at [-1, 1] and cuts intervals beyond it."""
    fig, axes = plt.subplots(1, len(tests), squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(6.8, 0.28 * len(methods) + 1.3))
    y = np.arange(len(methods))
    for ax, test in zip(axes[0], tests):
        rows = summary[summary.test == test]
        limits = _limits(rows)
        rows = rows.set_index("method").reindex(methods)
        low, high = rows["low"], rows["high"]
        if limits is not None:
            low, high = low.clip(*limits), high.clip(*limits)
            ax.set_xlim(limits[0] - 2 * _MARGIN, limits[1] + 2 * _MARGIN)
            ax.set_xticks([limits[0], 0, limits[1]])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.errorbar(rows["mean"], y, xerr=[rows["mean"] - low, high - rows["mean"]],
                    fmt="none", ecolor="0.4", capsize=2, lw=0.8)
        ax.scatter(rows["mean"], y, c=[color_for(methods, m) for m in methods], s=18, zorder=3)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set_title(f"{test_labels.get(test, test)}\n({directions.get(test, '')})")
    axes[0, 0].set_yticks(y, [labels.get(m, m) for m in methods])
    axes[0, 0].invert_yaxis()
    return fig


def recommendation_heatmap(table: pd.DataFrame, test_labels: Mapping[str, str],
                           labels: Mapping[str, str], scaled: Sequence[str]) -> Figure:
    """The recommendation table as a heatmap of its scaled columns (0: like the failing
    reference, 1: as the test asks), numbers in every cell; empty cells were not run."""
    columns = [c for c in table.columns if c in scaled]
    values = table[columns].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=page_size(0.8 * len(columns) + 2.2, 0.3 * len(table) + 1.4))
    image = ax.imshow(np.clip(values, 0, 1), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(columns)), [test_labels.get(c, c) for c in columns], rotation=40,
                  ha="right", fontsize=9)
    ax.set_yticks(range(len(table)), [labels.get(m, m) for m in table.index], fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04, label="0 fails ... 1 passes")
    fig.tight_layout()
    return fig
