"""`python -m collector` is `flopgap`."""

import sys

from collector.cli import main

sys.exit(main())
