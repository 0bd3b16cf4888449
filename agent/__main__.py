"""`python -m agent` is `flopgap-agent`."""

import sys

from agent.cli import main

sys.exit(main())
