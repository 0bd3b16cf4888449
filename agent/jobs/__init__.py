"""Running each measurement in a fresh forked process: the fork server, its children, and how a
job's end is told."""
