"""The one place the version is written: pyproject.toml reads it, and so do the server and the
client's User-Agent. Bump it here (and add the release to CHANGELOG.md)."""

__version__ = "0.1.0"
