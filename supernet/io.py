"""Crash-safe file writing and the run-directory layout.

Everything the package writes goes to a temporary name in the same folder
and is then renamed into place (`os.replace` is atomic on POSIX), so a
killed process never leaves a half-written file or folder under its final
name, and an existing file is only replaced by a complete new one.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "RunDir",
    "append_jsonl",
    "atomic_dir",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_many",
    "atomic_write_text",
    "disk_error",
    "disk_errors_named",
    "is_temporary",
    "json_bytes",
    "one_timing_job",
    "remove_stale_temporaries",
    "share_files",
    "weight_files",
    "weights_digest",
]

WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through `write(file)` on a temporary file in the same folder, then rename.

    Readers see the old file or the complete new one, never half of one; on any
    failure the temporary file is removed and `path` is left as it was. Parent
    folders are created; the file gets the usual permissions (0666 less the umask).
    """
    atomic_write_many({Path(path): write})


def atomic_write_many(files: Mapping[Path, Callable[[IO[bytes]], None]]) -> None:
    """Write several files as one set: each to a temporary name first, then all renamed.

    A failure while writing any of them (a full disk) leaves every one as it was, so files that
    describe one result (a search's results.jsonl and its chosen.json) never disagree; only a crash
    between the renames, which need no space, could split them.
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, write in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Same folder: os.replace is only atomic within one file system. mkstemp gives
            # concurrent writers (threads, processes) distinct temporary names.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as err:
                if err.filename is None and err.errno is not None:  # a full disk names no file
                    raise OSError(err.errno, err.strerror, str(path)) from err
                raise
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; run files are meant to be shared
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def json_bytes(obj: Any) -> bytes:
    """`obj` as the package writes JSON files: indented, UTF-8, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented JSON (`json_bytes`), atomically."""
    data = json_bytes(obj)
    atomic_write(path, lambda fh: fh.write(data))


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line (a log: each line is complete or absent after a crash, flushed per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def save_tokenizer(tokenizer: Any, folder: str | Path) -> None:
    """`tokenizer.save_pretrained(folder)` without the truncation and padding its fast backend holds.

    A fast tokenizer's backend keeps the truncation and padding of its last call (or of the file
    it was read from: the packaged MiniLM pads every input to 128), and `save_pretrained` writes them
    into tokenizer.json: which ones depended on whether a split had just been tokenized or was read
    from the datasets cache, and a question-answering export refused to encode a lone text through
    the plain `tokenizers` library ("Second sequence not provided"). transformers sets both on every
    call, so only such users see them; the saved file now has neither. The tokenizer passed in is
    left as it was.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and (backend.truncation is not None or backend.padding is not None):
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
    tokenizer.save_pretrained(folder)


def read_jsonl(path: str | Path, *, appended: bool = False) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; blank lines are skipped.

    Args:
        path: the file.
        appended: the file grows by appended lines (train_metrics.jsonl): a last line cut short (no
            newline after it, not JSON) is a record whose writing a killed job stopped, left out like
            a record never written. Files written whole (eval.jsonl, results.jsonl) have no such
            line: there it is damage, and named.

    Raises:
        ValueError: a line is not a JSON object ("eval.jsonl line 3 is not a JSON object").
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if appended and number == len(lines) and not text.endswith("\n"):
                break
            row = None
        if not isinstance(row, dict):
            raise ValueError(f"{path} line {number} is not a JSON object")
        rows.append(row)
    return rows


def unwritable(path: str | os.PathLike[str], *, named: bool = False) -> str | None:
    """Why a folder at `path` could not be created or written, or None if it can; leaves nothing behind.

    Tested by creating (and removing) a file in `path`, or in its nearest existing parent when
    `path` does not exist yet: permissions alone miss read-only mounts, immutable folders and root.
    The reason names that parent ("/data is not writable (Permission denied)", "/a is a file"),
    and is the system's reason alone ("Permission denied") when `path` itself is the folder: the
    caller's message names it already (unless `named`: a caller that asks about a folder its
    message does not name).
    """
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file"
    try:
        handle, name = tempfile.mkstemp(dir=probe, prefix=".write-test-")
    except OSError as err:
        if probe == Path(path) and not named:
            return str(err.strerror)
        return f"{probe} is not writable ({err.strerror})"
    os.close(handle)
    os.unlink(name)
    return None


SETTLE_S = 2.0
"""Seconds a command that waited for another (`one_timing_job`) lets it end before timing."""

_HELD: dict[tuple[int, int, int], int] = {}
"""Folders held (`one_timing_job`), by (device, inode, thread): how deep."""


@contextmanager
def one_timing_job(root: Path, log: Callable[[str], None], *, out: Path | None = None) -> Iterator[None]:
    """Hold the run folder `root` for one search.py or export.py at a time, waiting (said in one line)
    while another process holds it: two at once timed each other's load, and the later one to write
    replaced the other's results without a word (its own lines said the opposite). With `out` (an
    --out folder elsewhere), the folder it is written in is held too: two runs searching, or
    exporting, into one shared --out at once each found it empty, and the later one replaced the
    other's results. The locks are POSIX `flock` on the folders themselves (no lock file; they hold
    across users, and across machines where the filesystem passes flock on), taken in one order
    whatever the command, so two commands never wait on each other; a thread already holding a
    folder passes through (a script calling search, then export, inside one hold). Where flock is
    missing (Windows) or refused (some network mounts), nothing is held, as before."""
    folders = [
        (
            root,
            f"waiting for another search.py or export.py of run '{root}' to finish (they would time each "
            "other, and write the same files) ...",
        )
    ]
    where = None if out is None else _folder_above(out)
    if where is not None:
        folders.append(
            (
                where,
                f"waiting for another search.py or export.py writing into '{where}' to finish (they would "
                "replace each other's results) ...",
            )
        )
    ordered: dict[tuple[int, int], tuple[int, str]] = {}
    for folder, waiting in folders:
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:  # not a folder (yet): the run's own checks say so
            continue
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) in ordered:  # --out inside the run: one lock
            os.close(fd)
        else:
            ordered[(stat.st_dev, stat.st_ino)] = (fd, waiting)
    with contextlib.ExitStack() as stack:
        for key in sorted(ordered):
            fd, waiting = ordered[key]
            stack.enter_context(_held(fd, lambda line=waiting: log(line)))
        yield


def _folder_above(path: Path) -> Path | None:
    """The nearest existing folder above `path` (the folder an --out is created or replaced in),
    or None where a loop of links hides it."""
    try:
        above = path.resolve().parent
    except (OSError, RuntimeError):
        return None
    while not above.is_dir() and above != above.parent:
        above = above.parent
    return above


@contextmanager
def _held(fd: int, say_waiting: Callable[[], None]) -> Iterator[None]:
    """An exclusive flock on the open descriptor `fd` (closed at the end), waited for after
    `say_waiting` when another process holds it; a thread holding it already passes through."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        os.close(fd)
        yield
        return
    stat = os.fstat(fd)
    key = (stat.st_dev, stat.st_ino, threading.get_ident())
    try:
        if not _HELD.get(key):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say_waiting()
                try:
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_EX)
                    # The holder has let go but is still ending (writing, printing, Python's exit):
                    # timed at once, the machine read busy and a figure carried its exit.
                    time.sleep(SETTLE_S)
                except KeyboardInterrupt as err:  # said as such, not as a batch of timing that "starts again"
                    raise type(err)("interrupted while waiting: nothing was timed or written") from None
            except OSError:  # no locks on this filesystem: unheld, as before
                pass
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield
        finally:
            _HELD[key] -= 1
    finally:
        os.close(fd)  # closing releases the lock (an inner hold's descriptor never took it)


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""A full disk, a full quota, a read-only filesystem: the user's to mend, said in one line."""


# torch.save's writer on a full disk: it names no errno ("unexpected pos 46906560 vs 46906448").
_TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed writing", "basic_ios::clear")


def disk_error(err: BaseException, path: str | Path) -> OSError | None:
    """The full-disk or read-only error that `err`, raised while writing `path`, stands for, as an
    OSError naming `path`; None where it is something else.

    Libraries word a full disk their own way: an errno (onnx's OSError, without a file name),
    safetensors "No space left on device (os error 28)", torch.save a failed write, which counts
    only where the disk is full now (call this before removing what was written).
    """
    text = str(err)
    code = err.errno if isinstance(err, OSError) and err.errno in DISK_ERRNOS else None
    if code is None and ("No space left on device" in text or "os error 28" in text):
        code = errno.ENOSPC
    if code is None and any(words in text for words in _TORCH_WRITE_FAILED) and _disk_full(Path(path)):
        code = errno.ENOSPC
    if code is None:
        return None
    filename = getattr(err, "filename", None) if isinstance(err, OSError) else None
    return OSError(code, os.strerror(code), str(filename or path))


@contextmanager
def disk_errors_named(path: str | Path) -> Iterator[None]:
    """Raise what the block raises, but a full disk or read-only folder (`disk_error`) as the OSError
    naming `path`, which the CLI says in one line."""
    try:
        yield
    except Exception as err:
        disk = disk_error(err, path)
        if disk is None:
            raise
        raise disk from err


def _disk_full(path: Path) -> bool:
    """Whether the filesystem holding `path` has under 1 MiB left for this user."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < 1 << 20
    except OSError:
        return False


def share_files(folder: str | Path) -> None:
    """Give every file under `folder` the usual permissions (0666 less the umask).

    transformers 5 writes model.safetensors through a private temporary file (0600): an export or
    run folder made by root or a CI user could not be read by the user who serves it.
    """
    mode = 0o666 & ~_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def shared_temp_dir(prefix: str, parent: str | Path) -> Path:
    """`tempfile.mkdtemp` with the usual folder permissions (0777 less the umask), not its 0700: a
    folder built under it and renamed into place is then readable by others, as every folder the
    package writes (`os.mkdir`'s)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(folder, 0o777 & ~_umask())
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_temporary(name: str) -> bool:
    """Whether a file or folder named `name` is one of this package's temporaries, which a killed job
    may leave: `atomic_write`'s `.NAME.*.tmp`, `atomic_dir`'s `.NAME.tmp-PID`, `unwritable`'s
    `.write-test-*`."""
    return name.startswith(".") and (
        name.endswith(".tmp") or ".tmp-" in name or name.startswith(".write-test-")
    )


def remove_stale_temporaries(
    folder: Path, patterns: Sequence[str], *, older_than_s: float = 600.0
) -> list[Path]:
    """Remove the package's temporary folders in `folder` (hidden names matching `patterns`) that a
    killed process left: not written for `older_than_s` (a job on another host sharing the folder
    is still writing its own) and, for names ending in ``.tmp-<pid>``, whose process is gone.

    Returns:
        The folders removed.
    """
    removed = []
    now = time.time()
    for pattern in patterns:
        for tmp in folder.glob(pattern):
            if not tmp.name.startswith(".") or not tmp.is_dir() or tmp.is_symlink():
                continue
            _, marker, pid = tmp.name.rpartition(".tmp-")
            if marker and (not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid))):
                continue
            if now - tmp.stat().st_mtime < older_than_s:
                continue
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_dir(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name; rename it to `path` when the block succeeds.

    Args:
        path: final folder.
        replace: allow replacing an existing folder at `path` (the old one is
            removed only after the new one is complete).

    Raises:
        FileExistsError: `path` exists and `replace` is False.
    """
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"'{path}' already exists; choose another location or remove it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        share_files(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def weight_files(folder: str | os.PathLike[str]) -> list[Path]:
    """A saved model folder's weight files (`WEIGHT_SUFFIXES`), in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_digest(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over a saved model folder's weight files (names and bytes, in name order).

    What search.py's accuracy caches and chosen.json record, so that scores taken of other
    weights (the run trained again, a supernet copied in) are not reused. Hashed once per
    process for each state of the files (their sizes and modification times).
    """
    stats = [(p, p.stat()) for p in weight_files(folder)]
    # The inode too: a same-size file replaced within one timestamp tick is another file.
    state = tuple((str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino) for p, st in stats)
    return _digest_of(state)


@functools.lru_cache(maxsize=8)
def _digest_of(state: tuple[tuple[str, int, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path, *_ in state:
        digest.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory (see README, "Run directory")."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def inputs(self) -> Path:
        """Where config.yaml's local paths were, and the splits' digests (`trainer.record_inputs`)."""
        return self.root / "inputs.json"

    @property
    def teacher(self) -> Path:
        return self.root / "teacher"

    @property
    def importance(self) -> Path:
        return self.root / "importance.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def stage_w(self) -> Path:
        """The network at the end of stage W: stage WD's teacher."""
        return self.root / "stage_w"

    @property
    def supernet(self) -> Path:
        return self.root / "supernet"

    @property
    def metrics(self) -> Path:
        return self.root / "train_metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval.jsonl"

    @property
    def search(self) -> Path:
        return self.root / "search"

    @property
    def latency(self) -> Path:
        return self.root / "latency"

    @property
    def export(self) -> Path:
        return self.root / "export"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step}"

    def trained_here(self) -> bool:
        """Whether train.py has trained in this folder (beside its config.yaml): metrics, eval.jsonl, a
        step-N checkpoint, a model it saved (with supernet.json) or its record of inputs. A user's
        project folder holding a preset named config.yaml and folders of its own (checkpoints/,
        teacher/) is not a run."""
        # Models train.py saved carry supernet.json beside config.json; other HF folders do not.
        saved = [self.teacher, self.stage_w, self.supernet]
        return (
            self.metrics.is_file()
            or self.inputs.is_file()
            or self.eval.is_file()
            # Written by train.py alone: a teacher's scores, the metrics of an attempt before a restart.
            or (self.root / "teacher_eval.json").is_file()
            or (self.root / "train_metrics.previous.jsonl").is_file()
            or bool(self.list_checkpoints())
            or any((folder / "supernet.json").is_file() for folder in saved)
        )

    def list_checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary folders are ignored)."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.iterdir() if p.is_dir() and re.fullmatch(r"step-\d+", p.name)]
        return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))
