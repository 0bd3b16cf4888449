"""The subcommands of `flopgap-agent` (agent.commands.cli), one module each: its parser and its
handler.

Each module adds its parser with `add_parser(sub)` and imports what its handler needs inside
the handler, so building the whole command line stays cheap and `run` stays light.
"""

PROG = "flopgap-agent"
