"""Figures of the input-multiplier chapter: infidelity and max-sensitivity per randomization step
(Kokhlikyan et al., Fig. 6) and the network's output along single input dimensions (their Fig. 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sanitylib.figures.style import page_size

_PALETTE = plt.get_cmap("tab10").colors
METRIC_TITLES = {"infidelity": "infidelity (lower is better)",
                 "relative_infidelity": "infidelity / mean squared output change",
                 "max_sensitivity": "max-sensitivity (lower is better)"}
_LOG_SCALE = ("infidelity", "relative_infidelity")


def quality_curves(summary: pd.DataFrame, methods: Sequence[str], steps: Sequence[str],
                   labels: Mapping[str, str] | None = None, title: str = "") -> Figure:
    """Mean infidelity (log scale) and max-sensitivity per cascading randomization step, one
    line per method with its interval over images and seeds.

    ``summary``: rows of (method, metric, block, mean, low, high).
    """
    metrics = [m for m in METRIC_TITLES if m in set(summary.metric)]
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, figsize=page_size(3.8 * len(metrics), 3.4))
    x = np.arange(len(steps))
    for ax, metric in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            rows = summary[(summary.method == method) & (summary.metric == metric)]
            rows = rows.set_index("block").reindex(steps)
            color = _PALETTE[i % len(_PALETTE)]
            ax.plot(x, rows["mean"], marker="o", ms=3, color=color,
                    label=(labels or {}).get(method, method))
            low = rows["low"].clip(lower=rows["mean"] * 1e-3) if metric in _LOG_SCALE \
                else rows["low"]
            ax.fill_between(x, low, rows["high"], color=color, alpha=0.15)
        if metric in _LOG_SCALE:
            ax.set_yscale("log")
        ax.set_xticks(x, steps, rotation=60, ha="right", fontsize=7)
        ax.set_title(METRIC_TITLES[metric], fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def function_plot(table: pd.DataFrame, models: Sequence[str], title: str = "",
                  shape: tuple[int, int] = (28, 28)) -> Figure:
    """Change of the explained logit from its value at the input (top row) and its slope
    (bottom row) as one input dimension moves, one column per dimension, one line per model
    (their Fig. 2). Centring puts networks with logits of different size on one axis.

    ``table``: rows of (model, dimension, offset, output, slope) from
    :func:`sanitylib.quality.function_along_dimensions`.
    """
    dims = list(dict.fromkeys(table.dimension))
    fig, axes = plt.subplots(2, len(dims), squeeze=False, sharex=True,
                             figsize=page_size(2.3 * len(dims) + 0.8, 4.2))
    for col, dim in enumerate(dims):
        for i, model in enumerate(models):
            rows = table[(table.model == model) & (table.dimension == dim)]
            color = _PALETTE[i % len(_PALETTE)]
            centre = rows.output.iloc[int(np.argmin(np.abs(rows.offset.to_numpy())))]
            axes[0, col].plot(rows.offset, rows.output - centre, color=color, lw=1, label=model)
            axes[1, col].plot(rows.offset, rows.slope, color=color, lw=1)
        row, column = divmod(int(dim), shape[1])
        axes[0, col].set_title(f"pixel ({row}, {column})", fontsize=8)
        axes[1, col].set_xlabel("change of the pixel", fontsize=8)
        for ax in axes[:, col]:
            ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("change of the logit", fontsize=8)
    axes[1, 0].set_ylabel("slope (gradient)", fontsize=8)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
