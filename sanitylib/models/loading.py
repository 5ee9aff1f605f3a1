"""A model from a one-line description, for ``sanitylib check`` and :func:`sanitylib.check`.

Descriptions (:func:`load_model`):

- ``path/to/file.py:function``: a function in the user's own file that returns the model;
- ``torchvision:NAME`` or ``timm:NAME``: the architecture with the library's pretrained weights
  (from its local cache, else downloaded; never when ``SANITYLIB_OFFLINE=1``), or with the state
  dict ``weights`` names (loaded with ``weights_only=True``); random weights only when asked for
  (``random_weights=True``). When no trained weights can be had it refuses, naming ``--weights``:
  a report about a network that was never trained must not look like one about a trained one;
- a built-in name: ``efficientnet_lite0`` (ImageNet weights, offline), ``inception_v3`` (its
  ImageNet weights when present), ``cnn`` / ``mlp`` (the book's MNIST models, trained on first
  use and cached);
- a TorchScript file (``.pt`` / ``.pth`` saved by ``torch.jit.save``).

Every failure raises :class:`ModelSpecError` with one line that says what was wrong and what is
valid.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["BUILT_IN_MODELS", "ModelSpecError", "is_torchscript", "load_model"]

BUILT_IN_MODELS = ("efficientnet_lite0", "inception_v3", "cnn", "mlp")
_FORMS = ("path/to/file.py:function", "torchvision:NAME", "timm:NAME", "a TorchScript file",
          *BUILT_IN_MODELS)


class ModelSpecError(ValueError):
    """A model description that cannot be turned into a model; the message is one line."""


def is_torchscript(model: nn.Module) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def _from_python_file(spec: str) -> nn.Module:
    path_text, _, function = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise ModelSpecError(f"no such file {path} (from {spec!r})")
    module_name = f"sanitylib_user_{abs(hash(path.resolve()))}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    if loader is None or loader.loader is None:
        raise ModelSpecError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's code: report it in one line
        raise ModelSpecError(f"importing {path} failed: {type(error).__name__}: {error}") from None
    make = getattr(module, function, None)
    if not callable(make):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ModelSpecError(f"{path} has no function {function!r}; its functions: "
                             f"{', '.join(found) or 'none'}")
    try:
        model = make()
    except Exception as error:  # noqa: BLE001
        raise ModelSpecError(f"{spec} raised {type(error).__name__}: {error}") from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{spec} returned a {type(model).__name__}, not a torch nn.Module")
    return model


_NO_WEIGHTS = "give --weights FILE (a state dict), or --random-weights to check the untrained network"


def _torchvision_pretrained(name: str, **kwargs: object) -> nn.Module:
    """torchvision's default pretrained weights of ``name``: from torch.hub's cache
    (``$TORCH_HOME/hub/checkpoints``), else downloaded unless offline."""
    from urllib.parse import urlparse

    import torchvision

    from sanitylib.data.sources import offline

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise ModelSpecError(f"torchvision has no pretrained weights for {name}; {_NO_WEIGHTS}"
                             ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    if not cached.is_file() and offline():
        raise ModelSpecError(f"torchvision:{name}: no pretrained weights at {cached} and "
                             f"SANITYLIB_OFFLINE=1 forbids the download; {_NO_WEIGHTS}")
    try:
        return torchvision.models.get_model(name, weights=weights, **kwargs)
    except Exception as error:  # noqa: BLE001 - no network, a corrupt file: in one line
        raise ModelSpecError(f"torchvision:{name}: its pretrained weights could not be had "
                             f"({type(error).__name__}: {str(error).strip()[:120]}); "
                             f"{_NO_WEIGHTS}") from None


def _timm_pretrained(name: str) -> nn.Module:
    """timm's pretrained weights of ``name`` (Hugging Face's cache, else downloaded unless
    offline)."""
    import timm

    from sanitylib.data.sources import offline

    previous = os.environ.get("HF_HUB_OFFLINE")
    if offline():
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as error:  # noqa: BLE001 - no network, no weights for this name
        raise ModelSpecError(f"timm:{name}: its pretrained weights could not be had "
                             f"({type(error).__name__}: {str(error).strip()[:120]}); "
                             f"{_NO_WEIGHTS}") from None
    finally:
        if offline():
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous


def _from_library(library: str, name: str, pretrained: bool) -> nn.Module:
    """The architecture ``name`` of torchvision or timm, with the library's pretrained weights
    when ``pretrained``, else freshly initialized."""
    if library == "torchvision":
        import torchvision

        names = torchvision.models.list_models()
        if name not in names:
            raise ModelSpecError(f"torchvision has no model {name!r}; e.g. "
                                 f"{', '.join(names[:8])}, ... (torchvision.models.list_models())")
        if pretrained:
            return _torchvision_pretrained(
                name, **({"aux_logits": False} if name == "inception_v3" else {}))
        kwargs = {"aux_logits": False, "init_weights": True} if name == "inception_v3" else {}
        return torchvision.models.get_model(name, weights=None, **kwargs)
    import timm

    if not timm.is_model(name):
        raise ModelSpecError(f"timm has no model {name!r} (timm.list_models() lists them)")
    return _timm_pretrained(name) if pretrained else timm.create_model(name, pretrained=False)


def _load_weights(model: nn.Module, weights: str | Path) -> None:
    path = Path(weights)
    if not path.is_file():
        raise ModelSpecError(f"no such weights file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001
        raise ModelSpecError(f"cannot read weights {path} as a state dict: "
                             f"{type(error).__name__}: {str(error).splitlines()[0][:160]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as error:
        first = str(error).strip().splitlines()
        raise ModelSpecError(f"weights {path} do not fit the model: "
                             f"{' '.join(first[:2])[:240]}") from None


def _built_in(name: str) -> nn.Module:
    from sanitylib.models.inception import PretrainedWeightsUnavailable

    try:
        if name == "efficientnet_lite0":
            from sanitylib.models.efficientnet import load_efficientnet_lite0

            return load_efficientnet_lite0()
        if name == "inception_v3":
            from sanitylib.models.inception import load_inception_v3

            return load_inception_v3()
    except PretrainedWeightsUnavailable as error:
        raise ModelSpecError(str(error).splitlines()[0] + " (set SANITYLIB_INCEPTION_WEIGHTS)"
                             ) from None
    from sanitylib.data.images import load_dataset
    from sanitylib.models.training import TrainConfig, train

    config = TrainConfig(name, "mnist", "true", train_size=1000, epochs=2, lr=1e-3)
    return train(config, load_dataset("mnist"), verbose=False).model


def load_model(spec: str, weights: str | Path | None = None,
               random_weights: bool = False) -> nn.Module:
    """The model a description names (see the module docstring), in eval mode.
    ``random_weights``: a ``torchvision:`` / ``timm:`` architecture freshly initialized, never
    trained (only when asked: the report says so)."""
    library, sep, name = spec.partition(":")
    from_library = bool(sep) and library in ("torchvision", "timm")
    if random_weights and (weights is not None or not from_library):
        raise ModelSpecError("--random-weights applies to torchvision:NAME and timm:NAME "
                             "without --weights")
    if spec in BUILT_IN_MODELS:
        if weights is not None:
            raise ModelSpecError(f"--weights does not apply to the built-in model {spec}")
        return _built_in(spec).eval()
    if from_library:
        model = _from_library(library, name, pretrained=weights is None and not random_weights)
    elif sep and spec.rpartition(":")[0].endswith(".py"):
        model = _from_python_file(spec)
    elif Path(spec).is_file() and zipfile.is_zipfile(spec):
        try:
            model = torch.jit.load(spec, map_location="cpu")
        except RuntimeError as error:
            raise ModelSpecError(f"{spec} is not a TorchScript file ({str(error).splitlines()[0]}); "
                                 "a state dict needs an architecture: torchvision:NAME --weights "
                                 f"{spec}") from None
    else:
        raise ModelSpecError(f"cannot make a model from {spec!r}; valid forms: {', '.join(_FORMS)}")
    if weights is not None:
        _load_weights(model, weights)
    return model.eval()
