"""Cache fingerprints from the import closure (issue 24): no hand-kept list of modules."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from sanitylib.experiments import runner
from sanitylib.infra import fingerprint
from sanitylib.infra.fingerprint import code_fingerprint, import_closure, package_root
from sanitylib.models.mnist import MnistCNN


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(package_root() / "sanitylib", root / "sanitylib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _edit(root: Path, module: str, old: str, new: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_closure_follows_imports_of_every_form():
    closure = import_closure(["sanitylib.experiments.runner"])
    # imported by name (runner), through a package (saliency -> guided), inside a function
    # (cache -> under_test), and where the randomization draws its weights (mnist.trunc_normal)
    for module in ("sanitylib.methods.randomization", "sanitylib.methods.guided",
                   "sanitylib.models.under_test", "sanitylib.models.mnist",
                   "sanitylib.infra.fingerprint"):
        assert module in closure
    assert "sanitylib.checker.html" not in closure and "sanitylib" not in closure
    assert import_closure(["numpy", "sanitylib.no_such_module"]) == []


def test_editing_a_function_the_randomization_calls_changes_the_fingerprint(tmp_path):
    root = _copy(tmp_path)
    before = code_fingerprint([runner._step_maps], root)
    assert before == code_fingerprint([runner._step_maps], package_root())
    _edit(root, "sanitylib.checker.html", '"""', '"""Unrelated. ')  # outside the closure
    assert code_fingerprint([runner._step_maps], root) == before
    _edit(root, "sanitylib.models.mnist", "def trunc_normal(", "def trunc_normal(  ")
    assert code_fingerprint([runner._step_maps], root) != before


def test_an_edit_in_the_closure_rebuilds_the_cached_maps(tmp_path, monkeypatch):
    calls = []
    step_maps = runner._step_maps

    def counted(*args, **kwargs):
        calls.append(1)
        return step_maps(*args, **kwargs)

    monkeypatch.setattr(runner, "_step_maps", counted)
    model = MnistCNN().eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def run():
        return runner.randomization_run(model, x, ["gradient"], metrics=["spearman_abs"],
                                        blocks=["logits"], verbose=False).scores

    first = run()
    run()
    assert calls == [1]
    root = _copy(tmp_path)
    _edit(root, "sanitylib.models.mnist", "def trunc_normal(", "def trunc_normal(  ")
    monkeypatch.setattr(fingerprint, "package_root", lambda: root)
    again = run()
    assert calls == [1, 1] and again.equals(first)


def test_code_outside_the_package_counts_by_its_own_source():
    def one():
        return 1

    def two():
        return 2

    assert code_fingerprint([one]) != code_fingerprint([two])
    assert code_fingerprint([one]) == code_fingerprint([one])
    made = eval("lambda: 3")  # no source file: its bytecode and constants count
    assert code_fingerprint([made]) != code_fingerprint([eval("lambda: 4")])


def test_what_a_callable_carries_is_keyed():
    import functools

    from sanitylib.infra.cache import cache_key

    def scaled(x, p=1):
        return x * p

    def key(fn):
        return cache_key({}, (fn,), (fn,))[0]

    assert key(functools.partial(scaled, p=1)) != key(functools.partial(scaled, p=2))
    def make(f):
        return lambda x: x * f

    assert key(make(2.0)) != key(make(3.0))
    sign, absolute = eval("lambda x: torch.sign(x)"), eval("lambda x: torch.abs(x)")
    assert code_fingerprint([sign]) != code_fingerprint([absolute])  # names count without source
    assert code_fingerprint([sign]) == code_fingerprint([eval("lambda x: torch.sign(x)")])

    class Scale:
        def __init__(self, k):
            self.k = k

        def __call__(self, x):
            return x * self.k

    assert key(Scale(1)) != key(Scale(2)) and key(Scale(1)) == key(Scale(1))


def test_a_payload_without_its_manifest_is_rebuilt_quietly(tmp_path):
    import warnings

    from sanitylib.infra.cache import cache_dir, cached

    calls = []

    def build():
        calls.append(1)
        return {"x": torch.ones(2)}

    cached("t", {"a": 1}, build)
    next(cache_dir().glob("t/*.json")).unlink()  # as if killed between payload and manifest
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached("t", {"a": 1}, build)
    assert calls == [1, 1]


def test_the_model_code_is_in_an_explanation_key():
    from sanitylib.models.zoo import build

    subject = runner.model_under_test(build("resnet_bn"))
    code = runner.explanation_code(subject, ["gradient"])
    assert type(subject.module) in code and subject.init_module in code
    closure = import_closure([c.__module__ for c in code if hasattr(c, "__module__")])
    assert "sanitylib.models.zoo" in closure
