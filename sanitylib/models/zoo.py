"""Small networks for "architecture as a prior": one factor changed at a time, 28 x 28 inputs.

Adebayo et al. (2018, Section 5.3) suggest that a method whose maps survive randomization reads
the architecture rather than the weights; the course notes on the paper list "not many
architectures tested" as its weakness. Beside the paper's CNN and MLP
(:mod:`sanitylib.models.mnist`), the book trains:

- ``cnn_bn``: the paper's CNN with a batch norm after each convolution (the one change);
- ``resnet_bn``: a small residual network (He et al. 2016, "Deep Residual Learning", CVPR,
  arXiv:1512.03385): a 3x3 stem of 16 channels, then one basic block per stage at 16, 32 and 64
  channels (28, 14 and 7 pixels), batch norm and ReLU, global average pooling;
- ``resnet_bn_relu6``: the same with ReLU6 (EfficientNet-Lite's activation);
- ``vit``: a small vision transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words",
  ICLR, arXiv:2010.11929): 7x7 patches (16 tokens) of width 64, two pre-norm blocks of 4-head
  attention and an MLP with **ReLU** (not GELU, so that Guided BackProp has a rule for every
  rectifier), mean pooling. It has no convolutional map, so GradCAM and Guided GradCAM refuse it.

Every network registers its blocks (top to bottom) and its initializer with
:data:`sanitylib.models.under_test.KNOWN_ARCHITECTURES`; initializers leave batch-norm running
statistics alone, so that ``randomize(batchnorm="kept")`` keeps them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sanitylib.models.mnist import ARCHITECTURES, MLP, MnistCNN
from sanitylib.models.under_test import KNOWN_ARCHITECTURES, architecture_key

__all__ = ["STUDY", "CNNBatchNorm", "SmallResNet", "SmallViT", "build", "build_study"]

#: The architectures of the study, in the order the book shows them.
STUDY = ("cnn", "mlp", "cnn_bn", "resnet_bn", "resnet_bn_relu6", "vit")


def _init_norm(module: nn.Module) -> None:
    """Scale 1 and offset 0; running statistics untouched (``reset_parameters`` would reset
    them too)."""
    nn.init.ones_(module.weight)
    nn.init.zeros_(module.bias)


class CNNBatchNorm(MnistCNN):
    """The paper's CNN (:class:`~sanitylib.models.mnist.MnistCNN`) with batch norm between each
    convolution and its ReLU; the same initializer for convolutions and linear layers."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__(in_channels, num_classes)
        self.conv1 = nn.Sequential(self.conv1[0], nn.BatchNorm2d(32), nn.ReLU())
        self.conv2 = nn.Sequential(self.conv2[0], nn.BatchNorm2d(64), nn.ReLU())

    @staticmethod
    def init_module(module: nn.Module) -> None:
        if isinstance(module, nn.BatchNorm2d):
            _init_norm(module)
        else:
            MnistCNN.init_module(module)


class _BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = act()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels))
        self.act2 = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """Stem, three basic blocks (16, 32, 64 channels), average pooling, logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, relu6: bool = False) -> None:
        super().__init__()
        act = nn.ReLU6 if relu6 else nn.ReLU
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(16), act())
        self.layer1 = _BasicBlock(16, 16, 1, act)
        self.layer2 = _BasicBlock(16, 32, 2, act)
        self.layer3 = _BasicBlock(32, 64, 2, act)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(64, num_classes)
        for module in self.modules():
            self.init_module(module)

    @staticmethod
    def init_module(module: nn.Module) -> None:
        """torchvision's ResNet rule: convolutions normal with variance 2 / fan-out, batch norm
        scale 1 and offset 0, the classifier as PyTorch initializes linear layers."""
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            _init_norm(module)
        elif isinstance(module, nn.Linear):
            module.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.logits(self.pool(x))


class _PatchEmbedding(nn.Module):
    def __init__(self, in_channels: int, patch: int, width: int, tokens: int) -> None:
        super().__init__()
        self.patch = patch
        self.project = nn.Linear(in_channels * patch * patch, width)
        self.position = nn.Parameter(torch.zeros(1, tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        p = self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)
        return self.project(patches) + self.position


class _Attention(nn.Module):
    """Multi-head self-attention written out (no fused kernel, so every op is visible to the
    guided rule's census)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(w // self.heads)).softmax(dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, w))


class _TransformerBlock(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = _Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    """7x7 patches, width 64, 2 blocks of 4 heads with a ReLU MLP of 128, mean pooling."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, size: int = 28,
                 patch: int = 7, width: int = 64, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = _PatchEmbedding(in_channels, patch, width, (size // patch) ** 2)
        for i in range(depth):
            setattr(self, f"block{i}", _TransformerBlock(width, heads, 2 * width))
        self.depth = depth
        self.norm = nn.LayerNorm(width)
        self.logits = nn.Linear(width, num_classes)
        for module in self.modules():
            self.init_module(module)

    @staticmethod
    def init_module(module: nn.Module) -> None:
        """Linear and layer-norm layers as PyTorch initializes them; position embeddings normal
        with standard deviation 0.02 (as ViT's reference code)."""
        if isinstance(module, _PatchEmbedding):
            nn.init.normal_(module.position, std=0.02)
        elif isinstance(module, (nn.Linear, nn.LayerNorm)):
            module.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for i in range(self.depth):
            x = getattr(self, f"block{i}")(x)
        return self.logits(self.norm(x).mean(dim=1))


def build(architecture: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A freshly initialized network by name: the paper's CNN or MLP
    (:mod:`sanitylib.models.mnist`) or a network of the architecture study (Inception v3 and
    EfficientNet-Lite0: :mod:`sanitylib.models.loading`)."""
    if architecture == "cnn":
        return MnistCNN(in_channels, num_classes)
    if architecture == "mlp":
        return MLP(in_channels * 28 * 28, num_classes)
    if architecture in STUDY:
        return build_study(architecture, in_channels, num_classes)
    raise ValueError(f"unknown architecture {architecture!r}; valid choices: "
                     f"{', '.join(dict.fromkeys((*ARCHITECTURES, *STUDY)))}")


def build_study(architecture: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A freshly initialized network of the study other than the paper's CNN and MLP."""
    if architecture == "cnn_bn":
        return CNNBatchNorm(in_channels, num_classes)
    if architecture in ("resnet_bn", "resnet_bn_relu6"):
        return SmallResNet(in_channels, num_classes, relu6=architecture.endswith("relu6"))
    if architecture == "vit":
        return SmallViT(in_channels, num_classes)
    raise ValueError(f"unknown architecture {architecture!r}; valid choices: {', '.join(STUDY)}")


KNOWN_ARCHITECTURES[architecture_key(CNNBatchNorm)] = lambda model: {
    "name": "cnn_bn", "blocks": {"logits": ("logits",), "fc1": ("fc1",), "conv2": ("conv2",),
                                 "conv1": ("conv1",)},
    "gradcam_layer": "conv2", "init_module": CNNBatchNorm.init_module}
KNOWN_ARCHITECTURES[architecture_key(SmallResNet)] = lambda model: {
    "name": "resnet_bn_relu6" if isinstance(model.stem[2], nn.ReLU6) else "resnet_bn",
    "blocks": {"logits": ("logits",), "layer3": ("layer3",), "layer2": ("layer2",),
               "layer1": ("layer1",), "stem": ("stem",)},
    "gradcam_layer": "layer3", "init_module": SmallResNet.init_module}
KNOWN_ARCHITECTURES[architecture_key(SmallViT)] = lambda model: {
    "name": "vit", "blocks": {"logits": ("logits", "norm"),
                              **{f"block{i}": (f"block{i}",) for i in reversed(range(model.depth))},
                              "embed": ("embed",)},
    "init_module": SmallViT.init_module}
