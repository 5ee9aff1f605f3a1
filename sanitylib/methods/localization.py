"""Does a map point at the evidence? Relevance mass and rank accuracy against a ground-truth mask.

Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of
neural network explanations", Information Fusion 81, https://doi.org/10.1016/j.inffus.2021.11.008:

- *relevance mass accuracy*: the share of a map's relevance that falls inside the mask;
- *relevance rank accuracy*: of the K pixels a map ranks highest, K the mask's size, the share
  inside the mask.

A map is read as its magnitude, ``|map|`` summed over channels
(:func:`sanitylib.methods.edges.magnitude`), the form in which the book compares maps: the
paper's gradients and Guided BackProp carry no meaning in their sign. Quantus's
``RelevanceMassAccuracy`` and ``RelevanceRankAccuracy`` give the same numbers on such maps (the
tests check it); written here because Quantus breaks ties in the ranking by the order of
``argsort``, while a coarse map (GradCAM upsampled, a Guided GradCAM that is zero on most
pixels) ties many pixels at the K-th value: :func:`rank_accuracy` counts tied pixels by their
expected share under a random order instead. Both metrics are undefined (NaN) for a constant map,
which ranks nothing, and for an empty mask; under either, a map unrelated to the mask scores the
mask's area on average (:func:`chance`).
"""

from __future__ import annotations

import numpy as np
import torch

from sanitylib.methods.edges import magnitude

__all__ = ["LOCALIZATION_METRICS", "chance", "mass_accuracy", "rank_accuracy"]

#: The metrics by name, with their reference.
LOCALIZATION_METRICS = {"mass_accuracy": "relevance mass accuracy (Arras et al. 2022)",
                        "rank_accuracy": "relevance rank accuracy (Arras et al. 2022)"}


def _mask_rows(masks: torch.Tensor | np.ndarray) -> np.ndarray:
    """Each mask as one boolean row, (B, H·W)."""
    mask = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    return mask.reshape(len(mask), -1).astype(bool)


def _flat(maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image relevance and mask rows, and which rows are defined (a non-constant map and a
    non-empty mask)."""
    relevance = magnitude(maps)
    mask = _mask_rows(masks)
    if mask.shape[0] != relevance.shape[0] or mask.shape[1] != np.prod(relevance.shape[-2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match maps {relevance.shape}")
    relevance = relevance.reshape(len(relevance), -1)
    defined = (np.ptp(relevance, axis=1) > 0) & mask.any(axis=1) & np.isfinite(relevance).all(1)
    return relevance, mask, defined


def chance(masks: torch.Tensor | np.ndarray) -> np.ndarray:
    """Each mask's area as a share of the image: what a map unrelated to the mask scores on
    average under either metric."""
    return _mask_rows(masks).mean(axis=1)


def mass_accuracy(maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray
                  ) -> np.ndarray:
    """Relevance mass accuracy of each map, (B,): the relevance inside the mask over all of it;
    NaN for a constant map or an empty mask."""
    relevance, mask, defined = _flat(maps, masks)
    inside = (relevance * mask).sum(axis=1)
    total = relevance.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, inside / np.where(defined, total, 1.0), np.nan)


def rank_accuracy(maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray
                  ) -> np.ndarray:
    """Relevance rank accuracy of each map, (B,): the share of the mask among the K pixels of
    highest relevance, K the mask's size; pixels tied at the K-th value count by their expected
    share under a random order; NaN for a constant map or an empty mask."""
    relevance, mask, defined = _flat(maps, masks)
    k = mask.sum(axis=1)
    ordered = -np.sort(-relevance, axis=1)
    kth = ordered[np.arange(len(ordered)), np.maximum(k - 1, 0)][:, None]
    above, tied = relevance > kth, relevance == kth
    places_left = k - above.sum(axis=1)  # how many of the tied pixels make the top K
    hits = (above & mask).sum(axis=1) + places_left * (tied & mask).sum(axis=1) / tied.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, hits / np.where(defined, k, 1), np.nan)
