"""``python -m tvr.data.synthvtt``."""

import sys

from tvr.data.synthvtt.cli import main

if __name__ == "__main__":
    sys.exit(main())
