"""Progress bars on a terminal of unknown size and in a log file."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

from supernet.progress import LOG_INTERVAL_S, progress_bar


def _drawn_on_pty(columns: int | None, rows: int = 24) -> str:
    """What a 3-step bar draws on a fresh pseudo-terminal (0 x 0 unless `columns` is set), drawn by a
    process whose stderr is that terminal: the path every command takes (tqdm measures its own
    stderr, rows as well as columns)."""
    master, slave = pty.openpty()
    if columns is not None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    draw = "from supernet.progress import progress_bar\nfor _ in progress_bar(range(3), desc='steps'): pass\n"
    child = subprocess.Popen([sys.executable, "-c", draw], stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child has ended and closed the terminal
            break
        if not chunk:
            break
        out += chunk
    child.wait(30)
    os.close(master)
    return out.decode()


def test_a_terminal_of_zero_columns_still_shows_the_bar() -> None:
    """script -c, docker -t without a size: tqdm's dynamic_ncols read 0 columns and drew empty bars,
    and with 80 columns set it read 0 rows and drew nothing at all (a BERT-base training showed no
    bar in 160 s)."""
    final = _drawn_on_pty(None).replace("\r", "\n").strip().splitlines()[-1]
    assert re.fullmatch(r"steps: 100%\|█+\| 3/3 \[.*\]", final.rstrip()), final
    assert len(final.rstrip()) <= 80


def test_a_terminal_of_columns_but_zero_rows_shows_the_bar() -> None:
    """`stty cols 100` on a size-less terminal: tqdm read its rows at every redraw and drew nothing."""
    final = _drawn_on_pty(100, rows=0).replace("\r", "\n").strip().splitlines()[-1]
    assert re.fullmatch(r"steps: 100%\|█+\| 3/3 \[.*\]", final.rstrip()) and len(final.rstrip()) <= 100, final


def test_a_sized_terminal_follows_its_width() -> None:
    final = _drawn_on_pty(60).replace("\r", "\n").strip().splitlines()[-1]
    assert re.fullmatch(r"steps: 100%\|█+\| 3/3 \[.*\]", final.rstrip()) and len(final.rstrip()) <= 60, final


def test_a_log_file_gets_a_redraw_every_few_seconds_not_every_step() -> None:
    log = io.StringIO()
    bar = progress_bar(total=1000, desc="steps", file=log, mininterval=0.5)
    assert bar.mininterval == LOG_INTERVAL_S == 10.0
    for _ in range(1000):
        bar.update()
    bar.close()
    # The first draw (0/1000) and the last; none between, as 1000 steps took under 10 s.
    assert [line.split("|")[0] for line in log.getvalue().split("\r") if line.strip()] == [
        "steps:   0%",
        "steps: 100%",
    ]


def test_a_bar_that_clears_itself_on_a_terminal_ends_on_its_final_frame_in_a_log() -> None:
    """The teacher's dev and test bars (leave=False) left 'teacher dev:   0%|' and a line of spaces
    in a CI log, never their count."""
    log = io.StringIO()
    for _ in progress_bar(range(5), desc="teacher dev", file=log, leave=False):
        pass
    frames = [line for line in log.getvalue().split("\r") if line.strip()]
    assert [line.split("|")[0] for line in frames] == ["teacher dev:   0%", "teacher dev: 100%"]
    assert " 5/5 " in frames[-1] and log.getvalue().endswith("\n")
