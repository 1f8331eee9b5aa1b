"""The package version: read here by sdgmm itself, and by the build (pyproject.toml's metadata provider)."""

__version__ = "0.1.0"
