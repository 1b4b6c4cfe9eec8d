"""Thin entry point: `python search.py --help`."""

import sys

try:
    from supernet.cli import search_main
except KeyboardInterrupt:  # Ctrl-C while torch and transformers load: nothing has started yet
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(search_main())
