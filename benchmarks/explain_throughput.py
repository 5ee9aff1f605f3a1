"""Explanations per second for each method: sanitylib's batched ``explain`` against a
straightforward per-image Captum loop, from the same run (issue 3); and, for the pretrained
EfficientNet-Lite0, explanations and forward + backward rows per second against the network's raw
batched forward + backward throughput.

Random weights are fine for timing. Usage:
    python benchmarks/explain_throughput.py [--images 32] [--steps 50] [--samples 50]
                                            [--inception-images 2] [--skip-inception] [--repeats 3]
                                            [--efficientnet-images 6] [--skip-efficientnet]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from captum.attr import (
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)

from sanitylib import model_under_test
from sanitylib.data.photographs import BUILT_IN_PHOTOGRAPHS, photograph_batch
from sanitylib.methods.saliency import METHODS, explain, predicted_class
from sanitylib.models.efficientnet import load_efficientnet_lite0
from sanitylib.models.inception import untrained_inception_v3, with_module_relus
from sanitylib.models.mnist import build

warnings.filterwarnings("ignore", category=UserWarning)


def captum_one(model, guided, layer, x, target, method, steps, samples):
    """One image through Captum's own classes, the way a user would call them."""
    sigma = float(0.15 * (x.max() - x.min()))
    if method == "gradient":
        return Saliency(model).attribute(x, target=target, abs=False)
    if method == "gradient_x_input":
        return InputXGradient(model).attribute(x, target=target)
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(x, target=target, n_steps=steps)
    if method in ("smoothgrad", "vargrad"):
        return NoiseTunnel(Saliency(model)).attribute(
            x, target=target, nt_type=method, nt_samples=samples, stdevs=sigma, abs=False)
    if method == "ig_smoothgrad":
        return NoiseTunnel(IntegratedGradients(model)).attribute(
            x, target=target, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, n_steps=steps)
    if method == "guided_backprop":
        return GuidedBackprop(guided).attribute(x, target=target)
    if method == "gradcam":
        cam = LayerGradCam(model, model.get_submodule(layer)).attribute(
            x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
    return GuidedGradCam(guided, guided.get_submodule(layer)).attribute(x, target=target)


def bench(name, model, inputs, steps, samples, repeats=3, budget_s=20.0):
    targets = predicted_class(model, inputs)
    guided = with_module_relus(model)
    for p in list(model.parameters()) + list(guided.parameters()):
        p.requires_grad_(False)
    layer = model_under_test(model).gradcam_layer
    print(f"\n{name}: {len(inputs)} images {tuple(inputs.shape[1:])}, IG steps {steps}, "
          f"noise samples {samples}")
    print(f"{'method':22s} {'sanitylib /s':>13s} {'captum loop /s':>15s} {'ratio':>7s}")
    for method in METHODS:
        def ours_run(method=method):
            explain(model, inputs, method, target=targets, steps=steps, samples=samples)

        def captum_loop(method=method):
            for i in range(len(inputs)):
                captum_one(model, guided, layer, inputs[i:i + 1].clone().requires_grad_(),
                           int(targets[i]), method, steps, samples)

        ours, theirs = (len(inputs) / best_time(run, repeats, budget_s)
                        for run in (ours_run, captum_loop))
        print(f"{method:22s} {ours:13.2f} {theirs:15.2f} {ours / theirs:7.1f}x", flush=True)


def rows_per_explanation(method: str, steps: int, samples: int) -> int:
    """Forward + backward rows one explanation of ``method`` needs."""
    return {"integrated_gradients": steps, "smoothgrad": samples, "vargrad": samples,
            "ig_smoothgrad": steps * samples, "guided_gradcam": 2}.get(method, 1)


def bench_against_raw(name, model, inputs, steps, samples, repeats=3, budget_s=20.0):
    """Explanations/s and rows/s of every method next to the raw batched forward + backward
    rows/s of the same model on the same inputs (the ceiling of any gradient method: gradients
    to the input only, as ``explain`` takes them; GradCAM's backward stops at its layer, so it
    can exceed it)."""
    targets = predicted_class(model, inputs)
    for p in model.parameters():
        p.requires_grad_(False)

    def raw():
        x = inputs.clone().requires_grad_(True)
        model(x).gather(1, targets[:, None]).sum().backward()

    raw_rows = len(inputs) / best_time(raw, repeats, budget_s)
    print(f"\n{name}: {len(inputs)} images {tuple(inputs.shape[1:])}, IG steps {steps}, "
          f"noise samples {samples}; raw forward + backward {raw_rows:.1f} rows/s")
    print(f"{'method':22s} {'explanations /s':>16s} {'rows /s':>9s} {'of raw':>7s}")
    for method in METHODS:
        per_second = len(inputs) / best_time(
            lambda method=method: explain(model, inputs, method, target=targets, steps=steps,
                                          samples=samples), repeats, budget_s)
        rows = per_second * rows_per_explanation(method, steps, samples)
        print(f"{method:22s} {per_second:16.2f} {rows:9.1f} {rows / raw_rows:7.0%}", flush=True)


def best_time(run, repeats, budget_s):
    """Fastest of up to ``repeats`` timed calls (timeit's rule: the minimum is the least disturbed
    by the rest of the machine, and it drops the first call's warm-up); calls stop once they have
    taken ``budget_s`` seconds, so slow methods are timed once."""
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--inception-images", type=int, default=2)
    parser.add_argument("--inception-steps", type=int, default=10)
    parser.add_argument("--inception-samples", type=int, default=5)
    parser.add_argument("--skip-inception", action="store_true")
    parser.add_argument("--efficientnet-images", type=int, default=6)
    parser.add_argument("--efficientnet-steps", type=int, default=5)
    parser.add_argument("--efficientnet-samples", type=int, default=5)
    parser.add_argument("--skip-efficientnet", action="store_true")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls per measurement (the fastest counts)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench("cnn", build("cnn").eval(), torch.rand(args.images, 1, 28, 28), args.steps, args.samples,
          args.repeats)
    if not args.skip_efficientnet:
        subject = model_under_test(load_efficientnet_lite0())
        images = photograph_batch(list(BUILT_IN_PHOTOGRAPHS)[:args.efficientnet_images])
        bench_against_raw("efficientnet_lite0 (ImageNet weights)", subject.module,
                          subject.preprocess(images), args.efficientnet_steps,
                          args.efficientnet_samples, args.repeats)
    if not args.skip_inception:
        bench("inception_v3", untrained_inception_v3(), torch.randn(args.inception_images, 3, 299, 299),
              args.inception_steps, args.inception_samples, args.repeats)


if __name__ == "__main__":
    main()
