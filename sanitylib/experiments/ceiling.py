"""A ceiling beside the floor: how similar can a method's maps be to themselves?

The book reads every similarity against a floor, two unrelated random maps
(:func:`sanitylib.experiments.runner.baseline_table`, the paper's calibration, Adebayo et al.
2018, Section 3). A similarity of 0.5 means little without the other end of the scale: the
similarity of maps that *should* agree. Two ceilings:

- :func:`perturbation_ceiling`: the trained model against itself with every parameter multiplied
  by ``1 + relative * N(0, 1)`` (:func:`perturbed`, seeded; ``relative = 1e-3`` moves each weight
  by 0.1 % of its own size, keeps zeros at zero and leaves buffers such as batch-norm statistics
  alone). No explanation of the same function should change much; what changes measures the
  method's own instability (its noise draws, its sensitivity to the weights' last digits);
- :func:`seed_ceiling`: maps from models trained on the same data with other seeds: what a method
  shares across equally good models.

:func:`place` puts a similarity on the floor-to-ceiling scale, ``(s - floor) / (ceiling -
floor)``, per method and metric, with a verdict (:data:`CUTOFFS`).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.runner import DEFAULT_METRICS, explain_cached, pair_scores
from sanitylib.methods.saliency import predicted_class
from sanitylib.methods.similarity import lower_is_similar
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["CUTOFFS", "ceiling_table", "perturbation_ceiling", "perturbed", "place",
           "scale_verdicts", "seed_ceiling"]

#: Position cut-offs: below the first "changes", above the second "still similar", else
#: "partly". The position is a percent-of-maximum-possible score (POMP; Cohen, Cohen, Aiken &
#: West 1999, "The Problem of Units and the Circumstance for POMP", Multivariate Behavioral
#: Research 34(3)): a unit-free effect size, comparable across metrics whose raw ranges differ
#: (SSIM, Spearman and HOG floors are not all 0). A fifth of the scale at each end is a
#: convention, chosen so that "changes" and "still similar" name maps at least four times closer
#: to one end than to the other; the middle 60 % is "partly": neither unrelated nor the same.
#: The positions say how far; the floor and ceiling bands (``low``, ``high``) say how sure.
CUTOFFS = (0.2, 0.8)


def perturbed(model: nn.Module, relative: float = 1e-3, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every parameter ``p`` replaced by ``p * (1 + relative * e)``,
    ``e`` standard normal from ``torch.Generator(seed)`` (parameters in ``named_parameters``
    order); buffers are kept."""
    if relative < 0:
        raise ValueError(f"relative must be non-negative, got {relative}")
    copied = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in copied.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.mul_(1 + relative * noise.to(param.device))
    return copied


def perturbation_ceiling(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                         methods: Sequence[str], *, relative: float = 1e-3,
                         seeds: Sequence[int] = (0,), metrics: Sequence[str] = DEFAULT_METRICS,
                         options: Mapping[str, Mapping[str, object]] | None = None,
                         metric_options: Mapping[str, Mapping[str, object]] | None = None,
                         labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Similarity of the trained model's maps to those of :func:`perturbed` copies (one per
    seed), for the trained model's predicted class; tidy rows per (seed, method, metric, image)."""
    subject = model_under_test(model)
    target = predicted_class(subject, inputs)
    original = explain_cached(subject, inputs, methods, target, options)
    tables = []
    for seed in seeds:
        other = explain_cached(subject.with_module(perturbed(subject.module, relative, seed)),
                               inputs, methods, target, options)
        tables.append(pair_scores(original, other, metrics, metric_options=metric_options,
                                  labels={**(labels or {}), "reference": "perturbation",
                                          "relative": relative, "seed": seed}))
    return pd.concat(tables, ignore_index=True)


def seed_ceiling(maps: Mapping[object, Mapping[str, torch.Tensor]],
                 metrics: Sequence[str] = DEFAULT_METRICS,
                 metric_options: Mapping[str, Mapping[str, object]] | None = None,
                 labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Similarity of the maps of every pair of models trained with different seeds on the same
    data: ``maps[training seed][method]`` (at least two seeds, the same inputs); tidy rows per
    (seed pair, method, metric, image)."""
    if len(maps) < 2:
        raise ValueError(f"a seed ceiling needs maps from at least 2 training seeds, got {len(maps)}")
    return pd.concat([pair_scores(maps[a], maps[b], metrics, metric_options=metric_options,
                                  labels={**(labels or {}), "reference": "training seed",
                                          "seed_a": a, "seed_b": b})
                      for a, b in itertools.combinations(maps, 2)], ignore_index=True)


def ceiling_table(scores: pd.DataFrame, by: Sequence[str] = ("method", "metric")) -> pd.DataFrame:
    """Mean, 2.5-97.5 % band and count of the defined ceiling scores per group (NaNs counted in
    ``n_undefined``, not averaged)."""
    def one(values: pd.Series) -> pd.Series:
        v = values.to_numpy(dtype=float)
        defined = v[~np.isnan(v)]
        if defined.size == 0:
            return pd.Series({"mean": np.nan, "low": np.nan, "high": np.nan, "n": 0,
                              "n_undefined": v.size})
        return pd.Series({"mean": defined.mean(), "low": np.percentile(defined, 2.5),
                          "high": np.percentile(defined, 97.5), "n": defined.size,
                          "n_undefined": v.size - defined.size})

    return scores.groupby(list(by), sort=False)["value"].apply(one).unstack().reset_index()


def place(summary: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame,
          value: str = "mean") -> pd.DataFrame:
    """``summary`` (a ``mean`` per method and metric, e.g. from
    :func:`sanitylib.experiments.runner.summarize_scores`; or any other ``value`` column, such
    as a median) on the floor-to-ceiling scale.

    ``floor`` has a ``mean`` per ``metric`` (:func:`~sanitylib.experiments.runner.baseline_table`),
    ``ceiling`` a ``mean`` per ``method`` and ``metric`` (:func:`ceiling_table`). Adds ``floor``,
    ``ceiling``, ``position = (value - floor) / (ceiling - floor)`` and ``verdict``: "changes"
    (position below ``CUTOFFS[0]``), "partly", or "still similar" (above ``CUTOFFS[1]``). Where
    the ceiling is not more similar than the floor (``ceiling <= floor``; for
    :func:`~sanitylib.methods.similarity.lower_is_similar` ``ceiling >= floor``) the scale does not exist: position NaN, verdict
    "undefined: ceiling not above floor" (never a division by it); a NaN mean, floor or
    ceiling gives "undefined: no defined scores" or "undefined: no floor or ceiling".
    """
    keys = ["metric", *(c for c in ("model", "dataset") if c in floor and c in summary)]
    merged = summary.merge(floor[[*keys, "mean"]].rename(columns={"mean": "floor"}), on=keys,
                           how="left")
    merged = merged.merge(ceiling[["method", "metric", "mean"]].rename(columns={"mean": "ceiling"}),
                          on=["method", "metric"], how="left")
    if value not in summary:
        raise ValueError(f"summary has no column {value!r}; columns: {', '.join(summary.columns)}")
    merged["position"], merged["verdict"] = scale_verdicts(merged[value], merged["floor"],
                                                           merged["ceiling"], merged["metric"])
    return merged


def scale_verdicts(mean: pd.Series, floor: pd.Series, ceiling: pd.Series, metric: pd.Series
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Position ``(mean - floor) / (ceiling - floor)`` and its verdict (see :func:`place`), row by
    row; undefined scales are named, never divided by."""
    sign = np.where(metric.map(lower_is_similar), -1.0, 1.0)
    span = sign * (ceiling - floor).to_numpy(dtype=float)
    scale = span > 0
    position = np.where(scale, sign * (mean - floor).to_numpy(dtype=float)
                        / np.where(scale, span, 1.0), np.nan)
    low, high = CUTOFFS
    verdict = np.select([mean.isna().to_numpy(), np.isnan(span), ~scale, position < low,
                         position > high],
                        ["undefined: no defined scores", "undefined: no floor or ceiling",
                         "undefined: ceiling not above floor", "changes", "still similar"],
                        "partly")
    return position, verdict
