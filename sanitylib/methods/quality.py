"""Explanation quality: infidelity and max-sensitivity (Yeh et al. 2019, arXiv 1901.09392), with
the settings of Kokhlikyan et al. (2021, arXiv 2106.07475), Section 3; lower is better for both.

Both come from ``captum.metrics``; written here are only the paper's perturbations (Gaussian
noise for local maps, the move to the baseline for maps with the input multiplier) and the
adapter from :func:`sanitylib.methods.saliency.explain` to Captum's explanation function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from torch import nn

from sanitylib.infra.device import module_device
from sanitylib.methods.saliency import explain

__all__ = ["INFIDELITY_STD", "SENSITIVITY_RADIUS", "SENSITIVITY_SAMPLES",
           "infidelity_perturbation", "infidelity_scores", "max_sensitivity_scores"]

#: Kokhlikyan et al., Section 3: infidelity noise, max-sensitivity ball and sample count.
INFIDELITY_STD = 0.03
SENSITIVITY_RADIUS = 0.02
SENSITIVITY_SAMPLES = 5


def infidelity_scores(model: nn.Module, inputs: torch.Tensor, attributions: torch.Tensor,
                      target: torch.Tensor, *, multiplied: bool, std: float = INFIDELITY_STD,
                      n_perturb_samples: int = 10, seed: int = 0) -> np.ndarray:
    """Captum's infidelity (Yeh et al., 2019) of ``attributions``, one value per input.

    ``E[(I · Φ - (f(x) - f(x - I)))^2]`` for the ``target`` logit ``f``. Kokhlikyan et al.,
    Section 3: for local maps the perturbations ``I`` come from N(0, ``std``) (0.03); "the
    perturbations for global IG are represented as x - x0", so for maps that carry the input
    multiplier (``multiplied``) the input moves to the black baseline ``x0 = 0``. Captum divides
    the move by the multiplier ``x - x0`` for such maps, so ``I = 1`` and infidelity becomes the
    squared completeness error ``(sum Φ - (f(x) - f(x0)))^2`` (one draw suffices).
    """
    perturb = infidelity_perturbation(multiplied, std,
                                      generator=torch.Generator().manual_seed(seed))
    model.eval()
    device = module_device(model)
    inputs, attributions = inputs.to(device), attributions.to(device)
    return infidelity(model, perturb, inputs, attributions, baselines=torch.zeros_like(inputs),
                      target=torch.as_tensor(target).to(device),
                      n_perturb_samples=1 if multiplied else n_perturb_samples).cpu().numpy()


def infidelity_perturbation(multiplied: bool, std: float = INFIDELITY_STD,
                            keep: torch.Tensor | None = None,
                            generator: torch.Generator | None = None
                            ) -> Callable[[torch.Tensor, torch.Tensor],
                                          tuple[torch.Tensor, torch.Tensor]]:
    """Kokhlikyan et al.'s infidelity perturbations, as a ``perturb_func(inputs, baselines)`` for
    Captum's :func:`~captum.metrics.infidelity` (images and text embeddings alike).

    Local maps: ``I`` from N(0, ``std``), times ``keep`` (e.g. a sentence's real tokens, (B, T, 1))
    when given; drawn from ``generator``, else from torch's global generator. Maps with the input
    multiplier (``multiplied``): the input moves to the baseline and Captum's ``I`` for such maps,
    ``(x - x~) / (x - x0)``, is 1.
    """
    def perturb(x: torch.Tensor, baselines: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if multiplied:
            return torch.ones_like(x), baselines
        noise = std * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        if keep is not None:  # Captum repeats every input n_perturb_samples times
            noise = noise * keep.repeat_interleave(len(x) // len(keep), dim=0)
        return noise, x - noise
    return perturb


def max_sensitivity_scores(model: nn.Module, inputs: torch.Tensor, method: str,
                           options: Mapping[str, object], target: torch.Tensor, *,
                           radius: float = SENSITIVITY_RADIUS,
                           n_perturb_samples: int = SENSITIVITY_SAMPLES, seed: int = 0
                           ) -> np.ndarray:
    """Captum's max-sensitivity: the largest ``||Φ(x + δ) - Φ(x)||_2 / ||Φ(x)||_2`` over
    ``n_perturb_samples`` draws of δ uniform in the L∞ ball of ``radius``, one value per input.

    The noisy methods draw their noise afresh for the perturbed inputs (as Captum's NoiseTunnel
    would), so their sampling noise counts as sensitivity.
    """
    def explanation(x: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor
                    ) -> tuple[torch.Tensor]:
        # Captum passes inputs as a tuple and iterates over the returned tuple of maps
        x = x[0] if isinstance(x, tuple) else x
        if isinstance(target, torch.Tensor) and target.numel() == 1 and len(x) > 1:
            target = target.reshape(1).expand(len(x))  # one input: Captum leaves its label unexpanded
        return (explain(model, x, method, target=target, **dict(options)),)

    device = module_device(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # Captum's default perturbation draws from the global generator
        return sensitivity_max(explanation, inputs.to(device), perturb_radius=radius,
                               n_perturb_samples=n_perturb_samples, norm_ord="fro",
                               target=torch.as_tensor(target).to(device)).cpu().numpy()
