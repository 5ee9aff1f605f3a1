"""Fingerprints of the code behind a cache entry: its import closure, read from the source.

A cache entry depends on the function that built it and on everything that function can call.
Rather than lists of modules kept by hand (which miss a helper sooner or later), the fingerprint
of an object defined in :mod:`sanitylib` covers the source of its module and of every
:mod:`sanitylib` module that module imports, transitively: the *import closure*, found by reading
the ``import`` statements (anywhere in a module, function-level imports included) with
:mod:`ast`. A package's ``__init__`` counts only where it is imported from by name
(``from sanitylib.models import ModelUnderTest``), not as the parent of every submodule.

Objects from elsewhere (a user's registered method) count by their own source, or by their
bytecode and constants where Python has no source for them (a function typed at a prompt).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import types
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["PACKAGE", "code_fingerprint", "code_state", "import_closure", "package_root"]

PACKAGE = "sanitylib"


def package_root() -> Path:
    """The folder holding the ``sanitylib`` package (its source is read from there)."""
    return Path(__file__).resolve().parents[2]


def _path(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@functools.cache
def _imports(path: Path, stamp: tuple[int, int], module: str, root: Path) -> tuple[str, ...]:
    """The :data:`PACKAGE` modules that ``module`` (at ``path``, as of ``stamp``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if _path(submodule, root) else base)
    return tuple(sorted(m for m in found
                        if (m == PACKAGE or m.startswith(PACKAGE + ".")) and _path(m, root)))


def import_closure(modules: Iterable[str], root: Path | None = None) -> list[str]:
    """Every :data:`PACKAGE` module reachable from ``modules`` by imports, sorted."""
    root = root or package_root()
    seen: set[str] = set()
    todo = [m for m in modules if _path(m, root)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _path(module, root)
        assert path is not None
        status = path.stat()
        todo.extend(_imports(path, (status.st_mtime_ns, status.st_size), module, root))
    return sorted(seen)


def _code_bytes(code: types.CodeType) -> bytes:
    """A code object's instructions, names and constants, nested code objects included (their
    memory addresses left out), for a function Python has no source for."""
    parts = [code.co_code, repr((code.co_names, code.co_varnames, code.co_freevars)).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, types.CodeType)
                     else repr(const).encode())
    return b"\0".join(parts)


def _own_fingerprint(item: object) -> bytes:
    """The source of a function or class from outside the package; else its bytecode (a class:
    every function it defines); else, for a callable object, its class's."""
    try:
        return inspect.getsource(item).encode()  # type: ignore[arg-type]
    except (OSError, TypeError):
        pass
    code = getattr(item, "__code__", None)
    if isinstance(code, types.CodeType):
        return _code_bytes(code)
    if inspect.isclass(item):
        return repr(item.__qualname__).encode() + b"".join(
            _own_fingerprint(v) for _, v in sorted(vars(item).items())
            if inspect.isfunction(v))
    if callable(item):
        return _own_fingerprint(type(item))
    raise TypeError(f"cannot fingerprint {item!r}: no source, no code, not callable")


def code_fingerprint(code: Sequence[object], root: Path | None = None) -> str:
    """SHA-256 (16 hex digits) of the source behind ``code`` (modules, classes, functions):
    the import closure (:func:`import_closure`) of the :data:`PACKAGE` modules that define
    them, read from ``root`` (default :func:`package_root`), and the own source of the rest."""
    root = root or package_root()
    ours, others = [], []
    for item in code:
        while isinstance(item, functools.partial):  # its bound arguments: see code_state
            item = item.func
        if not (inspect.ismodule(item) or inspect.isclass(item) or inspect.isroutine(item)):
            item = type(item)  # a callable object counts by its class (its state: code_state)
        name = item.__name__ if inspect.ismodule(item) else getattr(item, "__module__", None)
        if name and (name == PACKAGE or name.startswith(PACKAGE + ".")):
            ours.append(name)
        else:
            others.append(item)
    digest = hashlib.sha256()
    for module in import_closure(ours, root):
        path = _path(module, root)
        assert path is not None
        digest.update(f"{module}\n".encode())
        digest.update(path.read_bytes())
    for item in others:
        digest.update(_own_fingerprint(item))
    return digest.hexdigest()[:16]


def code_state(item: object) -> dict[str, object]:
    """What a callable carries besides its code, for a cache key: a partial's bound arguments,
    a closure's values, a callable object's attributes (as given: the key turns them into data
    or refuses them)."""
    if isinstance(item, functools.partial):
        return {"args": list(item.args), "keywords": dict(item.keywords),
                "func": code_state(item.func)}
    if inspect.isfunction(item):
        cells = item.__closure__ or ()
        names = item.__code__.co_freevars
        return {name: _cell_value(cell) for name, cell in zip(names, cells)}
    if callable(item) and not (inspect.isclass(item) or inspect.isroutine(item)
                               or inspect.ismodule(item)):
        return dict(vars(item)) if hasattr(item, "__dict__") else {}
    return {}


def _cell_value(cell: types.CellType) -> object:
    """A closure cell's value where it is data; a function or module by its name."""
    value = cell.cell_contents
    if inspect.isroutine(value) or inspect.isclass(value) or inspect.ismodule(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    return value
