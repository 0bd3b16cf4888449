"""Where a store lives: a SQLite file path, or a PostgreSQL URL, told apart from the --db text.

argparse hands every command a `Path`, and `Path("postgresql://u@h/db")` folds the "//" into
"/"; `target` gives the URL back whole, so a command need not know which backend it opens.
A URL has no folder beside it, so what SQLite keeps beside its file (uploaded model files, the
prediction cache) goes to a local cache folder named after the URL's host, port and database.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from shared.errors import StoreError

# A URL's scheme (two letters at least, so C:/ stays a path); Path() folds its "//" into "/".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+")
POSTGRES_SCHEMES = ("postgresql", "postgres")


def url_scheme(db: Path | str) -> str | None:
    """The scheme of a URL-shaped --db (``postgresql``), None for a file path."""
    found = _URL.match(str(db))
    return None if found is None else found.group(1).lower()


def target(db: Path | str) -> Path | str:
    """The file path of a SQLite store, or the whole ``postgresql://`` URL of a PostgreSQL one;
    any other scheme is refused before anything is created."""
    scheme = url_scheme(db)
    if scheme is None:
        return Path(db)
    if scheme not in POSTGRES_SCHEMES:
        raise StoreError(
            f"--db {db} is a {scheme} URL; flopgap stores results in SQLite or PostgreSQL",
            hint="pass a file path (e.g. --db results.sqlite) or a postgresql://user@host/db URL",
        )
    return _URL.sub(f"{scheme}://", str(db), count=1)


def is_postgres(db: Path | str) -> bool:
    return url_scheme(db) in POSTGRES_SCHEMES


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def cache_home(url: str) -> Path:
    """The local folder for what SQLite keeps beside its file, one per host, port and database:
    ``$XDG_CACHE_HOME/flopgap/postgres/HOST-PORT-DB`` (``~/.cache`` when unset)."""
    parts = urlsplit(url)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.strip('/') or 'db'}"
    return Path(base) / "flopgap" / "postgres" / re.sub(r"[^A-Za-z0-9._-]", "_", name)


def beside(folder: Path | str) -> tuple[str, str]:
    """(the database URL, the kind) of a folder named as beside it: ``URL.models`` gives
    (URL, "models"); a URL with no such suffix is ``files``."""
    url = str(target(folder))
    last = url.rsplit("/", 1)[-1]
    if "." not in last:
        return url, "files"
    base, kind = url.rsplit(".", 1)
    return base, kind


def local_folder(folder: Path | str) -> Path:
    """A folder named after the database (``DB.models``, ``DB.predict-cache``) as a real local
    folder: itself for a SQLite file's, its kind under `cache_home` for a URL's."""
    if not is_postgres(folder):
        return Path(folder)
    url, kind = beside(folder)
    return cache_home(url) / kind


def may_exist(db: Path | str) -> bool:
    """Whether a command that reads a store should open `db`: a SQLite file that is there, or
    any PostgreSQL URL (whether its database answers is the store's to say, in one line)."""
    return is_postgres(db) or Path(db).exists()
