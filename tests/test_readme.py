"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"## The library\n\n```python\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no python example under '## The library'"
    exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["original", "logits", "fc1", "conv2", "conv1"]
