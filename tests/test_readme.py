"""The README's library examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import sanitylib


def test_readme_examples_run(capsys):
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = re.search(r"## The library\n(.*?)\n## ", text, re.DOTALL)
    assert section, "README.md has no '## The library' section"
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.DOTALL)
    assert len(blocks) == 2, "README.md's library section should hold its two examples"
    exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["original", "logits", "fc1", "conv2", "conv1"]
    try:
        exec(compile(blocks[1], "README.md", "exec"), {})  # noqa: S102
        assert capsys.readouterr().out.strip() == "torch.Size([2, 1, 28, 28])"
        assert sanitylib.LABELS["occlusion"] == "Occlusion"
    finally:
        sanitylib.unregister_method("occlusion")
