"""The package version, written only here: the build reads it (pyproject.toml),
and so do `fastkv.__version__` and `fastkv --version`."""

__version__ = "0.1.0"
