"""Intervals that respect the design: images are the independent units, seeds nest inside them.

The same test images recur under every randomization or training seed, so pooling images and
seeds as independent observations (a t interval over every score) makes intervals too narrow
where there are many seeds, and hides how few images stand behind a number. Here each image's
scores are averaged over seeds first and the t interval is taken over the per-image means, with
the number of images as its n, then clipped to the metric's range. The reference page of the
book says why this and not a bootstrap: with 2-16 images a percentile bootstrap has too few
distinct resamples to give a 95 % interval, and the t interval over cluster means is the
standard analysis of a nested design with one level of replication (e.g. Cumming, Fidler & Vaux
2007, "Error bars in experimental biology", J. Cell Biol. 177(1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from sanitylib.methods.similarity import METRIC_RANGES

__all__ = ["CONFIDENCE", "UNITS", "interval_summary", "wilson"]

CONFIDENCE = 0.95
#: Columns that identify the independent unit of a score table, in order of preference.
UNITS = ("image", "sentence", "photograph")


def _range(metric: object) -> tuple[float, float]:
    return METRIC_RANGES.get(str(metric), (-math.inf, math.inf))


def interval_summary(scores: pd.DataFrame, by: Sequence[str], confidence: float = CONFIDENCE,
                     unit: str | None = None) -> pd.DataFrame:
    """Mean and interval of ``value`` per group of ``by``, with the images as the independent
    units (see the module docstring).

    Within each group the scores of one unit (``unit``, by default the first of :data:`UNITS`
    present in ``scores``) are averaged over seeds and any other repetition, then a t interval
    is taken over the per-unit means and clipped to the metric's range (where ``metric`` is a
    grouping column). Without a unit column every row counts as independent. NaN scores (constant
    maps) are counted in ``n_undefined``, never averaged in.

    Returns one row per group: ``mean``, ``low``, ``high``, ``n`` (independent units with a
    defined score), ``n_seeds`` (distinct ``seed`` values, 1 without the column), ``n_scores``
    (defined scores) and ``n_undefined``.
    """
    by = list(by)
    unit = unit or next((u for u in UNITS if u in scores and u not in by), None)
    seed_column = "seed" if "seed" in scores and "seed" not in by else None
    rows = []
    for key, group in scores.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        values = group["value"].to_numpy(dtype=float)
        defined = ~np.isnan(values)
        if unit is not None:
            means = group[defined].groupby(unit, sort=False)["value"].mean().to_numpy(dtype=float)
        else:
            means = values[defined]
        metric = dict(zip(by, key)).get("metric")
        lowest, highest = _range(metric)
        n = int(means.size)
        if n == 0:
            mean = low = high = np.nan
        else:
            mean = float(means.mean())
            if n > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)
                             * means.std(ddof=1) / np.sqrt(n))
            else:
                half = math.inf
            low, high = max(mean - half, lowest), min(mean + half, highest)
        rows.append({**dict(zip(by, key)), "mean": mean, "low": low, "high": high, "n": n,
                     "n_seeds": int(group[seed_column].nunique()) if seed_column else 1,
                     "n_scores": int(defined.sum()), "n_undefined": int((~defined).sum())})
    columns = [*by, "mean", "low", "high", "n", "n_seeds", "n_scores", "n_undefined"]
    return pd.DataFrame(rows, columns=columns)


def wilson(share: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``share`` of ``n`` independent trials (an
    accuracy over ``n`` test images): unlike the normal approximation it stays within [0, 1]
    and is not empty at 0 or 1 (Wilson 1927, J. Am. Stat. Assoc. 22(158))."""
    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)
