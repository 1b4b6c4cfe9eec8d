"""What train.py, search.py and export.py share: run a `supernet.cli` main, Ctrl-C as one line.

It lives outside the package because it must also catch a Ctrl-C while `supernet.cli` imports,
which a guard inside the package cannot (light now: torch, transformers and onnx, which take
seconds, load once the options are parsed, inside `supernet.cli.run_cli`'s handling of Ctrl-C and
SIGTERM).
"""

import importlib
import sys


def run(main: str) -> None:
    """Call `supernet.cli.<main>()` and exit with its code; 130 and "interrupted" on Ctrl-C."""
    try:
        code = getattr(importlib.import_module("supernet.cli"), main)()
    except KeyboardInterrupt:  # while torch, transformers and onnx load: nothing has started
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
