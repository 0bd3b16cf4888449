"""Peer-supplied strings made safe for a log line: escaped, then truncated.

A name, cpu_model, model_name, reason or error comes from the other end of the wire. Logged as
it is, a newline in it writes a second, forged log line (`... INFO result abc: ok`), a control
character rewrites the terminal, and a 250 kB cpu_model floods the journal. Every such string
goes through `safe()` before it reaches a log call, on both sides.

Escaping is repr-style (`\\n`, `\\x1b`, `\\u2028`): what was sent stays readable in the log,
and no character of it can end the line. Truncation counts characters after escaping, so the
logged text is bounded whatever was sent, and says how much was cut.
"""

from __future__ import annotations

MAX_LOGGED_CHARS = 200  # of one peer string in one log line, after escaping


def safe(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """`value` as printable text of at most `limit` characters plus a `...[N chars]` marker.

    Non-strings are shown with `str()` first (a hostile peer may send a number or a list where
    a name belongs). Nothing that ends a line, or is not printable, survives unescaped.
    """
    text = value if isinstance(value, str) else str(value)
    head = text[:limit]  # escaping only lengthens: escape no more than can be shown
    shown = head if head.isprintable() else _escape(head)
    if len(text) > limit or len(shown) > limit:
        return f"{shown[:limit]}...[{len(text)} chars]"
    return shown


def _escape(text: str) -> str:
    """Each non-printable character as its repr escape; printable ones as they are."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
