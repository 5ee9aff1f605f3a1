"""Count the forward passes a computation makes through a model, and the rows they carry.

The benchmark and the tests use this to compare what an explanation or a randomization run
costs with the minimum it needs. A pass made with gradients enabled is counted as forward +
backward (every such pass in the library is followed by one backward); a pass without as a
prediction. Copies of the model (``copy.deepcopy``, as :func:`sanitylib.methods.randomization.
randomize` makes) keep the hook, so their passes are counted too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PassCount", "counting_passes"]


@dataclass
class PassCount:
    """Passes and rows seen so far."""

    #: Forward passes with gradients enabled (each followed by one backward) and their rows.
    gradient_passes: int = 0
    gradient_rows: int = 0
    #: Forward passes without gradients (predictions) and their rows.
    prediction_passes: int = 0
    prediction_rows: int = 0
    #: The largest batch of any pass.
    largest_pass: int = 0

    @property
    def rows(self) -> int:
        """All rows through the model."""
        return self.gradient_rows + self.prediction_rows


@contextmanager
def counting_passes(module: nn.Module) -> Iterator[PassCount]:
    """Count the passes through ``module`` (and copies made of it) while the block runs."""
    count = PassCount()

    def hook(_: nn.Module, args: tuple[object, ...]) -> None:
        rows = len(args[0]) if args and isinstance(args[0], torch.Tensor) else 0
        if torch.is_grad_enabled():
            count.gradient_passes += 1
            count.gradient_rows += rows
        else:
            count.prediction_passes += 1
            count.prediction_rows += rows
        count.largest_pass = max(count.largest_pass, rows)

    handle = module.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()
