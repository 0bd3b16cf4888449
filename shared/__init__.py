"""What the agent and the collector both need: wire protocol, result schema, errors, statistics.

Imports only the standard library and numpy, so the agent stays light.
"""
