"""Device profile kit: latency tables measured on a device that has no torch.

The training machine writes a kit (`write_profile_kit`, `export.py --profile-kit`):

    OUT/
      kit.json       manifest: the run, its architecture and search space, the
                     predictor's options, and one entry per ONNX file (file,
                     role, the subnet it is, what it stands for)
      profile.py     the measuring script (a copy of `supernet/profile_kit_script.py`)
      *.onnx         the subnets `LatencyPredictor.build` measures, exported dense
                     (FP32, or int8 as `export.py --int8` ships them):
                     probe-h<H>-f<F>-l<K>.onnx  every layer with H heads and F FFN
                                                neurons, K layers (table + fixed cost)
                     calib-<subnet>.onnx        whole subnets for the calibration fit
      weights.bin    their weights, each distinct tensor once (`share_weights`)

The device runs `python OUT/profile.py --threads N --batch-size B --seq-len S`
with only numpy and onnxruntime, and writes `latency-table.json`. Back on the
training machine `load_latency_table` reads it, checks it belongs to this run
and to the setting the search asks for, and `LatencyTable.predictor` solves the
same lookup-table predictor `search` builds from local measurements
(`LatencyPredictor.from_measurements`); nothing is measured locally.

The ONNX files are written by `supernet.export.export_subnet`, the function
`export.py` uses, so they are the very graphs a cut model ships as.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from supernet.config import DEFAULT_OPSET, TrainConfig, config_to_dict, load_config
from supernet.convert import Arch, supernet_state
from supernet.data import usable_positions
from supernet.export import export_graph, graph_change, graph_revisions
from supernet.io import atomic_write_json, shared_temp_dir
from supernet.latency import LatencyPredictor, LatencyResult, LatencySetting, predictor_subnets
from supernet.profile_kit_script import KIT_FORMAT, TABLE_FORMAT, file_sha256
from supernet.subnet import SearchSpace, SubnetConfig
from supernet.trainer import RunError

__all__ = [
    "KitEntry",
    "SHARED_WEIGHTS",
    "add_to_kit",
    "LatencyTable",
    "ProfileKitError",
    "kit_entries",
    "kit_manifest",
    "load_latency_table",
    "config_file_digest",
    "run_identity",
    "share_weights",
    "write_profile_kit",
]

SCRIPT = Path(__file__).with_name("profile_kit_script.py")
"""The measuring script, copied into every kit as profile.py."""


class ProfileKitError(RunError):
    """A kit or latency table that does not fit this run or search (one line, exit status 2)."""


@dataclass(frozen=True, kw_only=True)
class KitEntry:
    """One ONNX file of a kit."""

    file: str
    """File name inside the kit folder."""
    role: str
    """"probe" (a table probe: every layer alike) or "calibration" (a whole subnet)."""
    subnet: SubnetConfig
    """The subnet the file is the dense export of."""
    what: str
    """What it stands for, in words."""

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "role": self.role, "spec": self.subnet.to_dict(), "what": self.what}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KitEntry:
        return cls(
            file=str(data["file"]),
            role=str(data["role"]),
            subnet=SubnetConfig.from_dict(dict(data["spec"])),
            what=str(data["what"]),
        )


def _digest(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _beside_defaults(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without the entries equal to `defaults`' (in sections too; an emptied section goes)."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            value = _beside_defaults(value, default)
            if value:
                kept[key] = value
        elif key not in defaults or value != default:
            kept[key] = value
    return kept


KEYS_ADDED_SINCE_DIGESTS: dict[str, dict[str, Any]] = {
    "teacher": {"finetune": False},
    "distill": {"depth_pairing": "same-layer"},
}
"""Config keys added after 2026-12-01's records (digests of the whole resolved config), each at the
value that leaves training as it was: `run_digests` drops them to match those records."""


def _resolved(root: Path) -> tuple[TrainConfig, dict[str, Any]]:
    cfg = load_config(TrainConfig, root / "config.yaml")
    resolved = config_to_dict(cfg)
    resolved.pop("output_dir", None)
    return cfg, resolved


def run_identity(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Which run a kit, or a search's choice, belongs to: its folder name and a digest of the values
    of its training config that differ from their defaults, without output_dir (so a run folder
    moved or renamed, and resumed, keeps it, and so does a run read by a version that adds a key).

    Only the digest is compared (`run_digests` lists those older records carry); the name is for
    messages.

    Args:
        run_dir: the run folder.
    """
    root = Path(run_dir)
    return {"name": root.resolve().name, "config_sha256": _identity_digest(*_resolved(root))}


def _identity_digest(cfg: TrainConfig, resolved: Mapping[str, Any]) -> str:
    """`run_identity`'s digest: of `resolved`'s values that differ from the defaults."""
    defaults = config_to_dict(TrainConfig(model=cfg.model, task=cfg.task, output_dir=cfg.output_dir))
    return _digest(_beside_defaults(resolved, defaults))


def _without(resolved: Mapping[str, Any], keys: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`resolved` without the entries of `keys` ({section: {key: value}}) that hold those values."""
    out: dict[str, Any] = {}
    for section, values in resolved.items():
        dropped = keys.get(section, {})
        if isinstance(values, Mapping):
            values = {k: v for k, v in values.items() if not (k in dropped and v == dropped[k])}
        out[section] = values
    return out


def run_digests(run_dir: str | os.PathLike[str]) -> set[str]:
    """Every digest a record (kit, latency table, chosen.json) of this run may carry: `run_identity`'s;
    until 2026-12-01 the whole resolved config's (as this version resolves it, and without the keys
    added since at their old behaviour, `KEYS_ADDED_SINCE_DIGESTS`); before 2026-11-30 config.yaml's
    bytes (`config_file_digest`)."""
    root = Path(run_dir)
    cfg, resolved = _resolved(root)
    before = _without(resolved, KEYS_ADDED_SINCE_DIGESTS)
    return {
        _identity_digest(cfg, resolved),
        _digest(resolved),
        _digest(before),
        config_file_digest(root),
    }


def config_file_digest(run_dir: str | os.PathLike[str]) -> str:
    """The digest kits written before 2026-11-30 recorded as the run's: of config.yaml's bytes."""
    return hashlib.sha256((Path(run_dir) / "config.yaml").read_bytes()).hexdigest()


def kit_entries(
    model: nn.Module, *, space: SearchSpace, calibration_subnets: Sequence[SubnetConfig] | None = None
) -> list[KitEntry]:
    """The files of `model`'s kit: `LatencyPredictor.build`'s probes, then its calibration subnets.

    Args:
        model: a converted supernet.
        space: the run's search space.
        calibration_subnets: as for `write_profile_kit`.
    """
    arch = supernet_state(model).arch
    probes, calibration = predictor_subnets(model, space=space, calibration_subnets=calibration_subnets)
    out = []
    for cfg in probes:
        h, f, k = cfg.heads[0], cfg.ffn[0], len(cfg.layers)  # type: ignore[index,arg-type]
        what = f"first {k} of {arch.num_layers} layers, each with {h} head{'s' if h != 1 else ''} and {f} FFN neurons"
        out.append(KitEntry(file=f"probe-h{h}-f{f}-l{k}.onnx", role="probe", subnet=cfg, what=what))
    for cfg in calibration:
        out.append(
            KitEntry(
                file=f"calib-{cfg.name}.onnx", role="calibration", subnet=cfg, what=f"whole subnet {cfg.name}"
            )
        )
    return out


def kit_manifest(
    model: nn.Module,
    entries: Sequence[KitEntry],
    *,
    run: Mapping[str, str],
    space: SearchSpace,
    opset: int,
    int8: bool = False,
) -> dict[str, Any]:
    """kit.json's content (see the module docstring).

    Args:
        model: the converted supernet.
        entries: the kit's files (`kit_entries`).
        run: the run's identity (`run_identity`).
        space: the run's search space.
        opset: the ONNX opset the files were written with.
        int8: the files are the int8 graphs `export.py --int8` writes.
    """
    return {
        "format": KIT_FORMAT,
        "run": dict(run),
        "arch": dataclasses.asdict(supernet_state(model).arch),
        "space": {"width_mults": list(space.width_mults), "depth_mults": list(space.depth_mults)},
        "max_position_embeddings": getattr(model.config, "max_position_embeddings", None),
        "max_seq_len": usable_positions(model.config),
        "vocab_size": getattr(model.config, "vocab_size", None),
        "opset": opset,
        "int8": int8,
        **graph_revisions(int8=int8),
        "entries": [e.to_dict() for e in entries],
    }


def write_profile_kit(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    *,
    run: Mapping[str, str],
    space: SearchSpace,
    calibration_subnets: Sequence[SubnetConfig] | None = None,
    tokenizer: Any = None,
    opset: int = DEFAULT_OPSET,
    int8: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write a device profile kit for `model`'s predictor into `out_dir`.

    The kit holds the subnets `LatencyPredictor.build` would measure for
    `space` (`predictor_subnets`), each exported dense to ONNX by
    `export_subnet`, plus `kit.json` and `profile.py`. It is built in a
    temporary sibling folder and moved into place when complete.

    Args:
        model: the run's converted supernet (its active subnet is restored after).
        out_dir: the kit folder; must not exist or be empty.
        run: the run's identity (`run_identity`), recorded so a table from
            another run is refused.
        space: the run's search space (gives the predictor's head/FFN choices).
        calibration_subnets: whole subnets for the calibration fit (default:
            `LatencyPredictor.build`'s); they are listed in kit.json, so the
            table's predictor uses the same.
        tokenizer: the run's tokenizer: it decides whether token_type_ids is an input of each
            graph, as in the graphs export.py ships and search.py times.
        opset: ONNX opset.
        int8: write the int8 graphs `export.py --int8` ships instead of the FP32 ones (the table
            then predicts int8 latency; `search.py --latency-table` takes it with or without `--int8`).
        log: called with one line per written file.

    Returns:
        The kit folder.

    Raises:
        FileExistsError: `out_dir` exists and is not empty (nothing is written).
        ValueError: `run` is not a run identity (nothing is written).
    """
    out = Path(out_dir).absolute()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"'{out}' already exists and is not empty: pass a new --profile-kit folder")
    # Checked before minutes of exports: the table is tied to the run by its config digest.
    if not isinstance(run, Mapping) or not isinstance(run.get("config_sha256"), str):
        raise ValueError(f"run must be the run's identity, run_identity(RUN_DIR), got {run!r}")
    entries = kit_entries(model, space=space, calibration_subnets=calibration_subnets)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = shared_temp_dir(f".{out.name}.tmp-", out.parent)
    try:
        for i, entry in enumerate(entries, 1):
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                graph = export_graph(
                    model, entry.subnet, Path(work) / "m", tokenizer=tokenizer, int8=int8, opset=opset
                )
                shutil.move(str(graph), tmp / entry.file)
            if log is not None:
                size = (tmp / entry.file).stat().st_size / 2**20
                log(f"[{i}/{len(entries)}] {entry.file} ({size:.1f} MiB with its own weights): {entry.what}")
        weights = share_weights(tmp, [e.file for e in entries])
        if log is not None:
            log(
                f"{SHARED_WEIGHTS}: {weights['tensors']} distinct weights (and {weights['prefixes']} that are the "
                f"first rows of one), {weights['bytes'] / 2**20:.1f} MiB, shared by the {len(entries)} files "
                f"({weights['inline_bytes'] / 2**20:.1f} MiB as separate files)"
            )
        shutil.copyfile(SCRIPT, tmp / "profile.py")
        manifest = kit_manifest(model, entries, run=run, space=space, opset=opset, int8=int8)
        for entry in manifest["entries"]:  # profile.py checks them before it times anything
            entry["bytes"] = (tmp / entry["file"]).stat().st_size
            entry["sha256"] = file_sha256(tmp / entry["file"])
        manifest["weights"] = {
            "file": SHARED_WEIGHTS,
            "bytes": weights["bytes"],
            "sha256": file_sha256(tmp / SHARED_WEIGHTS),
            "tensors": weights["tensors"],
            "prefixes": weights["prefixes"],
            "inline_bytes": weights["inline_bytes"],  # the graphs' size, each with its own weights
        }
        atomic_write_json(tmp / "kit.json", manifest)
        try:
            if out.exists():
                out.rmdir()  # empty, checked above
            tmp.rename(out)
        except OSError as err:  # written meanwhile (a second kit into the same folder): keep that one
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise FileExistsError(
                f"'{out}' was written while this kit was made (by another export.py --profile-kit?): "
                "pass a new --profile-kit"
            ) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


MAX_MEDIAN_MS = 3.6e6
"""A latency table's medians above this (an hour per call) were edited or damaged, not timed."""

FIT_BOUND = 0.25
"""A table whose predictor misses one of its own calibration subnets by more than this share is said
in a warning (`LatencyTable.fit_warning`): tables profile.py wrote on busy and idle machines missed by
up to 14%, one with a probe timed 3x slower than the rest by 66%."""

SHARED_WEIGHTS = "weights.bin"
"""The file a kit's ONNX graphs keep their weights in, each distinct tensor once."""
_SHARE_MIN_BYTES = 1024  # smaller tensors (shapes, scalars) stay in their graph
_SHARE_ALIGN = 4096  # page-aligned offsets, so onnxruntime can map them instead of copying


def share_weights(folder: str | os.PathLike[str], files: Sequence[str]) -> dict[str, int]:
    """Move the weights of `folder`'s ONNX `files` into one file they all reference.

    A kit's graphs are cut from one supernet: every file carries the same embedding tables, and
    probes of the same width the same layer weights, so stored inline a MiniLM kit is ~1.7 GB of
    which ~150 MB is distinct. Each distinct tensor (by its bytes) is written once to
    `SHARED_WEIGHTS` and each graph points at it as ONNX external data (location, offset, length),
    which onnxruntime resolves next to the graph file; what each graph computes is unchanged
    (`supernet.export.onnx_fingerprint` reads through external data).

    A tensor whose bytes begin an already stored one is not stored again either: it points at that
    one's first bytes. A narrower subnet's output projection and second FFN linear are the wider
    one's first rows (heads and neurons are sliced as prefixes, and an ONNX MatMul weight is
    [inputs, outputs]), so the files are visited largest first, which stores the widest of each
    before its prefixes. Every match is checked byte for byte.

    Returns:
        ``tensors`` (distinct weights stored), ``prefixes`` (weights stored as another's first
        bytes), ``bytes`` (the shared file's size) and ``inline_bytes`` (the files' size before).
    """
    import onnx
    from onnx.external_data_helper import set_external_data

    root = Path(folder)
    offsets: dict[bytes, tuple[int, int]] = {}
    # Stored tensors by the hash of their first _SHARE_MIN_BYTES bytes: the candidates a shorter
    # tensor may be a prefix of.
    heads: dict[bytes, list[tuple[int, int]]] = {}
    prefixes = 0
    inline = sum((root / name).stat().st_size for name in files)
    with open(root / SHARED_WEIGHTS, "w+b") as store:

        def stored_prefix(raw: bytes) -> tuple[int, int] | None:
            for offset, length in heads.get(hashlib.sha256(raw[:_SHARE_MIN_BYTES]).digest(), ()):
                if length > len(raw):
                    end = store.tell()
                    store.seek(offset)
                    same = store.read(len(raw)) == raw
                    store.seek(end)
                    if same:
                        return offset, len(raw)
            return None

        for name in sorted(files, key=lambda n: (-(root / n).stat().st_size, n)):
            path = root / name
            model = onnx.load(str(path))
            for tensor in model.graph.initializer:
                raw = tensor.raw_data
                if len(raw) < _SHARE_MIN_BYTES:
                    continue
                key = hashlib.sha256(raw).digest()
                if key not in offsets:
                    found = stored_prefix(raw)
                    if found is not None:
                        prefixes += 1
                    else:
                        store.write(b"\0" * (-store.tell() % _SHARE_ALIGN))
                        found = (store.tell(), len(raw))
                        store.write(raw)
                        heads.setdefault(hashlib.sha256(raw[:_SHARE_MIN_BYTES]).digest(), []).append(found)
                    offsets[key] = found
                offset, length = offsets[key]
                set_external_data(tensor, location=SHARED_WEIGHTS, offset=offset, length=length)
                tensor.ClearField("raw_data")
            # Serialised directly: onnx.save would try to write external data itself.
            path.write_bytes(model.SerializeToString())
        size = store.tell()
    return {"tensors": len(offsets) - prefixes, "prefixes": prefixes, "bytes": size, "inline_bytes": inline}


def add_to_kit(
    kit_dir: str | os.PathLike[str],
    model: nn.Module,
    subnets: Sequence[SubnetConfig],
    *,
    role: str = "held-out",
    tokenizer: Any = None,
    log: Callable[[str], None] | None = None,
) -> list[KitEntry]:
    """Export more subnets into a kit, listed in kit.json with `role` (the predictor ignores them).

    For checking a kit's predictor: held-out subnets timed by profile.py in the
    same interleaved rounds as the kit's own files see the same conditions. They
    keep their weights inline, as a model `export.py` ships does, so the check
    also covers the kit's shared weights file.

    Args:
        kit_dir: a kit written by `write_profile_kit`.
        model: the converted supernet the kit was written from.
        subnets: the subnets to add (files already present are kept).
        role: their role in kit.json (not "probe" or "calibration").
        tokenizer: the run's tokenizer, as for `write_profile_kit`.
        log: called with one line per exported file.
    """
    if role in ("probe", "calibration"):
        raise ValueError(f"role {role!r} is the predictor's own; use another, e.g. 'held-out'")
    kit = Path(kit_dir)
    manifest = json.loads((kit / "kit.json").read_text(encoding="utf-8"))
    _check_graphs(kit / "kit.json", manifest)
    listed = {e["file"] for e in manifest["entries"]}
    added = []
    for i, cfg in enumerate(subnets, 1):
        entry = KitEntry(
            file=f"{role}-{cfg.name}.onnx", role=role, subnet=cfg, what=f"{role} subnet {cfg.name}"
        )
        if not (kit / entry.file).is_file():
            with tempfile.TemporaryDirectory(dir=kit) as work:
                graph = export_graph(
                    model,
                    cfg,
                    Path(work) / "m",
                    tokenizer=tokenizer,
                    int8=bool(manifest.get("int8")),
                    opset=int(manifest["opset"]),
                )
                shutil.move(str(graph), kit / entry.file)
            if log is not None:
                log(f"[{i}/{len(subnets)}] {entry.file}: {entry.what}")
        if entry.file not in listed:
            path = kit / entry.file
            manifest["entries"].append(
                {**entry.to_dict(), "bytes": path.stat().st_size, "sha256": file_sha256(path)}
            )
            listed.add(entry.file)
        added.append(entry)
    atomic_write_json(kit / "kit.json", manifest)
    return added


def _check_graphs(path: Path, kit: Mapping[str, Any]) -> None:
    """Refuse, in one line, a kit (or its table) whose graphs `export.py` no longer writes."""
    change = graph_change(kit, int8=bool(kit.get("int8", False)))
    if change is not None:
        int8 = " --int8" if kit.get("int8", False) else ""
        raise ProfileKitError(
            f"{path} holds ONNX graphs export.py no longer writes ({change}): write a new kit "
            f"(export.py --run DIR --profile-kit OUT{int8}) and profile it again"
        )


@dataclass(frozen=True, kw_only=True)
class LatencyTable:
    """A latency table written by a kit's profile.py."""

    path: Path
    """Where it was read from."""
    setting: LatencySetting
    """The setting it was measured under (onnxruntime backend)."""
    device: dict[str, Any]
    """The device's description (cpu, machine, platform, cpu_count, ...)."""
    onnxruntime_version: str
    timestamp: str
    run: dict[str, str]
    """The run the kit was cut from (`run_identity`)."""
    arch: Arch
    space: SearchSpace
    entries: list[KitEntry]
    results: dict[str, LatencyResult]
    """File name -> its statistics."""
    provider: str = "CPUExecutionProvider"
    """The onnxruntime execution provider profile.py timed with (its --provider)."""

    @property
    def description(self) -> str:
        """One line naming the device, e.g. for plot titles and logs."""
        line = f"{self.device.get('cpu', 'unknown cpu')}, onnxruntime {self.onnxruntime_version}"
        return line if self.provider == "CPUExecutionProvider" else f"{line} {self.provider}"

    def check_setting(
        self, *, num_threads: int | None, batch_size: int | None, seq_len: int | None, int8: bool = False
    ) -> None:
        """Refuse a search whose explicitly asked setting differs from the table's (None: take the table's).

        `int8` True asks for an int8 table; False takes the table's graphs, FP32 or int8.

        Raises:
            ProfileKitError: one line naming both settings.
        """
        if int8 and not self.setting.int8:
            raise ProfileKitError(
                f"--int8: latency table {self.path} times FP32 graphs; profile a kit written with "
                "export.py --profile-kit OUT --int8, or drop --int8"
            )
        asked = {
            "num_threads": self.setting.num_threads if num_threads is None else num_threads,
            "batch_size": self.setting.batch_size if batch_size is None else batch_size,
            "seq_len": self.setting.seq_len if seq_len is None else seq_len,
        }
        have = {k: getattr(self.setting, k) for k in asked}
        if asked != have:
            raise ProfileKitError(
                f"latency table {self.path} was measured at {_fmt_setting(have)}, but this search asks "
                f"for {_fmt_setting(asked)}: drop --threads/--batch-size/--seq-len or profile the device "
                "again with the setting you want"
            )

    def check_run(self, run: Mapping[str, str], arch: Arch, *, digests: Collection[str] = ()) -> None:
        """Refuse a table from a kit of another run or architecture.

        Args:
            run: this run's `run_identity` (its digest is compared, not its folder name).
            arch: this run's architecture.
            digests: the other digests older kits of this run recorded (`run_digests`).

        Raises:
            ProfileKitError: one line naming both.
        """
        if self.arch != arch:
            raise ProfileKitError(
                f"latency table {self.path} is for a {_fmt_arch(self.arch)} model, but this run's supernet "
                f"is {_fmt_arch(arch)}: cut a kit from this run with export.py --profile-kit"
            )
        if self.run.get("config_sha256") not in {run.get("config_sha256"), *digests}:
            raise ProfileKitError(
                f"latency table {self.path} comes from a kit of run '{self.run.get('name')}' "
                f"(config {self.run.get('config_sha256', '?')[:12]}), not this run '{run.get('name')}' "
                f"(config {run.get('config_sha256', '?')[:12]}): cut a kit from this run with "
                "export.py --profile-kit"
            )

    def measured(self) -> dict[SubnetConfig, LatencyResult]:
        """Subnet -> its measured result, for `LatencyPredictor.from_measurements`."""
        return {e.subnet: self.results[e.file] for e in self.entries}

    def predictor(self, model: nn.Module, *, log: Callable[[str], None] | None = None) -> LatencyPredictor:
        """The lookup-table predictor solved from this table, exactly as `search` builds one.

        Args:
            model: the run's converted supernet (for its architecture).
            log: called with one line per table entry.

        Raises:
            ProfileKitError: the table lacks a probe the predictor needs (a hand-edited table, or one
                from a kit another version of this package cut).
        """
        calibration = [e.subnet for e in self.entries if e.role == "calibration"]
        measured = self.measured()
        probes, _ = predictor_subnets(model, space=self.space, calibration_subnets=calibration)
        missing = [c.name for c in probes if c not in measured]
        if missing:
            raise ProfileKitError(
                f"latency table {self.path} lacks {len(missing)} of the {len(probes)} probes this run's "
                f"predictor needs (e.g. {missing[0]}): cut a kit from this run with export.py --profile-kit "
                "and profile it"
            )
        predictor = LatencyPredictor.from_measurements(
            model,
            self.setting,
            measured,
            space=self.space,
            calibration_subnets=calibration,
            log=log,
        )
        lowest = predictor.lowest_ms(self.space)
        if not lowest > 0:  # a traceback in the search's first subnet until then
            raise ProfileKitError(
                f"latency table {self.path} does not fit together: the predictor built from it puts some "
                f"subnets at {lowest:.2f} ms (one file timed far from the rest, or edited): run profile.py again"
            )
        return predictor

    def fit_warning(self, predictor: LatencyPredictor) -> str | None:
        """Why the predictor built from this table (`predictor`) cannot be trusted, in one line, or None:
        it misses one of the table's own calibration subnets by more than `FIT_BOUND`, or it costs a
        layer with fewer heads and FFN neurons more than `FIT_BOUND` over one with more. One file timed
        apart from the rest (the device busy for a moment) skews the probes it is solved from: the
        smallest subnets were predicted 4x slower than the table timed them, and the choice moved."""
        why = "as one file timed while the device was disturbed does: run profile.py again"
        misses = [(abs(predictor.predict(cfg) - ms) / ms, cfg, ms) for cfg, ms in predictor.calibration]
        if misses and (worst := max(misses, key=lambda m: m[0]))[0] > FIT_BOUND:
            miss, cfg, ms = worst
            return (
                f"its figures do not fit together: the predictor built from them puts calibration subnet "
                f"{cfg.name} at {predictor.predict(cfg):.2f} ms, {100 * miss:.0f}% off the {ms:.2f} ms the "
                f"table timed it at (bound {100 * FIT_BOUND:.0f}%), {why}"
            )
        # A probe no calibration subnet runs through (a per-layer choice) is checked by its neighbours.
        cells = sorted(predictor.table.items())
        for (h, f), ms in cells:
            for (h2, f2), ms2 in cells:
                if h <= h2 and f <= f2 and ms2 > 0 and ms > (1 + FIT_BOUND) * ms2:
                    return (
                        f"its figures do not fit together: the predictor built from them costs a layer of {h} "
                        f"heads and {f} FFN neurons {ms:.3f} ms, {100 * (ms / ms2 - 1):.0f}% more than one of "
                        f"{h2} heads and {f2} ({ms2:.3f} ms; bound {100 * FIT_BOUND:.0f}%), {why}"
                    )
        return None


def _fmt_setting(s: Mapping[str, Any]) -> str:
    threads = s["num_threads"]
    return f"{threads} thread{'s' if threads != 1 else ''}, batch {s['batch_size']}, seq len {s['seq_len']}"


def _fmt_arch(a: Arch) -> str:
    return f"{a.family} {a.num_layers}-layer {a.num_heads}-head FFN-{a.ffn_dim} hidden-{a.hidden_size}"


def load_latency_table(path: str | os.PathLike[str]) -> LatencyTable:
    """Read and check a latency-table.json written by a kit's profile.py.

    Args:
        path: the table.

    Raises:
        FileNotFoundError: no such file.
        ProfileKitError: not a latency table, or incomplete (one line).
    """
    p = Path(path)
    if p.is_dir():
        raise ProfileKitError(
            f"latency table {p} is a folder: pass the latency-table.json profile.py wrote in it "
            f"({p / 'latency-table.json'})"
        )
    if not p.is_file():
        raise FileNotFoundError(f"latency table {p} not found: pass the latency-table.json profile.py wrote")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ProfileKitError(f"latency table {p} is not valid JSON ({err}): copy it again") from err
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or "kit" not in data:
        raise ProfileKitError(f"{p} is not a latency table written by a profile kit's profile.py")
    try:
        st = data["setting"]
        if st["backend"] != "onnxruntime":
            raise ProfileKitError(f"latency table {p} has backend {st['backend']!r}; expected 'onnxruntime'")
        for key in ("batch_size", "seq_len", "num_threads", "warmup", "repeats"):
            if not isinstance(st[key], int) or isinstance(st[key], bool):  # null, "2", 2.5: edited
                raise ProfileKitError(
                    f"latency table {p} has setting {key} {st[key]!r}, where profile.py writes a whole "
                    "number: run profile.py again"
                )
        setting = LatencySetting(
            backend="onnxruntime",
            int8=bool(data["kit"].get("int8", False)),
            batch_size=st["batch_size"],
            seq_len=st["seq_len"],
            num_threads=st["num_threads"],
            warmup=st["warmup"],
            repeats=st["repeats"],
        )
        kit = data["kit"]
        _check_graphs(p, kit)
        entries = [KitEntry.from_dict(e) for e in kit["entries"]]
        results = {f: LatencyResult.from_dict(r) for f, r in data["results"].items()}
        table = LatencyTable(
            path=p,
            setting=setting,
            device=dict(data["device"]),
            onnxruntime_version=str(data["onnxruntime_version"]),
            timestamp=str(data["timestamp"]),
            run=dict(kit["run"]),
            arch=Arch(**kit["arch"]),
            space=SearchSpace(
                width_mults=tuple(kit["space"]["width_mults"]), depth_mults=tuple(kit["space"]["depth_mults"])
            ),
            entries=entries,
            results=results,
            provider=str(st.get("provider", "CPUExecutionProvider")),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as err:  # AttributeError: "results": []
        if isinstance(err, ProfileKitError):
            raise
        what = f"lacks {err}" if isinstance(err, KeyError) else f"is malformed ({type(err).__name__}: {err})"
        raise ProfileKitError(f"latency table {p} {what}: run profile.py again to write it whole") from err
    missing = [e.file for e in entries if e.file not in results]
    if missing:
        raise ProfileKitError(f"latency table {p} has no result for {missing[0]}: run profile.py to the end")
    foreign = sorted(set(results) - {e.file for e in entries})
    if foreign:  # counted in its warnings, and no graph of the kit
        raise ProfileKitError(
            f"latency table {p} has a result for {foreign[0]}, which is not a file of its kit: run profile.py again"
        )
    for file, result in results.items():
        # profile.py writes medians of wall-clock times: a figure that is not one was edited or damaged.
        # (An hour per call is no timing of a subnet either: 1e308 overflowed the predictor's fit.)
        if not (math.isfinite(result.median_ms) and 0 < result.median_ms < MAX_MEDIAN_MS):
            raise ProfileKitError(
                f"latency table {p} has a median of {result.median_ms} ms for {file}: run profile.py again"
            )
        # The median and percentiles come from the same calls: a median outside them was edited (a
        # 10x figure changed the choice without a word).
        if not result.p10_ms <= result.median_ms <= result.p90_ms:
            raise ProfileKitError(
                f"latency table {p} has a median of {result.median_ms:.4g} ms for {file}, outside its own "
                f"p10-p90 ({result.p10_ms:.4g}-{result.p90_ms:.4g} ms), which the same calls gave: edited or "
                "damaged; run profile.py again"
            )
    return table
