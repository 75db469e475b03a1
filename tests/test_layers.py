"""The package's layers, enforced: imports flow one way, with no cycles (docs/ARCHITECTURE.md).

Every module's imports are read with ``ast``: top-level ones, those inside
functions and those under ``TYPE_CHECKING`` alike, since each of them is a
dependency a reader has to follow. The test fails on

- an edge from a lower layer to a higher one, or between sibling layers
  (``ipython``, ``widgets`` and ``cli`` are siblings; so are ``client`` and
  ``context``), except the IPython layer's lazy use of the widgets;
- a cycle between modules, whatever the layers;
- httpx, IPython or ipywidgets imported outside the layers that own them;
- a private name (``_x``) imported from another module.

``test_the_checker_finds_planted_faults`` plants each kind of fault in a small
synthetic package and checks that the same checker reports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "glm_magic"

#: Layer of each subpackage ("" is the base: modules directly in glm_magic/).
RANK = {
    "": 0,
    "testing": 0,
    "client": 1,
    "context": 1,
    "core": 2,
    "ipython": 3,
    "widgets": 3,
    "cli": 3,
    "__init__": 4,  # the public API imports lazily from everywhere
}
#: Allowed edges between siblings of one rank: (from, to).
SIDEWAYS = {("ipython", "widgets")}
#: Third-party packages only these layers may import.
OWNERS = {
    "httpx": {"client"},
    "IPython": {"ipython", "widgets", "__init__"},
    "ipywidgets": {"widgets"},
}


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` module imports ``target`` (module), maybe ``names``."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [root.name, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def edges(root: Path) -> Iterator[Edge]:
    """Every import of every module under ``root`` (a package directory)."""
    for path in sorted(root.rglob("*.py")):
        source = module_name(root, path)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Edge(source, alias.name, (), node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = source.split(".")
                    drop = node.level - (1 if is_pkg else 0)
                    base = base[: len(base) - drop] if drop else base
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                names = tuple(a.name for a in node.names)
                # "from . import x" / "from .pkg import mod": a module is the target.
                if any(_is_module(root, f"{target}.{n}") for n in names):
                    for n in names:
                        full = f"{target}.{n}"
                        yield Edge(
                            source, full if _is_module(root, full) else target, (), node.lineno
                        )
                else:
                    yield Edge(source, target, names, node.lineno)


def _is_module(root: Path, dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != root.name:
        return False
    rel = Path(*parts[1:]) if len(parts) > 1 else Path()
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


def layer(root: Path, module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if (root / parts[0]).is_dir():
        return parts[0]
    return ""


def problems(root: Path) -> list[str]:
    """Everything wrong with the imports of the package at ``root``."""
    found: list[str] = []
    graph: dict[str, set[str]] = {}
    for e in edges(root):
        src_layer = layer(root, e.source)
        top = e.target.split(".")[0]
        where = f"{e.source}:{e.line}"
        if top in OWNERS and src_layer not in OWNERS[top]:
            found.append(f"{where} imports {top} outside {sorted(OWNERS[top])}")
        if top != root.name:
            continue
        graph.setdefault(e.source, set()).add(e.target)
        dst_layer = layer(root, e.target)
        if src_layer != dst_layer and e.target != root.name:
            a, b = RANK.get(src_layer, 0), RANK.get(dst_layer, 0)
            if a < b:
                found.append(f"{where} imports upward: {e.target} ({dst_layer or 'base'})")
            elif a == b and (src_layer, dst_layer) not in SIDEWAYS:
                found.append(f"{where} imports sideways: {e.target} ({dst_layer or 'base'})")
        for name in e.names:
            if name.startswith("_") and not name.startswith("__"):
                found.append(f"{where} imports private name {name} from {e.target}")
    found.extend(f"import cycle: {' -> '.join(c)}" for c in cycles(graph))
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def test_the_package_keeps_its_layers() -> None:
    assert problems(PACKAGE) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "glm_magic"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


CLEAN = {
    "__init__.py": "",
    "errors.py": "",
    "client/__init__.py": "from .chat import X\n",
    "client/chat.py": "import httpx\nfrom ..errors import E\n",
    "core/__init__.py": "",
    "core/session.py": "from ..client import X\n",
    "ipython/__init__.py": "",
    "ipython/magics.py": "from ..core.session import S\ndef f():\n    from ..widgets import app\n",
    "widgets/__init__.py": "",
    "widgets/app.py": "import ipywidgets\n",
}


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        ({"errors.py": "from .core.session import S\n"}, "imports upward"),
        ({"client/chat.py": "from ..context import b\n", "context/__init__.py": ""}, "sideways"),
        ({"widgets/app.py": "def f():\n    from ..ipython import magics\n"}, "sideways"),
        ({"core/a.py": "from . import b\n", "core/b.py": "from .a import x\n"}, "import cycle"),
        (
            {"core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
             "    from .b import B\n", "core/b.py": "def f():\n    from .a import A\n"},
            "import cycle",
        ),
        ({"core/session.py": "import httpx\n"}, "imports httpx outside"),
        ({"client/chat.py": "def f():\n    import IPython\n"}, "imports IPython outside"),
        ({"core/session.py": "from ..client.chat import _private\n"}, "private name _private"),
    ],
)  # fmt: skip
def test_the_checker_finds_planted_faults(
    tmp_path: Path, plant: dict[str, str], expected: str
) -> None:
    clean = _write(tmp_path / "clean", CLEAN)
    assert problems(clean) == []
    faulty = _write(tmp_path / "faulty", {**CLEAN, **plant})
    found = problems(faulty)
    assert any(expected in p for p in found), found
