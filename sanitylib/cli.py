"""The ``sanitylib`` command: ``sanitylib check MODEL INPUTS --out DIR``.

Runs :func:`sanitylib.check` on a user's model and writes ``report.html``, ``scores.csv`` and
``verdict.json`` to ``DIR`` (see :mod:`sanitylib.checker.html`). Bad input gives one line on
stderr and exit code 2; Ctrl-C leaves no half-written report (exit code 130).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PREPROCESSING", "main"]

#: ``--preprocess`` choices: images in [0, 1] -> model inputs.
PREPROCESSING = ("model", "imagenet", "efficientnet", "none")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are integers separated by commas, got {text!r}")


def parser() -> argparse.ArgumentParser:
    from sanitylib import __version__
    from sanitylib.checker.run import DEFAULT_METHODS
    from sanitylib.experiments.runner import DEFAULT_METRICS
    from sanitylib.methods.randomization import INITS, ORDERS

    top = argparse.ArgumentParser(prog="sanitylib", description="Sanity checks for saliency maps "
                                  "(Adebayo et al. 2018) on your own model.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("check", help="run the sanity checks and write a report")
    run.add_argument("model", help="path/to/file.py:function, torchvision:NAME, timm:NAME, a "
                     "TorchScript file, or a built-in (efficientnet_lite0, inception_v3, cnn, mlp)")
    run.add_argument("inputs", help="a folder of PNG/JPEG images or a .pt/.npy tensor file")
    run.add_argument("--out", required=True, help="folder for report.html, scores.csv, verdict.json")
    run.add_argument("--weights", help="a state dict for torchvision:/timm: models (weights_only); "
                     "without it their library's pretrained weights are used")
    run.add_argument("--random-weights", action="store_true", help="check a torchvision:/timm: "
                     "architecture with random weights, never trained (the report says so)")
    run.add_argument("--methods", type=_csv, default=list(DEFAULT_METHODS),
                     help="registered methods, separated by commas")
    run.add_argument("--import", dest="imports", action="append", default=[],
                     metavar="MODULE", help="a module name or .py file to import first: where "
                     "your own methods or metrics are registered (sanitylib.register_method, "
                     "register_metric); repeatable")
    run.add_argument("--order", default="cascading", help=f"one of {', '.join(ORDERS)}")
    run.add_argument("--seeds", type=_seeds, default=[0])
    run.add_argument("--init", default="default", help=f"one of {', '.join(INITS)}")
    run.add_argument("--blocks", type=_csv, help="block names or submodule paths, top to bottom")
    run.add_argument("--gradcam-layer", help="submodule path of GradCAM's layer (default: the "
                     "last conv layer)")
    run.add_argument("--preprocess", default="model", help=f"one of {', '.join(PREPROCESSING)} "
                     "('model': the built-in model's own, else none)")
    run.add_argument("--size", type=int, help="resize images to SIZE x SIZE (default: the "
                     "model's input size when known)")
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: $SANITYLIB_DEVICE, else "
                     "cuda when there is one, else cpu)")
    run.add_argument("--metrics", type=_csv, default=list(DEFAULT_METRICS))
    run.add_argument("--ig-steps", type=int, default=10)
    run.add_argument("--samples", type=int, default=10)
    run.add_argument("--max-inputs", type=int, default=16, help="use the first N inputs")
    run.add_argument("--compare-with", help="a second model (same forms as MODEL) for the data "
                     "randomization test, e.g. one trained on permuted labels")
    run.add_argument("--compare-weights", help="a state dict for --compare-with")
    cluster = run.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, help="run the seeds on a local Dask cluster of "
                         "this many worker processes (one thread each)")
    cluster.add_argument("--scheduler", help="run the seeds on the Dask scheduler at this "
                         "address (tcp://host:8786); its workers must see the same cache folder")
    return top


def _identity(x):
    return x


def _preprocessing(name: str):
    """The ``--preprocess`` transform; None for "model" (the built-in model's own, if any)."""
    from sanitylib.models.efficientnet import preprocess as efficientnet
    from sanitylib.models.inception import imagenet_normalize

    if name not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {name!r}; valid choices: {', '.join(PREPROCESSING)}")
    return {"imagenet": imagenet_normalize, "efficientnet": efficientnet, "none": _identity,
            "model": None}[name]


def _weights_source(args: argparse.Namespace) -> str:
    """Where the checked model's weights came from, for the report's settings."""
    if args.random_weights:
        return "random: never trained (--random-weights)"
    if args.weights:
        return f"from {args.weights}"
    library = args.model.partition(":")[0]
    return f"{library}'s pretrained weights" if library in ("torchvision", "timm") else "as built"


def _import_plugins(names: Sequence[str]) -> None:
    """Import each ``--import`` (a module name or a .py file) for what it registers."""
    import importlib
    import importlib.util

    for name in names:
        try:
            if name.endswith(".py") or Path(name).is_file():
                spec = importlib.util.spec_from_file_location(Path(name).stem, name)
                if spec is None or spec.loader is None or not Path(name).is_file():
                    raise FileNotFoundError(f"no such file {name}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module  # dataclasses and pickling look it up there
                spec.loader.exec_module(module)
            else:
                if "" not in sys.path and str(Path.cwd()) not in sys.path:
                    sys.path.insert(0, str(Path.cwd()))  # as `python -m` would find it
                importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - whatever the module raises, in one line
            raise ValueError(f"--import {name}: {type(error).__name__}: {error}") from None


def _fail(message: str) -> int:
    print(f"sanitylib check: error: {message}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from sanitylib.checker.run import check, finite_inputs, logits_model, prepare_model, validate
    from sanitylib.data.inputs import load_inputs
    from sanitylib.data.sources import DataUnavailableError
    from sanitylib.infra.device import resolve_device
    from sanitylib.infra.executor import close_executors, dask_executor
    from sanitylib.methods.randomization import step_names
    from sanitylib.models.loading import ModelSpecError, load_model
    from sanitylib.models.under_test import built_in_defaults

    try:
        resolve_device(args.device)  # an unknown or absent device fails before any work
        _import_plugins(args.imports)
        validate(args.methods, args.order, args.init, args.metrics)
        for option, value in (("--max-inputs", args.max_inputs), ("--ig-steps", args.ig_steps),
                              ("--samples", args.samples),
                              ("--workers", 1 if args.workers is None else args.workers)):
            if value < 1:
                raise ValueError(f"{option} must be at least 1, got {value}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder for the report")
        model = load_model(args.model, args.weights, args.random_weights)
        other = (load_model(args.compare_with, args.compare_weights)
                 if args.compare_with else None)
        defaults = built_in_defaults(model) or {}
        size = (args.size, args.size) if args.size else defaults.get("input_size")
        inputs = load_inputs(args.inputs, size)[:args.max_inputs]
        preprocess = _preprocessing(args.preprocess)
        own = preprocess or defaults.get("preprocess") or _identity
        finite_inputs(inputs)
        probe = own(inputs[:1])
        try:
            logits_model(model, probe)
        except ValueError:  # not logits, or not finite: its own message
            raise
        except Exception as error:  # noqa: BLE001 - a shape mismatch, in one line
            raise ValueError(f"inputs of shape {tuple(inputs.shape[1:])} do not fit the model: "
                             f"{str(error).strip().splitlines()[0][:200]}") from None
        subject = prepare_model(model, probe, args.blocks, args.gradcam_layer, preprocess)
        executor = (dask_executor(args.workers, args.scheduler)
                    if args.workers is not None or args.scheduler else None)
        steps = step_names(subject, order=args.order)
        print(f"{subject.name}: {len(subject.blocks)} blocks, top to bottom: "
              f"{', '.join(subject.blocks)}; GradCAM layer: {subject.gradcam_layer}",
              file=sys.stderr)
        with tqdm(total=len(steps) * len(args.seeds), desc="randomization steps", unit="step",
                  file=sys.stderr) as bar:
            report = check(subject, inputs, methods=args.methods, order=args.order,
                           seeds=args.seeds, init=args.init, metrics=args.metrics,
                           ig_steps=args.ig_steps, samples=args.samples, compare_with=other,
                           device=args.device, progress=lambda step: bar.update(1),
                           weights=_weights_source(args), executor=executor)
        folder = report.write(args.out)
    except (ModelSpecError, DataUnavailableError, ValueError, ImportError, OSError) as error:
        return _fail(str(error).strip().splitlines()[0])
    except KeyboardInterrupt:
        print("sanitylib check: interrupted; no report written", file=sys.stderr)
        return 130
    finally:
        close_executors()
    for method, why in report.refused.items():
        print(f"{method}: not computed ({why})", file=sys.stderr)
    print(f"wrote {folder / 'report.html'}, scores.csv and verdict.json")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    return 2
