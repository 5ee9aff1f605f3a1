"""The claims of the chapter "After the paper", and the readings written from them.

The follow-up tests (:mod:`sanitylib.experiments.followups`: bottom-up and smooth MPRT and eMPRT
of Hedström et al. 2023, random logit of Sixt et al. 2020, input invariance of Kindermans et al.
2017) and the top-down test with the class held fixed, as claims decided by
:func:`sanitylib.experiments.claims.decide`, with the computed sentences the chapter prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from sanitylib.experiments.after_the_paper import final_scores
from sanitylib.experiments.ceiling import CUTOFFS
from sanitylib.experiments.claims import (
    MODEL_LABELS,
    claims_frame,
    describe_n,
    interval_summary,
    setting,
    similarity_claims,
    threshold_claims,
    verdict_list,
)
from sanitylib.experiments.parameter_randomization import (
    AFTER_EVERY_BLOCK,
    BOTTOM_UP,
    CASCADING,
    EXPECTATIONS,
    SOURCE,
)
from sanitylib.experiments.tables import read_result
from sanitylib.methods.registry import LABELS

__all__ = ["CHAPTER", "class_reading", "emprt_claims", "followup_claims", "random_logit_reading"]

CHAPTER = "11_after_the_paper"
_HEDSTROM = "Hedström et al. 2023"


def _similarity(summary: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame,
                expectations: Mapping[str, str], **words: object) -> pd.DataFrame:
    """:func:`similarity_claims` of the chapter (``words``: test, source, statement, statistic,
    setting, labels); none where ``summary`` is empty."""
    if summary.empty:
        return claims_frame([])
    return similarity_claims(summary, floor, expectations, chapter=CHAPTER, ceiling=ceiling,
                             **words)


def emprt_claims(scores: pd.DataFrame, method: str = "guided_backprop",
                 labels: Mapping[str, str] = LABELS) -> pd.DataFrame:
    """Hedström et al. (2023) found Guided Backprop ranked first by eMPRT on ImageNet VGG16 and
    ResNet-18. One claim per model where ``method`` ran: its eMPRT minus that of the best other
    method (the highest mean eMPRT; controls left out), paired per image with the seeds nested,
    lies above 0."""
    final = final_scores(scores)
    emprt = final[(final.test == "emprt") & ~final.method.str.startswith("control_")]
    rows = []
    for model, part in emprt.groupby("model", sort=False):
        means = part.groupby("method").value.mean().dropna()
        if method not in means or len(means) < 2:
            continue
        best = means.drop(method).idxmax()
        wide = part.pivot_table(index=["model", "dataset", "seed", "image"], columns="method",
                                values="value", aggfunc="first")
        difference = (wide[method] - wide[best]).rename("value").reset_index()
        summary = interval_summary(difference, ["model", "dataset"]).assign(
            method=method, metric="entropy_ratio")
        rows.append(threshold_claims(
            summary, threshold=0.0, expected="above", chapter=CHAPTER, test="eMPRT",
            source=f"{_HEDSTROM}, eMPRT on ImageNet VGG16 and ResNet-18",
            statement="On the {model}, eMPRT ranks {method} first: its entropy rise is above "
                      f"that of the best other method, {labels.get(best, best)}",
            statistic=f"paired eMPRT difference, {labels.get(method, method)} - best other "
                      "method", setting=setting(target="fixed"), labels=labels))
    return pd.concat(rows, ignore_index=True) if rows else claims_frame([])


def _invariance(summary: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame,
                labels: Mapping[str, str]) -> list[pd.DataFrame]:
    """Kindermans et al. (2017): Gradient's map stays when the input is shifted by a constant
    the first layer cancels; Gradient ⊙ Input's and IG's (zero baseline) do not. "Stays" is the
    top of the floor-to-ceiling scale: above ``CUTOFFS[1]`` of the way from the floor to the
    ceiling."""
    rows = summary[summary.test == "input_invariance"]
    rows = rows.merge(floor[["model", "metric", "mean"]].rename(columns={"mean": "floor"}),
                      on=["model", "metric"], how="left")
    rows = rows.merge(ceiling[["model", "method", "metric", "mean"]]
                      .rename(columns={"mean": "ceiling"}), on=["model", "method", "metric"],
                      how="left")
    rows["edge"] = rows["floor"] + CUTOFFS[1] * (rows["ceiling"] - rows["floor"])
    return [threshold_claims(
        rows[rows.method.isin(methods)], threshold="edge", expected=expected, chapter=CHAPTER,
        test="Input invariance", source="Kindermans et al. 2017, input invariance",
        statement=f"On the {{model}}, {{method}}'s map {words} when the input is shifted by a "
                  f"constant that the first layer cancels (Pearson {expected} {CUTOFFS[1]:g} of "
                  "the way from the floor to the ceiling)",
        statistic="mean similarity, input against shifted input", labels=labels,
        expectation=expectation)
        for expected, methods, words, expectation in (
            ("above", ["gradient"], "stays", "invariant"),
            ("below", ["gradient_x_input", "integrated_gradients"], "changes", "not invariant"))]


def followup_claims(scores: pd.DataFrame, summary: pd.DataFrame, floor: pd.DataFrame,
                    ceiling: pd.DataFrame, labels: Mapping[str, str] = LABELS,
                    options: Mapping[str, Mapping[str, Mapping[str, object]]] | None = None
                    ) -> pd.DataFrame:
    """Every claim of the chapter, per model, from :func:`followup_summary` (``summary``; the
    ``scores`` for eMPRT's paired ranking), the random ``floor`` (model, metric, mean, high) and
    the perturbation ``ceiling`` (model, method, metric, mean); ``options``: per model, the
    per-method options of its maps (their samples and steps join each claim's setting);
    controls make no claim:

    - top-down MPRT (the original test, "Cascading randomization", with the trained model's class
      throughout: ``class: fixed``): the paper's expectation per method
      (:data:`~sanitylib.experiments.parameter_randomization.EXPECTATIONS`);
    - bottom-up MPRT and sMPRT (Hedström et al. 2023): every method's maps change;
    - eMPRT: Guided Backprop ranked first (:func:`emprt_claims`);
    - random logit (Sixt et al. 2020): the map of a random other class is unlike the predicted
      class's, for every method (SSIM);
    - input invariance (Kindermans et al. 2017): Gradient passes, Gradient ⊙ Input and IG fail.
    """
    real = summary[~summary.method.str.startswith("control_")]
    fixed = setting(target="fixed")
    every = {m: "changes" for m in real.method.unique()}

    def test(name: str, metric: str = "spearman_abs") -> pd.DataFrame:
        return real[(real.test == name) & (real.metric == metric)]

    claims = [
        _similarity(test("mprt_top_down"), floor, ceiling, EXPECTATIONS, test=CASCADING,
                    source=SOURCE,
                    statement="On the {model}, {method}'s maps {expectation} after every block "
                              "is re-initialized, the trained model's class explained throughout",
                    statistic=AFTER_EVERY_BLOCK, setting=fixed, labels=labels, options=options),
        _similarity(test("mprt_bottom_up"), floor, ceiling, every,
                    test=BOTTOM_UP, source=f"{_HEDSTROM}, bottom-up MPRT",
                    statement="On the {model}, {method}'s maps {expectation} under bottom-up "
                              "randomization",
                    statistic="mean similarity over the bottom-up randomization steps",
                    setting=fixed, labels=labels, options=options),
        _similarity(test("smprt"), floor, ceiling, every, test="Smooth MPRT",
                    source=f"{_HEDSTROM}, sMPRT",
                    statement="On the {model}, {method}'s noise-averaged maps {expectation} "
                              "under bottom-up randomization",
                    statistic="mean similarity over the bottom-up randomization steps",
                    setting=fixed, labels=labels, options=options),
        emprt_claims(scores, labels=labels),
        _similarity(test("random_logit", "ssim"), floor, ceiling, every, test="Random logit",
                    source="Sixt et al. 2020, random logit test",
                    statement="On the {model}, {method}'s map of a random other class and its "
                              "map of the predicted class {expectation} (SSIM)",
                    statistic="mean similarity, predicted against a random other class",
                    setting="", labels=labels, options=options),
        *_invariance(real, floor, ceiling, labels)]
    return pd.concat([c for c in claims if len(c)], ignore_index=True)


def random_logit_reading(claims: pd.DataFrame, labels: Mapping[str, str] = LABELS,
                         method: str = "guided_backprop") -> str:
    """Per model: the random-logit claims (Sixt et al. 2020); what top-down MPRT with the trained
    model's class says of the methods whose random-logit claim differs (their map of another
    class stays similar to the predicted class's); and ``method``'s two numbers side by side,
    with its rank under top-down MPRT (closest to the floor, 0, first)."""
    lines = []
    for model, own in claims.groupby("model", sort=False):
        logit = own[own.test == "Random logit"]
        if logit.empty:
            continue
        same = logit[logit.verdict == "differs"].method.tolist()
        top = own[own.test == CASCADING]
        line = (f"* **{MODEL_LABELS.get(model, str(model).upper())}**: the claim that a "
                f"random other class gets a map unlike the predicted class's: "
                f"{verdict_list(logit, labels)}.")
        if same:
            line += (" Top-down MPRT (class: fixed) on the methods whose claim differs, whose map "
                     "stays similar when another class is explained: "
                     f"{verdict_list(top[top.method.isin(same)], labels)}.")
        if method in set(logit.method) and method in set(top.method):
            one, ranked = logit.set_index("method").loc[method], top.assign(
                distance=top.estimate.abs()).sort_values("distance").method.tolist()
            mprt = top.set_index("method").loc[method]
            line += (f" {labels.get(method, method)}: random logit {one.estimate:.2f} "
                     f"[{one.low:.2f}, {one.high:.2f}] (claim: {one.verdict}), top-down MPRT "
                     f"{mprt.estimate:.2f} [{mprt.low:.2f}, {mprt.high:.2f}] (claim: "
                     f"{mprt.verdict}), rank {ranked.index(method) + 1} of the "
                     f"{len(ranked)} methods with a top-down claim (closest to 0 first).")
        lines.append(line)
    return "\n".join(lines)


def class_reading(claims: pd.DataFrame, model: str, dataset: str, images: int,
                  seeds: Sequence[int], labels: Mapping[str, str] = LABELS, *,
                  root: Path | None = None) -> str:
    """Why this chapter's top-down numbers differ from the cascading chapter's: there the class
    explained is recomputed after every step, here the trained model's class is kept. Reads
    02's ``verdict.csv`` (its last step on ``metric`` spearman_abs) and ``scores.csv``, the
    latter restricted to this chapter's first ``images`` inputs and its ``seeds``, so that what
    remains between the two numbers is the class explained."""
    verdicts, scores = read_result("cascading/verdict", root), read_result("cascading/scores", root)
    ours = claims[(claims.test == CASCADING) & (claims.model == model)]
    if verdicts is None or ours.empty:
        return ("The cascading chapter's results are not in this results folder: its numbers "
                "(class: recomputed) cannot be set beside this chapter's (class: fixed).")
    theirs = verdicts[(verdicts.model == model) & (verdicts.dataset == dataset)
                      & (verdicts.metric == "spearman_abs")]
    if "order" in theirs:
        theirs = theirs[theirs.order == "cascading"]
    theirs = theirs.set_index("method")
    shared = [m for m in ours.method if m in theirs.index]
    if not shared:
        return ""
    one = theirs.loc[shared[0]]
    there = ", ".join(f"{labels.get(m, m)} {theirs.loc[m, 'mean']:.2f}" for m in shared)
    here = ", ".join(f"{labels.get(r.method, r.method)} {r.estimate:.2f}"
                     for r in ours.itertuples() if r.method in shared)
    text = (f"On the {MODEL_LABELS.get(model, model)}, the cascading chapter explains each "
            f"randomized model's own predicted class (class: recomputed) and ends at {there} "
            f"({describe_n(int(one['n']), int(one['n_seeds']))}); this chapter explains the "
            f"trained model's class throughout (class: fixed), as Quantus does, and ends at "
            f"{here} ({describe_n(int(ours.n_images.iloc[0]), int(ours.n_seeds.iloc[0]))}).")
    if scores is not None:
        last = scores[(scores.model == model) & (scores.dataset == dataset)
                      & (scores.metric == "spearman_abs") & (scores.image < images)
                      & scores.seed.isin(list(seeds))]
        if "order" in last:
            last = last[last.order == "cascading"]
        last = last[last.step == last.step.max()].groupby("method").value.mean()
        same = ", ".join(f"{labels.get(m, m)} {last[m]:.2f}" for m in shared if m in last)
        text += (f" On the same {images} images and seeds ({', '.join(map(str, seeds))}) the "
                 f"cascading chapter's numbers are {same}: with the same trained network (one "
                 "`make book` run trains it once for both chapters), the numbers differ because "
                 "the class explained differs, and each claim names its class in its setting.")
    return text
