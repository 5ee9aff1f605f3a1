"""One cascading parameter randomization run end to end, three ways (issue 15):

1. sanitylib's ``randomization_run`` (into an empty cache, so everything is computed and stored);
2. the same run as a plain loop over seeds, steps and methods, each method its own ``explain``
   call and the original model's maps made again for every seed;
3. Quantus 0.6's ``MPRT`` (optional: skipped when quantus is not installed) on the same model,
   images, seeds and the methods it can run through Captum (it refuses Guided Backprop and
   SmoothGrad for PyTorch models, and its IG always takes 10 steps, so IG runs with 10 here).

Each line gives seconds and the forward (+ backward) rows through the model. Usage:
    python benchmarks/randomization_end_to_end.py [--images 16] [--seeds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import torch

from sanitylib.experiments.runner import randomization_run
from sanitylib.infra.device import resolve_device
from sanitylib.infra.passes import counting_passes
from sanitylib.methods.randomization import randomize
from sanitylib.methods.saliency import explain
from sanitylib.methods.similarity import compare
from sanitylib.models.under_test import model_under_test
from sanitylib.models.zoo import build

warnings.filterwarnings("ignore")

#: The methods both libraries run, with Quantus's name for each.
QUANTUS_NAMES = {"gradient": "Saliency", "gradient_x_input": "InputXGradient",
                 "integrated_gradients": "IntegratedGradients", "gradcam": "GradCam"}
OPTIONS = {"integrated_gradients": {"steps": 10}}
METRIC = "spearman_abs"


def plain_loop(model: torch.nn.Module, x: torch.Tensor, methods: list[str],
               seeds: list[int]) -> None:
    for seed in seeds:
        original = {m: explain(model, x, m, **OPTIONS.get(m, {})) for m in methods}
        for _, randomized in randomize(model, seed=seed, original=False):
            for m in methods:
                compare(original[m], explain(randomized, x, m, **OPTIONS.get(m, {})), METRIC)


def quantus_mprt(model: torch.nn.Module, x: torch.Tensor, methods: list[str],
                 seeds: list[int], device: torch.device) -> None:
    import quantus

    y = model(x).argmax(1).cpu().numpy()
    for seed in seeds:
        for m in methods:
            kwargs = {"method": QUANTUS_NAMES[m]}
            if m == "gradcam":
                kwargs.update(gc_layer="model.conv2", interpolate=(28, 28))
            metric = quantus.MPRT(layer_order="top_down", seed=seed, disable_warnings=True,
                                  display_progressbar=False)
            metric(model=copy.deepcopy(model), x_batch=x.cpu().numpy(), y_batch=y, a_batch=None,
                   device=str(device), explain_func=quantus.explain,
                   explain_func_kwargs=kwargs)


def minimum_rows(methods: list[str], blocks: int, args: argparse.Namespace) -> int:
    """Forward + backward rows a run needs: the trained model and every seed's randomized
    steps, each explaining every image once per method row (IG: its steps; Gradient ⊙ Input
    shares Gradient's pass)."""
    per_image = {"gradient": 1, "gradcam": 1,
                 "integrated_gradients": OPTIONS["integrated_gradients"]["steps"]}
    needed = sum(per_image[m] for m in methods if m in per_image)
    if "gradient_x_input" in methods and "gradient" not in methods:
        needed += 1
    return (1 + args.seeds * blocks) * args.images * needed


def timed(label: str, model: torch.nn.Module, run: Callable[[], None]) -> float:
    with counting_passes(model) as count:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    print(f"{label:34s} {seconds:8.2f} s {count.gradient_rows:9d} fwd+bwd rows "
          f"{count.prediction_rows:7d} prediction rows", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = build("cnn").eval().to(device)
    x = torch.rand(args.images, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    seeds = list(range(args.seeds))
    try:
        import quantus  # noqa: F401
        have_quantus = True
    except ImportError:
        have_quantus = False
    print(f"MNIST CNN on {device}, {args.images} images, {args.seeds} seeds, cascading; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    # warm-up: every path once on two images (first calls pay for lazy imports and allocations)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SANITYLIB_CACHE"] = cache
        randomization_run(model, x[:2], list(QUANTUS_NAMES), metrics=[METRIC], options=OPTIONS,
                          verbose=False)
    plain_loop(model, x[:2], list(QUANTUS_NAMES), [0])
    if have_quantus:
        quantus_mprt(model, x[:4], list(QUANTUS_NAMES), [0], device)
    blocks = len(model_under_test(model).blocks)
    for methods in (["gradient"], list(QUANTUS_NAMES)):
        print(f"\nmethods: {', '.join(methods)}; the minimum: {minimum_rows(methods, blocks, args)} "
              "fwd+bwd rows (the original model once, each seed's steps once, shared passes "
              "shared), no prediction rows")
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SANITYLIB_CACHE"] = cache
            ours = timed("sanitylib randomization_run", model, lambda methods=methods: randomization_run(
                model, x, methods, seeds=seeds, metrics=[METRIC], options=OPTIONS,
                verbose=False))
        loop = timed("plain loop over steps and methods", model,
                     lambda methods=methods: plain_loop(model, x, methods, seeds))
        print(f"{'':34s} sanitylib {loop / ours:.2f}x faster than the plain loop")
        if have_quantus:
            theirs = timed("quantus 0.6 MPRT", model,
                           lambda methods=methods: quantus_mprt(model, x, methods, seeds, device))
            print(f"{'':34s} sanitylib {theirs / ours:.2f}x faster than Quantus")
    if not have_quantus:
        print("\nquantus is not installed: its MPRT was not timed (pip install quantus==0.6.0)")


if __name__ == "__main__":
    main()
