"""``python -m omio``: the command line."""

import sys

from omio.cli import main

sys.exit(main())
