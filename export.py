"""Thin entry point: `python export.py --help`."""

import sys

if __name__ == "__main__":
    try:
        from supernet.cli import export_main

        code = export_main()
    except KeyboardInterrupt:  # Ctrl-C while torch, transformers and onnx load: nothing has started
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
