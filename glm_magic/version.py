"""The package version (one place: the client's User-Agent and the CLI's --version read it)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
