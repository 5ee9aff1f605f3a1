"""Figures of the chapter "After the paper": the MPRT variants step by step, and the tests that
give one number per map (eMPRT, random logit, input invariance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sanitylib.figures.style import color_for, page_size


def followup_curves(summary: pd.DataFrame, tests: Sequence[str], methods: Sequence[str],
                    test_labels: Mapping[str, str], labels: Mapping[str, str],
                    floor: float | None = None, title: str = "") -> Figure:
    """Similarity to the original maps against the number of blocks randomized, one panel per
    test (top-down, bottom-up, smooth MPRT): ``summary`` rows of (test, method, step, mean, low,
    high). ``floor``: the random-map mean, drawn dashed."""
    fig, axes = plt.subplots(1, len(tests), squeeze=False, sharey=True,
                             figsize=page_size(2.7 * len(tests) + 1.2, 3.2))
    for ax, test in zip(axes[0], tests):
        rows = summary[summary.test == test]
        for method in methods:
            part = rows[rows.method == method].sort_values("step")
            if part.empty:
                continue
            line, = ax.plot(part["step"], part["mean"], marker="o", ms=2.5,
                            color=color_for(methods, method), label=labels.get(method, method),
                            ls="--" if method.startswith("control_") else "-")
            ax.fill_between(part["step"], part["low"], part["high"], color=line.get_color(),
                            alpha=0.15)
        if floor is not None:
            ax.axhline(floor, color="0.5", lw=0.8, ls=":", label="random maps")
        ax.set_title(test_labels.get(test, test), fontsize=9)
        ax.set_xlabel("blocks randomized")
        ax.axhline(0, color="0.7", lw=0.5)
    axes[0, 0].set_ylabel("similarity to original maps")
    axes[0, -1].legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def followup_points(summary: pd.DataFrame, tests: Sequence[str], methods: Sequence[str],
                    test_labels: Mapping[str, str], labels: Mapping[str, str],
                    directions: Mapping[str, str], title: str = "") -> Figure:
    """Mean and interval per method (rows), one panel per single-number test: ``summary`` rows
    of (test, method, mean, low, high); each panel says which way is better."""
    fig, axes = plt.subplots(1, len(tests), squeeze=False, sharey=True,
                             figsize=page_size(2.4 * len(tests) + 1.6, 0.3 * len(methods) + 1.2))
    y = np.arange(len(methods))
    for ax, test in zip(axes[0], tests):
        rows = summary[summary.test == test].set_index("method").reindex(methods)
        ax.errorbar(rows["mean"], y, xerr=[rows["mean"] - rows["low"], rows["high"] - rows["mean"]],
                    fmt="none", ecolor="0.4", capsize=2, lw=0.8)
        ax.scatter(rows["mean"], y, c=[color_for(methods, m) for m in methods], s=18, zorder=3)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set_title(f"{test_labels.get(test, test)}\n({directions.get(test, '')})", fontsize=8)
    axes[0, 0].set_yticks(y, [labels.get(m, m) for m in methods], fontsize=7)
    axes[0, 0].invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
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
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(len(columns)), [test_labels.get(c, c) for c in columns], rotation=40,
                  ha="right", fontsize=7)
    ax.set_yticks(range(len(table)), [labels.get(m, m) for m in table.index], fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.04, label="0 fails ... 1 passes")
    fig.tight_layout()
    return fig
