"""Thin entry point: `python export.py --help`."""

import sys

from supernet.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
