"""What the input-multiplier chapter measures, as claims against Kokhlikyan et al. (2021).

Kokhlikyan et al., "Investigating sanity checks for saliency maps with image and text
classification" (arXiv 2106.07475), Figs. 1, 2, 4 and Table 1: local and global attributions
under cascading randomization, their infidelity and max-sensitivity, and the effect of smoothing
the network (Softplus for ReLU, LogSumExp for max pooling). The claim builders turn the chapter's
score tables into claims (:mod:`sanitylib.experiments.claims`), every paired statistic taken per
image first (seeds averaged within it), so that the images are the independent units; the
readings turn the claims and summary tables into Markdown whose every number and every verdict is
computed. The published numbers quoted are theirs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.claims import (
    MODEL_LABELS,
    describe_n,
    interval_summary,
    setting,
    similarity_claims,
    threshold_claims,
    verdict_list,
)
from sanitylib.experiments.input_multiplier import PAIRS, VARIANT_LABELS, VARIANTS
from sanitylib.experiments.parameter_randomization import AFTER_EVERY_BLOCK, CASCADING
from sanitylib.infra.device import module_device
from sanitylib.methods.similarity import METRIC_RANGES

__all__ = ["CHAPTER", "SENSITIVITY_FACTOR", "TABLE1_TESTS", "imagenet_quality_reading", "mean_top_logit", "multiplier_claims",
           "multiplier_reading", "paired_differences", "quality_claims", "quality_reading",
           "rank_claims", "smoothing_claims", "smoothing_reading"]

CHAPTER = "07_input_multiplier"
SOURCE = "Kokhlikyan et al. 2021"
METRIC_WORDS = {"ssim": "SSIM", "spearman": "Spearman rank correlation of the signed maps",
                "infidelity": "infidelity", "max_sensitivity": "max-sensitivity"}


def mean_top_logit(model: nn.Module, inputs: torch.Tensor) -> float:
    """The mean absolute value of the largest logit: the scale infidelity is measured in."""
    with torch.no_grad():
        return float(model(inputs.to(module_device(model))).max(1).values.abs().mean())


def _model(name: object) -> str:
    return MODEL_LABELS.get(str(name), str(name))


def paired_differences(scores: pd.DataFrame, step: str, metric: str = "ssim",
                       pairs: Sequence[tuple[str, str]] = PAIRS) -> pd.DataFrame:
    """Per image and seed at ``step`` (a block name): the ``metric`` score of each global variant
    minus that of its local twin (the :data:`PAIRS` present in ``scores``), as tidy rows with
    ``method`` (the global variant), ``local``, ``metric`` and ``value`` beside ``scores``'s own
    ``model``, ``dataset``, ``seed`` and ``image``."""
    at = scores[(scores.block == step) & (scores.metric == metric)]
    keys = [c for c in ("model", "dataset", "seed", "image") if c in at]
    wide = at.set_index([*keys, "method"])["value"].unstack("method")
    rows = [(wide[global_] - wide[local]).rename("value").reset_index()
            .assign(method=global_, local=local, metric=metric)
            for local, global_ in pairs if local in wide and global_ in wide]
    return pd.concat(rows, ignore_index=True)


def _clipped_difference(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A difference of two scores of ``metric`` lies within its range's width either side of 0."""
    lowest, highest = METRIC_RANGES.get(metric, (-math.inf, math.inf))
    width = highest - lowest
    return summary.assign(low=summary["low"].clip(lower=-width),
                          high=summary["high"].clip(upper=width), metric=metric)


def multiplier_claims(scores: pd.DataFrame, step: str, *, metric: str = "ssim",
                      init: str = "xavier", chapter: str = CHAPTER) -> pd.DataFrame:
    """Kokhlikyan et al., Fig. 1: after full randomization (``step``, the last block) the global
    variant of each pair stays more similar to the trained model's maps than the local one. One
    claim per model and pair: the per-image difference global - local of ``metric`` (seeds
    averaged within each image) lies above 0."""
    differences = paired_differences(scores, step, metric)
    summary = _clipped_difference(
        interval_summary(differences, ["model", "dataset", "method", "local"]), metric)
    claims = threshold_claims(
        summary, threshold=0.0, expected="above", chapter=chapter, test="Input multiplier",
        source=f"{SOURCE}, Fig. 1", statement="{method}", labels=VARIANT_LABELS,
        statistic=f"paired {METRIC_WORDS.get(metric, metric)} difference global - local after "
                  "every block is re-initialized", setting=setting(init=init))
    claims["claim"] = [
        f"After every block of the {_model(r.model)} is re-initialized, {VARIANT_LABELS[r.method]} stays "
        f"more similar to the trained model's maps ({METRIC_WORDS.get(metric, metric)}) than "
        f"{VARIANT_LABELS[local]}" for r, local in zip(claims.itertuples(), summary["local"])]
    return claims


def rank_claims(scores: pd.DataFrame, floor: pd.DataFrame, step: str, *,
                methods: Sequence[str] = ("ig_local", "ig_global"), metric: str = "spearman",
                init: str = "xavier", chapter: str = CHAPTER) -> pd.DataFrame:
    """Kokhlikyan et al., Fig. 4: after full randomization (``step``) the rank correlation of
    the signed maps of both IG variants with the trained model's is like that of random maps.
    ``floor``: the random band per ``metric`` (with ``model`` where there are several)."""
    at = scores[(scores.block == step) & (scores.metric == metric)
                & scores.method.isin(list(methods))]
    summary = interval_summary(at, ["model", "dataset", "method", "metric"])
    return similarity_claims(
        summary, floor, {m: "changes" for m in methods}, chapter=chapter,
        test=CASCADING, source=f"{SOURCE}, Fig. 4",
        statement="After every block of the {model} is re-initialized, {method}'s maps "
                  f"{{expectation}} ({METRIC_WORDS.get(metric, metric)})",
        statistic=AFTER_EVERY_BLOCK,
        setting=setting(init=init), labels=VARIANT_LABELS)


def _per_image(quality: pd.DataFrame, metric: str, column: str) -> pd.DataFrame:
    """``quality``'s ``metric`` rows, one per (model, dataset, method, seed, image), one column per
    value of ``column``."""
    part = quality[quality.metric == metric]
    return part.set_index(["model", "dataset", "method", "seed", "image", column])["value"] \
        .unstack(column)


def _log_ratio_summary(wide: pd.DataFrame, numerator: str, denominator: str, metric: str,
                       methods: Sequence[str]) -> pd.DataFrame:
    """Per-image log10 ratios ``numerator / denominator`` of ``wide`` (undefined where either is
    not positive), summarized over images with seeds nested. The log makes a ratio of 10 and one
    of 0.1 equally far from 1, so a few images whose denominator is tiny cannot dominate the
    mean, and reads as orders of magnitude."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(wide[numerator] / wide[denominator])
    table = ratio.replace([np.inf, -np.inf], np.nan).rename("value").reset_index()
    table = table[table.method.isin(list(methods))]
    return interval_summary(table, ["model", "dataset", "method"]).assign(metric=metric)


#: Kokhlikyan et al.'s Table 1: max-sensitivity at most this many times its trained value.
SENSITIVITY_FACTOR = 1.6
#: The tests of :func:`quality_claims`, one per finding of their Table 1.
TABLE1_TESTS = ("Infidelity, global against local", "Infidelity under randomization",
                "Max-sensitivity under randomization")


def quality_claims(quality: pd.DataFrame, first: str, last: str, *, init: str = "xavier",
                   chapter: str = CHAPTER) -> pd.DataFrame:
    """The three findings of Kokhlikyan et al.'s Table 1 (Inception v3, Integrated Gradients),
    as claims per model (:data:`TABLE1_TESTS`), every statistic per image (``quality``:
    :func:`~sanitylib.experiments.input_multiplier.quality_table` rows with ``model`` and
    ``dataset``; ``first``: the trained model's block name, ``last``: the fully randomized
    one's):

    (i) on the trained model global IG's infidelity (its completeness error) lies above local
    IG's: the paired difference global - local above 0;
    (ii) local IG's infidelity rises when the model is fully randomized: the log10 ratio
    randomized / trained above 0;
    (iii) max-sensitivity stays "almost unchanged": for both IG variants the log10 ratio
    randomized / trained below log10 of :data:`SENSITIVITY_FACTOR`, the largest factor in their
    table.
    """
    ig = ("ig_local", "ig_global")
    common = {"chapter": chapter, "source": f"{SOURCE}, Table 1", "setting": setting(init=init),
              "labels": VARIANT_LABELS}
    ends = quality[quality.block.isin([first, last])]
    higher = interval_summary(paired_differences(quality, first, "infidelity", [ig]),
                              ["model", "dataset", "method"]).assign(metric="infidelity")
    rises = _log_ratio_summary(_per_image(ends, "infidelity", "block"), last, first,
                               "infidelity", ["ig_local"])
    steady = _log_ratio_summary(_per_image(ends, "max_sensitivity", "block"), last, first,
                                "max_sensitivity", ig)
    claims = [
        threshold_claims(higher, threshold=0.0, expected="above", test=TABLE1_TESTS[0],
                         statement="On the trained {model}, {method}'s infidelity (its "
                                   f"completeness error) is higher than {VARIANT_LABELS['ig_local']}'s",
                         statistic="paired infidelity difference global - local, trained model",
                         **common),
        threshold_claims(rises, threshold=0.0, expected="above", test=TABLE1_TESTS[1],
                         statement="{method}'s infidelity rises when every block of the {model} "
                                   "is re-initialized (log10 ratio randomized / trained above "
                                   "{threshold})",
                         statistic="log10 ratio of infidelity, fully randomized / trained",
                         **common),
        threshold_claims(steady, threshold=math.log10(SENSITIVITY_FACTOR), expected="below",
                         test=TABLE1_TESTS[2],
                         statement="{method}'s max-sensitivity stays almost unchanged when every "
                                   "block of the {model} is re-initialized (at most "
                                   f"{SENSITIVITY_FACTOR:g} times its trained value: log10 ratio "
                                   f"randomized / trained below log10 {SENSITIVITY_FACTOR:g})",
                         statistic="log10 ratio of max-sensitivity, fully randomized / trained",
                         **common)]
    return pd.concat(claims, ignore_index=True)


def smoothing_claims(quality: pd.DataFrame, names: Sequence[str], *, chapter: str = CHAPTER
                     ) -> pd.DataFrame:
    """Kokhlikyan et al., Section 3: replacing ReLU by Softplus and max pooling by LogSumExp
    lowers the infidelity of explanations. One claim per method: on the trained networks the
    per-image log10 ratio of infidelity smoothed / original (``names``: the original and the
    smoothed network's names in ``quality``'s ``network`` column) lies below 0."""
    original, smoothed = names
    trained = quality[quality.state == "trained"]
    summary = _log_ratio_summary(_per_image(trained, "infidelity", "network"), smoothed,
                                 original, "infidelity", list(trained.method.unique()))
    return threshold_claims(
        summary, threshold=0.0, expected="below", chapter=chapter, test="Smoothing",
        source=f"{SOURCE}, Section 3",
        statement="Softplus and LogSumExp pooling lower {method}'s infidelity on the trained "
                  "{model} (log10 ratio smoothed / original below {threshold})",
        statistic="log10 ratio of infidelity, smoothed / original network (trained)",
        labels=VARIANT_LABELS)


def multiplier_reading(summary: pd.DataFrame, steps: Sequence[str], claims: pd.DataFrame,
                       model: str) -> str:
    """The input multiplier against Kokhlikyan et al.'s Figs. 1 and 4 on ``model``, read from
    ``summary`` (interval_summary rows of method, metric, block, mean, low, high, n, n_seeds) and
    the chapter's ``claims`` (:func:`multiplier_claims`, :func:`rank_claims`)."""
    at = summary.set_index(["method", "metric", "block"])
    last, top = steps[-1], steps[1]
    name = _model(model)
    own = claims[claims.model == model]

    def value(method: str, metric: str, block: str = last) -> str:
        row = at.loc[(method, metric, block)]
        return f"{row['mean']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"

    ssim = at.loc[("ig_local", "ssim", last), "mean"], at.loc[("ig_global", "ssim", last), "mean"]
    n = at.loc[("ig_local", "ssim", last)]
    ratio = ssim[0] / ssim[1] if ssim[1] else math.nan
    return f"""
**Against the paper, {name}.** With every block re-initialized, the SSIM of global IG is
{value('ig_global', 'ssim')} and that of local IG {value('ig_local', 'ssim')}
({describe_n(int(n['n']), int(n['n_seeds']))}; ratio local/global {ratio:.2f}; Kokhlikyan et al.
report about one half for Inception v3). Their Fig. 1 finds the global variant of each pair more
similar to the trained model's maps than the local one. The claim that the per-image difference
global − local of SSIM lies above 0: {verdict_list(own[own.test == 'Input multiplier'], VARIANT_LABELS)}.
Spearman rank correlation of the signed maps (their Fig. 4) is {value('ig_local', 'spearman', top)}
(local IG) and {value('ig_global', 'spearman', top)} (global IG) after re-initializing the top
block ({top}) alone and {value('ig_local', 'spearman')} and {value('ig_global', 'spearman')} at
the end. The paper finds it near zero for both variants; the claim that both become like random
maps: {verdict_list(own[own.test == CASCADING], VARIANT_LABELS)}.
"""


def _table1(claims: pd.DataFrame) -> str:
    """The three Table 1 claims of :func:`quality_claims` in words."""
    first, rises, steady = (claims[claims.test == test] for test in TABLE1_TESTS)
    return (f"(i) global IG's infidelity above local IG's on the trained network (paired "
            f"difference above 0): {verdict_list(first, VARIANT_LABELS)}; (ii) local IG's infidelity rising "
            f"under full randomization (log10 ratio randomized / trained above 0): "
            f"{verdict_list(rises, VARIANT_LABELS)}; (iii) max-sensitivity almost unchanged (log10 ratio below "
            f"log10 {SENSITIVITY_FACTOR:g} = {math.log10(SENSITIVITY_FACTOR):.2f}): "
            f"{verdict_list(steady, VARIANT_LABELS)}.")


def _listing(values: Mapping[str, float], fmt: str) -> str:
    return ", ".join(f"{VARIANT_LABELS[v]} {x:{fmt}}" for v, x in values.items())


def quality_reading(quality_summary: pd.DataFrame, steps: Sequence[str], variants: Sequence[str],
                    ig_steps: int, logit_trained: float, logit_randomized: float,
                    claims: pd.DataFrame) -> str:
    """How the infidelity and max-sensitivity tables read, and the claims of Kokhlikyan et al.'s
    Table 1 (``quality_summary``: rows of method, metric, block, mean; ``steps``: the cascade's
    step names, trained first; ``claims``: :func:`quality_claims` for this network)."""
    means = quality_summary.set_index(["method", "metric", "block"])["mean"]
    first, last = steps[0], steps[-1]
    local = [v for v in variants if not VARIANTS[v][1]]
    global_ = [v for v in variants if VARIANTS[v][1]]

    def factor(metric: str) -> dict[str, float]:
        return {v: means[v, metric, last] / means[v, metric, first] for v in variants}

    return f"""
**Reading the tables.** On the trained CNN the local maps' infidelity is
{_listing({v: means[v, 'infidelity', first] for v in local}, '.2g')} (squared logits), and their
relative infidelity is {_listing({v: means[v, 'relative_infidelity', first] for v in local}, '.2f')}
(0: the map predicts the change of the logit exactly; 1: no better than a zero map; Section 3
tests whether the ReLU network's kinks are what holds the local maps back). The global maps'
completeness errors are {_listing({v: means[v, 'infidelity', first] for v in global_}, '.2g')}
(IG is complete up to its Riemann sum, {ig_steps} steps here; Gradient ⊙ Input only for a
positively homogeneous function). Fully randomized, the mean infidelity changes by a factor of
{_listing(factor('infidelity'), '.2g')}, relative infidelity by
{_listing(factor('relative_infidelity'), '.2g')}, and max-sensitivity by
{_listing(factor('max_sensitivity'), '.2g')}.

**Against the paper.** Kokhlikyan et al. (Table 1, Inception v3, IG) report global infidelity far
above local (2.84 against 0.0001 on the trained network), infidelity rising by orders of
magnitude from the second or third randomized block on, and max-sensitivity "almost unchanged"
(0.26–0.45 across all steps, at most 1.6 times its value on the trained network). The claims,
per digit: {_table1(claims)} Infidelity is in squared logits, and Xavier re-initialization
(biases set to zero) changes the mean absolute size of this CNN's predicted logits from
{logit_trained:.2g} to {logit_randomized:.2g}; relative infidelity removes that scale. With its
biases re-initialized to zero the fully randomized ReLU CNN is positively homogeneous,
`f(αx) = α f(x)` for α > 0, so by Euler's theorem Gradient ⊙ Input sums exactly to
`f(x) − f(0)` and its completeness error vanishes
({means['gradient_x_input', 'infidelity', last]:.1g} here; the checks below test it).
"""


def imagenet_quality_reading(claims: pd.DataFrame, model: str) -> str:
    """The Table 1 claims (:func:`quality_claims`) of one ImageNet network in words."""
    return f"**Table 1, {_model(model)}.** {_table1(claims[claims.model == model])}"


def smoothing_reading(compare: pd.DataFrame, kinks: pd.DataFrame, names: Sequence[str],
                      logit_sizes: Mapping[str, float], smooth_epochs: int,
                      claims: pd.DataFrame, n_dimensions: int) -> str:
    """How smoothing the CNN changed its slope and its explanations' quality, with the smoothing
    claims (:func:`smoothing_claims`). ``compare``: summary rows of network, state, metric,
    method, mean; ``kinks``: rows of state, model, jump (:func:`~sanitylib.experiments.
    input_multiplier.kink_score` along ``n_dimensions`` pixels of one digit); ``names``: the
    original and the smoothed network's names. Every method whose mean rises under smoothing is
    named, with both values."""
    original, smoothed = names
    kink = kinks.set_index(["state", "model"]).jump
    means = compare[compare.state == "trained"].set_index(["metric", "method", "network"])["mean"]

    def rises(metric: str) -> str:
        methods = means.loc[metric].index.get_level_values("method").unique()
        up = [f"{VARIANT_LABELS[m]} ({means[metric, m, original]:.3g} → {means[metric, m, smoothed]:.3g})"
              for m in methods if means[metric, m, smoothed] > means[metric, m, original]]
        return ", ".join(up) or "no method"

    jumps = {state: (kink[state, original], kink[state, smoothed])
             for state in ("trained", "randomized")}
    scale = (logit_sizes[smoothed] / logit_sizes[original]) ** 2
    return f"""
**Slope.** Along {n_dimensions} pixels of one digit the slope of the original network jumps by
{jumps['trained'][0]:.2g} on average between neighbouring points, that of the smoothed network by
{jumps['trained'][1]:.2g} (trained; fully randomized {jumps['randomized'][0]:.2g} and
{jumps['randomized'][1]:.2g}). Their Fig. 2 shows jagged curves for ReLU and smooth ones for
Softplus.

**Against the paper.** Kokhlikyan et al. report that infidelity "drops significantly" with
Softplus and LogSumExp on Inception v3. The claim that the per-image log10 ratio of infidelity
smoothed / original lies below 0 on the trained networks: {verdict_list(claims, VARIANT_LABELS)}. The mean over
the digits
rises under smoothing for: infidelity, {rises('infidelity')}; relative infidelity,
{rises('relative_infidelity')}; max-sensitivity, {rises('max_sensitivity')}. Infidelity is in
squared logits; the smoothed network's predicted logits average
{logit_sizes[smoothed]:.2f} against {logit_sizes[original]:.2f} for the original, and scaling
the logits by that ratio alone would multiply infidelity by {scale:.2g}; relative infidelity and
max-sensitivity do
not depend on that scale. The smoothed network was fine-tuned for {smooth_epochs} epoch(s) (its
accuracy is in the table above): the comparison is between two networks, not only between two
activation functions.
"""
