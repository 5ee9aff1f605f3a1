"""Token-level explanations of a text classifier and their cascading randomization test.

Kokhlikyan et al. (2021), Section 3 and Appendix B: explain a BERT sentiment classifier with
Layer Integrated Gradients on its embedding layer, in the *global* form (times the difference
between the input's and the baseline's embeddings) and the *local* form (without it); sum the
attribution over the embedding dimension to get one importance per token and normalise it to unit
L2 norm; randomize the model's blocks in cascade, top to bottom, with 10 trials per block, and
compare each trial's explanations with the original ones by cosine similarity, Spearman rank
correlation and Euclidean distance. (Infidelity and max-sensitivity: :mod:`sanitylib.experiments.text_quality`.)
:func:`text_perturbation_ceiling` gives the other end of the scale, as on images
(:mod:`sanitylib.experiments.ceiling`): the same classifier with every weight moved by 0.1 %.

- Attribution: Captum's ``LayerIntegratedGradients`` (Gauss-Legendre rule, the library's default)
  from the Captum BERT tutorial's reference, the sentence with every token but [CLS] and [SEP]
  replaced by [PAD]; Gradient and Gradient ⊙ Input with ``LayerGradientXActivation``, both with
  respect to the output of ``bert.embeddings``. Global and local IG share one integral: global is
  local times (x - x0), which is exactly what Captum's ``multiply_by_inputs=True`` returns.
- Padding tokens get importance 0 and are left out of the rank correlation; special tokens stay
  (the paper's Fig. 10 shows [CLS]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from sanitylib.experiments.ceiling import ceiling_table, perturbed, place
from sanitylib.experiments.claims import (
    describe_n,
    interval_summary,
    setting,
    similarity_claims,
    verdict_list,
)
from sanitylib.experiments.runner import TARGETS, random_band
from sanitylib.infra.cache import cached
from sanitylib.methods.randomization import randomize, step_names
from sanitylib.methods.text import (
    TEXT_LABELS,
    TEXT_METRICS,
    compare_maps,
    explain_text,
    l2_normalise,
    normalised_maps,
    text_predicted_class,
)
from sanitylib.models.text import Batch, TextClassifier

__all__ = [
    "CHAPTER",
    "PAPER_METHODS",
    "TextRandomizationRun",
    "cascading_claims",
    "class_flips",
    "compare_models",
    "data_randomization_claims",
    "randomization_test",
    "scaled_blocks",
    "score_table",
    "text_perturbation_ceiling",
    "text_random_baseline",
    "text_reading",
    "token_ceiling",
]

CHAPTER = "08_text"
#: The methods Kokhlikyan et al. test on text (their Figs. 3 and 12).
PAPER_METHODS = ("ig_global", "ig_local")


def score_table(a: Mapping[str, Mapping[str, np.ndarray]], b: Mapping[str, Mapping[str, np.ndarray]],
                mask: torch.Tensor, metrics: Sequence[str] = TEXT_METRICS,
                labels: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Tidy similarity of two :func:`normalised_maps` results: one row per granularity, method,
    metric and sentence."""
    rows = []
    for granularity, maps in a.items():
        for method, first in maps.items():
            for metric in metrics:
                values = compare_maps(first, b[granularity][method], mask, metric)
                rows.append(pd.DataFrame({**(labels or {}), "granularity": granularity,
                                          "method": method, "metric": metric,
                                          "sentence": np.arange(len(values)), "value": values}))
    return pd.concat(rows, ignore_index=True)


def _inputs(batch: Batch, reference: torch.Tensor) -> list[torch.Tensor]:
    """What identifies the sentences and the IG reference in a cache key."""
    return [batch.input_ids, batch.attention_mask, reference]


def _original(model: TextClassifier, batch: Batch, reference: torch.Tensor, steps: int
              ) -> dict[str, object]:
    """The trained model's normalised maps (for its predicted classes) and predictions, cached."""
    key = {"model": model, "inputs": _inputs(batch, reference), "steps": steps, "step": "original"}
    return cached("text_explanations", key, lambda: {
        "maps": normalised_maps(explain_text(model, batch, reference, steps), batch.attention_mask),
        "predictions": text_predicted_class(model, batch)})


def text_perturbation_ceiling(model: TextClassifier, batch: Batch, reference: torch.Tensor, *,
                         steps: int = 20, relative: float = 1e-3, seeds: Sequence[int] = (0,),
                         metrics: Sequence[str] = TEXT_METRICS) -> pd.DataFrame:
    """How similar explanations of the same function are: the trained model's against those of
    copies with every weight ``p`` replaced by ``p * (1 + relative * N(0, 1))``
    (:func:`sanitylib.experiments.ceiling.perturbed`, one copy per seed), both for the trained
    model's predicted class. Tidy :func:`score_table` rows with ``seed`` (cached per seed)."""
    first = _original(model, batch, reference, steps)
    tables = []
    for seed in seeds:
        other = cached("text_explanations",
                       {"model": model, "inputs": _inputs(batch, reference), "steps": steps,
                        "perturbation": relative, "seed": seed},
                       lambda seed=seed: normalised_maps(
                           explain_text(perturbed(model, relative, seed), batch, reference, steps,
                                        first["predictions"]), batch.attention_mask))
        tables.append(score_table(first["maps"], other, batch.attention_mask, metrics)
                      .assign(seed=seed, relative=relative))
    return pd.concat(tables, ignore_index=True)


def token_ceiling(ceiling_scores: pd.DataFrame) -> pd.DataFrame:
    """The token-level ceiling per method and metric (:func:`~sanitylib.experiments.ceiling.
    ceiling_table` of :func:`text_perturbation_ceiling`'s token rows): mean, 2.5-97.5 % band, counts."""
    return ceiling_table(ceiling_scores[ceiling_scores.granularity == "token"])


def scaled_blocks(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame
                  ) -> pd.DataFrame:
    """Every randomized block's token-level similarity on the random-to-ceiling scale
    (:func:`sanitylib.experiments.ceiling.place`), for two statistics over trials and sentences:
    the median, which the chapter reads (the similarity after the classifier is randomized is
    bimodal, a sign flip when the random classifier predicts the other class), and the mean.

    ``scores``: :attr:`TextRandomizationRun.scores`; ``floor``: :func:`text_random_baseline`;
    ``ceiling``: :func:`token_ceiling`. Tidy rows per (statistic, block, method, metric) with
    ``value``, ``floor``, ``ceiling``, ``position`` and ``verdict``."""
    token = scores[(scores.granularity == "token") & (scores.block != "original")]
    grouped = token.groupby(["step", "block", "method", "metric"], as_index=False).value
    return pd.concat([place(statistic(grouped).assign(statistic=name), floor, ceiling, "value")
                      for name, statistic in (("median", lambda g: g.median()),
                                              ("mean", lambda g: g.mean()))], ignore_index=True)


@dataclass
class TextRandomizationRun:
    """Cascading randomization of a text classifier: scores, token importances, predictions."""

    scores: pd.DataFrame
    steps: list[str]
    #: ``importance[seed][step][method]``: (B, T) token importances (L2-normalised).
    importance: dict[int, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    #: ``predictions[seed][step]``: each step's predicted class per sentence.
    predictions: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def _seed_maps(model: TextClassifier, batch: Batch, reference: torch.Tensor, steps: int,
               init: str, seed: int, fixed: torch.Tensor | None, original: Mapping,
               metrics: Sequence[str]) -> dict[str, object]:
    """One trial: every step's token importances and its embedding-level scores (the cached unit;
    embedding-level maps are too large to keep)."""
    importance, embedding_scores, predictions = {}, [], {}
    for step, randomized in randomize(model, order="cascading",
                                      init=init, seed=seed):
        if step == "original":
            continue
        predictions[step] = text_predicted_class(randomized, batch)
        maps = normalised_maps(explain_text(randomized, batch, reference, steps, fixed),
                               batch.attention_mask)
        importance[step] = maps["token"]
        table = score_table({"embedding": original["embedding"]},
                            {"embedding": maps["embedding"]}, batch.attention_mask, metrics)
        embedding_scores.append(table.assign(block=step))
    return {"importance": importance, "predictions": predictions,
            "embedding_scores": pd.concat(embedding_scores, ignore_index=True)}


def randomization_test(model: TextClassifier, batch: Batch, reference: torch.Tensor, *,
                       seeds: Sequence[int] = (0,), steps: int = 20, init: str = "xavier",
                       target: str = "recompute", metrics: Sequence[str] = TEXT_METRICS,
                       verbose: bool = True) -> TextRandomizationRun:
    """Cascading parameter randomization (Kokhlikyan et al., Fig. 3 and Appendix B).

    Every seed is one trial that re-draws every block (``init``: Xavier, as the paper; or any of
    :data:`sanitylib.randomization.INITS`). ``target="recompute"`` explains each model's own
    predicted class, ``"fixed"`` the original model's. Results are cached per trial, keyed by the
    model's weights, the sentences and every setting.

    Returns:
        A run whose ``scores`` has one row per (seed, block, granularity, method, metric,
        sentence); the "original" step compares the original explanations with themselves.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(TARGETS)}")
    names = step_names(model)
    base_key = {"model": model, "inputs": _inputs(batch, reference), "steps": steps,
                "target": target}
    first = _original(model, batch, reference, steps)
    original, fixed = first["maps"], first["predictions"] if target == "fixed" else None
    run = TextRandomizationRun(pd.DataFrame(), names)
    rows = [score_table(original, original, batch.attention_mask, metrics).assign(
        block="original")]
    for seed in seeds:
        if verbose:
            print(f"  trial {seed}: {len(names) - 1} blocks x {len(batch.tokens)} sentences, "
                  f"IG with {steps} steps", flush=True)
        result = cached("text_explanations", {**base_key, "init": init, "seed": seed,
                                              "metrics": list(metrics)},
                        lambda seed=seed: _seed_maps(model, batch, reference, steps, init, seed,
                                                     fixed, original, metrics))
        run.importance[seed] = {"original": original["token"], **result["importance"]}
        run.predictions[seed] = {"original": first["predictions"], **result["predictions"]}
        for step in names[1:]:
            rows.append(score_table({"token": original["token"]},
                                    {"token": result["importance"][step]},
                                    batch.attention_mask, metrics).assign(block=step, seed=seed))
        rows.append(result["embedding_scores"].assign(seed=seed))
    scores = pd.concat(rows, ignore_index=True)
    scores["step"] = scores.block.map(names.index)
    run.scores = scores[["seed", "step", "block", "granularity", "method", "metric", "sentence",
                         "value"]].sort_values(["granularity", "seed", "step", "method", "metric",
                                                "sentence"], na_position="first",
                                               ignore_index=True)
    return run


def text_random_baseline(mask: torch.Tensor, metrics: Sequence[str] = TEXT_METRICS, n: int = 100,
                    seed: int = 0) -> pd.DataFrame:
    """What each metric says about unrelated maps: pairs of independent standard normal token
    importances over the same sentences (same lengths), L2-normalised; mean and 2.5-97.5 % band."""
    generator = np.random.default_rng(seed)
    masks = np.repeat(np.asarray(mask), n, axis=0)
    pair = (l2_normalise(generator.standard_normal(masks.shape), masks),
            l2_normalise(generator.standard_normal(masks.shape), masks))
    return random_band(metrics, pair, lambda a, b, metric: compare_maps(a, b, masks, metric))


def compare_models(first: TextClassifier, second: TextClassifier, batch: Batch,
                   reference: torch.Tensor, steps: int = 20, metrics: Sequence[str] = TEXT_METRICS
                   ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]],
                              pd.DataFrame]:
    """The data randomization test on text (Kokhlikyan et al., Appendix B, Fig. 12): explain the
    same sentences with two models sharing a tokenizer (trained on true and on permuted labels),
    each for its own predicted class, and score their similarity.

    Returns both models' :func:`normalised_maps` and the tidy scores of :func:`score_table`.
    """
    maps = [cached("text_explanations", {"model": model, "steps": steps,
                                         "inputs": _inputs(batch, reference)},
                   lambda model=model: normalised_maps(explain_text(model, batch, reference,
                                                                    steps),
                                                       batch.attention_mask))
            for model in (first, second)]
    return maps[0], maps[1], score_table(maps[0], maps[1], batch.attention_mask, metrics)


def _token_summary(scores: pd.DataFrame, model: str, metric: str,
                   methods: Sequence[str]) -> pd.DataFrame:
    """Token-level ``metric`` of ``methods`` over the sentences (trials nested in them)."""
    token = scores[(scores.granularity == "token") & (scores.metric == metric)
                   & scores.method.isin(list(methods))]
    return interval_summary(token.assign(model=model, dataset="sst2"),
                            ["model", "dataset", "method", "metric"])


def cascading_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame,
                     steps: Sequence[str], *, model: str, init: str = "xavier",
                     target: str = "recompute", metric: str = "cosine",
                     methods: Sequence[str] = PAPER_METHODS, chapter: str = CHAPTER
                     ) -> pd.DataFrame:
    """Kokhlikyan et al., Fig. 3 and Section 3.2: the token importances of global and local IG
    become unrelated to the trained model's once the classifier is re-initialized
    (``steps[1]``), and after every block (``steps[-1]``). Claims per method and step on
    ``metric`` over the sentences (:attr:`TextRandomizationRun.scores`), against the random band
    ``floor`` (:func:`text_random_baseline`) and ``ceiling`` (:func:`token_ceiling`)."""
    label = f"{model} on SST-2"
    return pd.concat([similarity_claims(
        _token_summary(scores[scores.block == block], model, metric, methods), floor,
        {m: "changes" for m in methods}, chapter=chapter, test="Text cascading randomization",
        source="Kokhlikyan et al. 2021, Fig. 3 and Section 3.2",
        statement=f"{{method}}'s token importances {{expectation}} once {where} of {label} "
                  f"is re-initialized ({metric})",
        statistic=f"mean similarity after {where} is re-initialized", ceiling=ceiling,
        setting=setting(target=target, init=init), labels=TEXT_LABELS)
        for block, where in ((steps[1], "the classifier"), (steps[-1], "every block"))],
        ignore_index=True)


def data_randomization_claims(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame,
                              *, model: str, metric: str = "cosine",
                              methods: Sequence[str] = PAPER_METHODS, chapter: str = CHAPTER
                              ) -> pd.DataFrame:
    """The data randomization test on text (Kokhlikyan et al., Appendix B, Fig. 12): the token
    importances of the classifier fine-tuned on permuted labels are unrelated to those of the one
    fine-tuned on true labels. Claims per method on ``metric`` over the sentences
    (:func:`compare_models`' scores), each model explaining its own predicted class."""
    return similarity_claims(
        _token_summary(scores, model, metric, methods), floor, {m: "changes" for m in methods},
        chapter=chapter, test="Data randomization", source="Kokhlikyan et al. 2021, Fig. 12",
        statement=f"Against {model} fine-tuned on true SST-2 labels, {{method}}'s token "
                  f"importances for the one fine-tuned on permuted labels {{expectation}} "
                  f"({metric})",
        statistic="mean similarity, true- against permuted-label model", ceiling=ceiling,
        setting=setting(), labels={m: TEXT_LABELS[m] for m in methods})


def class_flips(run: TextRandomizationRun, block: str, metric: str = "cosine") -> pd.DataFrame:
    """Per trial, sentence and method at ``block``: whether the randomized model predicts another
    class than the trained one (``flipped``) beside the token-level ``metric``. A random
    classifier that predicts the other class explains the other logit, whose attribution can be
    close to the negative of the first: this table tests that reading of a low mean."""
    scores = run.scores[(run.scores.block == block) & (run.scores.granularity == "token")
                        & (run.scores.metric == metric)]
    flips = pd.concat([pd.DataFrame({
        "seed": seed, "sentence": np.arange(len(steps["original"])),
        "flipped": (np.asarray(steps[block]) != np.asarray(steps["original"]))})
        for seed, steps in run.predictions.items()], ignore_index=True)
    return scores.merge(flips, on=["seed", "sentence"], how="left")


def text_reading(claims: pd.DataFrame, flips: pd.DataFrame, scores: pd.DataFrame,
                 steps: Sequence[str]) -> str:
    """The chapter's claims in words (:func:`cascading_claims` after the classifier and after
    every block, :func:`data_randomization_claims`), with how often re-initializing the classifier
    flips the predicted class and the mean similarity with and without a flip (:func:`class_flips`
    at ``steps[1]``), and the embedding-level similarity of the global methods once every block
    above the embeddings is re-initialized (``scores``: :attr:`TextRandomizationRun.scores`)."""
    cascade = claims[claims.test == "Text cascading randomization"]
    first = cascade[cascade.statistic.str.contains("the classifier")]
    every = cascade[cascade.statistic.str.contains("every block")]
    data = claims[claims.test == "Data randomization"]
    pairs = flips.drop_duplicates(["seed", "sentence"])
    means = flips.groupby(["method", "flipped"]).value.mean()

    def split(method: str) -> str:
        parts = [f"{means[method, kind]:+.2f} {word}" for kind, word in
                 ((True, "where the class flips"), (False, "where it does not"))
                 if (method, kind) in means.index]
        return f"{TEXT_LABELS[method]} " + " and ".join(parts)

    embedding = scores[(scores.granularity == "embedding") & (scores.block == steps[-2])
                       & (scores.metric == "cosine")
                       & scores.method.isin(["ig_global", "gradient_x_input"])]
    below = interval_summary(embedding, ["method", "metric"])
    unmultiplied = ", ".join(f"{TEXT_LABELS[r.method]} {r.mean:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"
                             for r in below.itertuples())
    n_text = (describe_n(int(below["n"].iloc[0]), int(below["n_seeds"].iloc[0]), "sentence")
              if len(below) else "no scores")
    reason = ("\n\nWhere the claim after the classifier differs, a possible reason, untested "
              "here: a random two-way readout of the mean-pooled sentence vector may still weight "
              "the tokens much like the trained one; BERT-base read through [CLS], the paper's "
              "model, may behave differently."
              if (first.verdict == "differs").any() else "")
    return f"""
**After the classifier alone** ({steps[1]}) is re-initialized, the claim that the token
importances become like random ones (cosine, over the sentences with the trials nested):
{verdict_list(first, TEXT_LABELS, "sentence")}. **After every block**:
{verdict_list(every, TEXT_LABELS, "sentence")}. **Data randomization** (the model fine-tuned on
permuted labels against the one fine-tuned on true labels): {verdict_list(data, TEXT_LABELS, "sentence")}.

Re-initializing the classifier alone flips the predicted class in {int(pairs.flipped.sum())} of
{len(pairs)} trial × sentence pairs; the mean cosine is
{'; '.join(split(m) for m in PAPER_METHODS if m in set(flips.method))}.{reason}

**Without the summation over the embedding dimension** (the dashed curves), the mean cosine once
every block above the embeddings is re-initialized ({steps[-2]}) is {unmultiplied}
({n_text}). Kokhlikyan et al. attribute the difference from images to that summation and to
embedding coordinates carrying no spatial structure for the multiplier; these values are this
chapter's test of the first reason (no random band is computed for embedding-level vectors).
"""
