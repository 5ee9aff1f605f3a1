"""Blocks and a GradCAM layer for any ``nn.Module``, found from one forward pass.

Cascading randomization (Adebayo et al. 2018, Section 4) needs a model's layers ordered from the
logits down. A built-in architecture lists its blocks (:mod:`sanitylib.models.under_test`); for
any other module the blocks are found here: the submodules that hold parameters, at the
shallowest depth that gives at least ``min_blocks`` of them (the largest submodule with several
parameterised children is opened up while there are fewer), with containers
(``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``: a network's stages) opened into their
members while the count stays within ``max_blocks``. Blocks are ordered by when the forward
pass first calls them, top (last called) first.
The GradCAM layer is the last ``nn.Conv2d`` called in the forward pass. A TorchScript module takes
no hooks, so its submodules' registration order stands in for the call order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from sanitylib.infra.device import module_device

__all__ = ["call_order", "discover_blocks", "last_conv_layer"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _own_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def call_order(model: nn.Module, sample: torch.Tensor) -> list[str]:
    """Paths of every submodule in the order the forward pass first calls it (one pass on
    ``sample``, no gradient). TorchScript modules take no hooks: their registration order is
    taken as the call order."""
    if isinstance(model, torch.jit.ScriptModule):
        return [path for path, _ in model.named_modules() if path]
    order: list[str] = []
    handles = []

    def hook(path: str):
        def record(*_: object) -> None:
            if path not in seen:
                seen.add(path)
                order.append(path)
        return record

    seen: set[str] = set()
    for path, sub in model.named_modules():
        if path:
            handles.append(sub.register_forward_pre_hook(hook(path)))
    try:
        with torch.no_grad():
            model(sample.to(module_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return order


def _children_with_parameters(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        if _own_parameters(child):
            yield (f"{prefix}.{name}" if prefix else name), child


def discover_blocks(model: nn.Module, sample: torch.Tensor, min_blocks: int = 4,
                    max_blocks: int = 30) -> dict[str, tuple[str, ...]]:
    """``{path: (path,)}`` of the model's parameterised blocks, top (logits) to bottom.

    Starts from the model's direct children that hold parameters and repeatedly opens the
    block with the most parameters into its own parameterised children while there are fewer
    than ``min_blocks`` blocks, then every container block while the total stays within
    ``max_blocks`` (so a ResNet's four stages become their residual blocks, which stay whole).
    Blocks are ordered by the forward pass on ``sample``; blocks never called are dropped.
    """
    blocks = dict(_children_with_parameters(model, ""))
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no submodule with parameters to randomize")

    def split(path: str) -> dict[str, nn.Module]:
        return dict(_children_with_parameters(blocks[path], path))

    while len(blocks) < min_blocks:
        candidates = [p for p in blocks if len(split(p)) > 1]
        if not candidates:
            break
        largest = max(candidates, key=lambda p: sum(q.numel() for q in blocks[p].parameters()))
        blocks = _replace(blocks, largest, split(largest))
    changed = True
    while changed:
        changed = False
        for path in list(blocks):
            if not isinstance(blocks[path], _CONTAINERS):
                continue
            parts = split(path)
            if len(parts) > 1 and len(blocks) - 1 + len(parts) <= max_blocks:
                blocks = _replace(blocks, path, parts)
                changed = True
                break
    order = call_order(model, sample)
    called = [p for p in blocks if p in order]
    if not called:
        raise ValueError(f"no parameterised submodule of {type(model).__name__} was called by "
                         "its forward pass; pass blocks explicitly")
    ranked = sorted(called, key=order.index, reverse=True)
    return {path: (path,) for path in ranked}


def _replace(blocks: dict[str, nn.Module], path: str, parts: dict[str, nn.Module]
             ) -> dict[str, nn.Module]:
    out: dict[str, nn.Module] = {}
    for key, value in blocks.items():
        if key == path:
            out.update(parts)
        else:
            out[key] = value
    return out


def last_conv_layer(model: nn.Module, sample: torch.Tensor) -> str | None:
    """The path of the last ``nn.Conv2d`` the forward pass calls (None without one)."""
    convs = {path for path, sub in model.named_modules() if isinstance(sub, nn.Conv2d)}
    called = [p for p in call_order(model, sample) if p in convs]
    return called[-1] if called else None
