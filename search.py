"""Thin entry point: `python search.py --help`."""

import sys

from supernet.cli import search_main

if __name__ == "__main__":
    sys.exit(search_main())
