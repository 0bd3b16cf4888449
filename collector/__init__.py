"""The central side of flopgap: registers agents, dispatches jobs, stores and analyses results."""
