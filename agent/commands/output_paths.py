"""Check an output file can be written before anything is measured.

A measurement takes seconds to minutes; a typo in `--raw` found only when it is saved loses it.
So each command checks its output paths first and refuses them with one line saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.errors import UsageError


def check_output_file(path: Path, flag: str) -> None:
    """Raise UsageError unless `path` can be written: not a folder, its folder exists and is
    writable, and an existing file there is writable."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder", hint=f"give {flag} a file name inside it")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(
            f"{flag} {path}: the folder {folder} {what}",
            hint=f"create it first (mkdir -p {folder}) or choose another path for {flag}",
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} exists and is not writable",
                         hint="remove it, fix its permissions, or choose another path")  # fmt: skip
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot create files in {folder}",
                         hint=f"choose a folder you can write for {flag}")  # fmt: skip
