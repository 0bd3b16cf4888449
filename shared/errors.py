"""One exception hierarchy for flopgap.

Library code raises these; only the CLIs turn them into a one-line message and an exit code.
Each error carries a ``hint`` that tells the user what to do next.
"""

from __future__ import annotations


class FlopgapError(Exception):
    """Root of every error flopgap raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(FlopgapError):
    """The user asked for something malformed or impossible (bad flag value, missing file)."""

    exit_code = 2


class ModelError(FlopgapError):
    """A model cannot be loaded or run: not ONNX, truncated, unknown op, unresolved dimension."""

    exit_code = 3


class ProviderError(FlopgapError):
    """An execution provider was asked for that this onnxruntime build does not have."""

    exit_code = 3


class MeasurementError(FlopgapError):
    """Inference failed while it was being measured."""

    exit_code = 4


class ProtocolError(FlopgapError):
    """A message on the wire is malformed, too large, of an unknown type or another version."""

    exit_code = 5


class StoreError(FlopgapError):
    """The result database cannot be opened or written."""

    exit_code = 6
