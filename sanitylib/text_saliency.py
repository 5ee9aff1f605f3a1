"""Token-level explanations of a text classifier and their cascading randomization test.

Kokhlikyan et al. (2021), Section 3 and Appendix B: explain a BERT sentiment classifier with
Layer Integrated Gradients on its embedding layer, in the *global* form (times the difference
between the input's and the baseline's embeddings) and the *local* form (without it); sum the
attribution over the embedding dimension to get one importance per token and normalise it to unit
L2 norm; randomize the model's blocks in cascade, top to bottom, with 10 trials per block, and
compare each trial's explanations with the original ones by cosine similarity, Spearman rank
correlation and Euclidean distance. (Infidelity and max-sensitivity: :mod:`sanitylib.text_quality`.)

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
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from scipy import stats

from sanitylib import similarity
from sanitylib.cache import cached
from sanitylib.experiments import TARGETS, band, fingerprint
from sanitylib.randomization import randomize
from sanitylib.saliency import explaining
from sanitylib.text import Batch, TextClassifier, text_blocks

METHODS = ("ig_global", "ig_local", "gradient", "gradient_x_input")
LABELS = {"ig_global": "IG (global)", "ig_local": "IG (local)", "gradient": "Gradient",
          "gradient_x_input": "Gradient ⊙ Input"}
METRICS = ("cosine", "spearman", "l2_distance")
METRIC_LABELS = {"cosine": "cosine similarity", "spearman": "Spearman rank correlation",
                 "l2_distance": "Euclidean distance"}
#: ``token``: importance per token (summed over the embedding dimension, the paper's choice);
#: ``embedding``: the attribution of every embedding coordinate, not summed.
GRANULARITIES = ("token", "embedding")
#: The two IG variants the evaluation metrics score (the paper's Table 2 and Fig. 10).
IG_VARIANTS = ("ig_global", "ig_local")


def reference_ids(batch: Batch, tokenizer: object) -> torch.Tensor:
    """The IG baseline: every token replaced by [PAD] except the special ones ([CLS], [SEP])."""
    special = torch.tensor(sorted(set(tokenizer.all_special_ids) - {tokenizer.pad_token_id}))
    keep = torch.isin(batch.input_ids, special)
    return torch.where(keep, batch.input_ids, torch.full_like(batch.input_ids,
                                                               tokenizer.pad_token_id))


@torch.no_grad()
def embed(model: TextClassifier, input_ids: torch.Tensor) -> torch.Tensor:
    """The output of ``bert.embeddings`` (B, T, D) for token ids: where attributions live."""
    with explaining(model):
        return model.bert.embeddings(input_ids=input_ids)


@torch.no_grad()
def predicted_class(model: TextClassifier, batch: Batch) -> torch.Tensor:
    """The argmax logit of ``model`` for each sentence."""
    with explaining(model):
        return model(batch.input_ids, batch.attention_mask).argmax(1)


def explain_text(model: TextClassifier, batch: Batch, reference: torch.Tensor, steps: int = 20,
                 target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Embedding-space attributions ``{method: (B, T, D)}`` for every method of :data:`METHODS`.

    ``target``: the class explained per sentence; None explains each sentence's argmax under
    ``model``. Padding positions are zero.
    """
    with explaining(model):
        target = predicted_class(model, batch) if target is None else target
        mask = batch.attention_mask
        forward = lambda ids, m: model(ids, m)  # Captum wants a plain callable
        lig = LayerIntegratedGradients(forward, model.bert.embeddings, multiply_by_inputs=False)
        local = lig.attribute(batch.input_ids, baselines=reference, target=target,
                              additional_forward_args=(mask,), n_steps=steps)
        gradient = LayerGradientXActivation(forward, model.bert.embeddings,
                                            multiply_by_inputs=False).attribute(
            batch.input_ids, target=target, additional_forward_args=(mask,))
        x, x0 = embed(model, batch.input_ids), embed(model, reference)
        maps = {"ig_global": local * (x - x0), "ig_local": local, "gradient": gradient,
                "gradient_x_input": gradient * x}
    keep = mask.unsqueeze(-1).to(x.dtype)
    return {m: (maps[m] * keep).detach() for m in METHODS}


def l2_normalise(maps: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Zero the padding and divide each sentence's map by its L2 norm (over all but the batch axis).

    ``maps`` (B, T) or (B, T, D); ``mask`` (B, T). A map that is zero everywhere becomes NaN.
    """
    m = np.asarray(maps.detach() if isinstance(maps, torch.Tensor) else maps, dtype=np.float64)
    keep = np.asarray(mask, dtype=np.float64).reshape(m.shape[:2] + (1,) * (m.ndim - 2))
    m = m * keep
    norm = np.sqrt((m.reshape(len(m), -1) ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return m / np.where(norm > 0, norm, np.nan).reshape((-1,) + (1,) * (m.ndim - 1))


def token_importance(attributions: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(B, T): the attribution summed over the embedding dimension, L2-normalised per sentence."""
    return l2_normalise(attributions.sum(-1), mask)


def masked_spearman(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Spearman rank correlation per row over the positions where ``mask`` is set.

    Padding is ranked out with SciPy's ``nan_policy="omit"``; ties get their average rank. NaN
    where a row is constant or undefined over its tokens.
    """
    keep = np.asarray(mask, dtype=bool).reshape(a.shape[0], -1)
    a = np.where(keep, np.asarray(a, dtype=np.float64).reshape(len(keep), -1), np.nan)
    b = np.where(keep, np.asarray(b, dtype=np.float64).reshape(len(keep), -1), np.nan)
    bad = (np.isnan(a) & keep).any(1) | (np.isnan(b) & keep).any(1)
    ranks_a = stats.rankdata(a, axis=1, nan_policy="omit")
    ranks_b = stats.rankdata(b, axis=1, nan_policy="omit")
    # Pearson correlation of the ranks over the kept positions (NaN elsewhere).
    ra = ranks_a - np.nanmean(ranks_a, axis=1, keepdims=True)
    rb = ranks_b - np.nanmean(ranks_b, axis=1, keepdims=True)
    numerator = np.nansum(ra * rb, axis=1)
    denominator = np.sqrt(np.nansum(ra * ra, axis=1) * np.nansum(rb * rb, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denominator > 0, numerator / denominator, np.nan)
    rho[bad] = np.nan
    return rho


def compare_maps(a: np.ndarray, b: np.ndarray, mask: torch.Tensor | np.ndarray, metric: str
                 ) -> np.ndarray:
    """One score per sentence between two batches of L2-normalised maps (B, T) or (B, T, D).

    Cosine and Euclidean distance come from :mod:`sanitylib.similarity` (padding is zero in
    both maps, so it adds nothing); Spearman is :func:`masked_spearman` over the real tokens.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid choices: {', '.join(METRICS)}")
    if metric == "spearman":
        m = np.asarray(mask, dtype=bool)
        m = np.broadcast_to(m.reshape(m.shape + (1,) * (a.ndim - 2)), a.shape)
        return masked_spearman(a, b, m)
    if metric == "cosine":
        return similarity.cosine(a, b, batched=True)
    return similarity.l2_distance(a, b, batched=True)


def normalised_maps(attributions: Mapping[str, torch.Tensor], mask: torch.Tensor
                    ) -> dict[str, dict[str, np.ndarray]]:
    """``{granularity: {method: L2-normalised map}}`` for token and embedding granularity."""
    return {"token": {m: token_importance(a, mask) for m, a in attributions.items()},
            "embedding": {m: l2_normalise(a, mask) for m, a in attributions.items()}}


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
    for step, randomized in randomize(model, blocks=text_blocks(model), order="cascading",
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
    step_names = ["original", *text_blocks(model)]
    base_key = {"model": fingerprint(model), "inputs": fingerprint(batch.input_ids,
                                                                   batch.attention_mask,
                                                                   reference),
                "steps": steps, "target": target}
    first = cached("text_explanations", {**base_key, "step": "original"}, lambda: {
        "maps": normalised_maps(explain_text(model, batch, reference, steps), batch.attention_mask),
        "predictions": predicted_class(model, batch)})
    original, fixed = first["maps"], first["predictions"] if target == "fixed" else None
    run = TextRandomizationRun(pd.DataFrame(), step_names)
    rows = [score_table(original, original, batch.attention_mask, metrics).assign(
        block="original")]
    for seed in seeds:
        if verbose:
            print(f"  trial {seed}: {len(step_names) - 1} blocks x {len(batch.tokens)} sentences, "
                  f"IG with {steps} steps", flush=True)
        result = cached("text_explanations", {**base_key, "init": init, "seed": seed,
                                              "metrics": list(metrics)},
                        lambda seed=seed: _seed_maps(model, batch, reference, steps, init, seed,
                                                     fixed, original, metrics))
        run.importance[seed] = {"original": original["token"], **result["importance"]}
        run.predictions[seed] = {"original": first["predictions"], **result["predictions"]}
        for step in step_names[1:]:
            rows.append(score_table({"token": original["token"]},
                                    {"token": result["importance"][step]},
                                    batch.attention_mask, metrics).assign(block=step, seed=seed))
        rows.append(result["embedding_scores"].assign(seed=seed))
    scores = pd.concat(rows, ignore_index=True)
    scores["step"] = scores.block.map(step_names.index)
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
    a = l2_normalise(generator.standard_normal(masks.shape), masks)
    b = l2_normalise(generator.standard_normal(masks.shape), masks)
    return pd.DataFrame([band(metric, compare_maps(a, b, masks, metric)) for metric in metrics])


def compare_models(first: TextClassifier, second: TextClassifier, batch: Batch,
                   reference: torch.Tensor, steps: int = 20, metrics: Sequence[str] = METRICS
                   ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]],
                              pd.DataFrame]:
    """The data randomization test on text (Kokhlikyan et al., Appendix B, Fig. 12): explain the
    same sentences with two models sharing a tokenizer (trained on true and on permuted labels),
    each for its own predicted class, and score their similarity.

    Returns both models' :func:`normalised_maps` and the tidy scores of :func:`score_table`.
    """
    maps = [cached("text_explanations", {"model": fingerprint(model), "steps": steps,
                                         "inputs": fingerprint(batch.input_ids,
                                                               batch.attention_mask, reference)},
                   lambda model=model: normalised_maps(explain_text(model, batch, reference,
                                                                    steps),
                                                       batch.attention_mask))
            for model in (first, second)]
    return maps[0], maps[1], score_table(maps[0], maps[1], batch.attention_mask, metrics)
