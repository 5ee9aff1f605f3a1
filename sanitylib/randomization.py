"""Model parameter randomization: Adebayo et al. (2018), Section 3.1.

``randomize`` re-initializes a model's blocks step by step and yields each randomized model:

- ``cascading``: top (logits) to bottom; step k keeps the k blocks randomized so far;
- ``independent``: one block at a time, every other block keeps its trained weights;
- ``bottom_up``: cascading from the lowest block upward (asked for by the NeurIPS reviewers).

Each block is re-initialized from a generator seeded by ``seed`` and the block's position, so a
block gets the same random weights whatever the order. Re-initialization schemes
(:data:`INITS`): the layer's own initializer (the original code), a truncated normal with
sigma 0.01 (the paper's text), a uniform distribution of the same standard deviation, and
Xavier (Kokhlikyan et al.). Batch-norm running statistics are kept by default, as in the original.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from sanitylib.models import BLOCKS, architecture_of, init_module_default

ORDERS = ("cascading", "independent", "bottom_up")
INITS = ("default", "truncated_normal", "uniform", "xavier")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)


def block_paths(model: nn.Module, blocks: Sequence[str] | Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """Resolve ``blocks`` to an ordered ``{name: submodule path}``, top to bottom.

    ``None``: all of the architecture's blocks; a sequence of names: those blocks, in the
    architecture's order; a mapping: used as given (any model).
    """
    if isinstance(blocks, Mapping):
        for path in blocks.values():
            model.get_submodule(path)  # raises a clear AttributeError for a wrong path
        return dict(blocks)
    known = BLOCKS[architecture_of(model)]
    if blocks is None:
        return dict(known)
    unknown = [b for b in blocks if b not in known]
    if unknown:
        raise ValueError(f"unknown block(s) {unknown}; valid choices: {', '.join(known)}")
    return {name: path for name, path in known.items() if name in blocks}


def reinitialize(model: nn.Module, module: nn.Module, init: str = "default",
                 std: float = 0.01, reset_batchnorm_stats: bool = False) -> None:
    """Re-initialize every parameter under ``module`` (a block of ``model``) in place.

    ``default`` re-runs the initializer the model was built with. The other schemes draw the
    weights and biases of conv, linear and embedding layers from their distribution (Xavier:
    biases zero) and reset normalization layers to scale 1 and offset 0.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")
    for sub in module.modules():
        if not any(True for _ in sub.parameters(recurse=False)):
            continue
        if isinstance(sub, _NORMS):
            if init == "default":
                init_module_default(model, sub)
            else:
                nn.init.ones_(sub.weight)
                nn.init.zeros_(sub.bias)
            if reset_batchnorm_stats and hasattr(sub, "reset_running_stats"):
                sub.reset_running_stats()
        elif init == "default":
            init_module_default(model, sub)
        elif isinstance(sub, _WEIGHTED):
            _draw(sub, init, std)
        else:
            raise ValueError(f"no re-initialization rule for {type(sub).__name__}; the rules "
                             f"cover conv, linear, embedding and normalization layers")


def _draw(module: nn.Module, init: str, std: float) -> None:
    for name, param in module.named_parameters(recurse=False):
        if init == "xavier":
            if name == "weight":
                nn.init.xavier_uniform_(param)
            else:
                nn.init.zeros_(param)
        elif init == "truncated_normal":
            nn.init.trunc_normal_(param, std=std, a=-2 * std, b=2 * std)
        else:  # uniform with the same standard deviation
            bound = math.sqrt(3.0) * std
            nn.init.uniform_(param, -bound, bound)


def randomize(model: nn.Module, blocks: Sequence[str] | Mapping[str, str] | None = None,
              order: str = "cascading", init: str = "default", seed: int = 0,
              std: float = 0.01, reset_batchnorm_stats: bool = False
              ) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``("original", model)`` then ``(block, randomized model)`` for each step.

    Args:
        model: the trained model; never modified (every yielded model is a fresh copy).
        blocks: which blocks, see :func:`block_paths`.
        order: one of :data:`ORDERS`.
        init: one of :data:`INITS`; ``std`` is the truncated normal / uniform scale.
        seed: seeds every block's re-initialization.
        reset_batchnorm_stats: also reset batch-norm running statistics (kept by default).
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; valid choices: {', '.join(ORDERS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")
    paths = block_paths(model, blocks)
    names = list(paths)
    steps = names[::-1] if order == "bottom_up" else names
    yield "original", copy.deepcopy(model)
    working = copy.deepcopy(model)
    for name in steps:
        if order == "independent":
            working = copy.deepcopy(model)
        with torch.random.fork_rng():
            torch.manual_seed(seed * 100_003 + names.index(name))
            reinitialize(working, working.get_submodule(paths[name]), init, std,
                         reset_batchnorm_stats)
        yield name, copy.deepcopy(working)
