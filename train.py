"""Thin entry point: `python train.py --help`."""

import sys

from supernet.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
