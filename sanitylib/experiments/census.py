"""What a randomized network does to its inputs: an activation census at every randomization step.

Adebayo et al. (2018, Section 4) find Guided BackProp's maps nearly unchanged by cascading
randomization; on EfficientNet-Lite0 they change (chapter "Why EfficientNet-Lite0 disagrees").
Candidate mechanisms leave traces in a forward pass that are cheap to measure:

- dead rectifiers: the share of rectifier outputs at their lower clamp (0);
- saturated ReLU6: the share at the upper clamp (6), where neither the gradient nor the guided
  rule passes anything;
- a collapsed network: logits that hardly depend on the input. ``logit_std`` is the spread of each
  logit across the inputs, averaged over the classes; ``logit_std_relative`` divides it by the
  spread across the classes (pooled over inputs), near 0 when the network outputs a constant.

Every rectifier call (module, functional, method or aten; :func:`sanitylib.methods.guided.
clamp_call`) of one forward pass is counted; other activations are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from sanitylib.infra.device import module_device
from sanitylib.methods.guided import clamp_call
from sanitylib.methods.randomization import randomize
from sanitylib.models.under_test import ModelUnderTest, model_under_test

__all__ = ["CENSUS_COLUMNS", "Census", "activation_shares", "census_run"]

#: The columns of a census table (:func:`census_run`), after the caller's labels.
CENSUS_COLUMNS = ("order", "batchnorm", "seed", "step", "block", "image", "share_zero",
                  "share_upper", "logit_std", "logit_std_relative", "rectifier_values")


@dataclass(frozen=True)
class Census:
    """One forward pass's rectifier outputs and logits (see the module's docstring): the shares
    per input (one value per row) and the spread of the logits across the inputs."""

    share_zero: tuple[float, ...]
    #: NaN when no rectifier has a finite upper clamp (plain ReLU).
    share_upper: tuple[float, ...]
    logit_std: float
    logit_std_relative: float
    #: Rectifier outputs counted per input (0: no rectifier; both shares are then NaN).
    rectifier_values: int


class _Counting(TorchFunctionMode):
    """Counts, per input row, the rectifier outputs at their lower and upper clamps."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows
        self.zero, self.upper = torch.zeros(rows), torch.zeros(rows)
        self.total = self.bounded = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                         kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        found = clamp_call(func, args, kwargs)
        out = func(*args, **kwargs)
        if found is not None and isinstance(out, torch.Tensor):
            if out.ndim == 0 or out.shape[0] != self.rows:
                raise ValueError(f"a rectifier output of shape {tuple(out.shape)} has no batch "
                                 f"dimension of {self.rows} rows first; the census counts per "
                                 "input")
            _, lo, hi = found
            flat = out.detach().flatten(1) if out.ndim > 1 else out.detach()[:, None]
            self.total += flat.shape[1]
            self.zero += (flat == lo).sum(1).cpu().float()
            if math.isfinite(hi):
                self.bounded += flat.shape[1]
                self.upper += (flat == hi).sum(1).cpu().float()
        return out


@torch.no_grad()
def activation_shares(model: nn.Module, inputs: torch.Tensor) -> Census:
    """The :class:`Census` of one forward pass of ``model`` (in eval mode) on ``inputs`` (at
    least two rows, for the spread across inputs)."""
    if len(inputs) < 2:
        raise ValueError(f"the spread of the logits needs at least 2 inputs, got {len(inputs)}")
    was_training = model.training
    model.eval()
    counting = _Counting(len(inputs))
    try:
        with counting:
            logits = model(inputs.to(module_device(model)))
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise TypeError("the census needs a model returning logits (B, classes)")
    logits = logits.double()
    across_inputs = float(logits.std(dim=0).mean())
    across_classes = float(logits.std(dim=1).mean())
    total, bounded, rows = counting.total, counting.bounded, len(inputs)
    return Census(
        share_zero=tuple((counting.zero / total).tolist()) if total else (math.nan,) * rows,
        share_upper=tuple((counting.upper / bounded).tolist()) if bounded else (math.nan,) * rows,
        logit_std=across_inputs,
        logit_std_relative=across_inputs / across_classes if across_classes > 0 else math.nan,
        rectifier_values=total)


def census_run(model: ModelUnderTest | nn.Module, inputs: torch.Tensor, *,
               order: str = "cascading", seeds: Sequence[int] = (0,), init: str = "default",
               batchnorm: str = "kept", calibration: torch.Tensor | None = None,
               labels: dict[str, object] | None = None) -> pd.DataFrame:
    """The census of the trained model and of every randomization step (the same steps as
    :func:`sanitylib.methods.randomization.randomize` with these arguments), one row per
    (seed, step, input): columns ``labels`` then :data:`CENSUS_COLUMNS` (the logits' spread is
    the batch's, repeated on its rows)."""
    subject = model_under_test(model)
    rows = []
    for seed in seeds:
        steps = randomize(subject, order=order, init=init, seed=seed, batchnorm=batchnorm,
                          calibration=calibration, copies=False)
        for index, (block, module) in enumerate(steps):
            census = activation_shares(module, inputs)
            for image, (zero, upper) in enumerate(zip(census.share_zero, census.share_upper)):
                rows.append({**(labels or {}), "order": order, "batchnorm": batchnorm,
                             "seed": seed, "step": index, "block": block, "image": image,
                             "share_zero": zero, "share_upper": upper,
                             "logit_std": census.logit_std,
                             "logit_std_relative": census.logit_std_relative,
                             "rectifier_values": census.rectifier_values})
    return pd.DataFrame(rows, columns=[*(labels or {}), *CENSUS_COLUMNS])
