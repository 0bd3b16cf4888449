"""Measuring one model on this board: session options, timing loop, sampling, verdict and the
result document."""
