"""Figures of the edge-detector and theory chapters (Adebayo et al. 2018, Figs. 1, 5d and 6).

Image tables of inputs, edge maps and saliency maps side by side; dot plots of mean similarity
with its interval (also the data-randomization chapter's, with the random-map band); curves of
rank correlation against the noise added to a gradient. Every figure fits the page
(:data:`sanitylib.figures.style.PAGE_WIDTH`) with its labels inside it (constrained layout) and
carries no title: the book's caption names it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from sanitylib.figures.plotting import DASHES, MARKERS
from sanitylib.figures.style import PAGE_WIDTH, color_for, image_array
from sanitylib.methods.similarity import normalize_absolute

#: Width of a 9 pt character in inches, on average: how many characters a label line holds.
_CHAR = 0.075


def absolute(maps: np.ndarray | torch.Tensor, index: int = 0) -> np.ndarray:
    """Map ``index`` of a batch as the paper displays it: |map| summed over channels, rescaled
    min -> 99th percentile to [0, 1] (:func:`sanitylib.similarity.normalize_absolute`)."""
    return normalize_absolute(maps[index:index + 1])[0]


def _wrap(text: str, width_in: float, hyphens: bool = True) -> str:
    """``text`` broken into lines of at most ``width_in`` inches at 9 pt (after a hyphen too,
    where ``hyphens``)."""
    return textwrap.fill(str(text), max(8, int(width_in / _CHAR)), break_long_words=False,
                         break_on_hyphens=hyphens)


def image_table(cells: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]],
                columns: Sequence[str] | None = None, size: float = 1.25,
                label_width: float = 1.3, min_size: float = 0.75) -> Figure:
    """A grid of images: ``cells[row][column]``, a 2-D array in [0, 1] (grayscale) or an input
    (C, H, W) tensor in [0, 1]. Rows are labelled on the left (``label_width`` inches, long
    labels wrapped), columns on top (wrapped to the image's width); a missing cell stays blank.
    Images are ``size`` inches, fewer where the columns would not fit the page but never under
    ``min_size``: more columns than that allows go on in further bands of rows, each with its
    own column labels."""
    rows = list(cells)
    columns = list(columns or dict.fromkeys(c for r in rows for c in cells[r]))
    fitting = max(1, int((PAGE_WIDTH - label_width) / min_size))
    n_bands = -(-len(columns) // fitting)
    per_band = -(-len(columns) // n_bands)
    bands = [columns[i:i + per_band] for i in range(0, len(columns), per_band)]
    side = min(size, (PAGE_WIDTH - label_width) / per_band)
    header = 0.12 + 0.16 * max(_wrap(c, side).count("\n") + 1 for c in columns)
    band_height = header + 1.05 * side * len(rows)
    fig = plt.figure(figsize=(label_width + side * per_band, band_height * len(bands)),
                     layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(bands), 1)) if len(bands) > 1 else [fig]
    for band, subfig in zip(bands, subfigs):
        axes = subfig.subplots(len(rows), per_band, squeeze=False,
                               gridspec_kw={"wspace": 0.02, "hspace": 0.02})
        for r, row in enumerate(rows):
            for c, ax in enumerate(axes[r]):
                ax.set_xticks([])
                ax.set_yticks([])
                value = cells[row].get(band[c]) if c < len(band) else None
                if value is None:
                    # blank, but kept as an axis: the row label below is its y label
                    for spine in ax.spines.values():
                        spine.set_visible(False)
                    ax.set_facecolor("none")
                    continue
                if isinstance(value, torch.Tensor) and value.ndim == 3:
                    ax.imshow(image_array(value), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(np.asarray(value), cmap="gray", vmin=0, vmax=1)
                if r == 0 or cells[rows[r - 1]].get(band[c]) is None:
                    ax.set_title(_wrap(band[c], side), fontsize=9)
            axes[r, 0].set_ylabel(_wrap(row, label_width - 0.15, hyphens=False), rotation=0,
                                  ha="right", va="center", fontsize=9)
    return fig


def maps_beside_edges(image: torch.Tensor, edges: Mapping[str, np.ndarray],
                      maps: Mapping[str, Mapping[str, torch.Tensor]], index: int = 0,
                      labels: Mapping[str, str] | None = None,
                      row_labels: Mapping[str, str] | None = None,
                      edge_labels: Mapping[str, str] | None = None) -> Figure:
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
    return image_table(cells, columns)


def _legend_below(fig: Figure, axes: np.ndarray) -> None:
    """The legend of the first panel above all panels, outside the data."""
    handles, names = axes.flat[0].get_legend_handles_labels()
    one_row = sum(len(str(name)) * _CHAR + 0.6 for name in names) < PAGE_WIDTH - 0.3
    columns = len(names) if one_row else 2 if max(len(str(name)) for name in names) > 20 else 3
    fig.legend(handles, names, loc="outside upper center", ncols=min(columns, len(names)),
               frameon=False, fontsize=9)


def interval_dots(summary: pd.DataFrame, rows: Sequence[str], hue: str, hue_values: Sequence[str],
                  panels: str, panel_values: Sequence[str], *, row_column: str = "method",
                  labels: Mapping[str, str] | None = None,
                  hue_labels: Mapping[str, str] | None = None,
                  panel_labels: Mapping[str, str] | None = None, xlabel: str = "",
                  xlim: tuple[float, float] | None = None,
                  bands: Mapping[str, tuple[float, float]] | None = None) -> Figure:
    """Mean and interval (columns ``mean``, ``low``, ``high``) per row (e.g. method), one marker
    per ``hue`` value (e.g. model variant), one panel per ``panels`` value (e.g. metric).
    ``xlim`` clips the axis (intervals of a few images can run past a correlation's range);
    ``bands`` shades a range per panel value in grey (e.g. where two unrelated random maps
    fall). The legend sits above the panels."""
    legend_rows = -(-(len(hue_values) + bool(bands)) // 2)
    fig, axes = plt.subplots(1, len(panel_values), squeeze=False, sharey=True,
                             layout="constrained",
                             figsize=(PAGE_WIDTH, (0.25 + 0.035 * len(hue_values)) * len(rows)
                                      + 1.0 + 0.22 * legend_rows))
    y = np.arange(len(rows))
    offsets = np.linspace(-0.27, 0.27, len(hue_values)) if len(hue_values) > 1 else [0.0]
    for ax, panel in zip(axes[0], panel_values):
        if bands and panel in bands:
            ax.axvspan(*bands[panel], color="0.85", zorder=0, label="random maps")
        for i, (offset, value) in enumerate(zip(offsets, hue_values)):
            part = summary[(summary[panels] == panel) & (summary[hue] == value)]
            part = part.set_index(row_column).reindex(rows)
            ax.errorbar(part["mean"], y + offset, xerr=[part["mean"] - part["low"],
                                                        part["high"] - part["mean"]],
                        fmt=MARKERS[i % len(MARKERS)], ms=3.5, capsize=1.5, lw=0.8,
                        color=color_for(hue_values, value),
                        label=(hue_labels or {}).get(value, value))
        ax.axvline(0, color="0.5", lw=0.5)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_title((panel_labels or {}).get(panel, panel), fontsize=9)
        ax.tick_params(labelsize=9)
    axes[0, 0].set_yticks(y, [(labels or {}).get(r, r) for r in rows], fontsize=9)
    axes[0, 0].invert_yaxis()
    if xlabel:
        fig.supxlabel(xlabel, fontsize=9)
    _legend_below(fig, axes)
    return fig


def noise_curves(summary: pd.DataFrame, lines: str, line_values: Sequence[str], panels: str,
                 panel_values: Sequence[str], *, labels: Mapping[str, str] | None = None,
                 panel_labels: Mapping[str, str] | None = None) -> Figure:
    """Mean and interval against the ``noise`` column (symmetric-log axis), one line per
    ``lines`` value (told apart by colour, marker and dash), one panel per ``panels`` value:
    the paper's Fig. 5d. The legend sits above the panels."""
    legend_rows = -(-len(line_values) // 2)
    fig, axes = plt.subplots(1, len(panel_values), squeeze=False, sharey=True,
                             layout="constrained",
                             figsize=(PAGE_WIDTH, 3.0 + 0.22 * legend_rows))
    for ax, panel in zip(axes[0], panel_values):
        for i, value in enumerate(line_values):
            part = summary[(summary[panels] == panel) & (summary[lines] == value)]
            part = part.sort_values("noise")
            line, = ax.plot(part["noise"], part["mean"], marker=MARKERS[i % len(MARKERS)], ms=4,
                            ls=DASHES[i % len(DASHES)], color=color_for(line_values, value),
                            label=(labels or {}).get(value, value))
            ax.fill_between(part["noise"], part["low"], part["high"], color=line.get_color(),
                            alpha=0.15)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("noise / RMS of the gradient", fontsize=9)
        ax.set_title((panel_labels or {}).get(panel, panel), fontsize=9)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_ylim(-0.3, 1.05)
        ax.tick_params(labelsize=9)
    axes[0, 0].set_ylabel("rank correlation with the input", fontsize=9)
    _legend_below(fig, axes)
    return fig
