"""Figures of the input-multiplier chapter: infidelity and max-sensitivity per randomization step
(Kokhlikyan et al., Fig. 6) and the network's output along single input dimensions (their Fig. 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from sanitylib.figures.plotting import DASHES, MARKERS
from sanitylib.figures.style import page_size

_PALETTE = plt.get_cmap("tab10").colors
#: Panel titles: every metric is "lower is better" (the figure's caption says so).
METRIC_TITLES = {"infidelity": "infidelity",
                 "relative_infidelity": "relative infidelity",
                 "max_sensitivity": "max-sensitivity"}
_LOG_SCALE = ("infidelity", "relative_infidelity")


def quality_curves(summary: pd.DataFrame, methods: Sequence[str], steps: Sequence[str],
                   labels: Mapping[str, str] | None = None) -> Figure:
    """Mean infidelity and relative infidelity (log scale) and max-sensitivity per cascading
    randomization step, one line per method (colour, marker and dash) with its interval over
    images and seeds; the legend under the panels.

    ``summary``: rows of (method, metric, block, mean, low, high).
    """
    metrics = [m for m in METRIC_TITLES if m in set(summary.metric)]
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, layout="constrained",
                             figsize=page_size(2.3 * len(metrics), 3.0 + 0.2 * len(methods)))
    x = np.arange(len(steps))
    for ax, metric in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            rows = summary[(summary.method == method) & (summary.metric == metric)]
            rows = rows.set_index("block").reindex(steps)
            color = _PALETTE[i % len(_PALETTE)]
            ax.plot(x, rows["mean"], marker=MARKERS[i % len(MARKERS)], ms=4, color=color,
                    ls=DASHES[i % len(DASHES)], label=(labels or {}).get(method, method))
            low = rows["low"].clip(lower=rows["mean"] * 1e-3) if metric in _LOG_SCALE \
                else rows["low"]
            ax.fill_between(x, low, rows["high"], color=color, alpha=0.15)
        if metric in _LOG_SCALE:
            ax.set_yscale("log")
        ax.set_xticks(x, steps, rotation=60, ha="right", fontsize=9)
        ax.set_title(METRIC_TITLES[metric], fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


def function_plot(table: pd.DataFrame, models: Sequence[str],
                  shape: tuple[int, int] = (28, 28)) -> Figure:
    """Change of the explained logit from its value at the input (top row) and its slope
    (bottom row) as one input dimension moves, one column per dimension titled with the pixel's
    (row, column), one line per model (their Fig. 2); the legend above the panels. Centring puts
    networks with logits of different size on one axis.

    ``table``: rows of (model, dimension, offset, output, slope) from
    :func:`sanitylib.quality.function_along_dimensions`.
    """
    dims = list(dict.fromkeys(table.dimension))
    fig, axes = plt.subplots(2, len(dims), squeeze=False, sharex=True, layout="constrained",
                             figsize=page_size(max(3.0, 1.3 * len(dims) + 0.8), 4.2))
    for col, dim in enumerate(dims):
        for i, model in enumerate(models):
            rows = table[(table.model == model) & (table.dimension == dim)]
            color = _PALETTE[i % len(_PALETTE)]
            centre = rows.output.iloc[int(np.argmin(np.abs(rows.offset.to_numpy())))]
            style = {"color": color, "lw": 1.2, "ls": DASHES[i % len(DASHES)]}
            axes[0, col].plot(rows.offset, rows.output - centre, label=model, **style)
            axes[1, col].plot(rows.offset, rows.slope, **style)
        row, column = divmod(int(dim), shape[1])
        axes[0, col].set_title(f"({row}, {column})", fontsize=9)
        reach = float(np.abs(table.offset).max())
        tick = float(f"{0.8 * reach:.1g}") if reach > 0 else 1.0
        for ax in axes[:, col]:
            ax.tick_params(labelsize=9)
            ax.set_xticks([-tick, 0, tick], [f"{-tick:g}".replace("-", "−"), "0", f"{tick:g}"])
            ax.yaxis.set_major_locator(MaxNLocator(4))
            formatter = ScalarFormatter(useMathText=True)  # 0.0016 as 1.6 under a ×10⁻³
            formatter.set_powerlimits((-2, 3))
            ax.yaxis.set_major_formatter(formatter)
    fig.supxlabel("change of the pixel", fontsize=9)
    axes[0, 0].set_ylabel("change of the logit", fontsize=9)
    axes[1, 0].set_ylabel("slope (gradient)", fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=len(models), frameon=False,
               fontsize=9)
    return fig
