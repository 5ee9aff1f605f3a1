"""A randomization run on a local Dask cluster (issue 25): the serial run's scores, a registered
method shipped to the workers, a worker killed mid-run with its unit run again elsewhere and
nothing half-written in the cache."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings

import pandas as pd
import pytest
import torch

distributed = pytest.importorskip("distributed")

import cloudpickle

import sanitylib
from sanitylib.experiments import runner
from sanitylib.infra import executor as executors
from sanitylib.models.mnist import MnistCNN


def slow_gradient(model, inputs, targets):
    """The gradient, one second late: a unit long enough to be interrupted."""
    time.sleep(1.0)
    x = inputs.clone().requires_grad_()
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(x).gather(1, targets[:, None]).sum(), x)
    return grad


def _run(methods, **kwargs) -> runner.RandomizationRun:
    torch.manual_seed(0)
    model = MnistCNN().eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    return runner.randomization_run(model, x, methods, seeds=[0, 1, 2], blocks=["logits", "fc1"],
                                    metrics=["spearman_abs", "ssim"],
                                    options={"smoothgrad": {"samples": 2}}, verbose=False, **kwargs)


def _cluster():
    """Two worker processes that inherit this test's environment (its cache folder)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    return cluster, distributed.Client(cluster)


def test_a_dask_run_gives_the_serial_scores(tmp_path, monkeypatch):
    cluster, client = _cluster()
    try:
        parallel = _run(["gradient", "smoothgrad", "guided_backprop"],
                        executor=client.get_executor())
    finally:
        client.close()
        cluster.close()
    monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path / "serial"))
    serial = _run(["gradient", "smoothgrad", "guided_backprop"])
    pd.testing.assert_frame_equal(parallel.scores, serial.scores, check_exact=False, atol=1e-5)


def test_a_killed_worker_has_its_unit_run_again(tmp_path, monkeypatch):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the method travels by value
    sanitylib.register_method("slow_gradient", slow_gradient, label="slow gradient")
    cluster, client = _cluster()
    try:
        pids = client.run(os.getpid)
        done: dict[str, object] = {}
        worker = threading.Thread(target=lambda: done.update(
            run=_run(["slow_gradient"], executor=client.get_executor())))
        worker.start()
        deadline, busy = time.time() + 120, []
        while not busy and time.time() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            time.sleep(0.05)
        time.sleep(0.5)  # inside its first unit
        os.kill(pids[busy[0]], signal.SIGKILL)
        worker.join(300)
        assert "run" in done, "the run did not finish after a worker was killed"
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    try:
        calls: list[int] = []
        step_maps = runner._step_maps
        monkeypatch.setattr(runner, "_step_maps", lambda *a, **k: calls.append(1) or step_maps(*a, **k))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a stale or half-written entry would warn
            again = _run(["slow_gradient"])
        assert calls == []  # every unit came from the workers' entries, each one whole
        monkeypatch.setenv("SANITYLIB_CACHE", str(tmp_path / "serial"))
        serial = _run(["slow_gradient"])
    finally:
        sanitylib.unregister_method("slow_gradient")
    pd.testing.assert_frame_equal(done["run"].scores, serial.scores)
    pd.testing.assert_frame_equal(again.scores, serial.scores)


def test_the_environment_chooses_the_executor(monkeypatch):
    monkeypatch.delenv("SANITYLIB_WORKERS", raising=False)
    monkeypatch.delenv("SANITYLIB_SCHEDULER", raising=False)
    assert executors.configured_executor() is None
    monkeypatch.setenv("SANITYLIB_WORKERS", "two")
    with pytest.raises(ValueError, match="SANITYLIB_WORKERS must be a whole number, got 'two'"):
        executors.configured_executor()
    with pytest.raises(ValueError, match="workers must be at least 1"):
        executors.dask_executor(workers=0)
    with pytest.raises(ValueError, match="either workers"):
        executors.dask_executor()


def test_the_command_runs_on_a_local_cluster(tmp_path):
    from sanitylib.cli import main

    (tmp_path / "net.py").write_text(
        "import torch\nfrom torch import nn\n\ndef make():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),\n"
        "                         nn.Linear(4 * 16 * 16, 3))\n")
    torch.save(torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
               tmp_path / "x.pt")
    common = [f"{tmp_path}/net.py:make", str(tmp_path / "x.pt"), "--methods", "gradient,gradcam",
              "--seeds", "0,1", "--ig-steps", "2", "--samples", "2"]
    assert main(["check", *common, "--out", str(tmp_path / "r"), "--workers", "2"]) == 0
    assert main(["check", *common, "--out", str(tmp_path / "s")]) == 0
    clustered = pd.read_csv(tmp_path / "r" / "scores.csv")
    pd.testing.assert_frame_equal(clustered, pd.read_csv(tmp_path / "s" / "scores.csv"))
    assert main(["check", *common, "--out", str(tmp_path / "t"), "--workers", "0"]) == 2
    assert not (tmp_path / "t").exists()
