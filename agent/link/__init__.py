"""The agent's side of the wire: its connection to the collector, the serving loop, the result
spool, the model cache."""
