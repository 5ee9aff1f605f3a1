"""``sanitylib check`` and :func:`sanitylib.check`: a user's own model, a torchvision model with a
state dict, TorchScript, every kind of bad input, the report's files and its page in a browser."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

import sanitylib
from sanitylib.checker.verdicts import read_verdicts
from sanitylib.cli import main
from sanitylib.models.discovery import discover_blocks, last_conv_layer
from sanitylib.models.loading import ModelSpecError, load_model

FAST = ["--ig-steps", "2", "--samples", "2", "--max-inputs", "3"]
USER_MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    def _net():
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5))

    def make():
        torch.manual_seed(0)
        return _net()

    def other_seed():
        torch.manual_seed(1)
        return _net()

    def leaky():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(), nn.Flatten(),
                             nn.Linear(4 * 14 * 14, 3))

    class Pair(nn.Module):  # returns (logits, features), as many models do
        def __init__(self):
            super().__init__()
            self.net = _net()
        def forward(self, x):
            return self.net(x), x.mean((2, 3))

    class Output(nn.Module):  # returns a mapping with "logits", as Hugging Face's models do
        def __init__(self):
            super().__init__()
            self.net = _net()
        def forward(self, x):
            return {"logits": self.net(x), "hidden": x}

    class Words(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _net()
        def forward(self, x):
            return "a cat"

    class NotANumber(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _net()
        def forward(self, x):
            return self.net(x) * float("nan")

    def pair():
        torch.manual_seed(0)
        return Pair()

    def output():
        torch.manual_seed(0)
        return Output()

    def words():
        return Words()

    def nan_out():
        return NotANumber()

    def not_a_model():
        return 42

    def broken():
        raise RuntimeError("no weights here")
""")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    (root / "user.py").write_text(USER_MODEL)
    torch.manual_seed(0)
    torch.save(torch.rand(3, 3, 16, 16), root / "x.pt")
    holes = torch.rand(3, 3, 16, 16)
    holes[1, 0, 2, 2] = float("nan")
    torch.save(holes, root / "nan.pt")
    np.save(root / "x.npy", np.random.default_rng(0).random((3, 3, 16, 16), dtype=np.float32))
    images = root / "images"
    images.mkdir()
    for i in range(2):
        array = (np.random.default_rng(i).random((40, 48, 3)) * 255).astype(np.uint8)
        Image.fromarray(array).save(images / f"image{i}.png")
    resnet = torchvision.models.resnet18()
    torch.save(resnet.state_dict(), root / "resnet18.pt")
    return root


def run_cli(*args: str) -> tuple[int, str]:
    """The command in a subprocess: exit code and stderr."""
    done = subprocess.run([sys.executable, "-m", "sanitylib", *args], capture_output=True,
                          text=True, timeout=600, check=False)
    return done.returncode, done.stderr


def test_user_model_from_a_python_file(files, tmp_path):
    out = tmp_path / "report"
    assert main(["check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(out),
                 "--methods", "gradient,guided_backprop,gradcam", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "scores.csv", "verdict.json"]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["blocks"] == ["9", "7", "3", "0"]
    assert {(v["method"], v["metric"]) for v in verdict["verdicts"]} == {
        (m, k) for m in ("gradient", "guided_backprop", "gradcam")
        for k in ("spearman_abs", "spearman", "ssim", "hog")}
    assert all(v["verdict"] in ("like random maps", "still similar", "inconclusive")
               for v in verdict["verdicts"])
    scores = pd.read_csv(out / "scores.csv")
    assert {"model", "method", "order", "block", "metric", "seed", "image", "value"} <= set(scores)
    assert set(scores.block) == {"original", "9", "7", "3", "0"}
    # the trained model's maps against themselves: similarity 1
    assert np.allclose(scores[(scores.block == "original") & (scores.metric == "spearman")].value, 1)
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_torchvision_resnet18_with_a_state_dict(files, tmp_path):
    out = tmp_path / "resnet"
    assert main(["check", "torchvision:resnet18", str(files / "images"), "--weights",
                 str(files / "resnet18.pt"), "--size", "32", "--preprocess", "imagenet",
                 "--methods", "gradient,gradcam", "--metrics", "spearman_abs", "--out", str(out),
                 *FAST]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["blocks"][0] == "fc" and verdict["blocks"][-1] == "conv1"
    assert "layer4.1" in verdict["blocks"] and len(verdict["blocks"]) == 11
    assert verdict["settings"]["inputs"] == [2, 3, 32, 32]


def test_compare_with_adds_the_data_randomization_test(files, tmp_path):
    out = tmp_path / "pair"
    assert main(["check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(out),
                 "--compare-with", f"{files}/user.py:other_seed", "--methods", "gradient",
                 "--metrics", "spearman", *FAST]) == 0
    verdicts = json.loads((out / "verdict.json").read_text())["verdicts"]
    assert [v["test"] for v in verdicts] == ["parameters, cascading", "data randomization"]
    scores = pd.read_csv(out / "scores.csv")
    pairs = scores[scores.test == "data randomization"]
    assert len(pairs) == 3 and pairs.value.abs().max() < 1.0  # two different models' maps


def test_refusals_are_per_method(files, tmp_path):
    out = tmp_path / "leaky"
    assert main(["check", f"{files}/user.py:leaky", str(files / "x.npy"), "--out", str(out),
                 "--methods", "gradient,guided_backprop", "--metrics", "spearman", *FAST]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert "leaky_relu" in verdict["refused"]["guided_backprop"]
    assert {v["method"] for v in verdict["verdicts"]} == {"gradient"}


def test_torchscript_refuses_hooked_methods_and_the_default_init(files, tmp_path):
    sys.path.insert(0, str(files))
    try:
        import user
    finally:
        sys.path.remove(str(files))
    scripted = torch.jit.script(user.make())
    torch.jit.save(scripted, files / "scripted.pt")
    code, err = run_cli("check", str(files / "scripted.pt"), str(files / "x.pt"), "--out",
                        str(tmp_path / "ts"), *FAST)
    assert code == 2 and "no initializer to re-run" in err and "Traceback" not in err
    out = tmp_path / "ts2"
    assert main(["check", str(files / "scripted.pt"), str(files / "x.pt"), "--out", str(out),
                 "--init", "xavier", "--methods", "gradient,guided_backprop,gradcam",
                 "--metrics", "spearman", *FAST]) == 0
    refused = json.loads((out / "verdict.json").read_text())["refused"]
    assert set(refused) == {"guided_backprop", "gradcam"}
    assert "TorchScript" in refused["gradcam"]


@pytest.mark.parametrize(("args", "message"), [
    (["missing.py:make", "{x}"], "no such file missing.py"),
    (["{user}:not_a_model", "{x}"], "returned a int, not a torch nn.Module"),
    (["{user}:absent", "{x}"], "has no function 'absent'; its functions: NotANumber, Output"),
    (["{user}:nan_out", "{x}"], "the model's outputs hold NaN or infinite values for 1 of 1"),
    (["{user}:make", "{root}/nan.pt"], "the inputs hold NaN or infinite values (1 of 3 inputs)"),
    (["{user}:words", "{x}"], "the model returns a str, not logits; wrap it"),
    (["{user}:make", "{x}", "--random-weights"], "--random-weights applies to torchvision:NAME"),
    (["{user}:broken", "{x}"], "raised RuntimeError: no weights here"),
    (["{user}:make", "{root}/nothing"], "no such file or folder"),
    (["{user}:make", "{user}"], "inputs are a folder of images"),
    (["{user}:make", "{x}", "--methods", "gradient,magic"], "unknown method(s) magic; valid choices"),
    (["{user}:make", "{x}", "--order", "sideways"], "valid choices: cascading, independent, bottom_up"),
    (["{user}:make", "{x}", "--preprocess", "sepia"], "valid choices: model, imagenet"),
    (["{user}:make", "{x}", "--blocks", "9,nope"], "has no submodule 'nope'"),
    (["{user}:make", "{x}", "--init", "gaussian"], "valid choices: default, truncated_normal"),
    (["torchvision:resnet18", "{x}", "--weights", "{x}"], "do not fit the model"),
    (["torchvision:resnet999", "{x}"], "torchvision has no model 'resnet999'"),
    (["cnn", "{x}"], "inputs of shape (3, 16, 16) do not fit the model"),
    (["something-else", "{x}"], "valid forms: path/to/file.py:function"),
])
def test_bad_input_is_one_line_and_exit_code_2(files, tmp_path, args, message):
    filled = [a.format(x=files / "x.pt", user=files / "user.py", root=files) for a in args]
    code, err = run_cli("check", *filled, "--out", str(tmp_path / "bad"), *FAST)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sanitylib check: error: ") and message in last, err
    assert not (tmp_path / "bad").exists()


def test_an_interrupted_write_leaves_no_report(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    report = sanitylib.check(net, torch.rand(2, 3, 16, 16), methods=["gradient"],
                             metrics=["spearman"], ig_steps=2, samples=2)
    assert isinstance(report.scores, pd.DataFrame) and len(report.verdicts) == 1

    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "to_html", interrupt)
    with pytest.raises(KeyboardInterrupt):
        report.write(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out-")]  # no staging left


def test_an_existing_folder_that_is_not_a_report_is_kept(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    report = sanitylib.check(net, torch.rand(2, 3, 2, 2), methods=["gradient"],
                             metrics=["spearman"])
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a sanitylib report"):
        report.write(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_discovery_orders_blocks_by_the_forward_pass():
    class Backwards(nn.Module):
        """Registered in one order, called in the other."""

        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 2)
            self.body = nn.Linear(4, 8)
            self.stem = nn.Conv2d(1, 4, 1)

        def forward(self, x):
            return self.head(self.body(self.stem(x).mean((2, 3))))

    x = torch.rand(1, 1, 5, 5)
    assert list(discover_blocks(Backwards(), x)) == ["head", "body", "stem"]
    assert last_conv_layer(Backwards(), x) == "stem"


@pytest.fixture(scope="module")
def paired_report(files, tmp_path_factory):
    """A report with both tests (parameters, cascading, and data randomization)."""
    out = tmp_path_factory.mktemp("paired") / "report"
    assert main(["check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(out),
                 "--compare-with", f"{files}/user.py:other_seed",
                 "--methods", "gradient,guided_backprop,gradcam", *FAST]) == 0
    return out


def _rows(table: str) -> list[str]:
    return table.split("<tr>")[1:]


def test_the_report_answers_once_per_method_before_its_details(paired_report):
    page = (paired_report / "report.html").read_text()
    answers = json.loads((paired_report / "verdict.json").read_text())["answers"]
    top = page[page.index("<h2>Answers</h2>"):page.index("<h2>Details</h2>")]
    tables = re.findall(r"<table class='answers'>(.*?)</table>", top, re.DOTALL)
    assert len(tables) == 2  # one per test, one row per method in each
    words = {"like random maps": "passes", "still similar": "fails", "inconclusive": "cannot tell"}
    for table, test in zip(tables, ["parameters, cascading", "data randomization"]):
        header, *rows = _rows(table)
        assert [h.split("<")[0] for h in re.findall(r"<th>(.*?)</th>", header)] == \
            ["method", "verdict", "inputs", "Spearman (absolute) ", "what it means"]
        expected = [a for a in answers if a["test"] == test]
        assert [re.search(r"<b>(.*?)</b>", r).group(1) for r in rows] == \
            ["Gradient", "Guided BackProp", "GradCAM"]
        for row, answer in zip(rows, expected):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
            assert len(cells) == 5
            assert cells[1].startswith(f"<b>{words[answer['verdict']]}</b>")  # one verdict
            assert cells[2].startswith(str(answer["n"]))
            assert cells[3].startswith(f"{answer['mean']:.2f} <small>[{answer['low']:.2f}, ")
            assert cells[4].split(":")[0] == words[answer["verdict"]].capitalize()


def test_the_report_reads_like_a_page(paired_report):
    """At most 6 columns and 2 decimals in every table, human labels, every image a captioned
    figure, the trained model's and the last step's maps drawn large, all inside .report."""
    page = (paired_report / "report.html").read_text()
    assert '<main class="report">' in page
    for table in re.findall(r"<table[^>]*>(.*?)</table>", page, re.DOTALL):
        header = _rows(table)[0]
        assert header.count("<th") <= 6
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.DOTALL)
        assert not [c for c in cells if re.search(r"\d\.\d{3}|nan|_", c)]
    assert "guided_backprop" not in page.split("<h2>Answers</h2>")[1].split("<h3>Settings")[0]
    figures = re.findall(r"<figure>(.*?)</figure>", page, re.DOTALL)
    assert len(figures) == page.count("<img") == 4
    assert all(re.search(r"<figcaption>[^<]{40,}</figcaption>", f) for f in figures)
    assert "under the trained model, then with every block re-initialized" in figures[0]
    assert page.index("<table class='answers'>") < page.index("<table class='metrics'>") \
        < page.index("<figure>")


def test_a_report_embeds_whole_and_keeps_its_styles_to_itself(paired_report):
    from sanitylib.checker.html import embeddable

    page = (paired_report / "report.html").read_text()
    fragment = embeddable(page)
    assert fragment.count('<div class="report">') == 1 and "<main" not in fragment
    style = re.search(r"<style>(.*?)</style>", fragment, re.DOTALL).group(1)
    selectors = [s.strip() for rule in re.findall(r"([^{}]+)\{", style) for s in rule.split(",")]
    assert selectors and all(s.startswith((".report", ".sanitylib-report > .report"))
                             for s in selectors), selectors
    assert "<h1" not in fragment and "<h2" not in fragment
    assert "<h3>Sanity checks for saliency maps" in fragment and "<h4>Answers</h4>" in fragment
    assert fragment.count("data:image/png;base64,") == 4
    with pytest.raises(ValueError, match="not a sanitylib report"):
        embeddable("<html><body>something else</body></html>")


def test_report_page_renders_in_headless_chromium(files, paired_report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt works)")
    from sanitylib.checker.html import embeddable

    audit_pages = _audit_pages()
    found = audit_pages.audit(paired_report / "report.html", browser)
    assert found["images"] == 4 and found["problems"] == []
    book = tmp_path / "book.html"  # the report inside a page of the book's column width
    book.write_text("<html><body><main style='max-width:688px'><h1>A chapter</h1>"
                    + embeddable((paired_report / "report.html").read_text())
                    + "</main></body></html>")
    found = audit_pages.audit(book, browser)
    assert found["images"] == 4 and found["problems"] == []
    # its link opens the whole report on a page of its own (a Blob URL made from the fragment)
    probe = tmp_path / "click.html"
    probe.write_text(book.read_text().replace("</body>", """<script>
window.addEventListener('load', async () => {
  let opened = null;
  window.open = (url) => { opened = url; };
  document.querySelector('.sanitylib-report a').click();
  const page = await (await fetch(opened)).text();
  const out = document.createElement('pre');
  out.id = 'opened';
  out.textContent = (page.match(/<img/g) || []).length + ' ' + page.slice(0, 60);
  document.body.appendChild(out);
});</script></body>"""))
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
                           "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    opened = re.search(r'<pre id="opened">(.*?)</pre>', done.stdout, re.DOTALL)
    assert opened is not None and opened.group(1).startswith("4 &lt;!DOCTYPE html&gt;")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1600",
                    f"--screenshot={shot}", (paired_report / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1000)
    # text, tables and figures: far from a blank page
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01


def _audit_pages():
    """scripts/audit_pages.py as a module."""
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    spec = importlib.util.spec_from_file_location("audit_pages", scripts / "audit_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_inputs_are_inconclusive_whatever_the_similarity() -> None:
    """The report's verdicts use the book's decision rule: 2 inputs cannot decide."""
    verdicts = pd.DataFrame({"metric": ["spearman_abs"] * 2, "mean": [0.9, -0.02],
                             "low": [0.85, -0.74], "high": [0.95, 0.71], "n": [2, 8],
                             "random_mean": [0.0, 0.0], "random_high": [0.05, 0.05]})
    read = read_verdicts(verdicts)
    assert read["verdict"].tolist() == ["inconclusive", "inconclusive"]
    assert "2 independent observations" in read["reason"][0]
    assert "contains 0.05" in read["reason"][1]


@pytest.mark.parametrize(("args", "message"), [
    (["--max-inputs", "0"], "--max-inputs must be at least 1, got 0"),
    (["--ig-steps", "-2"], "--ig-steps must be at least 1, got -2"),
    (["--samples", "0"], "--samples must be at least 1, got 0"),
])
def test_counts_below_one_are_refused(files, tmp_path, args, message):
    out = tmp_path / "bad"
    code, err = run_cli("check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(out),
                        *args)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"sanitylib check: error: {message}"
    assert not out.exists()


def test_out_naming_a_file_is_refused(files, tmp_path):
    out = tmp_path / "taken.txt"
    out.write_text("mine")
    code, err = run_cli("check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(out),
                        *FAST)
    assert code == 2 and "Traceback" not in err and "is a file" in err.strip().splitlines()[-1]
    assert out.read_text() == "mine"


def test_library_models_without_weights_are_never_random(files, tmp_path):
    """torchvision:NAME without --weights takes torchvision's pretrained weights; offline and
    with none in the cache it refuses, naming --weights, instead of checking random weights."""
    env = {**os.environ, "SANITYLIB_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch")}
    done = subprocess.run([sys.executable, "-m", "sanitylib", "check", "torchvision:resnet18",
                           str(files / "images"), "--out", str(tmp_path / "r"), *FAST],
                          capture_output=True, text=True, timeout=600, check=False, env=env)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no pretrained weights at" in last and "--weights FILE" in last
    assert not (tmp_path / "r").exists()


def test_library_weights_come_from_the_local_cache(files, tmp_path, monkeypatch):
    monkeypatch.setenv("SANITYLIB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copy(files / "resnet18.pt", checkpoints / "resnet18-f37072fd.pth")
    model = load_model("torchvision:resnet18")
    expected = torch.load(files / "resnet18.pt", weights_only=True)
    assert torch.equal(model.state_dict()["fc.weight"], expected["fc.weight"])
    with pytest.raises(ModelSpecError, match="--random-weights applies"):
        load_model("torchvision:resnet18", files / "resnet18.pt", random_weights=True)


def test_random_weights_only_when_asked_and_said_on_top(files, tmp_path):
    out = tmp_path / "random"
    assert main(["check", "torchvision:resnet18", str(files / "images"), "--random-weights",
                 "--size", "32", "--methods", "gradient", "--metrics", "spearman_abs",
                 "--out", str(out), *FAST]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["settings"]["weights"].startswith("random: never trained")
    page = (out / "report.html").read_text()
    assert page.index("never trained") < page.index("<h2>")


@pytest.mark.parametrize("maker", ["pair", "output"])
def test_tuples_and_mappings_give_their_logits(files, tmp_path, maker):
    """A (logits, features) tuple gives its first item, a mapping its "logits"; the maps are
    those of the plain network."""
    out = tmp_path / maker
    assert main(["check", f"{files}/user.py:{maker}", str(files / "x.pt"), "--out", str(out),
                 "--methods", "gradient", "--metrics", "spearman", *FAST]) == 0
    plain = tmp_path / "plain"
    assert main(["check", f"{files}/user.py:make", str(files / "x.pt"), "--out", str(plain),
                 "--methods", "gradient", "--metrics", "spearman", *FAST]) == 0
    ours = pd.read_csv(out / "scores.csv").value.to_numpy()
    reference = pd.read_csv(plain / "scores.csv").value.to_numpy()
    assert np.allclose(ours, reference, atol=1e-6)
