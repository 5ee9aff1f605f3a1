"""Device rules (issue 15): the device is chosen in one place, every function follows the
model's device, random draws do not depend on it, results come back on the caller's device.

The CUDA tests compare a CUDA model and CUDA inputs with the CPU. Tolerance: maps agree to
1e-3 of their largest magnitude (float32 summation order differs, and cuDNN may use TF32
convolutions), scores to 1e-3. They are skipped, with the reason, where there is no CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sanitylib.experiments.runner import randomization_run
from sanitylib.infra.device import default_device, module_device, randn, resolve_device
from sanitylib.methods import quality
from sanitylib.methods.randomization import randomize
from sanitylib.methods.saliency import METHODS, explain, explain_methods, predicted_class
from sanitylib.methods.similarity import compare
from sanitylib.models.zoo import build

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine")


def test_sanitylib_device_chooses_the_device(monkeypatch):
    monkeypatch.setenv("SANITYLIB_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.delenv("SANITYLIB_DEVICE")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_or_absent_devices_are_refused_with_the_valid_choices(monkeypatch):
    with pytest.raises(ValueError, match="valid choices: cpu, cuda, mps"):
        resolve_device("tpu")
    monkeypatch.setenv("SANITYLIB_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        default_device()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device; valid choices here: cpu"):
            resolve_device("cuda")


def test_module_device_of_a_module_without_tensors_is_the_cpu():
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")


def test_draws_come_from_a_seeded_cpu_generator():
    assert torch.equal(randn((3, 4), 7), torch.randn((3, 4), generator=torch.Generator()
                                                     .manual_seed(7)))


def cnn_and_inputs(device: str) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = build("cnn").eval().to(device)
    return model, torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)).to(device)


def assert_maps_close(on_gpu: torch.Tensor, on_cpu: torch.Tensor) -> None:
    scale = float(on_cpu.abs().max()) or 1.0
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0.0, atol=1e-3 * scale)


@needs_cuda
@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_cuda_gives_the_cpu_maps_on_the_inputs_device(method):
    cpu_model, cpu_x = cnn_and_inputs("cpu")
    gpu_model, gpu_x = cnn_and_inputs("cuda")
    settings = {"steps": 5, "samples": 4}
    options = {k: v for k, v in settings.items()
               if method in ("integrated_gradients", "ig_smoothgrad", "smoothgrad", "vargrad")}
    on_gpu = explain(gpu_model, gpu_x, method, **options)
    assert on_gpu.device.type == "cuda"
    assert_maps_close(on_gpu, explain(cpu_model, cpu_x, method, **options))
    # CPU inputs to a CUDA model: the passes run on the GPU, the maps come back on the CPU
    assert explain(gpu_model, cpu_x, method, **options).device.type == "cpu"


@needs_cuda
def test_per_image_baselines_targets_and_predictions_on_cuda():
    cpu_model, cpu_x = cnn_and_inputs("cpu")
    gpu_model, gpu_x = cnn_and_inputs("cuda")
    assert torch.equal(predicted_class(gpu_model, gpu_x).cpu(), predicted_class(cpu_model, cpu_x))
    base = torch.rand_like(cpu_x)
    target = torch.tensor([1, 2, 3, 4])
    maps = explain_methods(gpu_model, gpu_x, ["integrated_gradients"], target.cuda(),
                           {"integrated_gradients": {"baseline": base.cuda(), "steps": 5}})
    assert_maps_close(maps["integrated_gradients"],
                      explain(cpu_model, cpu_x, "integrated_gradients", target, baseline=base,
                              steps=5))


@needs_cuda
def test_randomized_weights_are_the_same_on_cuda():
    cpu_model, _ = cnn_and_inputs("cpu")
    gpu_model, _ = cnn_and_inputs("cuda")
    for init in ("default", "truncated_normal", "xavier"):
        for (step, a), (_, b) in zip(randomize(cpu_model, init=init, seed=3),
                                     randomize(gpu_model, init=init, seed=3)):
            for (name, p), q in zip(a.named_parameters(), b.parameters()):
                assert q.device.type == "cuda"
                assert torch.equal(p, q.cpu()), (init, step, name)


@needs_cuda
def test_randomization_run_and_quality_scores_on_cuda_match_the_cpu():
    cpu_model, cpu_x = cnn_and_inputs("cpu")
    gpu_model, gpu_x = cnn_and_inputs("cuda")
    runs = [randomization_run(m, x, ["gradient", "guided_backprop"], metrics=["spearman"],
                              verbose=False).scores for m, x in ((cpu_model, cpu_x),
                                                                 (gpu_model, gpu_x))]
    np.testing.assert_allclose(runs[1].value, runs[0].value, atol=1e-3)
    maps = explain(cpu_model, cpu_x, "gradient")
    target = predicted_class(cpu_model, cpu_x)
    for multiplied in (False, True):
        np.testing.assert_allclose(
            quality.infidelity_scores(gpu_model, gpu_x, maps.cuda(), target.cuda(),
                                      multiplied=multiplied),
            quality.infidelity_scores(cpu_model, cpu_x, maps, target, multiplied=multiplied),
            rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(compare(maps.cuda(), maps.cuda() * 2, "ssim"),
                               compare(maps, maps * 2, "ssim"))


@needs_cuda
def test_training_on_cuda_returns_the_model_there_and_learns():
    from sanitylib.models.training import TrainConfig, train

    trained = train(TrainConfig("cnn", "mnist", train_size=500, epochs=2), verbose=False,
                    device="cuda")
    assert module_device(trained.model).type == "cuda"
    assert trained.test_accuracy > 0.5


def test_training_follows_sanitylib_device(monkeypatch):
    from sanitylib.models.training import TrainConfig, train

    monkeypatch.setenv("SANITYLIB_DEVICE", "cpu")
    trained = train(TrainConfig("mlp", "mnist", train_size=50, epochs=1), verbose=False)
    assert module_device(trained.model).type == "cpu"


@needs_cuda
@pytest.mark.parametrize("method", ["deeplift", "gradient_shap", "lrp"])
def test_the_follow_up_methods_on_cuda_give_the_cpu_maps(method):
    cpu_model, cpu_x = cnn_and_inputs("cpu")
    gpu_model, gpu_x = cnn_and_inputs("cuda")
    assert_maps_close(explain(gpu_model, gpu_x, method, samples=4),
                      explain(cpu_model, cpu_x, method, samples=4))


@needs_cuda
def test_the_follow_up_tests_on_cuda_score_like_the_cpu():
    from sanitylib.experiments.followup_suite import run_followups

    cpu_model, cpu_x = cnn_and_inputs("cpu")
    gpu_model, gpu_x = cnn_and_inputs("cuda")
    settings = {"smprt": {"samples": 3}}
    tables = [run_followups(m, x, ["gradient", "gradcam"], settings=settings)
              for m, x in ((cpu_model, cpu_x), (gpu_model, gpu_x))]
    np.testing.assert_allclose(tables[1].value, tables[0].value, atol=1e-3)
