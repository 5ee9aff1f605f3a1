"""The model parameter randomization chapters: Adebayo et al. (2018), Section 4, Figs. 2-4.

Runs :func:`sanitylib.experiments.randomization_run` over every model of the book, collects the
tidy scores, and turns them into claims (:mod:`sanitylib.experiments.claims`): at a given step of
the randomization, are a method's maps like two unrelated random maps, as the paper expects, or
still similar to the trained model's?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor

import pandas as pd
import torch
from torch import nn

from sanitylib.experiments.ceiling import ceiling_table, perturbation_ceiling, scale_verdicts
from sanitylib.experiments.claims import DATASET_LABELS, MODEL_LABELS, VERDICTS, similarity_claims
from sanitylib.experiments.runner import (
    DEFAULT_METRICS,
    RandomizationRun,
    randomization_run,
    summarize_scores,
)
from sanitylib.methods.registry import ALL_METHODS, LABELS, METHODS, method_spec, options_for
from sanitylib.models.under_test import ModelUnderTest, model_under_test

#: What the paper reports for each method under cascading randomization (Section 4, Fig. 2),
#: from the method registry.
PAPER_FINDINGS = {m: method_spec(m).paper_finding for m in ALL_METHODS
                  if method_spec(m).paper_finding is not None}
#: The paper's findings as claim expectations: "changes" (the maps become like random maps) or
#: "remains" (they stay similar: "barely changes", "keeps the input's structure").
EXPECTATIONS = {m: "changes" if f == "changes" else "remains" for m, f in PAPER_FINDINGS.items()}
#: Where the paper reports them.
SOURCE = "Adebayo et al. 2018, Section 4, Figs. 2-4"
#: The canonical test and statistic of the claims after full cascading randomization.
CASCADING = "Cascading randomization"
AFTER_EVERY_BLOCK = "mean similarity after every block is re-initialized"
#: Independent randomization: the paper's findings with only the logits re-initialized.
INDEPENDENT = "Independent randomization"
LOGITS_ONLY = "mean similarity with only the logits re-initialized"
INDEPENDENT_SOURCE = "Adebayo et al. 2018, Section 4 and appendix"
#: Bottom-up randomization (the reviewers' variant, Quantus's MPRT option): every method is
#: expected to change once the first block is re-initialized.
BOTTOM_UP = "Bottom-up randomization"
FIRST_BLOCK = "mean similarity after the first (lowest) block is re-initialized"
BOTTOM_UP_SOURCE = "NeurIPS 2018 reviewers; Hedström et al. 2023"


def methods_for(model: ModelUnderTest | nn.Module, methods: Sequence[str] = METHODS) -> list[str]:
    """The methods that apply to a model: a method that needs a conv layer (GradCAM, Guided
    GradCAM) only where the model names one."""
    has_conv = model_under_test(model).gradcam_layer is not None
    return [m for m in methods if has_conv or not method_spec(m).needs_conv_layer]


def method_options(ig_steps: int, samples: int, seed: int = 0,
                   methods: Sequence[str] = METHODS) -> dict[str, dict[str, object]]:
    """Per-method settings (:func:`~sanitylib.methods.registry.options_for`): IG's steps and the
    noisy methods' samples and seed (the paper: 50 and 50)."""
    return options_for(methods, steps=ig_steps, samples=samples, seed=seed)


def run_models(models: Mapping[tuple[str, str], nn.Module], inputs: Mapping[str, torch.Tensor],
               *, order: str = "cascading", init: str = "default", seeds: Sequence[int] = (0,),
               metrics: Sequence[str] = DEFAULT_METRICS, methods: Sequence[str] = METHODS,
               target: str = "recompute", options: Mapping[str, Mapping[str, object]] | None = None,
               keep_maps: int = 0, verbose: bool = True, executor: Executor | None = None
               ) -> tuple[pd.DataFrame, dict[tuple[str, str], RandomizationRun]]:
    """One randomization run per ``(architecture, dataset)`` model on that dataset's inputs.

    Returns the concatenated tidy scores (columns model, dataset, method, order, block, metric,
    seed, image, value, ...) and the runs, for their maps. ``executor``: where the seeds run
    (:func:`~sanitylib.experiments.runner.randomization_run`).
    """
    runs = {}
    for (arch, dataset), model in models.items():
        if verbose:
            print(f"{arch} / {dataset}:", flush=True)
        runs[arch, dataset] = randomization_run(
            model, inputs[dataset], methods_for(model, methods), order=order, init=init,
            seeds=seeds, metrics=metrics, target=target, options=options,
            labels={"model": arch, "dataset": dataset}, keep_maps=keep_maps, verbose=verbose,
            executor=executor)
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


def step_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame | None, *,
                chapter: str, test: str, statistic: str, statement: str, step: int | None = None,
                source: str = SOURCE, setting: str = "",
                expectations: Mapping[str, str] = EXPECTATIONS,
                metrics: Sequence[str] = ("spearman_abs",),
                options: Mapping[str, Mapping[str, object]] | None = None) -> pd.DataFrame:
    """Claims (:func:`sanitylib.experiments.claims.similarity_claims`) on the similarity to the
    trained model's maps at one step of a randomization run: ``step`` (1 = the first block
    re-initialized) or, by default, each model's last step. One claim per model, dataset,
    method and metric of ``metrics``, judged against ``floor`` (the random-map band) and
    ``ceiling`` (:func:`model_ceilings`). ``statement`` is formatted with ``model``, ``dataset``,
    ``method`` (their labels) and ``expectation``; ``options``: the per-method options of every
    model's maps (their samples and steps join each claim's setting)."""
    last = scores.groupby(["model", "dataset"])["step"].transform("max")
    chosen = scores[(scores.step == (last if step is None else step))
                    & scores.metric.isin(list(metrics))]
    summary = summarize_scores(chosen, ["model", "dataset", "method", "metric"])
    return similarity_claims(summary, floor, expectations, chapter=chapter, test=test,
                             source=source, statement=statement, statistic=statistic,
                             ceiling=ceiling, setting=setting, labels=LABELS,
                             options={m: options for m in set(chosen["model"])} if options else None)


def cascading_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame | None, *,
                     chapter: str, setting: str, metrics: Sequence[str] = ("spearman_abs",),
                     options: Mapping[str, Mapping[str, object]] | None = None) -> pd.DataFrame:
    """The paper's claims (:data:`EXPECTATIONS`, :data:`SOURCE`) after full cascading
    randomization: :func:`step_claims` at each model's last step, under the test
    :data:`CASCADING` and the statistic :data:`AFTER_EVERY_BLOCK`."""
    return step_claims(scores, floor, ceiling, chapter=chapter, test=CASCADING,
                       statistic=AFTER_EVERY_BLOCK, setting=setting, metrics=metrics,
                       options=options,
                       statement="{model} on {dataset}: {method} maps {expectation} after every "
                                 "block is re-initialized")


def independent_claims(scores: pd.DataFrame, floor: pd.DataFrame,
                       ceiling: pd.DataFrame | None, *, chapter: str, setting: str,
                       options: Mapping[str, Mapping[str, object]] | None = None
                       ) -> pd.DataFrame:
    """The paper's claims (:data:`EXPECTATIONS`) under independent randomization with only the
    logits (the top block, step 1) re-initialized: test :data:`INDEPENDENT`, statistic
    :data:`LOGITS_ONLY`."""
    return step_claims(scores, floor, ceiling, step=1, chapter=chapter, test=INDEPENDENT,
                       statistic=LOGITS_ONLY, source=INDEPENDENT_SOURCE, setting=setting,
                       options=options,
                       statement="{model} on {dataset}: {method} maps {expectation} when only "
                                 "the logits are re-initialized")


def bottom_up_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame | None,
                     *, chapter: str, setting: str,
                     options: Mapping[str, Mapping[str, object]] | None = None) -> pd.DataFrame:
    """Bottom-up randomization after its first step (the lowest block re-initialized): every
    method is expected to change (test :data:`BOTTOM_UP`, statistic :data:`FIRST_BLOCK`)."""
    return step_claims(scores, floor, ceiling, step=1, chapter=chapter, test=BOTTOM_UP,
                       statistic=FIRST_BLOCK, source=BOTTOM_UP_SOURCE, setting=setting,
                       options=options,
                       expectations={m: "changes" for m in METHODS},
                       statement="{model} on {dataset}: {method} maps {expectation} once the "
                                 "first (lowest) block is re-initialized")


def verdict_counts(claims: pd.DataFrame, column: str) -> pd.DataFrame:
    """How many claims agree, differ and are inconclusive, per method (rows, by their labels) and
    value of ``column`` (columns): "agrees: 2, inconclusive: 1"."""
    def count(verdicts: pd.Series) -> str:
        return ", ".join(f"{v}: {(verdicts == v).sum()}" for v in VERDICTS if (verdicts == v).any())

    order = [LABELS.get(m, m) for m in dict.fromkeys(claims["method"])]
    return (claims.assign(method=claims["method"].map(lambda m: LABELS.get(m, m)))
            .pivot_table(index="method", columns=column, values="verdict", aggfunc=count)
            .reindex(index=order, columns=list(dict.fromkeys(claims[column]))).fillna(""))


def verdict_changes(claims: pd.DataFrame, column: str, a: str, b: str) -> list[str]:
    """The claims whose verdict differs between ``column`` = ``a`` and ``column`` = ``b`` (same
    test, model, dataset, method and metric), each as "GradCAM (CNN on mnist: agrees under a,
    inconclusive under b)", models and datasets by their labels."""
    keys = ["test", "model", "dataset", "method", "metric"]
    pairs = claims[claims[column] == a].merge(claims[claims[column] == b], on=keys,
                                              suffixes=("_a", "_b"))
    return [f"{LABELS.get(r.method, r.method)} ({MODEL_LABELS.get(r.model, r.model)} on "
            f"{DATASET_LABELS.get(r.dataset, r.dataset)}: {r.verdict_a} under {a}, "
            f"{r.verdict_b} under {b})"
            for r in pairs.itertuples() if r.verdict_a != r.verdict_b]
