"""Readers of the board's sensors. Every reader takes the filesystem root it reads under
(default "/"), so tests replay trees captured from real boards through the same code path,
and every reader returns None (never 0) for a sensor that is absent or unreadable.
"""
