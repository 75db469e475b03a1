"""Cheap, safe one-look summaries of the user's variables for the model's context.

:func:`summarize_variable` says what a value *is* without ever doing much work
or leaking much: the type as ``module.qualname``; shape, dtypes and the first
rows for DataFrame-like and array-like objects; the length and a bounded repr
for everything else. It never imports pandas or numpy: such objects are
recognised by duck typing (attributes looked up with
:func:`inspect.getattr_static`, so no property or ``__getattr__`` runs just to
find out) and used only through their own methods.

Bounds: containers go through a :class:`reprlib.Repr` that samples large dicts
and sets instead of sorting them whole; an object with more than 10,000 items
is never repr'd as a whole; any repr is cut to ``max_chars``; anything that
raises becomes a short note. A variable whose *name* looks secret
(:func:`~glm_magic.masking.is_secret_name`) is described by type only.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import itertools
import reprlib
from typing import Any

from ..interpolate import truncate_middle
from ..masking import is_secret_name

__all__ = ["summarize_variable", "type_name"]

#: Objects with more items than this are never repr'd as a whole.
MAX_LEN_FOR_REPR = 10_000
_HEAD_ROWS = 5
_WIDE = 20
_MISSING = object()
_SCALARS = (type(None), bool, int, float, complex)
_TEXTS = (str, bytes, bytearray)
_CONTAINERS = (list, tuple, set, frozenset, dict)


def type_name(value: object) -> str:
    """``module.qualname`` of ``value``'s type (just the name for builtins)."""
    cls = type(value)
    qualname = getattr(cls, "__qualname__", None) or cls.__name__
    module = getattr(cls, "__module__", None)
    return qualname if module in (None, "builtins") else f"{module}.{qualname}"


class _BoundedRepr(reprlib.Repr):
    """``reprlib.Repr`` that never sorts a huge dict or set nor reprs a huge object."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = 10
        self.maxfrozenset = self.maxdeque = self.maxarray = 10
        self.maxstring = 200
        self.maxlong = 60
        self.maxother = 200

    # reprlib sorts every key of a dict or set before showing the first few:
    # show a sorted sample of the first items instead (same "..." at the end).
    def repr_dict(self, x: Any, level: int) -> str:
        """Repr a dict from a sample of its first items."""
        if len(x) > MAX_LEN_FOR_REPR:
            x = dict(itertools.islice(x.items(), self.maxdict + 1))
        return super().repr_dict(x, level)

    def repr_set(self, x: Any, level: int) -> str:
        """Repr a set from a sample of its first items."""
        if len(x) > MAX_LEN_FOR_REPR:
            x = set(itertools.islice(x, self.maxset + 1))
        return super().repr_set(x, level)

    def repr_frozenset(self, x: Any, level: int) -> str:
        """Repr a frozenset from a sample of its first items."""
        if len(x) > MAX_LEN_FOR_REPR:
            x = frozenset(itertools.islice(x, self.maxfrozenset + 1))
        return super().repr_frozenset(x, level)

    def repr_instance(self, x: Any, level: int) -> str:
        """Repr any other object, unless it is huge; never raise."""
        size = _safe_len(x)
        if size is not None and size > MAX_LEN_FOR_REPR:
            return f"<{type_name(x)} with {size:,} items>"
        try:
            text = builtins.repr(x)
        except Exception:
            return f"<{type_name(x)}>"
        return truncate_middle(text, self.maxother)


_REPR = _BoundedRepr()


def _static(value: object, name: str) -> Any:
    """The attribute ``name`` as stored, without running descriptors or ``__getattr__``."""
    try:
        return inspect.getattr_static(value, name, _MISSING)
    except Exception:
        return _MISSING


def _has(value: object, *names: str) -> bool:
    return all(_static(value, name) is not _MISSING for name in names)


def _safe_len(value: object) -> int | None:
    if _static(type(value), "__len__") is _MISSING:
        return None
    try:
        size = len(value)  # type: ignore[arg-type]
    except Exception:
        return None
    return size if isinstance(size, int) else None


def _text_of(obj: object, limit: int) -> str:
    """``obj.to_string()`` (pandas) or ``str(obj)``, cut to ``limit`` characters."""
    to_string = getattr(obj, "to_string", None)
    text: object = None
    if callable(to_string):
        try:
            # Wide frames: pandas honours these; other libraries may not take them.
            text = to_string(max_cols=20, max_colwidth=50)
        except TypeError:
            text = to_string()
    if not isinstance(text, str):
        text = str(obj)
    return truncate_middle(text, max(limit, 1))


def _shape_text(value: object) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return "(" + ", ".join(str(dim) for dim in shape) + ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _frame(value: object, kind: str, max_chars: int) -> str:
    """Shape, dtypes and the first rows of a DataFrame-like object."""
    lines = [f"{kind}, shape {_shape_text(value)}"]
    try:
        dtypes: Any = value.dtypes  # type: ignore[attr-defined]
        shape = getattr(value, "shape", ())
        if isinstance(shape, tuple) and len(shape) == 2 and shape[1] > _WIDE:
            # Hundreds of columns: how many of each dtype says more than a long list.
            lines.append("dtype counts:\n" + _text_of(dtypes.value_counts(), max_chars // 3))
        else:
            lines.append("dtypes:\n" + _text_of(dtypes, max_chars // 3))
    except Exception:
        pass
    try:
        head = value.head(_HEAD_ROWS)  # type: ignore[attr-defined]
        lines.append(f"first {_HEAD_ROWS} rows:\n" + _text_of(head, max_chars // 2))
    except Exception:
        pass
    if callable(_static(value, "isna")):
        try:  # pandas-style: missing values per column say what cleaning a frame needs
            missing = value.isna().sum()  # type: ignore[attr-defined]
            lines.append("missing values per column:\n" + _text_of(missing, max_chars // 4))
        except Exception:
            pass
    return "\n".join(lines)


def _array(value: object, kind: str, max_chars: int) -> str:
    """Shape, dtype and (when cheap) the values of an array-like object."""
    line = f"{kind}, shape {_shape_text(value)}"
    with contextlib.suppress(Exception):
        line += f", dtype {value.dtype}"  # type: ignore[attr-defined]
    if callable(_static(value, "head")):
        try:  # a Series-like object: its first rows read better than its repr
            rows = _text_of(value.head(_HEAD_ROWS), max_chars // 2)  # type: ignore[attr-defined]
            return f"{line}\nfirst {_HEAD_ROWS} rows:\n{rows}"
        except Exception:
            pass
    size = _safe_len(value)
    # numpy summarises big arrays itself; other libraries may not, so stay off them.
    summarised = type(value).__module__.startswith("numpy")
    if size is not None and size > MAX_LEN_FOR_REPR and not summarised:
        return line
    try:
        return line + "\n" + truncate_middle(builtins.repr(value), max(max_chars // 2, 1))
    except Exception:
        return line


def _callable(value: object, kind: str) -> str:
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
    try:
        signature = str(inspect.signature(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        signature = "(...)"
    doc = inspect.getdoc(value) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return f"{kind} {name}{signature}" + (f": {first}" if first else "")


def _describe(value: object, max_chars: int) -> str:
    kind = type_name(value)
    if isinstance(value, _SCALARS):
        return f"{kind} = {_REPR.repr(value)}"
    if isinstance(value, _TEXTS):
        return f"{kind}, len {len(value):,}: {_REPR.repr(value)}"
    if isinstance(value, _CONTAINERS) or type(value).__module__ == "collections":
        size = _safe_len(value)
        count = f", len {size:,}" if size is not None else ""
        return f"{kind}{count}: {_REPR.repr(value)}"
    if inspect.ismodule(value):
        return f"module {getattr(value, '__name__', '?')}"
    if inspect.isclass(value):
        return f"class {value.__module__}.{value.__qualname__}"
    if inspect.isroutine(value):
        return _callable(value, kind)
    if _has(value, "shape", "dtype") or _has(value, "shape", "dtypes", "head"):
        shape = getattr(value, "shape", None)
        if shape == ():  # a numpy scalar such as np.int64(5)
            return f"{kind} = {_REPR.repr(value)}"
        if _has(value, "dtypes", "head") and not (isinstance(shape, tuple) and len(shape) == 1):
            return _frame(value, kind, max_chars)
        return _array(value, kind, max_chars)
    size = _safe_len(value)
    if size is not None and size > MAX_LEN_FOR_REPR:
        return f"{kind}, len {size:,} (too large to show)"
    count = f", len {size:,}" if size is not None else ""
    try:
        text = builtins.repr(value)
    except Exception as exc:
        return f"{kind}{count} (repr failed: {type(exc).__name__})"
    return f"{kind}{count}: {truncate_middle(text, max(max_chars, 1))}"


def summarize_variable(name: str, value: object, *, max_chars: int = 2000) -> str:
    """Describe ``value`` (the variable ``name``) in at most about ``max_chars`` characters.

    Never raises for any value. A secret-like ``name`` gives the type only:
    ``"str (value hidden)"``.
    """
    if is_secret_name(name):
        return f"{type_name(value)} (value hidden)"
    max_chars = max(max_chars, 40)
    try:
        text = _describe(value, max_chars)
    except Exception as exc:  # a hostile __len__, dtype or head must not break the context
        text = f"{type_name(value)} (could not be summarized: {type(exc).__name__})"
    return truncate_middle(text, max_chars)
