"""Edge detectors as a yardstick for saliency maps: Adebayo et al. (2018), Fig. 1 and Section 5.

The paper shows that some saliency maps look "strikingly similar" to the output of an edge
detector, a procedure that needs neither a model nor training data; its reviewers asked for the
comparison to be made quantitative, with Sobel, Canny and a conv layer set to Sobel filters. This
module computes the three edge maps, the explanations of a model and of its randomized and
never-trained counterparts, and scores every map against every edge map with the book's
similarity metrics (:func:`sanitylib.similarity.compare`).

Saliency maps are compared by magnitude: every metric here works on absolute maps summed over
channels (Spearman of absolute maps, SSIM of min-max scaled absolute maps, the original code's
SSIM variant, and HOG similarity), since an edge map has no sign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.claims import (
    DATASET_LABELS,
    MODEL_LABELS,
    describe_n,
    outcome,
    setting,
    threshold_claims,
)
from sanitylib.experiments.runner import band, explain_cached, summarize_scores
from sanitylib.infra.cache import cached
from sanitylib.methods.edges import magnitude
from sanitylib.methods.randomization import randomize
from sanitylib.methods.similarity import compare
from sanitylib.models.efficientnet import untrained_efficientnet_lite0
from sanitylib.models.inception import untrained_inception_v3
from sanitylib.models.zoo import build

ArrayLike = np.ndarray | torch.Tensor
#: Metrics that compare magnitudes, and their options (SSIM on absolute maps: the code variant).
EDGE_METRICS = ("spearman_abs", "ssim", "hog")
EDGE_METRIC_OPTIONS: dict[str, dict[str, object]] = {"ssim": {"variant": "code"}}
VARIANTS = ("trained", "randomized", "untrained")
VARIANT_LABELS = {"trained": "trained", "randomized": "fully randomized",
                  "untrained": "never trained"}
#: The paper's claim the edge comparisons test, in the words of :func:`edge_claims`.
SOURCE = "Adebayo et al. 2018, Fig. 1"
EDGE_STATEMENT = ("Edge similarity: the {method} maps of the trained {model} on {dataset} are "
                  "closer to the Sobel edge map than random maps are (Spearman of absolute maps)")


def model_variants(model: nn.Module, architecture: str, seed: int = 0) -> dict[str, nn.Module]:
    """The three models each map is shown for: ``trained``, ``randomized`` (the last step of
    cascading randomization: every block re-initialized) and ``untrained`` (a freshly built
    network, never trained: the architecture alone as a prior, Section 5.3)."""
    for _, randomized in randomize(model, order="cascading", seed=seed):
        pass  # keep only the last step: every block re-initialized
    if architecture == "inception_v3":
        untrained = untrained_inception_v3(seed)
    elif architecture == "efficientnet_lite0":
        untrained = untrained_efficientnet_lite0(seed)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            untrained = build(architecture).eval()
    return {"trained": model, "randomized": randomized, "untrained": untrained}


def explain_models(models: Mapping[str, nn.Module], inputs: torch.Tensor,
                   methods: Sequence[str],
                   options: Mapping[str, Mapping[str, object]] | None = None
                   ) -> dict[str, dict[str, torch.Tensor]]:
    """``{model name: {method: maps}}``, each model's maps cached by its identity (structure
    included: two models with the same weights but different pooling must not share maps)."""
    return {name: explain_cached(model, inputs, methods, options=options)
            for name, model in models.items()}


def edge_scores(maps: Mapping[str, ArrayLike], edges: Mapping[str, np.ndarray],
                metrics: Sequence[str] = EDGE_METRICS,
                labels: Mapping[str, object] | None = None,
                metric_options: Mapping[str, Mapping[str, object]] = EDGE_METRIC_OPTIONS
                ) -> pd.DataFrame:
    """Tidy similarity of every map with every edge map: one row per (method, detector, metric,
    image). ``maps`` are (B, C, H, W) saliency maps (or any maps: the input itself, random maps),
    compared by :func:`magnitude`."""
    def build() -> pd.DataFrame:
        rows = []
        for method, m in maps.items():
            reduced = magnitude(m)
            for detector, edge in edges.items():
                for metric in metrics:
                    values = compare(reduced, edge, metric,
                                     **dict(metric_options.get(metric, {})))
                    rows.append(pd.DataFrame({**(labels or {}), "method": method,
                                              "detector": detector, "metric": metric,
                                              "image": np.arange(len(values)), "value": values}))
        return pd.concat(rows, ignore_index=True)

    return cached("scores", {"kind": "edges", "maps": maps, "edges": edges,
                             "metrics": list(metrics), "metric_options": metric_options,
                             "labels": labels or {}}, build)


def training_effect(scores: pd.DataFrame, by: Sequence[str], column: str = "variant",
                    after: str = "trained", before: str = "randomized") -> pd.DataFrame:
    """Paired change in edge similarity, ``after`` minus ``before`` image by image, with a t
    interval per group (``by``): negative means training moves the maps away from the edges."""
    keys = list(by) + ["image"]
    wide = scores.pivot_table(index=keys, columns=column, values="value", dropna=False)
    if after not in wide or before not in wide:
        raise ValueError(f"scores need {column} values {after!r} and {before!r}; "
                         f"found {list(wide.columns)}")
    diff = (wide[after] - wide[before]).rename("value").reset_index()
    return summarize_scores(diff, by)


def random_floor(scores: pd.DataFrame, by: Sequence[str] = ("dataset",),
                 reference: str = "random", detector: str = "sobel",
                 metric: str = "spearman_abs") -> pd.DataFrame:
    """The floor of the edge-similarity claims: how close a random map (standard normal noise,
    the chapter's ``reference`` rows) comes to the ``detector``'s edge map under ``metric``, per
    group of ``by``: the mean and the 2.5-97.5 % band of the per-image scores
    (:func:`~sanitylib.experiments.runner.band`; columns ``mean``, ``low``, ``high``, ``n``)."""
    rows = scores[(scores["method"] == reference) & (scores["detector"] == detector)
                  & (scores["metric"] == metric)]
    records = [{**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                **band(metric, group["value"].to_numpy(dtype=float))}
               for key, group in rows.groupby(list(by), sort=False)]
    return pd.DataFrame(records)


def edge_claims(summary: pd.DataFrame, floor: pd.DataFrame, *, chapter: str,
                labels: Mapping[str, str] | None = None,
                model_labels: Mapping[str, str] | None = None, detector: str = "sobel",
                metric: str = "spearman_abs", test: str = "Edge similarity",
                source: str = SOURCE, statement: str = EDGE_STATEMENT) -> pd.DataFrame:
    """Claims that maps resemble an edge detector's output (by default the paper's Fig. 1
    claim about trained models), per model, dataset and method of ``summary`` (columns model,
    dataset, method, detector, metric, mean, low, high, n, n_seeds).

    Each claim expects the mean similarity to the ``detector``'s map above the floor of
    :func:`random_floor`, matched on dataset. The boundary is the top of the band where single
    random maps fall (97.5 % of the per-image scores of the chapter's "random" reference), not
    the upper end of the interval of their mean: "resembles an edge detector" must beat what
    one random map can reach by chance, as everywhere in the book (the random-map baseline is a
    band of single pairs too). The floor's mean is kept in ``floor``. ``statement`` is formatted
    with ``method``, ``model`` (named by ``model_labels``, else :data:`MODEL_LABELS`) and
    ``dataset``."""
    names = {**MODEL_LABELS, **(model_labels or {})}
    rows = summary[(summary["detector"] == detector) & (summary["metric"] == metric)]
    rows = rows.merge(floor[["dataset", "mean", "high"]].rename(
        columns={"mean": "floor", "high": "floor_high"}), on="dataset", how="left")
    tables = []
    for model, part in rows.groupby("model", sort=False):
        claims = threshold_claims(
            part, threshold="floor_high", expected="above", chapter=chapter, test=test,
            source=source, labels=labels,
            statement=statement.replace("{model}", names.get(model, str(model))),
            statistic=f"mean similarity to the {detector} edge map",
            setting=setting("predicted", detector=detector),
            expectation="above the random-map band")
        tables.append(claims.assign(floor=part["floor"].to_numpy(),
                                    floor_high=part["floor_high"].to_numpy()))
    return pd.concat(tables, ignore_index=True)


def describe_sides(table: pd.DataFrame, boundary: float | str, words: Mapping[str, str],
                   labels: Mapping[str, str] | None = None) -> str:
    """A Markdown list, one item per model and dataset of ``table`` (interval-summary rows with
    columns model, dataset, method, mean, low, high, n, n_seeds): which methods' 95 % intervals
    lie above ``boundary`` (a number, or a column per row), which below, and which contain it or
    rest on fewer than 3 images, with each estimate, interval and n. ``words`` names the three
    sides (keys "above", "below", "inconclusive"). Rows without a defined score (n = 0) are left
    out. Nothing in it is typed by hand."""
    labels = labels or {}
    lines = []
    defined = table[table["n"] > 0]
    for (model, dataset), group in defined.groupby(["model", "dataset"], sort=False):
        n, n_seeds = int(group["n"].mode().iloc[0]), int(group["n_seeds"].max())
        sides: dict[str, list[str]] = {side: [] for side in ("above", "below", "inconclusive")}
        for r in group.to_dict("records"):
            edge = float(r[boundary]) if isinstance(boundary, str) else float(boundary)
            side, _ = outcome(r["low"], r["high"], int(r["n"]), edge)
            own = f" ({int(r['n'])} images)" if int(r["n"]) != n else ""
            sides[side].append(f"{labels.get(r['method'], r['method'])} {r['mean']:.2f} "
                               f"[{r['low']:.2f}, {r['high']:.2f}]{own}")
        head = (f"**{MODEL_LABELS.get(model, str(model).upper())} on "
                f"{DATASET_LABELS.get(dataset, dataset)}** ({describe_n(n, n_seeds)})")
        parts = [f"{words[side]}: {', '.join(items)}" for side, items in sides.items() if items]
        lines.append(f"* {head}: " + "; ".join(parts) + ".")
    return "\n".join(lines)
