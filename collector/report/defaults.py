"""Report defaults the CLI shows in its help, kept apart so that registering the `report`
subcommand does not import the analysis (pandas)."""

DEFAULT_THRESHOLD = 1.5  # a model >1.5x off its device's FLOPs fit is flagged
