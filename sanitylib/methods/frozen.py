"""The state a model is explained in (eval mode and frozen parameters, restored afterwards), and
its predictions in that state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from sanitylib.infra.device import module_device
from sanitylib.models.under_test import ModelUnderTest

__all__ = ["explaining", "predicted_class"]


@contextmanager
def explaining(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients while the block runs; every module's mode and every
    parameter's gradient flag are restored afterwards (a model half in training mode stays so)."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:  # per parameter: a TorchScript module has no requires_grad_
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def predicted_class(model: ModelUnderTest | nn.Module, inputs: torch.Tensor,
                    *forward_args: torch.Tensor, max_rows: int = 256) -> torch.Tensor:
    """The argmax logit of ``model`` for each input, in chunks of ``max_rows``, on the inputs'
    device (the passes run on the model's).

    ``forward_args`` are further per-row model arguments (a text model's attention mask).
    """
    module = model.module if isinstance(model, ModelUnderTest) else model
    device = module_device(module)
    with explaining(module):
        return torch.cat([
            module(inputs[i:i + max_rows].to(device),
                   *(a[i:i + max_rows].to(device) for a in forward_args)).argmax(1)
            for i in range(0, len(inputs), max_rows)]).to(inputs.device)
