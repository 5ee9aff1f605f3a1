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
from sanitylib.experiments.claims import DATASET_LABELS
from sanitylib.figures.style import PAGE_WIDTH, color_for, image_array, page_size
from sanitylib.methods.similarity import METRIC_LABELS

#: Markers and dashes that tell methods apart where their lines coincide.
MARKERS = "osD^vP<X>h"
DASHES = ["-", "--", "-.", ":"]


def sample_inputs(datasets: Sequence[ImageDataset], per_dataset: int = 8) -> Figure:
    """A row of test images with their labels for each dataset."""
    fig, axes = plt.subplots(len(datasets), per_dataset, squeeze=False,
                             figsize=page_size(1.3 * per_dataset, 1.5 * len(datasets)))
    for row, data in zip(axes, datasets):
        for i, ax in enumerate(row):
            ax.imshow(image_array(data.x_test[i]), cmap="gray", vmin=0, vmax=1)
            ax.set_title(data.classes[int(data.y_test[i])], fontsize=9)
            ax.axis("off")
        row[0].text(-0.3, 0.5, DATASET_LABELS.get(data.name, data.name),
                    transform=row[0].transAxes, rotation=90,
                    va="center", ha="right", fontsize=9)
    fig.tight_layout()
    return fig


def mask_grid(maps: dict[str, dict[str, torch.Tensor]], steps: Sequence[str],
              methods: Sequence[str], image: torch.Tensor, index: int = 0,
              mode: str = "absolute", labels: dict[str, str] | None = None,
              percentile: float | None = 99.0, per_row: int = 10) -> Figure:
    """The paper's randomization grid: rows are methods, columns the original model then each
    randomized step, for input ``index``; ``mode`` is "absolute" (grayscale) or "signed"
    (diverging). With more than ``per_row`` steps (the ImageNet networks' 10-20) the steps go on
    in a second band of rows, so that every map stays large enough to see."""
    from sanitylib.methods.similarity import normalize_absolute, normalize_signed

    if mode not in ("absolute", "signed"):
        raise ValueError(f"unknown mode {mode!r}; valid choices: absolute, signed")
    bands = [list(steps)[i:i + per_row] for i in range(0, len(steps), per_row)]
    columns = 1 + max(len(band) for band in bands)
    side = min(0.75, (PAGE_WIDTH - 1.4) / columns)
    fig = plt.figure(figsize=(1.4 + side * columns, len(bands) * (side * len(methods) + 0.8)),
                     layout="constrained")
    for band, subfig in zip(bands, np.atleast_1d(fig.subfigures(len(bands), 1))):
        axes = subfig.subplots(len(methods), columns, squeeze=False,
                               gridspec_kw={"wspace": 0.02, "hspace": 0.02})
        for r, method in enumerate(methods):
            axes[r, 0].imshow(image_array(image), cmap="gray")
            axes[r, 0].set_ylabel((labels or {}).get(method, method), rotation=0, ha="right",
                                  va="center")
            for c, step in enumerate(band, start=1):
                m = maps[step][method][index:index + 1]
                if mode == "absolute":
                    axes[r, c].imshow(normalize_absolute(m, percentile)[0], cmap="gray",
                                      vmin=0, vmax=1)
                else:
                    axes[r, c].imshow(normalize_signed(m, percentile)[0], cmap="bwr",
                                      vmin=-1, vmax=1)
            for c in range(len(band) + 1, columns):
                axes[r, c].set_visible(False)
        for c, step in enumerate(["input", *band]):
            axes[0, c].set_title(step, rotation=45, ha="left", va="bottom")
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _random_band(ax, baseline, metric: str) -> None:
    """Shade the band of two unrelated random maps (``baseline`` rows of metric, mean, low, high)
    for ``metric``."""
    base = baseline[baseline.metric == metric]
    if len(base):
        ax.axhspan(float(base["low"].iloc[0]), float(base["high"].iloc[0]), color="0.85",
                   label="random maps", zorder=0)


def similarity_curves(summary, baseline, metrics: Sequence[str], methods: Sequence[str],
                      steps: Sequence[str], labels: dict[str, str] | None = None,
                      metric_labels: dict[str, str] | None = None,
                      ylabel: str = "similarity to\noriginal maps") -> Figure:
    """Similarity to the original maps (``ylabel``) against randomization step, one panel per
    metric.

    ``summary``: rows of (method, metric, block, mean, low, high); ``baseline``: rows of
    (metric, mean, low, high), drawn as a grey band (two unrelated random maps). Panels go two
    to a row; with more than eight steps (the ImageNet networks' 10-20) every other step is
    labelled. Methods differ in colour, marker and dash, so lines that coincide stay told
    apart; the legend sits under the panels, outside the data.
    """
    columns = min(2, len(metrics))
    rows_ = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows_, columns, squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(3.4 * columns, 2.6 * rows_ + 0.3 * len(methods)))
    x = np.arange(len(steps))
    every = 1 if len(steps) <= 8 else 2
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        _random_band(ax, baseline, metric)
        for i, method in enumerate(methods):
            rows = summary[(summary.method == method) & (summary.metric == metric)]
            rows = rows.set_index("block").reindex(steps)
            line, = ax.plot(x, rows["mean"], marker=MARKERS[i % len(MARKERS)], ms=4,
                            ls=DASHES[i % len(DASHES)], color=color_for(methods, method),
                            label=(labels or {}).get(method, method))
            ax.fill_between(x, rows["low"], rows["high"], color=line.get_color(), alpha=0.15)
        ax.set_xticks(x[::every], list(steps)[::every], rotation=60, ha="right")
        ax.set_title((metric_labels or {}).get(metric, metric))
        ax.set_ylim(-0.3, 1.05)
        ax.axhline(0, color="0.5", lw=0.5)
    for row in axes:
        row[0].set_ylabel(ylabel)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=3, frameon=False)
    return fig


def variant_points(summary, variant: str, values: Sequence[str], methods: Sequence[str],
                   metric: str, labels: dict[str, str] | None = None) -> Figure:
    """Mean similarity with its interval per method (rows), one marker per ``variant`` value.

    ``summary``: rows of (method, metric, <variant>, mean, low, high), e.g. after full
    randomization under several re-initialization schemes.
    """
    fig, ax = plt.subplots(figsize=page_size(6.0, 0.35 * len(methods) + 1.6),
                           layout="constrained")
    y = np.arange(len(methods))
    offsets = np.linspace(-0.25, 0.25, len(values)) if len(values) > 1 else [0.0]
    for offset, value in zip(offsets, values):
        rows = summary[(summary.metric == metric) & (summary[variant] == value)]
        rows = rows.set_index("method").reindex(methods)
        ax.errorbar(rows["mean"], y + offset, xerr=[rows["mean"] - rows["low"],
                                                     rows["high"] - rows["mean"]],
                    fmt="o", ms=4, capsize=2, color=color_for(values, value), label=str(value))
    ax.set_yticks(y, [(labels or {}).get(m, m) for m in methods], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0, color="0.5", lw=0.5)
    ax.set_xlabel(f"{METRIC_LABELS.get(metric, metric)} to the original maps")
    fig.legend(*ax.get_legend_handles_labels(), title=variant, loc="outside lower center",
               ncols=min(3, len(values)), frameon=False)
    return fig
