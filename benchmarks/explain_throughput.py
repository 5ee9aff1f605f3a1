"""Explanations per second for each method: sanitylib's batched ``explain`` against a
straightforward per-image Captum loop, from the same run (issue 3); and, for the MNIST CNN, the
pretrained EfficientNet-Lite0 and Inception v3, explanations, passes and rows per second against
the network's raw batched forward + backward throughput on the same device, with each method's
peak memory (issue 15); and each network's raw rows/s in the default memory format against
``channels_last`` (the table ``sanitylib.infra.device.CHANNELS_LAST`` follows).

Random weights are fine for timing. Usage:
    python benchmarks/explain_throughput.py [--images 32] [--steps 50] [--samples 50]
                                            [--inception-images 2] [--skip-inception] [--repeats 3]
                                            [--efficientnet-images 6] [--skip-efficientnet]
                                            [--device cuda] [--skip-captum-loop]
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
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
from sanitylib.infra.device import CHANNELS_LAST, in_fastest_format, module_device, resolve_device
from sanitylib.infra.passes import counting_passes
from sanitylib.methods.saliency import METHODS, explain, max_rows_per_pass, predicted_class
from sanitylib.models.efficientnet import load_efficientnet_lite0
from sanitylib.models.inception import untrained_inception_v3, with_module_relus
from sanitylib.models.zoo import build

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


@contextmanager
def peak_memory(device: torch.device) -> Iterator[list[float]]:
    """Yields a one-element list that holds, after the block, its peak memory (MB) beyond what
    was in use before it: CUDA's peak allocation on a GPU; on the CPU the peak resident set size,
    sampled every millisecond by a thread (freed heap is first handed back to the system with
    glibc's ``malloc_trim``, so earlier calls do not hide the growth)."""
    result = [0.0]
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result[0] = (torch.cuda.max_memory_allocated() - start) / 2**20
        return
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    process = psutil.Process()
    start = process.memory_info().rss
    peak, running = [start], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        running[0] = False
        thread.join()
        result[0] = (peak[0] - start) / 2**20


def bench_against_raw(name, model, inputs, steps, samples, repeats=3, budget_s=20.0):
    """Every method's explanations/s, forward + backward passes/s and rows/s (counted by a hook
    on the model), the rows/s as a share of the raw batched forward + backward rows/s of the
    same model on the same inputs and device (the ceiling of any gradient method: gradients to
    the input only, as ``explain`` takes them; GradCAM's backward stops at its layer, so it can
    exceed it), and the peak memory of one call."""
    device = module_device(model)
    inputs = inputs.to(device)
    targets = predicted_class(model, inputs)
    for p in model.parameters():
        p.requires_grad_(False)

    def raw():
        x = inputs.clone().requires_grad_(True)
        model(x).gather(1, targets[:, None]).sum().backward()
        synchronize(device)

    raw_rows = len(inputs) / best_time(raw, repeats, budget_s)
    print(f"\n{name} on {device}: {len(inputs)} images {tuple(inputs.shape[1:])}, IG steps "
          f"{steps}, noise samples {samples}; raw forward + backward {raw_rows:.1f} rows/s")
    print(f"{'method':22s} {'expl. /s':>9s} {'passes /s':>10s} {'rows /s':>9s} {'of raw':>7s} "
          f"{'rows/expl.':>10s} {'peak MB':>8s}")
    for method in METHODS:
        def run(method=method):
            explain(model, inputs, method, target=targets, steps=steps, samples=samples)
            synchronize(device)

        seconds = best_time(run, repeats, budget_s)
        with counting_passes(model) as count, peak_memory(device) as memory:
            run()
        rows = count.gradient_rows / seconds
        print(f"{method:22s} {len(inputs) / seconds:9.2f} {count.gradient_passes / seconds:10.1f} "
              f"{rows:9.1f} {rows / raw_rows:7.0%} {count.gradient_rows / len(inputs):10.0f} "
              f"{memory[0]:8.0f}", flush=True)


def memory_formats(name, model, inputs, repeats=3, budget_s=20.0):
    """Raw forward + backward rows/s in the default memory format and in ``channels_last``, in
    passes of the rows ``explain`` uses on this device (the evidence behind
    ``sanitylib.infra.device.CHANNELS_LAST``)."""
    device = module_device(model)
    inputs = inputs.to(device)
    rows = max_rows_per_pass(inputs, {})
    rates = {}
    for layout in ("default", "channels_last"):
        copy_ = copy.deepcopy(model)
        if layout == "channels_last":
            copy_.to(memory_format=torch.channels_last)
        for p in copy_.parameters():
            p.requires_grad_(False)

        def raw(copy_=copy_):
            for i in range(0, len(inputs), rows):
                x = inputs[i:i + rows].clone().requires_grad_(True)
                copy_(x)[:, 0].sum().backward()
            synchronize(device)

        rates[layout] = len(inputs) / best_time(raw, repeats, budget_s)
    listed = (name, device.type) in CHANNELS_LAST
    print(f"\n{name} on {device}, passes of {rows} rows: default {rates['default']:.1f} rows/s, "
          f"channels_last {rates['channels_last']:.1f} rows/s "
          f"({rates['channels_last'] / rates['default']:.2f}x); in CHANNELS_LAST: {listed}")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: "
                        "$SANITYLIB_DEVICE, else cuda when there is one)")
    parser.add_argument("--skip-captum-loop", action="store_true",
                        help="skip the comparison with a per-image Captum loop")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    cnn, cnn_inputs = build("cnn").eval().to(device), torch.rand(args.images, 1, 28, 28)
    if not args.skip_captum_loop:
        bench("cnn", cnn, cnn_inputs.to(device), args.steps, args.samples, args.repeats)
    bench_against_raw("cnn", cnn, cnn_inputs, args.steps, args.samples, args.repeats)
    memory_formats("cnn", cnn, cnn_inputs, args.repeats)
    if not args.skip_efficientnet:
        subject = model_under_test(load_efficientnet_lite0().to(device))
        images = photograph_batch(list(BUILT_IN_PHOTOGRAPHS)[:args.efficientnet_images])
        memory_formats("efficientnet_lite0", subject.module, subject.preprocess(images),
                       args.repeats)
        in_fastest_format(subject.module, "efficientnet_lite0")
        bench_against_raw("efficientnet_lite0 (ImageNet weights)", subject.module,
                          subject.preprocess(images), args.efficientnet_steps,
                          args.efficientnet_samples, args.repeats)
    if not args.skip_inception:
        inception = untrained_inception_v3().to(device)
        x = torch.randn(args.inception_images, 3, 299, 299)
        memory_formats("inception_v3", inception, x, args.repeats)
        in_fastest_format(inception, "inception_v3")
        if not args.skip_captum_loop:
            bench("inception_v3", inception, x.to(device), args.inception_steps,
                  args.inception_samples, args.repeats)
        bench_against_raw("inception_v3", inception, x, args.inception_steps,
                          args.inception_samples, args.repeats)

if __name__ == "__main__":
    main()
