"""The model parameter randomization chapters: Adebayo et al. (2018), Section 4, Figs. 2-4.

Runs :func:`sanitylib.experiments.randomization_run` over every model of the book, collects the
tidy scores, and turns them into the paper's verdict: after full randomization, can a method's
maps be told apart from two unrelated random maps?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.ceiling import ceiling_table, perturbation_ceiling, scale_verdicts
from sanitylib.experiments.runner import (
    DEFAULT_METRICS,
    RandomizationRun,
    randomization_run,
    summarize_scores,
)
from sanitylib.methods.saliency import METHODS
from sanitylib.models.under_test import ModelUnderTest, model_under_test

#: What the paper reports for each method under cascading randomization (Section 4, Fig. 2).
PAPER_FINDINGS = {
    "gradient": "changes", "smoothgrad": "changes", "vargrad": "changes", "gradcam": "changes",
    "guided_backprop": "barely changes", "guided_gradcam": "barely changes",
    "gradient_x_input": "keeps the input's structure",
    "integrated_gradients": "keeps the input's structure",
    "ig_smoothgrad": "keeps the input's structure",
}


def methods_for(model: ModelUnderTest | nn.Module, methods: Sequence[str] = METHODS) -> list[str]:
    """The methods that apply to a model: GradCAM and Guided GradCAM need a conv layer."""
    has_conv = model_under_test(model).gradcam_layer is not None
    return [m for m in methods if has_conv or m not in ("gradcam", "guided_gradcam")]


def method_options(ig_steps: int, samples: int, seed: int = 0) -> dict[str, dict[str, object]]:
    """Per-method settings: IG steps and noise samples (the paper: 50 and 50)."""
    noisy = {"samples": samples, "seed": seed}
    return {"integrated_gradients": {"steps": ig_steps}, "smoothgrad": dict(noisy),
            "vargrad": dict(noisy), "ig_smoothgrad": {**noisy, "steps": ig_steps}}


def run_models(models: Mapping[tuple[str, str], nn.Module], inputs: Mapping[str, torch.Tensor],
               *, order: str = "cascading", init: str = "default", seeds: Sequence[int] = (0,),
               metrics: Sequence[str] = DEFAULT_METRICS, methods: Sequence[str] = METHODS,
               target: str = "recompute", options: Mapping[str, Mapping[str, object]] | None = None,
               keep_maps: int = 0, verbose: bool = True
               ) -> tuple[pd.DataFrame, dict[tuple[str, str], RandomizationRun]]:
    """One randomization run per ``(architecture, dataset)`` model on that dataset's inputs.

    Returns the concatenated tidy scores (columns model, dataset, method, order, block, metric,
    seed, image, value, ...) and the runs, for their maps.
    """
    runs = {}
    for (arch, dataset), model in models.items():
        if verbose:
            print(f"{arch} / {dataset}:", flush=True)
        runs[arch, dataset] = randomization_run(
            model, inputs[dataset], methods_for(model, methods), order=order, init=init,
            seeds=seeds, metrics=metrics, target=target, options=options,
            labels={"model": arch, "dataset": dataset}, keep_maps=keep_maps, verbose=verbose)
    scores = pd.concat([run.scores for run in runs.values()], ignore_index=True)
    return scores, runs


def verdict_table(scores: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Similarity after the last randomization step, against the random-map baseline.

    A method *changes* when the 95 % interval of its mean similarity reaches into the band of
    two unrelated random maps (2.5-97.5 %); otherwise its maps remain recognisably similar to the
    trained model's. The paper's finding is given alongside.
    """
    last = scores.groupby(["model", "dataset", "order"])["step"].transform("max")
    final = summarize_scores(scores[scores.step == last],
                             ["model", "dataset", "order", "method", "metric"])
    return against_random(final, baseline, PAPER_FINDINGS)


def against_random(summary: pd.DataFrame, baseline: pd.DataFrame,
                   findings: Mapping[str, str]) -> pd.DataFrame:
    """``summary`` (mean and 95 % interval per group and metric) next to the random-map band of
    its metric, with a verdict per row and the paper's finding per method (``findings``).

    "like random maps" when the interval reaches into the band of two unrelated random maps
    (2.5-97.5 %), "still similar" otherwise. A baseline with ``model`` / ``dataset`` columns
    (one band per map size) is matched on them too.
    """
    keys = ["metric", *(c for c in ("model", "dataset") if c in baseline and c in summary)]
    merged = summary.merge(baseline.rename(columns={"mean": "random_mean", "low": "random_low",
                                                    "high": "random_high", "n": "random_n"}),
                           on=keys, how="left")
    distinguishable = (merged["low"] > merged["random_high"]) | (merged["high"] < merged["random_low"])
    merged["verdict"] = distinguishable.map({True: "still similar", False: "like random maps"})
    merged["paper"] = merged["method"].map(findings)
    return merged


def model_ceilings(subjects: Mapping[tuple[str, str], tuple[nn.Module, torch.Tensor]],
                   methods: Sequence[str], options: Mapping[str, Mapping[str, object]],
                   metrics: Sequence[str], seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """The perturbation ceiling (:func:`sanitylib.experiments.ceiling.perturbation_ceiling`:
    each model against itself with every weight moved by 0.1 %) of every ``(model name,
    dataset): (model, inputs)``, summarized per method and metric (columns model, dataset,
    method, metric, mean, low, high, n, n_undefined)."""
    tables = []
    for (name, dataset), (model, inputs) in subjects.items():
        raw = perturbation_ceiling(model, inputs, methods_for(model, methods), seeds=seeds,
                                   metrics=metrics, options=options)
        tables.append(ceiling_table(raw).assign(model=name, dataset=dataset))
    return pd.concat(tables, ignore_index=True)


def with_ceiling(verdicts: pd.DataFrame, ceilings: pd.DataFrame) -> pd.DataFrame:
    """A verdict table (:func:`against_random`) with the ceiling beside the floor: ``ceiling``
    (matched on model, dataset, method and metric), ``position`` on the floor-to-ceiling scale
    and ``on the scale``, the effect-size verdict of
    :func:`sanitylib.experiments.ceiling.scale_verdicts` ("changes" below 0.2, "still similar"
    above 0.8, "partly" between), next to the strict interval verdict."""
    keys = [c for c in ("model", "dataset") if c in ceilings and c in verdicts]
    merged = verdicts.merge(ceilings[[*keys, "method", "metric", "mean"]]
                            .rename(columns={"mean": "ceiling"}),
                            on=[*keys, "method", "metric"], how="left")
    merged["position"], merged["on the scale"] = scale_verdicts(
        merged["mean"], merged["random_mean"], merged["ceiling"], merged["metric"])
    return merged


def agreement(verdicts: pd.DataFrame, metric: str = "spearman_abs") -> pd.DataFrame:
    """Per model and method: does this replication's verdict under ``metric`` match the paper?

    The paper's "changes" corresponds to "like random maps"; "barely changes" and "keeps the
    input's structure" to "still similar".
    """
    rows = verdicts[verdicts.metric == metric].copy()
    expected = rows["paper"].map(lambda p: "like random maps" if p == "changes" else "still similar")
    rows["agrees with paper"] = (rows["verdict"] == expected).map({True: "yes", False: "no"})
    scale = [c for c in ("ceiling", "position", "on the scale") if c in rows]
    return rows[["model", "dataset", "method", "mean", "low", "high", "random_high", *scale,
                 "verdict", "paper", "agrees with paper"]]


def describe_agreement(table: pd.DataFrame, labels: Mapping[str, str] | None = None,
                       model_labels: Mapping[str, str] | None = None) -> str:
    """A Markdown paragraph listing, per model, where the verdicts of :func:`agreement` match
    the paper's and where they do not, with the similarity values that decide it (models named
    by ``model_labels``, else in capitals: "CNN")."""
    labels = labels or {}
    model_labels = model_labels or {}
    lines = []
    for (model, dataset), rows in table.groupby(["model", "dataset"], sort=False):
        agree = rows[rows["agrees with paper"] == "yes"]
        differ = rows[rows["agrees with paper"] == "no"]
        text = (f"* **{model_labels.get(model, model.upper())} on {dataset}**: {len(agree)} of "
                f"{len(rows)} methods agree "
                "with the paper")
        if len(differ):
            details = ", ".join(
                f"{labels.get(r.method, r.method)} ({r.verdict}, {r.mean:.2f} "
                f"[{r.low:.2f}, {r.high:.2f}] against a random band up to {r.random_high:.2f}; "
                f"paper: {r.paper})" for r in differ.itertuples())
            text += f"; not: {details}"
        lines.append(text + ".")
    return "\n".join(lines)
