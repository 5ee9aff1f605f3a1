"""Model parameter randomization: Adebayo et al. (2018), Section 3.1.

``randomize`` re-initializes a model's blocks step by step and yields each randomized model:

- ``cascading``: top (logits) to bottom; step k keeps the k blocks randomized so far;
- ``independent``: one block at a time, every other block keeps its trained weights;
- ``bottom_up``: cascading from the lowest block upward (asked for by the NeurIPS reviewers).

Each block is re-initialized from a generator seeded by ``seed`` and the block's position, so a
block gets the same random weights whatever the order. Re-initialization schemes
(:data:`INITS`): the layer's own initializer (the original code), a truncated normal with
sigma 0.01 (the paper's text), a uniform distribution of the same standard deviation,
Xavier (Kokhlikyan et al.), and ``quantus``: Quantus 0.6's own scheme (every layer's
``reset_parameters()`` right after ``torch.manual_seed(seed + 1)``, so that the first draws of all
layers coincide up to scale, and batch norms lose their running statistics), for cross-checks.
Batch-norm running statistics (:data:`BATCHNORM`) are kept by default, as in the original code;
``reset`` sets them to mean 0 and variance 1 in the randomized blocks (Quantus 0.6), so that a
re-initialized batch norm is nearly the identity; ``reestimated`` recomputes them after every step
on calibration inputs other than the explained ones, for every batch norm at or above the lowest
randomized block (the layers whose inputs changed).
"""

from __future__ import annotations

import copy
import io
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from sanitylib.infra.device import module_device
from sanitylib.models.mnist import trunc_normal
from sanitylib.models.under_test import ModelUnderTest, model_under_test, submodule

__all__ = ["BATCHNORM", "INITS", "ORDERS", "batchnorm_layers", "randomize",
           "reestimate_batchnorm", "reinitialize", "step_names"]

ORDERS = ("cascading", "independent", "bottom_up")
#: What happens to batch-norm running statistics at each step (see the module's docstring).
BATCHNORM = ("kept", "reestimated", "reset")
#: Held while a block's weights are drawn: the draws come from torch's global generator (as
#: ``reset_parameters`` and Quantus draw them), which threads of one process share.
_GLOBAL_RNG = threading.Lock()
INITS = ("default", "truncated_normal", "uniform", "xavier", "quantus")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)


def reinitialize(module: nn.Module, init: str = "default", std: float = 0.01,
                 reset_batchnorm_stats: bool = False,
                 init_module: Callable[[nn.Module], None] | None = None, seed: int = 0) -> None:
    """Re-initialize every parameter under ``module`` (a block of a model) in place.

    ``default`` re-runs the initializer the model was built with (``init_module``, from the
    model under test; each layer's ``reset_parameters`` when None). The other schemes draw the
    weights and biases of conv, linear and embedding layers from their distribution (Xavier:
    biases zero) and reset normalization layers to scale 1 and offset 0. ``quantus`` calls
    ``reset_parameters()`` of every submodule that has one, each after
    ``torch.manual_seed(seed + 1)`` (Quantus 0.6's ``get_random_layer_generator``).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")
    if init == "quantus":
        for sub in module.modules():
            if isinstance(sub, torch.jit.ScriptModule):
                raise TypeError("a TorchScript model has no reset_parameters to re-run; valid "
                                 "choices here: " + ", ".join(i for i in INITS[1:4]))
            if hasattr(sub, "reset_parameters"):
                torch.manual_seed(seed + 1)
                sub.reset_parameters()
        return
    for sub in module.modules():
        if not any(True for _ in sub.parameters(recurse=False)):
            continue
        if isinstance(sub, torch.jit.ScriptModule):
            _draw_script(sub, init, std)
        elif isinstance(sub, _NORMS):
            if init == "default":
                _default(sub, init_module)
            else:
                nn.init.ones_(sub.weight)
                nn.init.zeros_(sub.bias)
            if reset_batchnorm_stats and hasattr(sub, "reset_running_stats"):
                sub.reset_running_stats()
        elif init == "default":
            _default(sub, init_module)
        elif isinstance(sub, _WEIGHTED):
            _draw(sub, init, std)
        else:
            raise ValueError(f"no re-initialization rule for {type(sub).__name__}; the rules "
                             f"cover conv, linear, embedding and normalization layers")


def _default(module: nn.Module, init_module: Callable[[nn.Module], None] | None) -> None:
    if init_module is not None:
        init_module(module)
    elif hasattr(module, "reset_parameters"):
        module.reset_parameters()


def _draw_script(module: nn.Module, init: str, std: float) -> None:
    """A TorchScript layer: its Python initializer is gone, so ``default`` cannot be re-run;
    the other schemes draw its matrices and kernels, and set 1-D weights (normalization
    scales) to 1 and the biases beside them to 0."""
    if init == "default":
        raise ValueError("a TorchScript model has no initializer to re-run; valid choices here: "
                         + ", ".join(i for i in INITS if i != "default"))
    params = dict(module.named_parameters(recurse=False))
    scale_like = "weight" in params and params["weight"].ndim == 1
    with torch.no_grad():
        for name, param in params.items():
            if scale_like:
                param.fill_(1.0 if name == "weight" else 0.0)
            elif init == "xavier" and param.ndim < 2:
                nn.init.zeros_(param)
            else:
                _draw_one(name, param, init, std)


def _draw_one(name: str, param: torch.Tensor, init: str, std: float) -> None:
    if init == "xavier":
        if name == "weight":
            nn.init.xavier_uniform_(param)
        else:
            nn.init.zeros_(param)
    elif init == "truncated_normal":
        trunc_normal(param, std)
    else:  # uniform with the same standard deviation
        bound = math.sqrt(3.0) * std
        nn.init.uniform_(param, -bound, bound)


def _draw(module: nn.Module, init: str, std: float) -> None:
    for name, param in module.named_parameters(recurse=False):
        _draw_one(name, param, init, std)


def _copy(module: nn.Module) -> nn.Module:
    """A deep copy; a TorchScript module through save and load, since ``copy.deepcopy`` gives it
    parameters that are not leaves (their gradient flags can then not be set)."""
    if not isinstance(module, torch.jit.ScriptModule):
        return copy.deepcopy(module)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still supported
        torch.jit.save(module, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location=next(module.parameters()).device)


def batchnorm_layers(module: nn.Module) -> list[nn.Module]:
    """The batch norms under ``module`` that keep running statistics."""
    return [sub for sub in module.modules()
            if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.track_running_stats]


@torch.no_grad()
def reestimate_batchnorm(module: nn.Module, paths: Sequence[str], calibration: torch.Tensor,
                         max_rows: int = 32) -> None:
    """Recompute the running statistics of every batch norm under ``paths`` of ``module`` (in
    place) from ``calibration`` inputs: each layer's statistics are reset, then averaged over
    forward passes of at most ``max_rows`` rows in training mode (momentum None: a cumulative
    average, as "precise BN" does); every other layer stays in eval mode."""
    norms = [norm for path in paths for norm in batchnorm_layers(submodule(module, path))]
    if not norms:
        return
    if len(calibration) == 0:
        raise ValueError("re-estimating batch-norm statistics needs calibration inputs")
    saved = [(norm, norm.momentum, norm.training) for norm in norms]
    device = module_device(module)
    was_training = module.training
    module.eval()
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        for start in range(0, len(calibration), max_rows):
            module(calibration[start:start + max_rows].to(device))
    finally:
        for norm, momentum, training in saved:
            norm.momentum = momentum
            norm.train(training)
        module.train(was_training)


def randomize(model: ModelUnderTest | nn.Module, blocks: Sequence[str] | None = None,
              order: str = "cascading", init: str = "default", seed: int = 0,
              std: float = 0.01, batchnorm: str = "kept",
              calibration: torch.Tensor | None = None, original: bool = True,
              copies: bool = True) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``("original", model)`` then ``(block, randomized model)`` for each step.

    The weights are drawn on the CPU and moved to the model's device, so a seed gives the same
    randomized model on every device.

    Args:
        model: the trained model (a :class:`ModelUnderTest`, or a built-in ``nn.Module``); never
            modified: the yielded modules are copies.
        blocks: names of the blocks to randomize (default: all), kept in the model's top-to-bottom
            order.
        order: one of :data:`ORDERS`.
        init: one of :data:`INITS`; ``std`` is the truncated normal / uniform scale.
        seed: seeds every block's re-initialization (``quantus``: every layer's, as ``seed + 1``).
        batchnorm: one of :data:`BATCHNORM`: the running statistics ``kept`` (the original
            code), ``reset`` in the randomized blocks (Quantus), or ``reestimated`` on
            ``calibration`` inputs after each step.
        calibration: model inputs other than the explained ones, for ``reestimated``.
        original: yield the ``("original", copy)`` step first.
        copies: yield a fresh copy at every step (the default). With False the randomized
            steps share one working model that the next step changes in place (one copy of the
            model per run instead of one per step, for a consumer done with each step before
            asking for the next, such as the randomization test's loop).
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; valid choices: {', '.join(ORDERS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")
    if batchnorm not in BATCHNORM:
        raise ValueError(f"unknown batchnorm {batchnorm!r}; valid choices: {', '.join(BATCHNORM)}")
    if (batchnorm == "reestimated") != (calibration is not None):
        raise ValueError("calibration inputs are needed with batchnorm='reestimated', and only "
                         "with it")
    subject = full = model_under_test(model)
    if blocks is not None:
        subject = subject.select_blocks(blocks)
    names, every = list(subject.blocks), list(full.blocks)
    steps = names[::-1] if order == "bottom_up" else names
    if original:
        yield "original", _copy(subject.module)
    device = module_device(subject.module)
    working = subject.module  # copied below before any change
    for i, name in enumerate(steps):
        if order == "independent" or i == 0:
            working = _copy(subject.module)
        with _GLOBAL_RNG, torch.random.fork_rng():
            torch.manual_seed(seed * 100_003 + names.index(name))
            for path in subject.blocks[name]:
                block = submodule(working, path).to("cpu")
                reinitialize(block, init, std, batchnorm == "reset", subject.init_module, seed)
                block.to(device)
        if batchnorm == "reestimated":
            randomized = [name] if order == "independent" else steps[:i + 1]
            lowest = max(every.index(n) for n in randomized)
            reestimate_batchnorm(working, [p for n in every[:lowest + 1]
                                           for p in full.blocks[n]], calibration)
        yield name, _copy(working) if copies else working


def step_names(model: ModelUnderTest | nn.Module, blocks: Sequence[str] | None = None,
               order: str = "cascading") -> list[str]:
    """The names :func:`randomize` yields, in order: ``"original"`` then the blocks."""
    subject = model_under_test(model)
    names = list(subject.select_blocks(blocks).blocks if blocks is not None else subject.blocks)
    return ["original", *(names[::-1] if order == "bottom_up" else names)]
