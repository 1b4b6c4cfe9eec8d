"""Command-line entry points (`train.py`, `search.py`, `export.py`, `supernet-*` scripts).

Thin: parse arguments, call the package, turn known user errors into one
line on stderr and exit status 2 (a traceback only with `--debug`).
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from supernet.profile_kit_script import OneLineParser

if TYPE_CHECKING:
    from supernet.config import TrainConfig

__all__ = [
    "at_least",
    "export_main",
    "figures_file",
    "output_file",
    "predictor_file",
    "quiet_libraries",
    "run_cli",
    "search_main",
    "train_main",
]

USER_ERROR_EXIT = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from supernet.assets import ModelFolderError
    from supernet.config import ConfigError
    from supernet.data import DataError
    from supernet.families import UnsupportedModelError
    from supernet.trainer import RunError, TrainingError

    errors: list[type[BaseException]] = [
        ConfigError,
        DataError,
        ModelFolderError,
        UnsupportedModelError,
        RunError,
        TrainingError,
        FileNotFoundError,
        FileExistsError,
        PermissionError,
    ]
    try:
        from supernet.search import BudgetError

        errors.append(BudgetError)
    except ImportError:  # pragma: no cover - search lands separately
        pass
    return tuple(errors)


def thread_count(text: str) -> int:
    """An argparse `type` for --threads: an integer from 1 to the cores this process may run on (more
    would time threads waiting for each other: 4 min for an 8 s bench at 999 threads on 2 cores)."""
    from supernet.profile_kit_script import too_many_threads

    value = at_least(1)(text)
    if why := too_many_threads(value):
        raise argparse.ArgumentTypeError(why.removeprefix("--threads "))
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type`: an integer >= `minimum`; anything else is argparse's one-line usage error
    (exit 2), before the script does any work."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def user_path(text: str) -> Path:
    """An argparse `type` for a path: ``~`` expanded. The shell expands ``--run ~/x`` but not
    ``--run=~/x`` or a quoted '~/x' (which is how the scripts print their next commands); without
    this, export.py --out=~/x made a folder named "~" in the working directory."""
    return Path(text).expanduser()


def user_path_text(text: str) -> str:
    """`user_path` for options kept as text (--run)."""
    return str(user_path(text))


def folder_option(instead: str) -> Callable[[str], str]:
    """An argparse `type` for a folder option: ``~`` expanded, an empty value refused (it silently
    meant the working folder, or the default); `instead` ends the message ("leave --out out for ...")."""

    def folder(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"is empty: pass a folder, or {instead}")
        return user_path_text(text)

    return folder


BENCH_KEY = "bench"
"""The key every bench script's --json file carries (`write_figures`): the script that wrote it."""


def resolved_link(path: Path, flag: str) -> Path:
    """The full path `path` (given as `flag`) names, links followed, or a ValueError in one line: a
    loop of symbolic links raised RuntimeError (OSError from Python 3.13) from deep inside pathlib."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise ValueError(f"{flag} '{path}' leads round a loop of symbolic links: pass another path") from None


def output_file(text: str, script: str | None = None) -> Path:
    """An argparse `type` for the figures file a bench script writes at its end (--json): refused at
    once when it names a folder, a folder that does not exist or cannot be written, a link that leads
    nowhere, a file that cannot be replaced, or a file that no bench script wrote (a user's notes were
    replaced by figures), not after minutes of work. A figures file a bench wrote (`write_figures`) is
    replaced; with `script` (`figures_file`), only one that script wrote (an int8_choice file was
    replaced by int8_anatomy's figures)."""
    wanted = None if script is None else Path(script).name

    def ours(data: object) -> str | None:
        if not (isinstance(data, dict) and BENCH_KEY in data):
            return (
                f"{text} exists and is not a figures file of this version's bench scripts (they mark theirs "
                f"with a '{BENCH_KEY}' key): pass a new path, or move it away"
            )
        if wanted is not None and data[BENCH_KEY] != wanted:
            return f"{text} holds the figures of {data[BENCH_KEY]}, not of {wanted}: pass a new path, or move it away"
        return None

    return replaceable_file(text, ours)


def figures_file(script: str) -> Callable[[str], Path]:
    """`output_file` for the --json option of the bench script `script` (its __file__): a figures file
    another bench wrote is refused, not replaced."""
    return lambda text: output_file(text, script)


def predictor_file(text: str) -> Path:
    """An argparse `type` for a latency predictor a command saves (`LatencyPredictor.save`): as
    `output_file`, but the file it replaces is an earlier predictor."""

    def ours(data: object) -> str | None:
        if isinstance(data, dict) and {"format", "setting", "table"} <= data.keys():
            return None
        return f"{text} exists and is not a saved latency predictor: pass a new path, or move it away"

    return replaceable_file(text, ours)


def replaceable_file(text: str, refusal: Callable[[object], str | None]) -> Path:
    """The file path `text` names, checked before any work for a command that writes it at its end:
    a link is followed (the file it names is replaced, the link stays); a folder, a missing or
    unwritable folder, a loop of links, a link to nothing, and a file that cannot be replaced are
    refused; an existing file's parsed JSON (None when it is not JSON) goes to `refusal`, which says
    why it is not the command's to replace, or None.

    Raises:
        argparse.ArgumentTypeError: in one line.
    """
    import json

    from supernet.io import unwritable

    path = user_path(text)
    try:
        target = path.resolve()  # the file itself, or a folder above it, may be a loop of links
    except (RuntimeError, OSError):
        raise argparse.ArgumentTypeError(
            f"{text} leads round a loop of symbolic links: pass a file path"
        ) from None
    if path.is_symlink():
        if not target.exists():
            raise argparse.ArgumentTypeError(
                f"{text} is a link to {target}, which does not exist: pass a file path, or the link's target"
            )
        path = target
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: pass a file path")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {path.parent} does not exist")
    if unwritable(path.parent) is not None:  # permissions, and read-only mounts and immutable folders
        raise argparse.ArgumentTypeError(f"folder {path.parent} cannot be written")
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            data = None
        problem = refusal(data)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        # An immutable or append-only file (chattr +i, +a): renaming the new one over it failed after
        # the work. Opened for writing, not appending, and nothing written: the system says EPERM for
        # those; a read-only file (EACCES) is replaced all the same, as its folder is writable.
        try:
            os.close(os.open(path, os.O_WRONLY))
        except PermissionError as err:
            if err.errno == errno.EPERM:
                raise argparse.ArgumentTypeError(f"{text} cannot be replaced ({err.strerror})") from None
        except OSError:
            pass
    return path


def write_figures(path: Path, figures: dict[str, object], *, script: str) -> None:
    """Write a bench script's --json file atomically (the old one stays whole if this fails), marked
    with the script that wrote it, so that `output_file` replaces it, and only it, next time."""
    import json

    from supernet.io import atomic_write_text

    atomic_write_text(path, json.dumps({BENCH_KEY: Path(script).name, **figures}, indent=2) + "\n")


def output_target(path: Path, flag: str, *, replaced: bool = True) -> Path:
    """The folder an --out-like option (`flag`) writes or replaces: a symbolic link is followed (the
    folder it names is the one written, the link stays; a link was replaced by a real folder, or failed
    with NotADirectoryError after the work), and, for a folder the command replaces whole (`replaced`:
    export.py's --out and --profile-kit, not search.py's --out, which writes files into it), the
    current folder, or one holding it, is refused (replacing it left the shell in a deleted folder,
    its export out of sight).

    Raises:
        RunError: a link to no folder, or the current folder, in one line.
    """
    from supernet.trainer import RunError

    try:
        full = resolved_link(path, flag)  # the link itself, or a folder above it, may be a loop
    except ValueError as err:
        raise RunError(str(err)) from None
    if path.is_symlink():
        if not full.is_dir():
            # (Worded as replaceable_file's refusal of a dangling link for a file.)
            what = "is a file" if full.exists() else "does not exist"
            hint = "" if full.exists() else ", or the link's target"
            raise RunError(f"{flag} '{path}' is a link to '{full}', which {what}: pass a folder{hint}")
        path = full
    here = Path.cwd().resolve()
    if replaced and (full == here or full in here.parents):
        raise RunError(
            f"{flag} '{path}' is the current folder or holds it: pass a new folder, e.g. {flag} ./{flag.strip('-')}"
        )
    return path


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each option's default, where it has one its help does not already name."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def output_folder(text: str) -> Path:
    """An argparse `type` for a folder a script writes into (--out, --work): refused at once when it
    names a file, or a folder that cannot be written or made, not in a traceback after minutes of work."""
    path = user_path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file: pass a folder")
    problem = folder_problem(path, f"folder {text}")
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return path


def folder_problem(path: Path, shown: str) -> str | None:
    """Why the folder `path` (named in the message as `shown`: "folder DIR", "--work DIR") cannot be
    written, or made where it does not exist yet, in one line; None when it can."""
    from supernet.io import unwritable

    problem = unwritable(path)
    if problem is None:
        return None
    if path.is_dir():
        return f"{shown} cannot be written ({problem}): pass another folder"
    return f"{shown} cannot be made: {problem}; pass another folder"


def results_folder_problem(folder: Path, ours: dict[str, Callable[[Path], bool]]) -> str | None:
    """Why a bench script cannot write its results into `folder`, in one line, or None when it can: the
    folder cannot be written or made (`folder_problem`), or it holds a file of the user's under a name
    the script writes. `ours` maps each of those names to a check that an existing file of that name is
    one the script wrote earlier (a file that cannot be read, or a folder, is not): the script replaces
    its own files, and names the user's, which it keeps."""
    problem = folder_problem(folder, f"folder {folder}")
    if problem is not None:
        return problem
    foreign = []
    for name, check in ours.items():
        path = folder / name
        if not path.exists() and not path.is_symlink():
            continue
        try:  # a link (to nothing, or round a loop, too) is not a file this script wrote
            mine = path.is_file() and not path.is_symlink() and check(path)
        except (OSError, UnicodeDecodeError, ValueError, IndexError):
            mine = False
        if not mine:
            foreign.append(path)
    if not foreign:
        return None
    many = len(foreign) > 1
    return (
        f"{' and '.join(map(str, foreign))} {'were' if many else 'was'} not written by this script: pass "
        f"another --out, or move {'them' if many else 'it'} away"
    )


def text_starting(start: str, *parts: str) -> Callable[[Path], bool]:
    """A `results_folder_problem` check: a UTF-8 text file that starts with `start` and holds every one of `parts`."""

    def check(path: Path) -> bool:
        text = path.read_text(encoding="utf-8")
        return text.startswith(start) and all(part in text for part in parts)

    return check


def rows_with(*keys: str) -> Callable[[Path], bool]:
    """A `results_folder_problem` check: a JSON-lines file whose first row is an object with every one of `keys`."""

    def check(path: Path) -> bool:
        import json

        first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        return isinstance(first, dict) and set(keys) <= first.keys()

    return check


def markdown_file(text: str) -> Path:
    """An argparse `type` for the markdown file whose section a bench script rewrites at its end
    (--benchmarks): a folder, a missing or unwritable folder, or a file that cannot be replaced is
    refused at once (`replaceable_file`); any other file is the user's choice to update. A file in a
    folder not made yet is fine where that folder can be made (the write makes it)."""
    path = user_path(text)
    if not path.parent.exists() and not path.parent.is_symlink():
        problem = folder_problem(path.parent, f"folder {path.parent}")
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return path
    return replaceable_file(text, lambda data: None)


def quiet_libraries() -> None:
    """Silence the libraries' routine output (head-init reports, sub-second bars, exporter notes)."""
    # transformers reports every freshly initialised task head as MISSING weights, which is
    # exactly what fine-tuning a teacher expects; keep its errors, drop that noise.
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Sub-second tokenization bars, and the ONNX exporter's notes about optional packages
    # (torchvision) it does not need, bury the lines that matter.
    import logging

    import datasets

    # torch sets its loggers' levels as it is imported: set before that (transformers imports it
    # lazily), torch.onnx's level was undone and the exporter's warnings reached the terminal.
    import torch  # noqa: F401

    datasets.disable_progress_bars()
    # datasets logs a file it cannot parse ("Failed to read file ...") before raising; the CLI
    # reports that error itself, in one line.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # A failed opset conversion is logged with its traceback; export.py reports its outcome.
    logging.getLogger("onnxscript").setLevel(logging.CRITICAL)


def run_cli(
    main: Callable[[argparse.Namespace], int | None],
    parser: OneLineParser,
    argv: Sequence[str] | None = None,
    *,
    interrupted: str = "interrupted",
) -> int:
    """Parse `argv`, run `main`, map user errors to one line + exit 2; Ctrl-C prints `interrupted`."""
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")

    # Intermixed: `train.py --config C key=v --no-progress key2=v2` keeps both overrides.
    args = parser.parse_intermixed_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def quietly(parsed: argparse.Namespace) -> int | None:
        if not parsed.debug:
            quiet_libraries()  # imports transformers (seconds): inside the interrupt handling
        return main(parsed)

    with _TerminateAsInterrupt() as terminate:
        return _run_main(quietly, args, interrupted, terminate)


def _run_main(
    main: Callable[[argparse.Namespace], int | None],
    args: argparse.Namespace,
    interrupted: str,
    terminate: _TerminateAsInterrupt,
) -> int:
    try:
        return int(main(args) or 0)
    except _user_errors() as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        rank = process_rank()
        if rank and not _per_process(err) and process_rank("LOCAL_RANK"):
            # Every process of a multi-process run meets this error alike: process 0 of each machine
            # reports it (inputs on a machine's own disk may be missing on that machine alone).
            return USER_ERROR_EXIT
        if (
            isinstance(err, (FileNotFoundError, PermissionError))
            and err.filename
            and str(err.filename) not in message
        ):
            message = f"{message}: {err.filename}"
        print(f"{f'[process {rank}] ' if rank else ''}error: {message}", file=sys.stderr)
        return USER_ERROR_EXIT
    except OSError as err:
        from supernet.io import DISK_ERRNOS

        if args.debug or err.errno not in DISK_ERRNOS:
            raise
        where = f": '{err.filename}'" if err.filename else ""
        rank = process_rank()  # each process writes its own files: each says its own
        print(
            f"{f'[process {rank}] ' if rank else ''}error: {err.strerror}{where}; free space (or write "
            "elsewhere) and run it again",
            file=sys.stderr,
        )
        return USER_ERROR_EXIT
    except KeyboardInterrupt as err:
        return _interrupted(err, interrupted, terminate)


def _interrupted(err: KeyboardInterrupt, message: str, terminate: _TerminateAsInterrupt) -> int:
    """Say what an interrupt (Ctrl-C, or SIGTERM through `terminate`) leaves, in one line; its exit
    status: 130, or 143 for SIGTERM."""
    # A KeyboardInterrupt raised with a message says what a later phase leaves behind. Ctrl-C
    # reaches every process of a multi-process run alike: process 0 says it.
    if not process_rank():
        print(str(err) or message, file=sys.stderr)
    return 128 + signal.SIGTERM if terminate.came or isinstance(err, Terminated) else 130


def script_exit(main: Callable[[], int | None]) -> int:
    """A bench/ script's exit status: Ctrl-C or SIGTERM end it with one line (`interrupted`, or the
    interrupt's own message), not a traceback, and exit 130 or 143 as the entry points do."""
    with _TerminateAsInterrupt() as terminate:
        try:
            return int(main() or 0)
        except KeyboardInterrupt as err:
            return _interrupted(err, "interrupted", terminate)


class Terminated(KeyboardInterrupt):
    """The KeyboardInterrupt a SIGTERM raises: the command ends as on Ctrl-C, with exit code 143."""


class _TerminateAsInterrupt:
    """Within it SIGTERM (a scheduler's stop, `timeout`, `kill`) ends the job as Ctrl-C does, through
    the same cleanup and message: an export killed so left its half-written hidden folder behind and
    said nothing. A handler set by whoever started us (or SIG_IGN), and threads other than the main
    one, are left alone; the trainer installs its own for the training steps (finish the step, save a
    checkpoint) and puts this one back after."""

    def __init__(self) -> None:
        self.came = False
        self.installed = False

    def _handler(self, signum: int, frame: object) -> None:
        self.came = True
        raise Terminated

    def __enter__(self) -> _TerminateAsInterrupt:
        # Processes of a multi-process launch keep the default: one that raised here while the others
        # wait in a collective would hang them all (the trainer leaves them alone for the same reason).
        launched = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        if (
            not launched
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, self._handler)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed and signal.getsignal(signal.SIGTERM) == self._handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def process_rank(variable: str = "RANK") -> int:
    """This process's rank in a multi-process launch, else 0 (a RANK left over in a shell, without a
    WORLD_SIZE > 1 beside it, is not a launch); `variable="LOCAL_RANK"`: its rank on its machine
    (RANK where the launcher sets no LOCAL_RANK)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return 0
    return int(os.environ.get(variable, os.environ.get("RANK", "0")) or 0)


def _per_process(err: BaseException) -> bool:
    """Whether one process of a multi-process run may meet `err` alone (its own files, its own step).

    An OSError the system raised (with an errno: a file of this process's) is its own; one raised by
    an input check with a message only ("model 'x' is neither a packaged model nor an existing
    folder") meets every process alike, and process 0 says it.
    """
    from supernet.trainer import ProcessRunError, TrainingError

    return isinstance(err, (ProcessRunError, TrainingError)) or (
        isinstance(err, OSError) and err.errno is not None
    )


def one_process_only(script: str) -> None:
    """Refuse a multi-process launch (accelerate launch, torchrun) of a single-process script.

    Raises:
        RunError: naming the script, when WORLD_SIZE says more than one process was started.
    """
    from supernet.trainer import RunError

    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if launched > 1:
        raise RunError(
            f"{script} runs in one process ({launched} were launched, each would time and write the same "
            f"files): run it as python {script} ..."
        )


def _check_run_config(config: Path, output_dir: str) -> None:
    """Refuse a run's own config.yaml whose output_dir names another folder: the run was copied or
    moved, and `--config COPY/config.yaml resume=true` resumed (or, moved, started afresh) the folder
    it was first trained in, not the one the config came from."""
    from supernet.io import RunDir
    from supernet.trainer import RunError, _training_folder

    run = RunDir(config.parent)
    if (
        config.name == "config.yaml"
        and run.trained_here()
        and Path(output_dir).expanduser().resolve() != run.root.resolve()
    ):
        base = _training_folder(run)
        if base is not None:  # the same run, named from the folder it was trained in
            raise RunError(
                f"--config {config} names its run '{output_dir}' as seen from {base}: run this from there, "
                f"or pass output_dir={shlex.quote(str(run.root))}"
            )
        raise RunError(
            f"--config {config} is the config of the run in '{run.root}', but its output_dir is "
            f"'{output_dir}': pass output_dir={shlex.quote(str(run.root))} to resume that run, or "
            f"output_dir={shlex.quote(output_dir)} to train there"
        )


def _missing_paths(cfg: TrainConfig) -> list[str]:
    """The model, teacher and data that a run of `cfg` would not find on this machine, as notes: a
    config printed to run elsewhere may name paths of that machine, so --print-config does not refuse."""
    from supernet.assets import ModelFolderError, resolve_model_path
    from supernet.data import missing_task

    notes = []
    for key, value in (("model", cfg.model), ("teacher.path", cfg.teacher.path)):
        if value is not None:
            try:
                resolve_model_path(value, key)
            except (OSError, ModelFolderError) as err:  # an unreadable folder is a note here too
                notes.append(f"note: train.py would refuse this config here: {err}")
    try:
        task = missing_task(cfg.task)
    except OSError as err:
        task = f"task '{cfg.task}' cannot be read ({err.strerror or err})"
    if task is not None:
        notes.append(f"note: train.py would refuse this config here: {task}")
    return notes


def _train(args: argparse.Namespace) -> int:
    from supernet.config import TrainConfig, check_recipe_options, config_to_dict, config_yaml, load_config
    from supernet.io import RunDir
    from supernet.trainer import holds_run, train, unused_learning_rate, unused_stage_w

    cfg = load_config(TrainConfig, args.config, args.overrides)
    if args.print_config or not holds_run(RunDir(Path(cfg.output_dir).expanduser())):
        check_recipe_options(cfg)  # a new run's; one saved before the check still resumes
    given = {o.split("=", 1)[0].strip() for o in args.overrides}
    # The presets' own top-level rate is not said: the benches read it (bench/accuracy_latency.py's
    # baselines fine-tune at it).
    notes = [unused_learning_rate(cfg) if "learning_rate" in given else None, unused_stage_w(cfg)]
    if args.print_config:  # the YAML alone on stdout, to keep as a file
        try:
            fresh = not holds_run(RunDir(Path(cfg.output_dir).expanduser()))
        except OSError:  # an output_dir it cannot read: the printed config is still the config
            fresh = False
        if fresh:  # (a resume reads the paths its run recorded)
            notes += _missing_paths(cfg)
        for note in filter(None, notes):
            print(note, file=sys.stderr)
        print(config_yaml(config_to_dict(cfg)), end="")
        return 0
    if "output_dir" not in given:
        _check_run_config(Path(args.config), cfg.output_dir)
    for note in filter(None, notes):
        print(note)
    result = train(cfg, progress=not args.no_progress)
    if process_rank() == 0:
        run = shlex.quote(str(result.run_dir))
        print(
            f"supernet: {result.run_dir / 'supernet'}\n"
            f"next: python search.py --run {run} --latency-budget-ratio 0.5 (or --latency-budget-ms MS), "
            f"then python export.py --run {run} --subnet best --out DIR"
        )
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    from supernet.config import TrainConfig, dotted_keys

    sections: dict[str, list[str]] = {}
    for key in dotted_keys(TrainConfig):
        head, _, leaf = key.partition(".")
        if leaf:
            sections.setdefault(head, []).append(leaf)
        else:
            sections.setdefault(head, [])
    keys = ", ".join(f"{k}.{{{', '.join(v)}}}" if v else k for k, v in sections.items())
    parser = OneLineParser(
        prog="train.py",
        allow_abbrev=False,
        description="Train an elastic supernet: teacher -> importance/reorder -> the recipe's stages "
        "(single-stage: width x depth; dynabert: stage W, then stage W x D) -> every grid subnet scored.",
        epilog=f"config keys (for the YAML file or key=value): {keys}. "
        "supernet/config.py says what each does (README 'Train on your model and data' the common ones); "
        "the presets in configs/ show them set.",
    )
    parser.add_argument("--config", help="YAML preset, e.g. configs/quickstart.yaml (required)")
    parser.add_argument(
        "overrides", nargs="*", help="key=value overrides, dotted for nested keys (stage_wd.max_steps=10)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="check the config and the overrides, print every key as the run would use it, and exit",
    )

    def train_with_config(args: argparse.Namespace) -> int:
        if args.config is None:
            # `train.py configs/quickstart.yaml` put the preset among the key=value overrides.
            preset = next((o for o in args.overrides if "=" not in o and o.endswith((".yaml", ".yml"))), None)
            hint = f": python train.py --config {shlex.quote(preset)} ..." if preset else ""
            parser.error(f"the following arguments are required: --config{hint}")
        return _train(args)

    return run_cli(
        train_with_config,
        parser,
        argv,
        interrupted=(
            "interrupted; rerun with resume=true to continue from the last checkpoint or stage the run "
            "finished (from the first step if none)"
        ),
    )


def search_main(argv: Sequence[str] | None = None) -> int:
    from supernet.parsers import search_parser

    def main(args: argparse.Namespace) -> int:
        from supernet.search import BudgetError
        from supernet.search_cli import run

        one_process_only("search.py")
        try:
            return run(args)
        except BudgetError as err:
            ratio = args.latency_budget_ratio
            if ratio is None or not (err.needed_ms and err.budget_ms):
                raise
            # The budget was a ratio: say which ratio fits, not only which milliseconds.
            least = math.ceil(ratio * err.needed_ms / err.budget_ms * 100 - 1e-6) / 100
            if least > 1:  # the fastest subnet timed slower than the full one: no ratio fits
                raise
            raise BudgetError(f"{err} (--latency-budget-ratio {least:.2f} or more)") from err

    return run_cli(
        main,
        search_parser(),
        argv,
        interrupted=(
            "interrupted: no results written; search.py run again reuses the latencies and scores already "
            "saved in the run's caches (a batch of subnets being exported or timed starts again)"
        ),
    )


def export_main(argv: Sequence[str] | None = None) -> int:
    from supernet.parsers import export_parser

    def main(args: argparse.Namespace) -> int:
        from supernet.export_cli import run

        one_process_only("export.py")
        return run(args)

    return run_cli(
        main,
        export_parser(),
        argv,
        interrupted=(
            "interrupted: nothing was exported (no folder is left half-written; an export already in --out "
            "is kept)"
        ),
    )
