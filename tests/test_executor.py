"""A randomization run on an executor (issue 25, item 1): the seeds' units computed elsewhere, the
serial run's scores, the cache shared, a failure cancelling what has not started."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import pandas as pd
import pytest
import torch

from sanitylib.experiments import runner
from sanitylib.infra.cache import cache_dir
from sanitylib.models.mnist import MnistCNN

METHODS = ["gradient", "smoothgrad", "guided_backprop"]
OPTIONS = {"smoothgrad": {"samples": 2}}


def _run(**kwargs) -> runner.RandomizationRun:
    torch.manual_seed(0)
    model = MnistCNN().eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    return runner.randomization_run(model, x, METHODS, seeds=[0, 1, 2], blocks=["logits", "fc1"],
                                    metrics=["spearman_abs", "ssim"], options=OPTIONS,
                                    verbose=False, keep_maps=1, **kwargs)


def test_threads_give_the_serial_scores_and_report_every_step(tmp_path, monkeypatch):
    serial = _run()
    monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path / "other"))  # nothing cached yet
    steps: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        threaded = _run(executor=pool, progress=steps.append)
    pd.testing.assert_frame_equal(threaded.scores, serial.scores)
    assert sorted(steps) == sorted(["original", "logits", "fc1"] * 3)
    assert torch.equal(threaded.maps[2]["fc1"]["smoothgrad"], serial.maps[2]["fc1"]["smoothgrad"])


def test_processes_give_the_serial_scores_and_fill_the_shared_cache(monkeypatch):
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = _run(executor=pool)
    entries = sorted(cache_dir().glob("explanations/*.json"))
    assert len(entries) == 1 + 3  # the original maps, then one unit per seed from the workers
    calls = []
    monkeypatch.setattr(runner, "_step_maps", lambda *a, **k: calls.append(1))
    serial = _run()  # every unit from the workers' entries
    assert calls == []
    pd.testing.assert_frame_equal(parallel.scores, serial.scores)


class _FailingFirst(Executor):
    """Runs nothing: the first unit fails, the others stay pending."""

    def __init__(self) -> None:
        self.futures: list[Future] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        if not self.futures:
            future.set_exception(KeyboardInterrupt())
        self.futures.append(future)
        return future


def test_an_interrupted_unit_cancels_the_rest_and_writes_no_scores():
    executor = _FailingFirst()
    with pytest.raises(KeyboardInterrupt):
        _run(executor=executor)
    assert all(f.cancelled() for f in executor.futures[1:])
    assert not list(cache_dir().glob("scores/*.json"))
