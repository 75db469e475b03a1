"""Package-wide rules from DESIGN.md: public names, docstrings, one-way imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import glm_magic

PACKAGE = Path(glm_magic.__file__).resolve().parent
SUBMODULES = pkgutil.walk_packages([str(PACKAGE)], prefix="glm_magic.")
MODULES = [*sorted(m.name for m in SUBMODULES if not m.ispkg), "glm_magic", "glm_magic.testing"]


def imported_modules(module: str) -> set[str]:
    name = module.replace("glm_magic.", "").replace(".", "/")
    path = PACKAGE / "__init__.py" if module == "glm_magic" else PACKAGE / f"{name}.py"
    if not path.exists():
        path = PACKAGE / name / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", MODULES)
def test_module_has_docstring_and_documented_all(module: str) -> None:
    mod = importlib.import_module(module)
    assert (mod.__doc__ or "").strip(), f"{module} has no docstring"
    names = getattr(mod, "__all__", None)
    assert names is not None, f"{module} has no __all__"
    for name in names:
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"{module}.{name} has no docstring"


@pytest.mark.parametrize(
    "module",
    [
        "glm_magic.client.chat",
        "glm_magic.client.sse",
        "glm_magic.client.errormap",
        "glm_magic.config",
        "glm_magic.errors",
        "glm_magic.events",
        "glm_magic.models",
        "glm_magic.reply",
        "glm_magic.core.runner",
        "glm_magic.core.conversation",
        "glm_magic.testing",
        "glm_magic.testing.server",
    ],
)
def test_http_side_never_imports_ipython(module: str) -> None:
    assert "IPython" not in imported_modules(module)


@pytest.mark.parametrize(
    "module",
    [
        "glm_magic.ipython.render",
        "glm_magic.markdown",
        "glm_magic.htmlrender",
        "glm_magic.ipython.cells",
        "glm_magic.context",
    ],
)
def test_rendering_side_never_imports_httpx(module: str) -> None:
    assert "httpx" not in imported_modules(module)


@pytest.mark.parametrize(
    ("module", "not_loaded"),
    [
        ("glm_magic", ("httpx", "nbformat", "ipywidgets", "nbclient", "IPython", "markdown_it")),
        # Rendering modules load the Markdown parser and Pygments on the first reply only.
        ("glm_magic.ipython.render", ("markdown_it", "mdit_py_plugins", "pygments")),
        ("glm_magic.htmlrender", ("markdown_it", "mdit_py_plugins", "pygments", "httpx")),
        # The command line talks HTTP, but needs no IPython and reads notebooks only when run.
        ("glm_magic.cli", ("nbformat", "ipywidgets", "nbclient", "IPython")),
    ],
)
def test_imports_are_cheap(module: str, not_loaded: tuple[str, ...]) -> None:
    code = f"import sys, {module}\nprint([m for m in {not_loaded!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
