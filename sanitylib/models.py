"""The models of the paper and their ordered, named blocks.

Adebayo et al. (2018), Section 3 and Appendix: a CNN (conv 5x5x32, max-pool, conv 5x5x64,
max-pool, FC 1024, logits) and an MLP (784-2500-1500-500-10) for MNIST and Fashion-MNIST, and
Inception v3 for ImageNet. Blocks are listed top (logits) to bottom, the order of cascading
randomization.
"""

from __future__ import annotations

import copy
import math
import os
import socket
from pathlib import Path

import torch
from torch import nn

ARCHITECTURES = ("cnn", "mlp", "inception_v3")

#: Block name -> submodule path, ordered top (logits) to bottom, per architecture.
BLOCKS: dict[str, dict[str, str]] = {
    "cnn": {"logits": "logits", "fc1": "fc1", "conv2": "conv2", "conv1": "conv1"},
    "mlp": {"logits": "logits", "hidden3": "hidden3", "hidden2": "hidden2", "hidden1": "hidden1"},
    "inception_v3": {"Logits": "fc", **{name: name for name in (
        "Mixed_7c", "Mixed_7b", "Mixed_7a", "Mixed_6e", "Mixed_6d", "Mixed_6c", "Mixed_6b",
        "Mixed_6a", "Mixed_5d", "Mixed_5c", "Mixed_5b", "Conv2d_4a_3x3", "Conv2d_3b_1x1",
        "Conv2d_2b_3x3", "Conv2d_2a_3x3", "Conv2d_1a_3x3")}},
}

#: The layer whose activations GradCAM weights (REPLICATION.md: second conv; Mixed_7c).
GRADCAM_LAYER = {"cnn": "conv2", "inception_v3": "Mixed_7c"}


def _trunc_normal(tensor: torch.Tensor, std: float) -> None:
    """TensorFlow's truncated normal: resample beyond two standard deviations."""
    nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)


class MnistCNN(nn.Module):
    """The paper's MNIST CNN, initialised as in the original TensorFlow code.

    Weights are truncated normal with sigma 0.1 and biases 0.1 (the TensorFlow MNIST tutorial the
    paper's code follows).
    """

    architecture = "cnn"

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 5, padding=2), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Sequential(nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU())
        self.logits = nn.Linear(1024, num_classes)
        for module in self.modules():
            self.init_module(module)

    @staticmethod
    def init_module(module: nn.Module) -> None:
        """The original code's initializer for one conv or linear layer."""
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _trunc_normal(module.weight, 0.1)
            nn.init.constant_(module.bias, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        return self.logits(self.fc1(x))


class MLP(nn.Module):
    """The paper's MLP, 784-2500-1500-500-10 with ReLU; weights truncated normal, sigma 2/sqrt(fan_in)."""

    architecture = "mlp"

    def __init__(self, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        widths = (in_features, 2500, 1500, 500)
        self.flatten = nn.Flatten()
        for i in range(3):
            setattr(self, f"hidden{i + 1}",
                    nn.Sequential(nn.Linear(widths[i], widths[i + 1]), nn.ReLU()))
        self.logits = nn.Linear(500, num_classes)
        for module in self.modules():
            self.init_module(module)

    @staticmethod
    def init_module(module: nn.Module) -> None:
        """The original code's initializer for one linear layer."""
        if isinstance(module, nn.Linear):
            _trunc_normal(module.weight, 2.0 / math.sqrt(module.in_features))
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden1(self.flatten(x))
        return self.logits(self.hidden3(self.hidden2(x)))


def build(architecture: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A freshly initialised CNN or MLP (Inception v3: see :func:`load_inception_v3`)."""
    if architecture == "cnn":
        return MnistCNN(in_channels, num_classes)
    if architecture == "mlp":
        return MLP(in_channels * 28 * 28, num_classes)
    raise ValueError(f"unknown architecture {architecture!r}; trainable here: cnn, mlp "
                     f"(inception_v3 comes from load_inception_v3)")


def architecture_of(model: nn.Module) -> str:
    """The architecture name of a model built by this module or torchvision's Inception v3."""
    from torchvision.models import Inception3

    if isinstance(model, Inception3):
        return "inception_v3"
    name = getattr(model, "architecture", None)
    if name not in BLOCKS:
        raise ValueError(f"{type(model).__name__} has no known block list; valid architectures: "
                         f"{', '.join(ARCHITECTURES)} (or pass blocks explicitly)")
    return name


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's named blocks, top (logits) to bottom, as in REPLICATION.md."""
    return [(name, model.get_submodule(path))
            for name, path in BLOCKS[architecture_of(model)].items()]


def init_module_default(model: nn.Module, module: nn.Module) -> None:
    """Re-run the initializer the model was built with on one module (the original code's way)."""
    own = getattr(type(model), "init_module", None)
    if own is not None:
        own(module)
    elif architecture_of(model) == "inception_v3":
        _init_inception_module(module)
    elif hasattr(module, "reset_parameters"):
        module.reset_parameters()


def _init_inception_module(module: nn.Module) -> None:
    """TF-slim's Inception v3 initializers: variance scaling (factor 2, fan-in, truncated normal)
    for convolutions, truncated normal with sigma 0.01 for the logits, batch-norm scale 1 and
    offset 0."""
    if isinstance(module, nn.Conv2d):
        fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        # 0.8796: the standard deviation of a unit normal truncated at two sigma (TF's correction).
        _trunc_normal(module.weight, math.sqrt(2.0 / fan_in) / 0.87962566)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        _trunc_normal(module.weight, 0.01)
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
        try:
            state = weights.get_state_dict(progress=True, check_hash=True)
        except Exception as error:  # noqa: BLE001 - any network failure: report and give up
            tried.append(f"torchvision download of {weights.url}: failed ({type(error).__name__})")
        finally:
            socket.setdefaulttimeout(previous)
    elif state is None:
        tried.append("torchvision download: skipped (offline)")
    if state is None:
        raise PretrainedWeightsUnavailable(
            "pretrained Inception v3 weights are not available. Tried:\n  - " + "\n  - ".join(tried)
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
            _init_inception_module(module)
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

    Captum's Guided Backprop hooks only ``nn.ReLU`` modules; torchvision's Inception v3 applies
    ``F.relu(..., inplace=True)`` inside ``BasicConv2d``, so without this conversion Guided
    Backprop silently returns the plain gradient (REPLICATION.md; in-place ops also break full
    backward hooks, captum#973). Parameter names are unchanged, so state dicts still load.
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


def count_relu_calls(model: nn.Module, inputs: torch.Tensor) -> tuple[int, int]:
    """``(functional relu calls, calls made by nn.ReLU modules)`` during one forward pass.

    When the two agree, every ReLU runs through a module that Guided Backprop can hook.
    """
    from torch.overrides import TorchFunctionMode

    functional = [0]
    relu_fns = {torch.relu, torch.relu_, torch.nn.functional.relu, torch.nn.functional.relu_}

    class _Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in relu_fns:
                functional[0] += 1
            return func(*args, **(kwargs or {}))

    module_calls = [0]
    handles = [m.register_forward_hook(lambda *_: module_calls.__setitem__(0, module_calls[0] + 1))
               for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad(), _Count():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return functional[0], module_calls[0]


class LogSumExpPool2d(nn.Module):
    """LogSumExp pooling, a smooth stand-in for max pooling (Kokhlikyan et al., 2021, Section 3).

    Each window of ``n`` values becomes ``log(mean(exp(t * x))) / t`` for temperature ``t``: it
    lies between ``max - log(n) / t`` and ``max``, so it tends to max pooling as ``t`` grows and to
    average pooling as ``t`` tends to 0. PyTorch has no such layer, hence this module; padding is
    by ``-inf``, as max pooling pads, and padded positions count in ``n``.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, temperature: float = 10.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        pair = nn.modules.utils._pair
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.padding = pair(padding)
        self.temperature = float(temperature)

    @classmethod
    def from_max_pool(cls, pool: nn.MaxPool2d, temperature: float) -> LogSumExpPool2d:
        """The LogSumExp counterpart of a ``MaxPool2d`` (same window, stride and padding)."""
        pair = nn.modules.utils._pair
        if pair(pool.dilation) != (1, 1) or pool.ceil_mode or pool.return_indices:
            raise ValueError("only MaxPool2d without dilation, ceil_mode or return_indices can be "
                             f"replaced; got {pool}")
        return cls(pool.kernel_size, pool.stride, pool.padding, temperature)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"temperature={self.temperature}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = nn.functional.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        windows = nn.functional.unfold(self.temperature * x, (kh, kw), stride=(sh, sw))
        windows = windows.view(batch, channels, kh * kw, -1)
        pooled = (torch.logsumexp(windows, dim=2) - math.log(kh * kw)) / self.temperature
        out_h = (height + 2 * ph - kh) // sh + 1
        out_w = (width + 2 * pw - kw) // sw + 1
        return pooled.view(batch, channels, out_h, out_w)


def smooth(model: nn.Module, beta: float = 10.0, temperature: float | None = None, *,
           activations: bool = True, pooling: bool = True) -> nn.Module:
    """A copy of ``model`` with ReLU replaced by Softplus and MaxPool by LogSumExp pooling.

    Kokhlikyan et al. (2021), Section 3: a smoother network function gives lower infidelity.
    ``beta`` is Softplus' sharpness, ``log(1 + exp(beta x)) / beta`` (ReLU as beta grows);
    ``temperature`` that of :class:`LogSumExpPool2d` (default: ``beta``). ``activations`` and
    ``pooling`` choose which of the two replacements to make. Parameter names, block paths and
    the ``architecture`` attribute stay as they were, so trained state dicts load and
    :func:`sanitylib.randomization.randomize` works on the copy; ``model`` itself is unchanged.
    torchvision's Inception v3 first gets module ReLUs (:func:`with_module_relus`); its
    functional max pools inside Mixed_6a and Mixed_7a cannot be swapped and stay max pools.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    temperature = beta if temperature is None else temperature
    smoothed = with_module_relus(model)  # a deep copy
    for parent in list(smoothed.modules()):
        for name, child in list(parent.named_children()):
            if activations and isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta=beta))
            elif pooling and isinstance(child, nn.MaxPool2d):
                setattr(parent, name, LogSumExpPool2d.from_max_pool(child, temperature))
    return smoothed
