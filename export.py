"""Thin entry point: `python export.py --help`."""

import sys

try:
    from supernet.cli import export_main
except KeyboardInterrupt:  # Ctrl-C while torch and transformers load: nothing has started yet
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(export_main())
