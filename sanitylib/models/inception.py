"""torchvision's Inception v3, the paper's ImageNet model, with its ImageNet weights when present.

Adebayo et al. (2018) explain Inception v3 (TF-slim checkpoint ``inception_v3_2016_08_28``; input
299x299 scaled to [-1, 1]) and randomize 17 blocks, Logits down to Conv2d_1a_3x3 (torchvision uses
the same names). GradCAM weights Mixed_7c. Re-initialization follows TF-slim's initializers.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import socket
from pathlib import Path

import torch
from torch import nn

from sanitylib.models.mnist import trunc_normal
from sanitylib.models.under_test import KNOWN_ARCHITECTURES

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "INCEPTION_BLOCKS", "PretrainedWeightsUnavailable",
           "imagenet_denormalize", "imagenet_normalize", "init_inception_module",
           "load_inception_v3", "untrained_inception_v3", "with_module_relus"]

#: Block name -> submodule path, top (logits) to bottom: the paper's 17 blocks.
INCEPTION_BLOCKS: dict[str, str] = {"Logits": "fc", **{name: name for name in (
    "Mixed_7c", "Mixed_7b", "Mixed_7a", "Mixed_6e", "Mixed_6d", "Mixed_6c", "Mixed_6b",
    "Mixed_6a", "Mixed_5d", "Mixed_5c", "Mixed_5b", "Conv2d_4a_3x3", "Conv2d_3b_1x1",
    "Conv2d_2b_3x3", "Conv2d_2a_3x3", "Conv2d_1a_3x3")}}

def init_inception_module(module: nn.Module) -> None:
    """TF-slim's Inception v3 initializers: variance scaling (factor 2, fan-in, truncated normal)
    for convolutions, truncated normal with sigma 0.01 for the logits, batch-norm scale 1 and
    offset 0."""
    if isinstance(module, nn.Conv2d):
        fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        # 0.8796: the standard deviation of a unit normal truncated at two sigma (TF's correction).
        trunc_normal(module.weight, math.sqrt(2.0 / fan_in) / 0.87962566)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        trunc_normal(module.weight, 0.01)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained Inception v3 weights are not on this machine and could not be downloaded."""


def load_inception_v3(weights_path: str | Path | None = None, download: bool | None = None,
                      timeout: float = 10.0) -> nn.Module:
    """torchvision's Inception v3 with its ImageNet weights, in eval mode.

    Looks, in order, at ``weights_path`` (or ``$SANITYLIB_INCEPTION_WEIGHTS``), torchvision's
    weight cache (``$TORCH_HOME/hub/checkpoints``), then torchvision's download unless offline
    (``download=False`` or ``SANITYLIB_OFFLINE=1``).

    Raises:
        PretrainedWeightsUnavailable: naming every place tried. Random weights are never returned
        in place of trained ones.
    """
    from torchvision.models import Inception_V3_Weights, inception_v3

    weights = Inception_V3_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    explicit = weights_path or os.environ.get("SANITYLIB_INCEPTION_WEIGHTS")
    if download is None:
        download = os.environ.get("SANITYLIB_OFFLINE", "0") != "1"
    tried: list[str] = []
    state = None
    if explicit:
        if Path(explicit).exists():
            state = torch.load(explicit, map_location="cpu", weights_only=True)
        else:
            tried.append(f"{explicit} (weights_path or SANITYLIB_INCEPTION_WEIGHTS): no such file")
    if state is None and cached.exists():
        state = torch.load(cached, map_location="cpu", weights_only=True)
    elif state is None:
        tried.append(f"torchvision's weight cache {cached}: no such file")
    if state is None and download:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:  # torch.hub announces the download on stdout; the failure is reported below
            with contextlib.redirect_stdout(io.StringIO()):
                state = weights.get_state_dict(progress=False, check_hash=True)
        except Exception as error:  # noqa: BLE001 - any network failure: report and give up
            tried.append(f"torchvision download of {weights.url}: failed ({type(error).__name__})")
        finally:
            socket.setdefaulttimeout(previous)
    elif state is None:
        tried.append("torchvision download: skipped (offline)")
    if state is None:
        raise PretrainedWeightsUnavailable(
            "no pretrained Inception v3 weights in this environment.\nTried:\n  - " + "\n  - ".join(tried)
            + f"\nPut {cached.name} (torchvision's IMAGENET1K_V1 file) in {cached.parent}, or pass "
            "its path as weights_path= / SANITYLIB_INCEPTION_WEIGHTS, or run once with a network.")
    model = inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    model.load_state_dict(state)
    return model.eval()


def untrained_inception_v3(seed: int = 0) -> nn.Module:
    """Inception v3 with random weights: for timing and mechanics only, never as a trained model."""
    from torchvision.models import inception_v3

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = inception_v3(weights=None, aux_logits=True, transform_input=False,
                             init_weights=False)
        for module in model.modules():
            init_inception_module(module)
    return model.eval()


class _ConvBNReLU(nn.Module):
    """torchvision's BasicConv2d with its functional in-place ReLU made a separate module."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = conv, bn, nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def with_module_relus(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every ReLU is its own non-inplace ``nn.ReLU`` module.

    torchvision's Inception v3 applies ``F.relu(..., inplace=True)`` inside ``BasicConv2d``; module
    ReLUs let :func:`sanitylib.models.smooth.smooth` swap them for Softplus (and let hook-based
    tools such as Captum's Guided Backprop see them; in-place ops also break full backward hooks,
    captum#973). Parameter names are unchanged, so state dicts still load.
    """
    from torchvision.models.inception import BasicConv2d

    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, BasicConv2d):
                setattr(parent, child_name, _ConvBNReLU(child.conv, child.bn))
            elif isinstance(child, nn.ReLU):
                child.inplace = False
    return model


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> torchvision's ImageNet normalization (per-channel mean and std)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def imagenet_denormalize(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`imagenet_normalize`, clipped to [0, 1] (for showing inputs)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0.0, 1.0)


def _defaults(model: nn.Module) -> dict[str, object]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return {"name": "inception_v3",
            "blocks": {name: (path,) for name, path in INCEPTION_BLOCKS.items()},
            "gradcam_layer": "Mixed_7c", "init_module": init_inception_module,
            "class_names": tuple(_IMAGENET_CATEGORIES), "input_size": (299, 299),
            "preprocess": imagenet_normalize, "display": imagenet_denormalize}


KNOWN_ARCHITECTURES["torchvision.models.inception.Inception3"] = _defaults
