"""A cascading randomization run serial and on a local Dask cluster (issue 25): seconds each,
rows through the model per unit, and the speedup. Each way starts from an empty cache.

On a machine with as many cores as workers the speedup is bounded by the cores: a serial run
already uses them all through PyTorch's threads, a worker uses one. Usage:
    python benchmarks/executor_speedup.py [--workers 2] [--images 16] [--seeds 4] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from sanitylib.experiments.runner import randomization_run
from sanitylib.infra.executor import dask_executor
from sanitylib.models.zoo import build

METHODS = ["gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
           "guided_backprop", "gradcam"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="IG steps and SmoothGrad samples")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build("cnn").eval()
    x = torch.rand(args.images, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    options = {"integrated_gradients": {"steps": args.steps},
               "smoothgrad": {"samples": args.steps}}
    rows_per_image = 1 + 1 + args.steps + args.steps + 1 + 1  # per method, per step
    rows = rows_per_image * args.images * 4  # the CNN's 4 blocks: one unit (seed)
    print(f"MNIST CNN, {args.images} images, {args.seeds} seeds, methods {', '.join(METHODS)}; "
          f"about {rows:,} rows per unit (seed), {args.seeds} units; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads in the serial run")
    timings = {}
    for label, workers in (("serial", None), (f"Dask, {args.workers} workers", args.workers)):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SANITYLIB_CACHE"] = cache  # the workers, started now, inherit it
            executor = dask_executor(workers) if workers else None
            start = time.perf_counter()
            randomization_run(model, x, METHODS, seeds=list(range(args.seeds)), options=options,
                              metrics=["spearman_abs"], verbose=False, executor=executor)
            timings[label] = time.perf_counter() - start
        print(f"{label}: {timings[label]:.1f} s")
    serial, parallel = timings.values()
    print(f"speedup: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
