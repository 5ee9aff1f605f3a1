"""The model under test: one object with everything the sanity checks need to know about a model.

A :class:`ModelUnderTest` carries the module, its named blocks ordered top (logits) to bottom (the
order of cascading randomization, Adebayo et al. 2018, Section 4), the layer GradCAM weights, the
preprocessing from images in [0, 1] to model inputs and back for display, the class names when
known, the initializer that ``randomize(init="default")`` re-runs, and a stable identity for cache
keys (type, structure and weights). Nothing downstream re-derives any of this from the model's
class: :func:`model_under_test` is the one place that knows the built-in architectures (through
:data:`KNOWN_ARCHITECTURES`), and it takes ``blocks=`` for any other ``nn.Module``.
The blocks of every built-in model are listed in the book's reference page (``book/reference.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["KNOWN_ARCHITECTURES", "ModelUnderTest", "architecture_key", "built_in_defaults",
           "identity", "model_under_test", "submodule"]

Transform = Callable[[torch.Tensor], torch.Tensor]
BlockSpec = Mapping[str, "str | Sequence[str]"] | Sequence[str]


@dataclass(frozen=True, eq=False)
class ModelUnderTest:
    """A model and what the sanity checks need to know about it.

    Attributes:
        module: the classifier, returning logits (B, classes).
        name: a short display name (``"cnn"``, ``"efficientnet_lite0"``, ...).
        blocks: block name -> submodule paths it covers, ordered top (logits) to bottom.
        gradcam_layer: submodule path whose output GradCAM weights (None: no GradCAM).
        preprocess: images (B, C, H, W) in [0, 1] -> model inputs (None: identity).
        display: model inputs -> images in [0, 1] for figures (None: identity).
        class_names: the name of each logit, when known.
        init_module: re-initializes one submodule the way the model was built (None: each
            submodule's own ``reset_parameters``).
    """

    module: nn.Module
    name: str
    blocks: dict[str, tuple[str, ...]]
    gradcam_layer: str | None = None
    preprocess: Transform | None = None
    display: Transform | None = None
    class_names: tuple[str, ...] | None = None
    init_module: Callable[[nn.Module], None] | None = None
    input_size: tuple[int, int] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(self.module).__name__}")
        if not self.blocks:
            raise ValueError(f"{self.name}: a model under test needs at least one block")
        for block, paths in self.blocks.items():
            for path in paths:
                _check_path(self.module, path, f"block {block!r}")
        if self.gradcam_layer is not None:
            _check_path(self.module, self.gradcam_layer, "gradcam_layer")

    def with_module(self, module: nn.Module) -> ModelUnderTest:
        """The same description around another module of the same structure (a randomized or
        fine-tuned copy)."""
        return dataclasses.replace(self, module=module)

    def select_blocks(self, names: Sequence[str]) -> ModelUnderTest:
        """Only the blocks ``names``, kept in this model's top-to-bottom order."""
        unknown = [n for n in names if n not in self.blocks]
        if unknown:
            raise ValueError(f"unknown block(s) {unknown} of {self.name}; valid choices: "
                             f"{', '.join(self.blocks)}")
        return dataclasses.replace(self, blocks={n: p for n, p in self.blocks.items()
                                                 if n in names})

    def identity(self) -> str:
        """SHA-256 (16 hex digits) of the module's type, structure and weights, the blocks and
        the GradCAM layer: equal identities explain alike."""
        return identity(self)


def submodule(module: nn.Module, path: str) -> nn.Module:
    """``module.get_submodule(path)``, also for TorchScript modules (which lack it)."""
    if not isinstance(module, torch.jit.ScriptModule):
        return module.get_submodule(path)
    for name in path.split(".") if path else []:
        children = dict(module.named_children())
        if name not in children:
            raise AttributeError(f"{type(module).__name__} has no submodule {name!r}")
        module = children[name]
    return module


def _check_path(module: nn.Module, path: str, what: str) -> None:
    try:
        submodule(module, path)
    except AttributeError:
        children = [n for n, _ in module.named_children()]
        raise ValueError(f"{what}: {type(module).__name__} has no submodule {path!r}; its "
                         f"children are {', '.join(children)}") from None


def identity(model: ModelUnderTest | nn.Module) -> str:
    """SHA-256 (16 hex digits) of a model's type, structure (``repr``) and weights.

    For a :class:`ModelUnderTest` the blocks and GradCAM layer count too. Two modules with equal
    weights and different structure (a ReLU and a Softplus network) get different identities.
    """
    module = model.module if isinstance(model, ModelUnderTest) else model
    digest = hashlib.sha256()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    digest.update(repr(module).encode())
    if isinstance(model, ModelUnderTest):
        digest.update(repr((model.blocks, model.gradcam_layer)).encode())
    for name, value in module.state_dict().items():
        value = value.detach()
        # the memory format changes float rounding, so it is part of the identity
        layout = "channels_last" if value.ndim == 4 and not value.is_contiguous() \
            and value.is_contiguous(memory_format=torch.channels_last) else ""
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}{layout}".encode())
        exact = value.float() if value.dtype == torch.bfloat16 else value  # NumPy has no bfloat16
        digest.update(exact.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _normalize_blocks(module: nn.Module, blocks: BlockSpec) -> dict[str, tuple[str, ...]]:
    if isinstance(blocks, Mapping):
        return {str(n): (p,) if isinstance(p, str) else tuple(p) for n, p in blocks.items()}
    return {path: (path,) for path in blocks}


#: Class ("module.QualName", so that torchvision and timm need not be imported to register their
#: networks) -> function giving the defaults of a built-in architecture (name, blocks, GradCAM
#: layer, initializer, ...), or None when a module of that class is not the built-in network
#: (timm's ``EfficientNet`` class holds many networks). Filled by the modules that define them.
KNOWN_ARCHITECTURES: dict[str, Callable[[nn.Module], dict[str, object] | None]] = {}


def architecture_key(kind: type) -> str:
    """The key of a class in :data:`KNOWN_ARCHITECTURES`."""
    return f"{kind.__module__}.{kind.__qualname__}"


def built_in_defaults(module: nn.Module) -> dict[str, object] | None:
    """The defaults of a built-in architecture for ``module`` (exactly its class), or None."""
    make = KNOWN_ARCHITECTURES.get(architecture_key(type(module)))
    return make(module) if make is not None else None


def model_under_test(model: ModelUnderTest | nn.Module, blocks: BlockSpec | None = None,
                     gradcam_layer: str | nn.Module | None = None, **overrides: object
                     ) -> ModelUnderTest:
    """A :class:`ModelUnderTest` for ``model``.

    Built-in architectures (the book's CNN and MLP, torchvision's Inception v3, EfficientNet-Lite0,
    the text classifier) get their blocks, GradCAM layer and initializer by default. Any other
    ``nn.Module`` needs ``blocks``: a list of submodule paths (top to bottom) or a mapping
    ``{block name: path or paths}``. ``gradcam_layer`` takes a submodule path or the module
    itself (as in Captum). Other keyword arguments set the remaining fields.
    """
    if isinstance(model, ModelUnderTest):
        base = model
        module = model.module
    else:
        module = model
        defaults = built_in_defaults(module)
        if defaults is None and blocks is None:
            known = ", ".join(sorted(k.rpartition(".")[2] for k in KNOWN_ARCHITECTURES))
            raise ValueError(f"{type(module).__name__} is not a built-in architecture ({known}); "
                             "pass blocks= (submodule paths, top to bottom)")
        base = None
        fields = dict(defaults or {"name": type(module).__name__, "blocks": {}})
    if base is not None:
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)
                  if f.name != "module"}
    if blocks is not None:
        fields["blocks"] = _normalize_blocks(module, blocks)
    if isinstance(gradcam_layer, nn.Module):
        gradcam_layer = next((n for n, m in module.named_modules() if m is gradcam_layer), None)
        if gradcam_layer is None:
            raise ValueError("gradcam_layer is not a submodule of the model")
    if gradcam_layer is not None:
        fields["gradcam_layer"] = gradcam_layer
    fields.update(overrides)
    return ModelUnderTest(module=module, **fields)
