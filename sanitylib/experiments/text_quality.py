"""Infidelity and max-sensitivity of token explanations in embedding space.

Kokhlikyan et al. (2021), Section 3, Table 2 and Fig. 10 score global and local Integrated
Gradients of the BERT sentiment classifier with the evaluation metrics of Yeh et al. (2019), for
the original model and after each step of cascading randomization. Both metrics come from
``captum.metrics``; lower is better for both.

- Infidelity: the paper's perturbations, x - x0 for global IG (the perturbed input is the
  baseline; infidelity is then the squared completeness gap, one deterministic sample) and Gaussian noise N(0, 0.03) on the sentence's token embeddings for
  local IG.
- Max-sensitivity: 5 samples in the L-infinity ball of radius 0.02, Frobenius (L2) norm, relative
  to the explanation's norm (Captum's definition).

Attributions are taken with respect to the output of ``bert.embeddings``, as in
:mod:`sanitylib.experiments.text`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients
from captum.metrics import infidelity, sensitivity_max

from sanitylib.experiments.runner import TARGETS
from sanitylib.infra.cache import cached
from sanitylib.infra.device import module_device
from sanitylib.methods.frozen import explaining
from sanitylib.methods.quality import infidelity_perturbation
from sanitylib.methods.randomization import randomize
from sanitylib.methods.text import IG_VARIANTS, embed, text_predicted_class
from sanitylib.models.text import Batch, TextClassifier


def forward_on_embeddings(model: TextClassifier) -> Callable[..., torch.Tensor]:
    """``f(embeddings, attention_mask) -> logits``: the model from its embedding layer's output on.

    A forward hook replaces ``bert.embeddings``' output, the way Captum's layer methods reach a
    layer; the token ids passed underneath are placeholders.
    """
    def forward(embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        handle = model.bert.embeddings.register_forward_hook(lambda *_: embeddings)
        try:
            ids = torch.zeros(embeddings.shape[:2], dtype=torch.long, device=embeddings.device)
            return model(ids, attention_mask)
        finally:
            handle.remove()
    return forward


def evaluation_metrics(model: TextClassifier, batch: Batch, reference: torch.Tensor,
                       steps: int = 20, target: torch.Tensor | None = None, *,
                       noise_std: float = 0.03, radius: float = 0.02,
                       sensitivity_samples: int = 5, infidelity_samples: int = 10,
                       seed: int = 0) -> pd.DataFrame:
    """Infidelity and max-sensitivity of global and local IG in embedding space, per sentence.

    See the module docstring for the perturbations. Lower is better for both.
    """
    device = module_device(model)
    batch, reference = batch.to(device), reference.to(device)
    target = None if target is None else torch.as_tensor(target).to(device)
    mask = batch.attention_mask
    with explaining(model), torch.random.fork_rng():
        torch.manual_seed(seed)
        target = text_predicted_class(model, batch) if target is None else target
        forward = forward_on_embeddings(model)
        x, x0 = embed(model, batch.input_ids), embed(model, reference)
        keep = mask.unsqueeze(-1).to(x.dtype)
        rows = []
        for method in IG_VARIANTS:
            ig = IntegratedGradients(forward, multiply_by_inputs=method == "ig_global")

            def explanation(inputs: torch.Tensor, ig: IntegratedGradients = ig,
                            **kwargs: object) -> torch.Tensor:
                with torch.enable_grad():  # sensitivity_max runs under no_grad
                    return ig.attribute(inputs, n_steps=steps, **kwargs)

            options = {"baselines": x0, "target": target, "additional_forward_args": (mask,)}
            attributions = explanation(x, **options)
            multiplied = method == "ig_global"
            infid = infidelity(forward, infidelity_perturbation(multiplied, noise_std, keep), x,
                               attributions, baselines=x0, additional_forward_args=(mask,),
                               target=target,
                               n_perturb_samples=1 if multiplied else infidelity_samples)
            sens = sensitivity_max(explanation, x, perturb_radius=radius,
                                   n_perturb_samples=sensitivity_samples, **options)
            rows.append(pd.DataFrame({"method": method, "sentence": np.arange(len(x)),
                                      "infidelity": infid.detach().cpu().numpy(),
                                      "max_sensitivity": sens.detach().cpu().numpy()}))
    return pd.concat(rows, ignore_index=True)


def evaluation_by_block(model: TextClassifier, batch: Batch, reference: torch.Tensor,
                        steps: int = 20, *, init: str = "xavier", seed: int = 0,
                        target: str = "recompute", verbose: bool = True, **options: object
                        ) -> pd.DataFrame:
    """:func:`evaluation_metrics` for the original model and after every step of cascading
    randomization (one trial, ``seed``): the paper's Table 2 and Fig. 10. Cached by the model's
    weights, the sentences and every setting.

    ``target="recompute"`` scores each model's own predicted class, ``"fixed"`` the original's.
    Returns one row per (step, block, method, sentence).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(TARGETS)}")
    key = {"model": model, "inputs": [batch.input_ids, batch.attention_mask, reference],
           "steps": steps, "init": init, "seed": seed, "target": target, "options": options}

    def build() -> pd.DataFrame:
        fixed = text_predicted_class(model, batch) if target == "fixed" else None
        tables = []
        for step, (block, randomized) in enumerate(randomize(model,
                                                             init=init, seed=seed)):
            if verbose:
                print(f"  infidelity and max-sensitivity: {block}", flush=True)
            tables.append(evaluation_metrics(randomized, batch, reference, steps, fixed,
                                             **options).assign(step=step, block=block))
        return pd.concat(tables, ignore_index=True)

    table = cached("text_quality", key, build)
    return table[["step", "block", "method", "sentence", "infidelity", "max_sensitivity"]]
