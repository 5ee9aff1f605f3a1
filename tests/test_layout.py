"""The package's shape (issue 24): no import circle, one version, distinct names."""

from __future__ import annotations

import ast

import tomllib

import sanitylib
from sanitylib.infra.fingerprint import package_root


def _imports() -> dict[str, set[str]]:
    """Module -> the sanitylib modules it imports (function-level imports included)."""
    root = package_root()
    graph = {}
    for path in sorted((root / "sanitylib").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sanitylib"):
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    found.add(name if (root / name.replace(".", "/")).with_suffix(".py").exists()
                              else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("sanitylib"))
        graph[module] = found
    return graph


def test_no_module_imports_itself_back():
    graph = _imports()
    assert "sanitylib.checker.run" in graph and "sanitylib.checker.html" in graph

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))
        return False

    # a package's __init__ re-exports its modules; a circle through one counts too, except
    # sanitylib's own lazy check/CheckReport (its __getattr__)
    circles = [m for m in graph if m != "sanitylib" and reaches(m, m)]
    assert circles == []


def test_one_version():
    with open(package_root() / "pyproject.toml", "rb") as handle:
        declared = tomllib.load(handle)["project"]["version"]
    assert sanitylib.__version__ == declared
