"""Thin entry point: `python train.py --help`."""

import sys

if __name__ == "__main__":
    try:
        from supernet.cli import train_main

        code = train_main()
    except KeyboardInterrupt:  # Ctrl-C while torch, transformers and onnx load: nothing has started
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
