"""Token-level explanations of a text classifier and their cascading randomization test.

Kokhlikyan et al. (2021), Section 3 and Appendix B: explain a BERT sentiment classifier with
Layer Integrated Gradients on its embedding layer, in the *global* form (times the difference
between the input's and the baseline's embeddings) and the *local* form (without it); sum the
attribution over the embedding dimension to get one importance per token and normalise it to unit
L2 norm; randomize the model's blocks in cascade, top to bottom, with 10 trials per block, and
compare each trial's explanations with the original ones by cosine similarity, Spearman rank
correlation and Euclidean distance. (Infidelity and max-sensitivity: :mod:`sanitylib.experiments.text_quality`.)
:func:`perturbation_ceiling` gives the other end of the scale, as on images
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
from sanitylib.experiments.runner import TARGETS, random_band
from sanitylib.infra.cache import cached
from sanitylib.methods import randomization, saliency, similarity
from sanitylib.methods import text as text_methods
from sanitylib.methods.randomization import randomize, step_names
from sanitylib.methods.text import (
    METRICS,
    compare_maps,
    explain_text,
    l2_normalise,
    normalised_maps,
    predicted_class,
)
from sanitylib.models.text import Batch, TextClassifier

__all__ = ["TextRandomizationRun", "compare_models", "perturbation_ceiling", "random_baseline",
           "randomization_test", "scaled_blocks", "score_table", "token_ceiling"]

#: The code the text explanations depend on (part of their cache keys).
TEXT_CODE = (text_methods, saliency, randomization, similarity)


def score_table(a: Mapping[str, Mapping[str, np.ndarray]], b: Mapping[str, Mapping[str, np.ndarray]],
                mask: torch.Tensor, metrics: Sequence[str] = METRICS,
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
        "predictions": predicted_class(model, batch)}, code=TEXT_CODE)


def perturbation_ceiling(model: TextClassifier, batch: Batch, reference: torch.Tensor, *,
                         steps: int = 20, relative: float = 1e-3, seeds: Sequence[int] = (0,),
                         metrics: Sequence[str] = METRICS) -> pd.DataFrame:
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
                                        first["predictions"]), batch.attention_mask),
                       code=(*TEXT_CODE, perturbed))
        tables.append(score_table(first["maps"], other, batch.attention_mask, metrics)
                      .assign(seed=seed, relative=relative))
    return pd.concat(tables, ignore_index=True)


def token_ceiling(ceiling_scores: pd.DataFrame) -> pd.DataFrame:
    """The token-level ceiling per method and metric (:func:`~sanitylib.experiments.ceiling.
    ceiling_table` of :func:`perturbation_ceiling`'s token rows): mean, 2.5-97.5 % band, counts."""
    return ceiling_table(ceiling_scores[ceiling_scores.granularity == "token"])


def scaled_blocks(scores: pd.DataFrame, floor: pd.DataFrame, ceiling: pd.DataFrame
                  ) -> pd.DataFrame:
    """Every randomized block's token-level similarity on the random-to-ceiling scale
    (:func:`sanitylib.experiments.ceiling.place`), for two statistics over trials and sentences:
    the median, which the chapter reads (the similarity after the classifier is randomized is
    bimodal, a sign flip when the random classifier predicts the other class), and the mean.

    ``scores``: :attr:`TextRandomizationRun.scores`; ``floor``: :func:`random_baseline`;
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
        predictions[step] = predicted_class(randomized, batch)
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
                       target: str = "recompute", metrics: Sequence[str] = METRICS,
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
                                                     fixed, original, metrics),
                        code=(*TEXT_CODE, _seed_maps, score_table))
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


def random_baseline(mask: torch.Tensor, metrics: Sequence[str] = METRICS, n: int = 100,
                    seed: int = 0) -> pd.DataFrame:
    """What each metric says about unrelated maps: pairs of independent standard normal token
    importances over the same sentences (same lengths), L2-normalised; mean and 2.5-97.5 % band."""
    generator = np.random.default_rng(seed)
    masks = np.repeat(np.asarray(mask), n, axis=0)
    pair = (l2_normalise(generator.standard_normal(masks.shape), masks),
            l2_normalise(generator.standard_normal(masks.shape), masks))
    return random_band(metrics, pair, lambda a, b, metric: compare_maps(a, b, masks, metric))


def compare_models(first: TextClassifier, second: TextClassifier, batch: Batch,
                   reference: torch.Tensor, steps: int = 20, metrics: Sequence[str] = METRICS
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
                                                       batch.attention_mask), code=TEXT_CODE)
            for model in (first, second)]
    return maps[0], maps[1], score_table(maps[0], maps[1], batch.attention_mask, metrics)
