"""Figures of the edge-detector and theory chapters (Adebayo et al. 2018, Figs. 1, 5d and 6).

Image tables of inputs, edge maps and saliency maps side by side; dot plots of mean similarity
with its interval; curves of rank correlation against the noise added to a gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from sanitylib.figures.style import color_for, image_array, page_size
from sanitylib.methods.similarity import normalize_absolute


def absolute(maps: np.ndarray | torch.Tensor, index: int = 0) -> np.ndarray:
    """Map ``index`` of a batch as the paper displays it: |map| summed over channels, rescaled
    min -> 99th percentile to [0, 1] (:func:`sanitylib.similarity.normalize_absolute`)."""
    return normalize_absolute(maps[index:index + 1])[0]


def image_table(cells: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]],
                columns: Sequence[str] | None = None, size: float = 1.25,
                title: str = "") -> Figure:
    """A grid of images: ``cells[row][column]``, a 2-D array in [0, 1] (grayscale) or an input
    (C, H, W) tensor in [0, 1]. Rows are labelled on the left, columns on top; a missing cell
    stays blank."""
    rows = list(cells)
    columns = list(columns or dict.fromkeys(c for r in rows for c in cells[r]))
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=page_size(size * len(columns) + 1.2, size * len(rows) + 0.5))
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            value = cells[row].get(column)
            if value is None:
                ax.axis("off")
                continue
            if isinstance(value, torch.Tensor) and value.ndim == 3:
                ax.imshow(image_array(value), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(np.asarray(value), cmap="gray", vmin=0, vmax=1)
            if r == 0 or cells[rows[r - 1]].get(column) is None:
                ax.set_title(column, fontsize=7)
        # A text, not a y label: it must show even when the first cell of the row is blank.
        axes[r, 0].text(-0.08, 0.5, row, transform=axes[r, 0].transAxes, ha="right",
                        va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.25)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0)
    return fig


def maps_beside_edges(image: torch.Tensor, edges: Mapping[str, np.ndarray],
                      maps: Mapping[str, Mapping[str, torch.Tensor]], index: int = 0,
                      labels: Mapping[str, str] | None = None,
                      row_labels: Mapping[str, str] | None = None,
                      edge_labels: Mapping[str, str] | None = None, title: str = "") -> Figure:
    """The paper's Fig. 1 for one input: the input and its edge maps, then each method's map,
    one row per model (``maps[model][method]``, batches of which ``index`` is drawn)."""
    rows = list(maps)
    methods = list(dict.fromkeys(m for r in rows for m in maps[r]))
    edge_names = [(edge_labels or {}).get(d, d) for d in edges]
    cells: dict[str, dict[str, np.ndarray | torch.Tensor]] = {}
    for r, row in enumerate(rows):
        cells[(row_labels or {}).get(row, row)] = {
            **({"input": image, **{name: absolute(e, index)
                                   for name, e in zip(edge_names, edges.values())}}
               if r == 0 else {}),
            **{(labels or {}).get(m, m): absolute(v, index) for m, v in maps[row].items()}}
    columns = ["input", *edge_names, *[(labels or {}).get(m, m) for m in methods]]
    return image_table(cells, columns, title=title)


def interval_dots(summary: pd.DataFrame, rows: Sequence[str], hue: str, hue_values: Sequence[str],
                  panels: str, panel_values: Sequence[str], *, row_column: str = "method",
                  labels: Mapping[str, str] | None = None,
                  hue_labels: Mapping[str, str] | None = None,
                  panel_labels: Mapping[str, str] | None = None, xlabel: str = "",
                  xlim: tuple[float, float] | None = None, title: str = "") -> Figure:
    """Mean and interval (columns ``mean``, ``low``, ``high``) per row (e.g. method), one marker
    per ``hue`` value (e.g. model variant), one panel per ``panels`` value (e.g. metric).
    ``xlim`` clips the axis (intervals of a few images can run past a correlation's range)."""
    fig, axes = plt.subplots(1, len(panel_values), squeeze=False, sharey=True,
                             figsize=page_size(2.7 * len(panel_values) + 2.2, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))
    offsets = np.linspace(-0.25, 0.25, len(hue_values)) if len(hue_values) > 1 else [0.0]
    for ax, panel in zip(axes[0], panel_values):
        for offset, value in zip(offsets, hue_values):
            part = summary[(summary[panels] == panel) & (summary[hue] == value)]
            part = part.set_index(row_column).reindex(rows)
            ax.errorbar(part["mean"], y + offset, xerr=[part["mean"] - part["low"],
                                                        part["high"] - part["mean"]],
                        fmt="o", ms=3.5, capsize=1.5, lw=0.8, color=color_for(hue_values, value),
                        label=(hue_labels or {}).get(value, value))
        ax.axvline(0, color="0.5", lw=0.5)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_title((panel_labels or {}).get(panel, panel), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_yticks(y, [(labels or {}).get(r, r) for r in rows], fontsize=8)
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def noise_curves(summary: pd.DataFrame, lines: str, line_values: Sequence[str], panels: str,
                 panel_values: Sequence[str], *, labels: Mapping[str, str] | None = None,
                 panel_labels: Mapping[str, str] | None = None, title: str = "") -> Figure:
    """Mean and interval against the ``noise`` column (symmetric-log axis), one line per
    ``lines`` value, one panel per ``panels`` value: the paper's Fig. 5d."""
    fig, axes = plt.subplots(1, len(panel_values), squeeze=False, sharey=True,
                             figsize=page_size(3.4 * len(panel_values) + 2.0, 3.2))
    for ax, panel in zip(axes[0], panel_values):
        for value in line_values:
            part = summary[(summary[panels] == panel) & (summary[lines] == value)]
            part = part.sort_values("noise")
            line, = ax.plot(part["noise"], part["mean"], marker="o", ms=3,
                            color=color_for(line_values, value),
                            label=(labels or {}).get(value, value))
            ax.fill_between(part["noise"], part["low"], part["high"], color=line.get_color(),
                            alpha=0.2)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("noise / RMS of the gradient", fontsize=8)
        ax.set_title((panel_labels or {}).get(panel, panel), fontsize=9)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_ylim(-0.3, 1.05)
    axes[0, 0].set_ylabel("rank correlation with the input", fontsize=8)
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
