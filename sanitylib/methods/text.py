"""Token-level explanations of a text classifier: Kokhlikyan et al. (2021), Section 3.

Layer Integrated Gradients on the output of ``bert.embeddings``, in the *global* form (times the
difference between the input's and the baseline's embeddings) and the *local* form (without it),
Gradient and Gradient ⊙ Input with Captum's ``LayerGradientXActivation``; one importance per
token is the attribution summed over the embedding dimension, normalised to unit L2 norm. The
baseline is the Captum BERT tutorial's: every token but [CLS] and [SEP] replaced by [PAD].
Padding gets importance 0 and is left out of rank correlations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from scipy import stats

from sanitylib.infra.device import module_device
from sanitylib.methods import similarity
from sanitylib.methods.frozen import explaining, predicted_class
from sanitylib.methods.registry import LABELS
from sanitylib.models.text import Batch, TextClassifier

__all__ = [
    "GRANULARITIES",
    "IG_VARIANTS",
    "TEXT_LABELS",
    "TEXT_METHODS",
    "TEXT_METRICS",
    "TEXT_METRIC_LABELS",
    "compare_maps",
    "embed",
    "explain_text",
    "l2_normalise",
    "masked_spearman",
    "normalised_maps",
    "reference_ids",
    "text_predicted_class",
    "token_importance",
]

TEXT_METHODS = ("ig_global", "ig_local", "gradient", "gradient_x_input")
TEXT_LABELS = {"ig_global": "IG (global)", "ig_local": "IG (local)",
               **{m: LABELS[m] for m in ("gradient", "gradient_x_input")}}
TEXT_METRICS = ("cosine", "spearman", "l2_distance")
TEXT_METRIC_LABELS = {"cosine": "cosine similarity", "spearman": "Spearman rank correlation",
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
        return model.bert.embeddings(input_ids=input_ids.to(module_device(model)))


def text_predicted_class(model: TextClassifier, batch: Batch) -> torch.Tensor:
    """The argmax logit of ``model`` for each sentence (:func:`sanitylib.methods.frozen.predicted_class`)."""
    return predicted_class(model, batch.input_ids, batch.attention_mask)


def explain_text(model: TextClassifier, batch: Batch, reference: torch.Tensor, steps: int = 20,
                 target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Embedding-space attributions ``{method: (B, T, D)}`` for every method of :data:`TEXT_METHODS`.

    ``target``: the class explained per sentence; None explains each sentence's argmax under
    ``model``. Padding positions are zero. The passes run on the model's device, the maps come
    back on the batch's.
    """
    home, device = batch.input_ids.device, module_device(model)
    batch, reference = batch.to(device), reference.to(device)
    target = None if target is None else torch.as_tensor(target).to(device)
    with explaining(model):
        target = text_predicted_class(model, batch) if target is None else target
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
    return {m: (maps[m] * keep).detach().to(home) for m in TEXT_METHODS}


def l2_normalise(maps: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Zero the padding and divide each sentence's map by its L2 norm (over all but the batch axis).

    ``maps`` (B, T) or (B, T, D); ``mask`` (B, T). A map that is zero everywhere becomes NaN.
    """
    m = np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps,
                   dtype=np.float64)
    mask = mask.cpu() if isinstance(mask, torch.Tensor) else mask
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

    Cosine and Euclidean distance come from :mod:`sanitylib.methods.similarity` (padding is zero in
    both maps, so it adds nothing); Spearman is :func:`masked_spearman` over the real tokens.
    """
    if metric not in TEXT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid choices: {', '.join(TEXT_METRICS)}")
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
