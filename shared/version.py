"""flopgap's version, in one place both commands read (`flopgap --version`,
`flopgap-agent --version`, and the agent's Register message).

Why in shared/: the collector must not import `agent` (and with it the engine) to print it.
"""

from __future__ import annotations

__version__ = "0.1.0"
