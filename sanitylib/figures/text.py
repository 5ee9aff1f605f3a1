"""Figures of the text chapter: highlighted sentences (Kokhlikyan et al., Figs. 10 and 12) and
distributions of similarity per randomized block (their Figs. 3, 9 and 11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sanitylib.figures.style import page_size
from sanitylib.methods.text import TEXT_LABELS, TEXT_METRIC_LABELS

#: Width of one monospace character, in inches, at the font size below.
_FONT_SIZE = 8.5
_CHAR_INCH = 0.6 * _FONT_SIZE / 72


def short_block(block: str) -> str:
    """``bert.encoder.layer.5`` -> ``layer 5``; ``bert.pooler`` -> ``pooler``."""
    name = block.removeprefix("bert.")
    return name.replace("encoder.layer.", "layer ")


def highlight(sections: Mapping[str, Mapping[str, np.ndarray]], tokens: Sequence[str],
              notes: Mapping[str, Mapping[str, str]] | None = None) -> Figure:
    """Tokens on coloured backgrounds, one row per model, one section per explanation.

    ``sections[title][row] = importance`` (T,) of one sentence: green for evidence for the
    explained class, red against it, the colour's strength |importance| / max |importance| of the
    row. ``notes[title][row]``: text printed at the end of the row (e.g. metric values).
    """
    cmap = plt.get_cmap("RdYlGn")
    labels = [row for rows in sections.values() for row in rows]
    label_chars = max(len(short_block(r)) for r in labels) + 2
    token_chars = sum(len(t) + 1 for t in tokens)
    note_chars = max((len(n) for rows in (notes or {}).values() for n in rows.values()),
                     default=0) + 2
    width_chars = label_chars + token_chars + note_chars
    n_rows = len(labels) + 2 * len(sections)
    fig = plt.figure(figsize=(max(4.0, width_chars * _CHAR_INCH + 0.3), 0.22 * n_rows + 0.2))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, width_chars)
    ax.set_ylim(-n_rows + 0.5, 0.5)
    ax.axis("off")
    y = 0
    for title, rows in sections.items():
        ax.text(0, y, title, fontsize=_FONT_SIZE + 0.5, fontweight="bold", va="center")
        y -= 1
        for row, values in rows.items():
            ax.text(0, y, short_block(row), fontsize=_FONT_SIZE, va="center", family="monospace")
            values = np.nan_to_num(np.asarray(values, dtype=float)[:len(tokens)])
            scale = np.abs(values).max() or 1.0
            x = label_chars
            for token, value in zip(tokens, values):
                ax.text(x, y, token, fontsize=_FONT_SIZE, va="center", family="monospace",
                        bbox={"facecolor": cmap(0.5 + 0.5 * value / scale), "edgecolor": "none",
                                  "pad": 1.2})
                x += len(token) + 1
            note = (notes or {}).get(title, {}).get(row)
            if note:
                ax.text(label_chars + token_chars + 1, y, note, fontsize=_FONT_SIZE - 1,
                        va="center", family="monospace", color="0.3")
            y -= 1
        y -= 1
    return fig


def per_trial(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean over sentences of each (seed, block, granularity, method, metric): the averaged
    distribution of the paper's Fig. 9."""
    keys = ["seed", "step", "block", "granularity", "method", "metric"]
    return scores.groupby(keys, dropna=False, sort=False)["value"].mean().reset_index()


def similarity_boxes(scores: pd.DataFrame, steps: Sequence[str], methods: Sequence[str],
                     metrics: Sequence[str], baseline: pd.DataFrame | None = None,
                     title: str | None = None) -> Figure:
    """Box plots of similarity to the original explanation per randomized block.

    One row per metric, one column per method; each box is the distribution of ``scores``'
    values at one block (pass :func:`per_trial` output for the spread over trials, or the raw
    scores for the spread over trials and sentences). The grey band: unrelated random maps.
    """
    fig, axes = plt.subplots(len(metrics), len(methods), figsize=page_size(2.6 * len(methods) + 0.6,
                                                                  2.1 * len(metrics) + 0.5),
                             sharex=True, sharey="row", squeeze=False)
    for r, metric in enumerate(metrics):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            rows = scores[(scores.metric == metric) & (scores.method == method)]
            data = [rows.loc[rows.block == s, "value"].dropna().to_numpy() for s in steps]
            ax.boxplot(data, positions=np.arange(len(steps)), widths=0.6, showfliers=True,
                       flierprops={"markersize": 2}, medianprops={"color": "C3"})
            if baseline is not None and metric in set(baseline.metric):
                band = baseline.set_index("metric").loc[metric]
                ax.axhspan(band["low"], band["high"], color="0.85", zorder=0)
                ax.axhline(band["mean"], color="0.5", linestyle="--", linewidth=0.8)
            if r == 0:
                ax.set_title(TEXT_LABELS.get(method, method), fontsize=9)
            if c == 0:
                ax.set_ylabel(TEXT_METRIC_LABELS.get(metric, metric), fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xticks(np.arange(len(steps)), [short_block(s) for s in steps], rotation=70)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def granularity_curves(scores: pd.DataFrame, steps: Sequence[str], methods: Sequence[str],
                       metric: str = "cosine", title: str | None = None) -> Figure:
    """Mean similarity per block of token-level (summed) against embedding-level (not summed)
    attributions, one line per method and granularity."""
    fig, ax = plt.subplots(figsize=page_size(6.5, 3.2))
    for i, method in enumerate(methods):
        for granularity, style in (("token", "-"), ("embedding", "--")):
            rows = scores[(scores.method == method) & (scores.metric == metric)
                          & (scores.granularity == granularity)]
            means = rows.groupby("block")["value"].mean().reindex(steps)
            ax.plot(np.arange(len(steps)), means.to_numpy(), style, marker="o", markersize=3,
                    color=f"C{i}", label=f"{TEXT_LABELS.get(method, method)}, {granularity}")
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xticks(np.arange(len(steps)), [short_block(s) for s in steps], rotation=70, fontsize=7)
    ax.set_ylabel(TEXT_METRIC_LABELS.get(metric, metric), fontsize=8)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
