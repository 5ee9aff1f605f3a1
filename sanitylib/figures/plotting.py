"""Figures of the book: sample inputs, mask grids, similarity curves.

Absolute maps are drawn in grayscale and signed maps with a diverging colormap, after the paper's
normalizations (:mod:`sanitylib.methods.similarity`), as in Adebayo et al. (2018), Figs. 2-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from sanitylib.data.images import ImageDataset
from sanitylib.figures.style import color_for, image_array, page_size
from sanitylib.methods.similarity import METRIC_LABELS


def sample_inputs(datasets: Sequence[ImageDataset], per_dataset: int = 8) -> Figure:
    """A row of test images with their labels for each dataset."""
    fig, axes = plt.subplots(len(datasets), per_dataset, squeeze=False,
                             figsize=page_size(1.3 * per_dataset, 1.5 * len(datasets)))
    for row, data in zip(axes, datasets):
        for i, ax in enumerate(row):
            ax.imshow(image_array(data.x_test[i]), cmap="gray", vmin=0, vmax=1)
            ax.set_title(data.classes[int(data.y_test[i])], fontsize=8)
            ax.axis("off")
        row[0].text(-0.3, 0.5, data.name, transform=row[0].transAxes, rotation=90,
                    va="center", ha="right", fontsize=9)
    fig.tight_layout()
    return fig


def mask_grid(maps: dict[str, dict[str, torch.Tensor]], steps: Sequence[str],
              methods: Sequence[str], image: torch.Tensor, index: int = 0,
              mode: str = "absolute", labels: dict[str, str] | None = None,
              percentile: float | None = 99.0) -> Figure:
    """The paper's randomization grid: rows are methods, columns the original model then each
    randomized step, for input ``index``; ``mode`` is "absolute" (grayscale) or "signed"
    (diverging)."""
    from sanitylib.methods.similarity import normalize_absolute, normalize_signed

    if mode not in ("absolute", "signed"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: absolute, signed")
    fig, axes = plt.subplots(len(methods), len(steps) + 1, squeeze=False,
                             figsize=(1.1 * (len(steps) + 1), 1.15 * len(methods) + 0.4))
    for r, method in enumerate(methods):
        axes[r, 0].imshow(image_array(image), cmap="gray")
        axes[r, 0].set_ylabel((labels or {}).get(method, method), rotation=0, ha="right",
                              va="center", fontsize=8)
        for c, step in enumerate(steps, start=1):
            m = maps[step][method][index:index + 1]
            if mode == "absolute":
                axes[r, c].imshow(normalize_absolute(m, percentile)[0], cmap="gray", vmin=0, vmax=1)
            else:
                axes[r, c].imshow(normalize_signed(m, percentile)[0], cmap="bwr", vmin=-1, vmax=1)
            if r == 0:
                axes[r, c].set_title(step, fontsize=7, rotation=45, ha="left")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title("input", fontsize=7, rotation=45, ha="left")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def _random_band(ax, baseline, metric: str, mean_line: bool = False) -> None:
    """Shade the band of two unrelated random maps (``baseline`` rows of metric, mean, low, high)
    for ``metric``, with its mean as a dashed line when ``mean_line``."""
    base = baseline[baseline.metric == metric]
    if len(base):
        ax.axhspan(float(base["low"].iloc[0]), float(base["high"].iloc[0]), color="0.85",
                   label="random maps", zorder=0)
        if mean_line:
            ax.axhline(float(base["mean"].iloc[0]), color="0.5", lw=0.8, ls="--", zorder=0)


def similarity_curves(summary, baseline, metrics: Sequence[str], methods: Sequence[str],
                      steps: Sequence[str], labels: dict[str, str] | None = None,
                      metric_labels: dict[str, str] | None = None, title: str = "") -> Figure:
    """Similarity to the original maps against randomization step, one panel per metric.

    ``summary``: rows of (method, metric, block, mean, low, high); ``baseline``: rows of
    (metric, mean, low, high), drawn as a grey band (two unrelated random maps). With more than
    eight steps (the ImageNet networks' 18-20) the panels go two to a row and every other step
    is labelled, so the labels stay readable.
    """
    columns = len(metrics) if len(steps) <= 8 else min(2, len(metrics))
    rows_ = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows_, columns, squeeze=False, sharey=False,
                             figsize=page_size(3.6 * columns, 3.4 * rows_))
    x = np.arange(len(steps))
    every = 1 if len(steps) <= 8 else 2
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        _random_band(ax, baseline, metric)
        for method in methods:
            rows = summary[(summary.method == method) & (summary.metric == metric)]
            rows = rows.set_index("block").reindex(steps)
            line, = ax.plot(x, rows["mean"], marker="o", ms=3, color=color_for(methods, method),
                            label=(labels or {}).get(method, method))
            ax.fill_between(x, rows["low"], rows["high"], color=line.get_color(), alpha=0.2)
        ax.set_xticks(x[::every], list(steps)[::every], rotation=60, ha="right", fontsize=7)
        ax.set_title((metric_labels or {}).get(metric, metric), fontsize=9)
        ax.set_ylim(-0.3, 1.05)
        ax.axhline(0, color="0.5", lw=0.5)
    for row in axes:
        row[0].set_ylabel("similarity to original maps")
    axes[0, columns - 1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def variant_points(summary, variant: str, values: Sequence[str], methods: Sequence[str],
                   metric: str, labels: dict[str, str] | None = None, title: str = "") -> Figure:
    """Mean similarity with its interval per method (rows), one marker per ``variant`` value.

    ``summary``: rows of (method, metric, <variant>, mean, low, high), e.g. after full
    randomization under several re-initialization schemes.
    """
    fig, ax = plt.subplots(figsize=page_size(6.0, 0.35 * len(methods) + 1.0))
    y = np.arange(len(methods))
    offsets = np.linspace(-0.25, 0.25, len(values)) if len(values) > 1 else [0.0]
    for offset, value in zip(offsets, values):
        rows = summary[(summary.metric == metric) & (summary[variant] == value)]
        rows = rows.set_index("method").reindex(methods)
        ax.errorbar(rows["mean"], y + offset, xerr=[rows["mean"] - rows["low"],
                                                     rows["high"] - rows["mean"]],
                    fmt="o", ms=4, capsize=2, color=color_for(values, value), label=str(value))
    ax.set_yticks(y, [(labels or {}).get(m, m) for m in methods], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.5", lw=0.5)
    ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)} to the original maps")
    ax.legend(title=variant, fontsize=7, title_fontsize=8, loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def similarity_bars(summary, baseline, metrics: Sequence[str], methods: Sequence[str],
                    labels: dict[str, str] | None = None,
                    metric_labels: dict[str, str] | None = None, title: str = "",
                    ylabel: str = "similarity") -> Figure:
    """Mean similarity per method as bars with their interval, one panel per metric (the bar
    charts of the paper's Fig. 5).

    ``summary``: rows of (method, metric, mean, low, high); ``baseline``: rows of (metric, mean,
    low, high), drawn as a grey band (two unrelated random maps) with its mean as a dashed line.
    """
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, sharey=True,
                             figsize=page_size(2.6 * len(metrics) + 0.6, 3.4))
    x = np.arange(len(methods))
    for ax, metric in zip(axes[0], metrics):
        _random_band(ax, baseline, metric, mean_line=True)
        rows = summary[summary.metric == metric].set_index("method").reindex(methods)
        ax.bar(x, rows["mean"], width=0.75, color=[color_for(methods, m) for m in methods],
               yerr=[rows["mean"] - rows["low"], rows["high"] - rows["mean"]], capsize=2,
               error_kw={"lw": 0.8}, zorder=2)
        ax.set_xticks(x, [(labels or {}).get(m, m) for m in methods], rotation=60, ha="right",
                      fontsize=7)
        ax.set_title((metric_labels or {}).get(metric, metric), fontsize=9)
        ax.set_ylim(-0.3, 1.05)
        ax.axhline(0, color="0.5", lw=0.5)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
