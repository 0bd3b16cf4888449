"""Power and energy over a measurement, read from whichever source the board has (agent.probes)."""
