"""Progress bars that read well on a terminal, in a log file and on a terminal of unknown size.

Every long job of the package draws its bars through `progress_bar`, a `tqdm` with two adjustments:

* a pseudo-terminal that reports 0 columns (``script -c``, ``docker run -t`` without a size, some
  CI runners) made tqdm's ``dynamic_ncols`` draw empty bars, and its 0 rows no bar at all: there
  the bar is 80 columns wide, on 24 rows;
* written to a file or a pipe (``nohup``, CI logs), each redraw is a ``\\r`` line in the log: there
  the bar is drawn at most every `LOG_INTERVAL_S` seconds (and when it ends), not at every step,
  and a bar asked to clear itself (``leave=False``) ends on its final frame instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm.auto import tqdm

__all__ = ["LOG_INTERVAL_S", "progress_bar"]

LOG_INTERVAL_S = 10.0
"""Least seconds between two redraws of a bar written to a file or a pipe."""


def _size(stream: IO[str]) -> os.terminal_size | None:
    """The terminal size of `stream`, or None where it is not a terminal."""
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A `tqdm` bar (same arguments) sized for the terminal, or throttled for a log file.

    ``dynamic_ncols`` is on unless ``ncols`` is given; ``mininterval`` given by the caller is kept
    on a terminal and raised to `LOG_INTERVAL_S` in a log.
    """
    size = _size(kwargs.get("file") or sys.stderr)
    columns = None if size is None else size.columns
    if "ncols" not in kwargs:
        if columns == 0:
            kwargs["ncols"] = 80
        else:
            kwargs.setdefault("dynamic_ncols", True)
    if size is not None and size.lines == 0 and "nrows" not in kwargs:
        # tqdm measures the rows of its own stderr too (again at every redraw with dynamic_ncols): 0
        # rows read as -1, and it drew nothing at all.
        kwargs["nrows"] = 24
        if kwargs.pop("dynamic_ncols", False):
            kwargs["ncols"] = columns or 80
    # Jupyter's stderr is no terminal either, but its widgets draw in place: not throttled there.
    if columns is None and "notebook" not in tqdm.__module__:
        kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0.1)), LOG_INTERVAL_S)
        # A bar that clears itself on a terminal left its 0% frame and a line of spaces in a log:
        # there it ends on its final frame, like the others.
        kwargs["leave"] = True
    return tqdm(iterable, **kwargs)
