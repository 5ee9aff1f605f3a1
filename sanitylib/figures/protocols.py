"""Figures of the protocol ablation (chapter "Why EfficientNet-Lite0 disagrees"): one line per
protocol, so that the factor that moves a curve stands out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sanitylib.figures.style import PAGE_WIDTH, color_for, page_size

__all__ = ["architecture_curves", "census_curves", "protocol_curves"]

_DASHES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "v", "D", "x")


def _steps_axis(ax, steps: Sequence[str]) -> None:
    x = np.arange(len(steps))
    ax.set_xticks(x[::2], list(steps)[::2], rotation=60, ha="right", rotation_mode="anchor")
    ax.axhline(0, color="0.5", lw=0.5)


def _line(ax, x, y, protocols: Sequence[str], name: str, label: str):
    i = list(protocols).index(name)
    return ax.plot(x, y, color=color_for(protocols, name), ls=_DASHES[i % len(_DASHES)],
                   marker=_MARKERS[i % len(_MARKERS)], ms=3, label=label)[0]


def _legend_on_top(fig: Figure, axes: np.ndarray, columns: int) -> None:
    """One legend above the panels for every line label of any panel: outside the data and
    inside the figure (constrained layout makes room for it), so that the figure shown is the
    figure's own size."""
    handles, labels = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), columns),
               frameon=False)


def protocol_curves(summary: pd.DataFrame, baseline: pd.DataFrame, methods: Sequence[str],
                    protocols: Sequence[str], steps: Sequence[str],
                    method_labels: Mapping[str, str], protocol_labels: Mapping[str, str],
                    metric: str = "spearman_abs") -> Figure:
    """Similarity to the trained network's maps against the randomization step, one panel per
    method (two to a row), one line per protocol with its 95 % band; the grey band is two
    unrelated random maps. ``summary``: rows of protocol, method, metric, block, mean, low,
    high."""
    rows_ = -(-len(methods) // 2)
    fig, axes = plt.subplots(rows_, 2, squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(PAGE_WIDTH, 2.7 * rows_ + 0.8))
    x = np.arange(len(steps))
    band = baseline[baseline.metric == metric].iloc[0]
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax, method in zip(axes.flat, methods):
        ax.axhspan(band["low"], band["high"], color="0.85", zorder=0)
        for name in protocols:
            rows = summary[(summary.protocol == name) & (summary.method == method)
                           & (summary.metric == metric)]
            if rows.empty:
                continue
            rows = rows.set_index("block").reindex(steps)
            line = _line(ax, x, rows["mean"], protocols, name, protocol_labels.get(name, name))
            ax.fill_between(x, rows["low"], rows["high"], color=line.get_color(), alpha=0.12)
        _steps_axis(ax, steps)
        ax.set_title(method_labels.get(method, method))
        ax.set_ylim(-1.0, 1.0)
        ax.set_yticks(np.linspace(-1.0, 1.0, 5))
    for row in axes:
        row[0].set_ylabel("Spearman (absolute)\nto the trained maps")
    _legend_on_top(fig, axes, columns=3)
    return fig


def census_curves(summary: pd.DataFrame, protocols: Sequence[str], steps: Sequence[str],
                  protocol_labels: Mapping[str, str]) -> Figure:
    """Three panels against the cascade's step, one line per protocol: the share of ReLU6
    outputs at 6, the share of rectifier outputs at 0, and the spread of the logits across the
    photographs relative to their spread across the classes (near 0: a constant output)."""
    panels = (("share_upper", "share of ReLU6\noutputs at 6"),
              ("share_zero", "share of rectifier\noutputs at 0"),
              ("logit_std_relative", "logit spread: across\nphotographs / classes"))
    fig, axes = plt.subplots(1, 3, layout="constrained", figsize=page_size(PAGE_WIDTH, 3.4))
    x = np.arange(len(steps))
    for ax, (column, title) in zip(axes, panels):
        for name in protocols:
            rows = summary[summary.protocol == name].set_index("block").reindex(steps)
            if rows[column].notna().any():
                _line(ax, x, rows[column], protocols, name, protocol_labels.get(name, name))
        _steps_axis(ax, steps)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    _legend_on_top(fig, axes[None, :], columns=3)
    return fig


def architecture_curves(summary: pd.DataFrame, baseline: pd.DataFrame, methods: Sequence[str],
                        architectures: Sequence[str], method_labels: Mapping[str, str],
                        labels: Mapping[str, str], metric: str = "spearman_abs") -> Figure:
    """Similarity to the trained maps against the share of blocks re-initialized (top down),
    one panel per method, one line per architecture (networks of different depths on one
    axis); the grey band is two unrelated random maps of the first architecture's size.
    ``summary``: rows of architecture, method, metric, step, mean."""
    rows_ = -(-len(methods) // 2)
    fig, axes = plt.subplots(rows_, 2, squeeze=False, sharey=True, layout="constrained",
                             figsize=page_size(PAGE_WIDTH, 2.5 * rows_ + 1.0))
    first = baseline[(baseline.model == architectures[0]) & (baseline.metric == metric)]
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    for ax, method in zip(axes.flat, methods):
        if len(first):
            ax.axhspan(first["low"].iloc[0], first["high"].iloc[0], color="0.85", zorder=0)
        for name in architectures:
            rows = summary[(summary.architecture == name) & (summary.method == method)
                           & (summary.metric == metric)].sort_values("step")
            if rows.empty:
                continue
            _line(ax, rows["step"] / rows["step"].max(), rows["mean"], architectures, name,
                  labels.get(name, name))
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_title(method_labels.get(method, method))
        ax.set_ylim(-1.0, 1.0)
        ax.set_yticks(np.linspace(-1.0, 1.0, 5))
        ax.set_xlabel("share of blocks re-initialized")
    for row in axes:
        row[0].set_ylabel("Spearman (absolute)\nto the trained maps")
    _legend_on_top(fig, axes, columns=4)
    return fig
