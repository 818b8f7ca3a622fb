"""Errors a user can act on: each names the file, column, rule or service at fault."""

from __future__ import annotations

# Every error the CLI prints starts with this, whichever command or step raised it.
ERROR_PREFIX = "error: "


class KubricksError(Exception):
    """Base for errors the CLI prints as one line instead of a traceback."""


class SpecError(KubricksError):
    """A use-case spec is missing or fails validation."""


class SourceError(KubricksError):
    """A source file is missing, empty, corrupt, or lacks a required column."""


class ExpectationFailed(KubricksError):
    """An expectation with action ``fail`` was broken; nothing was written."""


class ServiceUnavailable(KubricksError):
    """A service the command needs (for example MLflow) is not reachable."""
