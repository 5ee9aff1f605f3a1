"""Figures of the text chapter: highlighted sentences (Kokhlikyan et al., Figs. 10 and 12) and
distributions of similarity per randomized block (their Figs. 3, 9 and 11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sanitylib.figures.plotting import MARKERS
from sanitylib.figures.style import PAGE_WIDTH, page_size
from sanitylib.methods.text import TEXT_LABELS, TEXT_METRIC_LABELS

#: Metrics bounded by [-1, 1], drawn on that range.
_CORRELATIONS = ("cosine", "spearman")

#: Font size of the highlighted tokens, and the width of one monospace character at it, inches.
_FONT_SIZE = 9
_CHAR_INCH = 0.6 * _FONT_SIZE / 72
#: Height of one line of tokens, inches.
_LINE_INCH = 0.24
#: The most characters a line of the page-wide figure holds.
_PAGE_CHARS = int((PAGE_WIDTH - 0.3) / _CHAR_INCH)


def short_block(block: str) -> str:
    """``bert.encoder.layer.5`` -> ``layer 5``; ``bert.pooler`` -> ``pooler``."""
    name = block.removeprefix("bert.")
    return name.replace("encoder.layer.", "layer ")


def _lines(tokens: Sequence[str], width: int) -> list[list[int]]:
    """Indices of ``tokens`` split into lines of at most ``width`` characters (a token and the
    space after it); a token longer than the line gets a line of its own."""
    lines, current, used = [], [], 0
    for i, token in enumerate(tokens):
        if current and used + len(token) > width:
            lines.append(current)
            current, used = [], 0
        current.append(i)
        used += len(token) + 1
    return lines + [current] if current else lines


def highlight(sections: Mapping[str, Mapping[str, np.ndarray]],
              tokens: Sequence[str] | Mapping[str, Sequence[str]],
              notes: Mapping[str, Mapping[str, str]] | None = None) -> Figure:
    """Tokens on coloured backgrounds, one row per model, one section per explanation.

    ``sections[title][row] = importance`` (T,) of one sentence: green for evidence for the
    explained class, red against it, the colour's strength |importance| / max |importance| of the
    row. ``tokens``: the sentence's tokens, or ``{title: tokens}`` for a different sentence per
    section. ``notes[title][row]``: text printed at the end of the row (e.g. metric values).
    The figure is at most the page's width: a long sentence goes on over several lines.
    """
    cmap = plt.get_cmap("RdYlGn")
    words = {title: list(tokens[title] if isinstance(tokens, Mapping) else tokens)
             for title in sections}
    labels = [row for rows in sections.values() for row in rows]
    label_chars = max(len(short_block(r)) for r in labels) + 2
    note_chars = max((len(n) + 2 for rows in (notes or {}).values() for n in rows.values()),
                     default=0)
    token_chars = min(max(sum(len(t) + 1 for t in w) for w in words.values()),
                      max(12, _PAGE_CHARS - label_chars - note_chars))
    width_chars = label_chars + token_chars + note_chars
    wrapped = {title: _lines(w, token_chars) for title, w in words.items()}
    n_rows = sum(1 + len(rows) * len(wrapped[title]) + 1 for title, rows in sections.items())
    fig = plt.figure(figsize=(max(4.0, width_chars * _CHAR_INCH + 0.3),
                              _LINE_INCH * n_rows + 0.1))
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
            values = np.nan_to_num(np.asarray(values, dtype=float)[:len(words[title])])
            scale = np.abs(values).max() or 1.0
            note = (notes or {}).get(title, {}).get(row)
            if note:
                ax.text(label_chars + token_chars + 1, y, note, fontsize=_FONT_SIZE,
                        va="center", family="monospace", color="0.3")
            for line in wrapped[title]:
                x = label_chars
                for i in line:
                    value = values[i] if i < len(values) else 0.0
                    ax.text(x, y, words[title][i], fontsize=_FONT_SIZE, va="center",
                            family="monospace", bbox={"facecolor": cmap(0.5 + 0.5 * value / scale),
                                                      "edgecolor": "none", "pad": 1.2})
                    x += len(words[title][i]) + 1
                y -= 1
        y -= 1
    return fig


def per_trial(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean over sentences of each (seed, block, granularity, method, metric): the averaged
    distribution of the paper's Fig. 9."""
    keys = ["seed", "step", "block", "granularity", "method", "metric"]
    return scores.groupby(keys, dropna=False, sort=False)["value"].mean().reset_index()


def similarity_boxes(scores: pd.DataFrame, steps: Sequence[str], methods: Sequence[str],
                     metrics: Sequence[str], baseline: pd.DataFrame | None = None) -> Figure:
    """Box plots of similarity to the original explanation per randomized block.

    One row per metric, one column per method; each box is the distribution of ``scores``'
    values at one block (pass :func:`per_trial` output for the spread over trials, or the raw
    scores for the spread over trials and sentences). The grey band: unrelated random maps.
    Cosine similarity and rank correlation are drawn on [-1, 1].
    """
    fig, axes = plt.subplots(len(metrics), len(methods), sharex=True, sharey="row",
                             squeeze=False, layout="constrained",
                             figsize=page_size(1.7 * len(methods) + 0.8, 1.7 * len(metrics) + 1.0))
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
            if metric in _CORRELATIONS:
                ax.set_ylim(-1, 1)
            if r == 0:
                ax.set_title(TEXT_LABELS.get(method, method), fontsize=9)
            if c == 0:
                ax.set_ylabel(_wrap(TEXT_METRIC_LABELS.get(metric, metric)), fontsize=9)
            ax.tick_params(labelsize=9)
    for ax in axes[-1]:
        ax.set_xticks(np.arange(len(steps)), [short_block(s) for s in steps], rotation=90)
    return fig


def granularity_curves(scores: pd.DataFrame, steps: Sequence[str], methods: Sequence[str],
                       metric: str = "cosine") -> Figure:
    """Mean similarity per block of token-level (summed, solid) against embedding-level (not
    summed, dashed) attributions, one colour and marker per method; the legend under the axes."""
    fig, ax = plt.subplots(figsize=page_size(6.8, 4.2), layout="constrained")
    lowest = 0.0
    for i, method in enumerate(methods):
        for granularity, style in (("token", "-"), ("embedding", "--")):
            rows = scores[(scores.method == method) & (scores.metric == metric)
                          & (scores.granularity == granularity)]
            means = rows.groupby("block")["value"].mean().reindex(steps)
            lowest = min(lowest, float(means.min()))
            ax.plot(np.arange(len(steps)), means.to_numpy(), style, marker=MARKERS[i % len(MARKERS)],
                    markersize=4, color=f"C{i}",
                    label=f"{TEXT_LABELS.get(method, method)}, {granularity}")
    ax.axhline(0, color="0.6", linewidth=0.8)
    if metric in _CORRELATIONS:
        ax.set_ylim(max(-1.0, lowest - 0.1), 1.0)
    ax.set_xticks(np.arange(len(steps)), [short_block(s) for s in steps], rotation=60,
                  ha="right", fontsize=9)
    ax.set_ylabel(TEXT_METRIC_LABELS.get(metric, metric), fontsize=9)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


def _wrap(label: str) -> str:
    """A long axis label over two lines."""
    words = label.split()
    if len(label) <= 18 or len(words) < 2:
        return label
    half = len(words) // 2
    return " ".join(words[:half]) + "\n" + " ".join(words[half:])
