"""A benchmark figure: a ratio measured side by side, its target, and whether it was met."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured ratio against its target (`at_most` True: ratio <= target passes)."""

    name: str
    ratio: float
    target: float
    at_most: bool
    detail: str

    @property
    def met(self) -> bool:
        return self.ratio <= self.target if self.at_most else self.ratio >= self.target

    def row(self) -> str:
        op = "<=" if self.at_most else ">="
        status = "met" if self.met else "MISSED"
        return (
            f"| {self.name} | {self.ratio:.3f} | {op} {self.target:g} | {status} | {self.detail} |"
        )
