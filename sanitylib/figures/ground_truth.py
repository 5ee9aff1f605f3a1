"""Figures of the chapter "Passing is not enough": maps beside the planted evidence, and
deletion curves against a random order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure

from sanitylib.figures.plotting import DASHES, MARKERS
from sanitylib.figures.style import PAGE_WIDTH, color_for, image_array, page_size
from sanitylib.methods.similarity import normalize_absolute

__all__ = ["deletion_figure", "planted_grid"]


def planted_grid(images: torch.Tensor, masks: torch.Tensor, maps: Mapping[str, torch.Tensor],
                 methods: Sequence[str], labels: Mapping[str, str], n_show: int = 5) -> Figure:
    """The first ``n_show`` images (top row) and each method's absolute map of them (one row per
    method, grayscale, 99th percentile = white), the evidence outlined in red everywhere."""
    n_show = min(n_show, len(images))
    rows = 1 + len(methods)
    side = min(0.6, (PAGE_WIDTH - 1.6) / n_show)
    fig, axes = plt.subplots(rows, n_show, squeeze=False, layout="constrained",
                             figsize=(1.6 + side * n_show, side * rows + 0.2),
                             gridspec_kw={"wspace": 0.02, "hspace": 0.02})
    outline = masks[:n_show, 0].float().cpu().numpy()
    for c in range(n_show):
        axes[0, c].imshow(image_array(images[c]), cmap="gray", vmin=0, vmax=1)
        for r, method in enumerate(methods, start=1):
            axes[r, c].imshow(normalize_absolute(maps[method][c:c + 1])[0], cmap="gray",
                              vmin=0, vmax=1)
        for r in range(rows):
            axes[r, c].contour(outline[c], levels=[0.5], colors="red", linewidths=0.8)
    for r, name in enumerate(["input", *methods]):
        axes[r, 0].set_ylabel(labels.get(name, name), rotation=0, ha="right", va="center")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def deletion_figure(curves: pd.DataFrame, methods: Sequence[str], labels: Mapping[str, str],
                    panels: Mapping[str, str]) -> Figure:
    """Mean deletion curve per method (markers and dashes per method) and the random order's
    (black), one panel per model of ``panels`` (model -> title); ``curves`` has model, method,
    fraction, image and value (the class probability)."""
    fig, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(3.3 * len(panels), 3.4))
    for ax, (model, title) in zip(axes[0], panels.items()):
        mean = curves[curves.model == model].groupby(["method", "fraction"])["value"].mean()
        for i, method in enumerate([m for m in methods if m in mean.index.get_level_values(0)]):
            ax.plot(mean[method].index * 100, mean[method].to_numpy(),
                    color=color_for(methods, method), ls=DASHES[i % len(DASHES)],
                    marker=MARKERS[i % len(MARKERS)], ms=3, lw=1, label=labels.get(method, method))
        if "random" in mean.index.get_level_values(0):
            ax.plot(mean["random"].index * 100, mean["random"].to_numpy(), color="black", lw=2,
                    label="random order")
        ax.set_title(title)
        ax.set_xlabel("pixels deleted (%)")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("probability of the class")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, frameon=False)
    return fig
