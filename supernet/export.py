"""Cut a subnet out of a supernet as a standalone dense model, and ship it.

`get_active_subnet` (Once-for-All's verb) builds a dense transformers model of
the active subnet's real shapes: fewer heads, fewer FFN neurons, only the kept
layers. `export_subnet` writes a folder that loads anywhere transformers does:

    out/
      config.json                  export config (per-layer widths, auto_map)
      model.safetensors            real-shape weights
      modeling_supernet_export.py  copy of supernet/export_modeling.py
      tokenizer files              when a tokenizer is given
      model.onnx                   optimised graph (fused attention, LayerNorm, GELU; see
                                   `write_onnx`), dynamic batch and sequence axes
      model.int8.onnx              with int8=True (dynamic int8 weights, from model.onnx)
      parity.json                  what was checked, and how close it came

Load it with `AutoModelForSequenceClassification.from_pretrained(out,
trust_remote_code=True)` (no `supernet` needed) or `load_exported(out)`
(package code, no remote code).
"""

from __future__ import annotations

import contextlib
import gc
import glob
import json
import logging
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn
from transformers import PreTrainedModel

from supernet import export_modeling
from supernet.config import DEFAULT_OPSET
from supernet.convert import Arch, supernet_state
from supernet.cost import count_params
from supernet.elastic.depth import kept_layers
from supernet.families import FamilySpec, UnsupportedModelError
from supernet.io import remove_stale_temporaries, save_tokenizer, share_files
from supernet.subnet import (
    MAX_NET,
    ResolvedSubnet,
    SearchSpace,
    SubnetConfig,
    active_layers,
    resolve_subnet,
    set_active_subnet,
)
from supernet.tasks import model_inputs, task_kind_of_config

__all__ = [
    "MODELING_FILE",
    "ONNX_TOL",
    "TORCH_TOL",
    "ExportReport",
    "OnnxGraph",
    "export_graph",
    "export_subnet",
    "get_active_subnet",
    "load_exported",
    "onnx_fingerprint",
    "onnx_predict",
    "save_exported",
    "score",
    "write_int8",
    "write_onnx",
]

TORCH_TOL = 1e-5
"""Max abs logit difference allowed between the dense export and the supernet at the subnet."""
ONNX_TOL = 1e-4
"""Max abs logit difference expected between ONNX Runtime and the dense PyTorch model."""
MODELING_FILE = export_modeling.MODELING_FILE
"""Name of the copy of `supernet/export_modeling.py` written into an export folder."""

_SLICED = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")

Batch = Mapping[str, torch.Tensor]
Predict = Callable[[Batch], torch.Tensor]


# --------------------------------------------------------------------------- dense model


def _live_subnet(model: nn.Module) -> tuple[SubnetConfig, list[int], list[int], list[int]]:
    """The subnet that `model` runs now: its config, kept layers, heads and FFN per kept layer.

    Read from the elastic modules rather than from `state.active`, which only
    records the last `set_active_subnet` call.
    """
    state = supernet_state(model)
    layers = active_layers(model)
    all_heads = tuple(a.active_heads for a in state.attentions)
    all_ffn = tuple(f.active_neurons for f in state.ffns)
    live = ResolvedSubnet(heads=all_heads, ffn=all_ffn, layers=tuple(layers))
    # Prefer a config that names the live subnet (keeps grid names like w0.50-d0.50).
    known = [c for c in (state.active, MAX_NET) if c is not None and resolve_subnet(state.arch, c) == live]
    cfg = known[0] if known else SubnetConfig(heads=all_heads, ffn=all_ffn, layers=tuple(layers))
    return cfg, layers, [all_heads[i] for i in layers], [all_ffn[i] for i in layers]


def _stock_class(model: nn.Module) -> tuple[type, str] | None:
    """The stock transformers class `model` is (or derives from), and its family's class-name prefix."""
    heads = sorted(export_modeling.HEADS, key=len, reverse=True)
    for cls in type(model).__mro__:
        if (
            not cls.__module__.startswith("transformers.")
            or getattr(transformers, cls.__name__, None) is not cls
        ):
            continue
        head = next((h for h in heads if cls.__name__.endswith(h)), None)
        prefix = cls.__name__.removesuffix(head) if head else ""
        # A head class's config is <prefix>Config; this skips e.g. <prefix>PreTrainedModel.
        if prefix and getattr(transformers, f"{prefix}Config", None) is getattr(cls, "config_class", None):
            return cls, prefix
    return None


def _export_class(model: nn.Module, spec: FamilySpec) -> tuple[type, str]:
    """The export class for `model` and the stock classes' name prefix (e.g. "Bert")."""
    found = _stock_class(model)
    if found is not None:
        stock, prefix = found
        if stock.__name__ in export_modeling.MODEL_CLASSES:
            return export_modeling.MODEL_CLASSES[stock.__name__], prefix
        if spec.matched_layout is not None:
            return export_modeling.export_class(stock), prefix
    if spec.matched_layout is not None:
        raise UnsupportedModelError(
            f"cannot export {type(model).__name__}: it was matched by layout ({spec.matched_layout}), and an "
            f"export subclasses a stock transformers class <Family>{{{', '.join(export_modeling.HEADS)}}}, "
            "which it does not derive from"
        )
    raise NotImplementedError(
        f"cannot export {type(model).__name__}: supported classes are <Family>"
        f"{{{', '.join(export_modeling.HEADS)}}}"
    )


def _module_path(root: nn.Module, target: nn.Module) -> str:
    for name, module in root.named_modules():
        if module is target:
            return name
    raise LookupError("module not found in model")  # pragma: no cover - structure is checked at conversion


def get_active_subnet(model: nn.Module) -> PreTrainedModel:
    """A standalone dense model of the subnet `model` currently runs.

    The result is the family's stock transformers model (an export subclass of
    e.g. `BertForSequenceClassification`) whose Q/K/V/O and FFN linears have
    the subnet's real shapes, holding only the kept layers in order. Weights are
    copied (contiguous, independent of the supernet); embeddings, LayerNorms,
    pooler and task head are copied unchanged. It computes what the supernet
    computes at the subnet, and `save_pretrained` + the modeling file reloads it.

    Args:
        model: a converted supernet (`to_supernet`) with the subnet active
            (`set_active_subnet`); per-layer subnets are supported.

    Returns:
        The dense model, on the supernet's device and dtype, in the supernet's
        train/eval mode.

    Raises:
        NotImplementedError: the task head has no export class.
        UnsupportedModelError: a model matched by layout whose class derives
            from no stock transformers head class.
    """
    state = supernet_state(model)
    spec, arch = state.spec, state.arch
    cfg, layers, heads, ffn = _live_subnet(model)
    export_cls, prefix = _export_class(model, spec)
    # The family whose stock classes the export subclasses: the table's own, that of
    # the stock class a layout-matched model derives from, or its own model_type.
    family = export_cls.config_class.model_type.removeprefix(export_modeling.MODEL_TYPE_PREFIX)
    layout = export_modeling.LAYOUTS.get(family)
    if layout is not None and any(
        getattr(layout, part) != getattr(spec, part) for part in ("layers", *_SLICED)
    ):
        raise UnsupportedModelError(
            f"cannot export {type(model).__name__}: its layout ({spec.describe()}) differs from that of "
            f"{family}, whose stock classes it derives from"
        )

    stock_config = model.config  # type: ignore[attr-defined]
    fields = stock_config.to_dict()
    for key in ("model_type", "architectures", "auto_map", "transformers_version"):
        fields.pop(key, None)
    fields[spec.num_layers_attr] = len(layers)
    fields[spec.ffn_attr] = max(ffn)
    fields.update(
        num_attention_heads_per_layer=heads,
        intermediate_size_per_layer=ffn,
        attention_head_size=arch.head_dim,
        supernet_source={
            "subnet": cfg.name,
            "spec": cfg.to_dict(),
            "layers": layers,
            "supernet_num_layers": arch.num_layers,
        },
        auto_map=export_modeling.auto_map(family, prefix),
    )
    if layout is None:
        # No LAYOUTS entry to find the paths by: the config carries them.
        fields["supernet_layout"] = {
            "prefix": prefix,
            **{part: getattr(spec, part) for part in ("layers", *_SLICED)},
            "ffn_attr": spec.ffn_attr,
        }
    config = export_cls.config_class.from_dict(fields)
    # Same attention kernel as the supernet, so parity is kernel-for-kernel.
    config._attn_implementation = stock_config._attn_implementation
    dense = export_cls(config)

    param = next(model.parameters())
    dense.to(device=param.device, dtype=param.dtype)
    dense.load_state_dict(_dense_state_dict(model, dense, spec, layers), strict=True)
    return dense.train(model.training)


def _dense_state_dict(
    model: nn.Module, dense: nn.Module, spec: FamilySpec, layers: list[int]
) -> dict[str, torch.Tensor]:
    """The supernet's tensors renamed to the dense model's keys and sliced to its shapes."""
    state = supernet_state(model)
    src = model.state_dict()
    src_prefix = _module_path(model, state.layers) + "."
    dst_prefix = _module_path(dense, dense.base_model.get_submodule(spec.layers)) + "."
    sliced = {f"{getattr(spec, part)}.{p}" for part in _SLICED for p in ("weight", "bias")}
    out: dict[str, torch.Tensor] = {}
    for key, target in dense.state_dict().items():
        if key.startswith(dst_prefix):
            index, _, rest = key[len(dst_prefix) :].partition(".")
            tensor = src[f"{src_prefix}{layers[int(index)]}.{rest}"]
            if rest in sliced:
                # Subnets run the *leading* heads / neurons, so the leading block is the subnet.
                tensor = tensor[tuple(slice(0, n) for n in target.shape)]
        else:
            tensor = src[key]
        if tensor.shape != target.shape:
            raise ValueError(f"{key}: supernet tensor {tuple(tensor.shape)} != dense {tuple(target.shape)}")
        out[key] = tensor.contiguous()
    return out


# --------------------------------------------------------------------------- save / load


def save_exported(dense: PreTrainedModel, out_dir: str | os.PathLike[str], *, tokenizer: Any = None) -> Path:
    """Write `dense` (from `get_active_subnet`) as a self-contained model folder.

    Writes config.json, model.safetensors, the modeling file its `auto_map`
    names (`dense.save_pretrained` alone does that too) and, if given, the
    tokenizer. No ONNX, no parity checks, not atomic: `export_subnet` is the
    full, atomic export.

    Args:
        dense: a model returned by `get_active_subnet`.
        out_dir: folder to write into (created if needed).
        tokenizer: a transformers tokenizer saved beside the model.

    Returns:
        The folder.
    """
    out = Path(out_dir)
    config = getattr(dense, "config", None)
    model_type = getattr(config, "model_type", "")
    if not model_type.startswith(export_modeling.MODEL_TYPE_PREFIX):
        raise TypeError(f"{type(dense).__name__} is not an exported subnet: use get_active_subnet(model)")
    out.mkdir(parents=True, exist_ok=True)
    dense.save_pretrained(out)
    if tokenizer is not None:
        save_tokenizer(tokenizer, out)
    return out


def load_exported(path: str | os.PathLike[str]) -> PreTrainedModel:
    """Load an export folder with the package's own classes (no remote code runs).

    Args:
        path: a folder written by `export_subnet` or `save_exported`.

    Returns:
        The dense model (class from `config.json`'s `architectures`), in eval mode.

    Raises:
        FileNotFoundError: no config.json in the folder.
        ValueError: the folder is not a supernet export.
    """
    folder = Path(path)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not a model folder")
    fields = json.loads(config_file.read_text())
    model_type = str(fields.get("model_type", ""))
    family = model_type.removeprefix(export_modeling.MODEL_TYPE_PREFIX)
    layout = export_modeling.LAYOUTS.get(family)
    carried = fields.get("supernet_layout")
    prefix = (
        layout.prefix if layout is not None else carried.get("prefix") if isinstance(carried, dict) else None
    )
    if not model_type.startswith(export_modeling.MODEL_TYPE_PREFIX) or not prefix:
        raise ValueError(f"{folder} is not a supernet export (model_type '{model_type}')")
    # Export classes are module attributes; those of layout-matched families are built on first access.
    classes = [getattr(export_modeling, n, None) for n in fields.get("architectures") or []]
    classes = [c for c in classes if isinstance(c, type) and c.__name__ in _export_class_names()]
    cls = classes[0] if classes else export_modeling.export_class(getattr(transformers, f"{prefix}Model"))
    return cls.from_pretrained(folder).eval()


def _export_class_names() -> set[str]:
    return {cls.__name__ for cls in export_modeling.MODEL_CLASSES.values()}


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, kw_only=True)
class ExportReport:
    """What `export_subnet` wrote and checked; `to_dict()` is parity.json."""

    out_dir: Path
    """The export folder."""
    onnx_path: Path | None
    """model.onnx, or None with onnx=False."""
    int8_path: Path | None
    """model.int8.onnx, or None without int8."""
    parity_path: Path
    """parity.json."""
    family: str
    subnet: str
    """The subnet's name (`w0.50-d0.50`, `sub-<hash>`)."""
    spec: dict[str, Any]
    """`SubnetConfig.to_dict()`."""
    layers: list[int]
    """Supernet layer indices kept, in order."""
    heads_per_layer: list[int]
    ffn_per_layer: list[int]
    param_count: int
    """Parameters of the dense model (== supernet.count_params at the subnet)."""
    shapes: list[dict[str, Any]]
    """Per kept layer: its supernet index and the [out, in] shape of each resized linear."""
    inputs: dict[str, Any]
    """The ONNX input names and the (batch, seq) shapes parity was measured on."""
    parity_inputs: str
    """"given" (parity_batch) or "random" (random ids, ragged padding)."""
    max_abs_diff_torch_vs_supernet: float
    max_abs_diff_onnx_vs_torch: float | None
    max_abs_diff_int8_vs_fp32: float | None
    """Informational: dynamic int8 changes logits by design."""
    accuracy: dict[str, float] | None
    """dev_eval accuracy per artefact ("supernet", "torch", "onnx", "int8"), or None."""
    tolerances: dict[str, float]
    parity_ok: bool
    """Torch and ONNX differences within `tolerances`."""
    onnx_exporter: str | None
    """"torchscript" or "dynamo" (the fallback), None with onnx=False."""
    onnx_fallback_reason: str | None
    """Why the TorchScript exporter was not used, when it was not."""
    onnx_fused: dict[str, int]
    """Fused operators in model.onnx by type (see `write_onnx`); empty without ONNX."""
    onnx_fingerprint: str | None
    """`onnx_fingerprint` of model.onnx: equal for equal graphs, whatever their node names."""
    int8_fingerprint: str | None
    """`onnx_fingerprint` of model.int8.onnx, None without int8."""
    opset: int
    """The ONNX file's opset (the requested one unless the exporter could not convert to it)."""
    paths: dict[str, str] = field(default_factory=dict)
    """File names inside out_dir, by role."""
    files: list[str] = field(default_factory=list)
    """Every file the export wrote in out_dir, parity.json included (export.py's summary.json is
    written after): what `export.py --overwrite` may replace, and nothing else."""

    def to_dict(self) -> dict[str, Any]:
        """The parity.json content: every field except the absolute paths."""
        out = asdict(self)
        for key in ("out_dir", "onnx_path", "int8_path", "parity_path"):
            out.pop(key)
        return out


# --------------------------------------------------------------------------- helpers


def _refuse_non_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"{out} already exists and is not empty: pass a new --out or remove it (export never overwrites files)"
        )


def _in_space(arch: Arch, resolved: ResolvedSubnet, space: SearchSpace) -> bool:
    """Whether every kept layer's widths and the layer list are ones `space` trains."""
    head_counts = {round(arch.num_heads * w) for w in space.width_mults}
    ffn_counts = {round(arch.ffn_dim * w) for w in space.width_mults}
    depths = set()
    for d in space.depth_mults:
        try:
            depths.add(tuple(kept_layers(arch.num_layers, d)))
        except ValueError:  # a multiplier too small for this depth trains nothing
            continue
    return resolved.layers in depths and all(
        resolved.heads[i] in head_counts and resolved.ffn[i] in ffn_counts for i in resolved.layers
    )


def _input_names(config: Any, tokenizer: Any) -> list[str]:
    names = ["input_ids", "attention_mask"]
    # Only families with several segment types use token_type_ids (RoBERTa's
    # single type and DistilBERT's none are left out, as their tokenizers do).
    uses_segments = int(getattr(config, "type_vocab_size", 0) or 0) > 1
    if uses_segments and (
        tokenizer is None or "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    ):
        names.append("token_type_ids")
    return names


def _random_batch(config: Any, names: list[str], batch: int, seq: int, seed: int) -> dict[str, torch.Tensor]:
    """Random ids with ragged padding: row i keeps seq - 2*i tokens (at least 1)."""
    g = torch.Generator().manual_seed(seed)
    low = min(5, config.vocab_size - 1)
    out = {"input_ids": torch.randint(low, config.vocab_size, (batch, seq), generator=g)}
    mask = torch.ones(batch, seq, dtype=torch.long)
    for i in range(batch):
        mask[i, max(1, seq - 2 * i) :] = 0
    out["attention_mask"] = mask
    if "token_type_ids" in names:
        out["token_type_ids"] = (torch.arange(seq) >= seq // 2).long().expand(batch, seq) * mask
    return out


def _select(batch: Batch, names: list[str]) -> dict[str, torch.Tensor]:
    out = {k: torch.as_tensor(batch[k]) for k in names if k in batch}
    if "input_ids" not in out:
        raise KeyError(f"the batch needs input_ids; it has {sorted(batch)}")
    if "attention_mask" not in out:
        out["attention_mask"] = torch.ones_like(out["input_ids"])
    if "token_type_ids" in names and "token_type_ids" not in out:
        out["token_type_ids"] = torch.zeros_like(out["input_ids"])
    return out


_OUTPUT_FORMS: tuple[tuple[str, ...], ...] = (
    ("logits",),
    ("start_logits", "end_logits"),
    ("last_hidden_state",),
)
"""The outputs a model's graph returns, by head: classifiers, question answering, a bare encoder."""


def _output_names(output: Any) -> tuple[str, ...]:
    """The names of the tensors `output` is exported as (the ONNX graph's outputs, in order)."""
    for names in _OUTPUT_FORMS:
        if all(isinstance(getattr(output, n, None), torch.Tensor) for n in names):
            return names
    raise NotImplementedError(
        f"{type(output).__name__} has neither logits, start/end logits nor last_hidden_state"
    )


def _outputs(output: Any) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(output, n) for n in _output_names(output))


def _stack(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """One tensor to compare and score: the only output, or several stacked on a last axis
    (question answering's start and end logits -> ``[batch, seq, 2]``, as `supernet.tasks.output_logits`)."""
    return outputs[0] if len(outputs) == 1 else torch.stack(list(outputs), dim=-1)


def _main_output(output: Any) -> torch.Tensor:
    return _stack(_outputs(output))


def _torch_predict(model: nn.Module, names: list[str]) -> Predict:
    device = next(model.parameters()).device

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        inputs = {k: v.to(device) for k, v in _select(batch, names).items()}
        return _main_output(model(**inputs)).float().cpu()

    return predict


def onnx_predict(path: str | os.PathLike[str]) -> Predict:
    """A batch's main output (`_main_output`'s form) from the ONNX graph at `path`, on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def predict(batch: Batch) -> torch.Tensor:
        feeds = {k: v.cpu().numpy().astype("int64") for k, v in _select(batch, names).items()}
        return _stack([torch.from_numpy(out).float() for out in session.run(None, feeds)])

    return predict


def score(
    predict: Predict,
    loader: Iterable[Mapping[str, Any]],
    model_config: Any,
    *,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, float]:
    """The task's metrics of `predict`'s outputs over `loader`, as `trainer.evaluate_subnet` scores
    a subnet (the kind is read from `model_config`); "n" is the number of examples.

    Args:
        predict: a batch's main output, e.g. `onnx_predict` of an exported graph.
        loader: evaluation batches with their labels (`trainer.eval_dataloader`).
        model_config: the model's config (its head says the task kind).
        on_batch: called after each batch (a progress bar's update).
    """
    kind = task_kind_of_config(model_config)
    preds, labels = [], []
    for batch in loader:
        preds.append(kind.predictions(predict(model_inputs(batch))))
        labels.append(kind.references(batch))
        if on_batch is not None:
            on_batch()
    return {"n": sum(len(y) for y in labels), **kind.metrics(preds, labels, model_config)}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise ValueError(f"output shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).abs().max())


class _OnnxModule(nn.Module):
    """Positional tensors in, the head's output tensors out (`_OUTPUT_FORMS`): the graph ONNX sees."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return _outputs(self.model(**inputs))


@dataclass(frozen=True, kw_only=True)
class OnnxGraph:
    """What `write_onnx` wrote."""

    path: Path
    """The .onnx file (weights inline)."""
    exporter: str
    """"torchscript" (the form onnxruntime's BERT fusions recognise) or "dynamo" (the fallback)."""
    fallback_reason: str | None
    """Why the TorchScript exporter was not used, when it was not."""
    fused: dict[str, int]
    """Fused operators onnxruntime's transformer optimizer produced (Attention, BiasGelu, ...), by
    type (`LayerNormalization` counts every LayerNorm: none is fused with its residual); empty when
    not optimised."""


def write_onnx(
    dense: nn.Module,
    path: str | os.PathLike[str],
    *,
    names: list[str],
    example: Mapping[str, torch.Tensor],
    opset: int = DEFAULT_OPSET,
    optimize: bool = True,
) -> OnnxGraph:
    """Export a dense model (`get_active_subnet`) to ONNX, optimised for inference.

    The graph is traced with eager attention (explicit MatMul / Softmax, which
    computes what SDPA computes) by the TorchScript exporter, whose patterns
    onnxruntime's transformer optimizer (`onnxruntime.transformers`, model type
    "bert") fuses into single kernels: Attention and BiasGelu; each residual
    LayerNorm stays a Sum and ONNX's LayerNormalization rather than onnxruntime's
    SkipLayerNormalization, a kernel ~9 times slower on CPU from onnxruntime 1.30
    (`_unfuse_skip_layer_norms`).
    Per-layer subnets have a different head
    count in each layer; the fusion reads each layer's from its query weight
    (`attention_head_size` is fixed). Batch and sequence axes are dynamic. When
    the TorchScript exporter fails, the dynamo exporter is used (its graph
    fuses less). This one function writes every ONNX graph the package ships
    or measures, so `search.py --backend onnxruntime` times the file
    `export.py` writes.

    Args:
        dense: the dense model (any attention implementation; restored after).
        path: the .onnx file to write.
        names: input names, in order (see `_input_names`).
        example: one input per name, to trace with.
        opset: ONNX opset.
        optimize: run the fusions (False writes the plain exported graph).

    Returns:
        The exporter used and the fusions applied.
    """
    path = Path(path)
    previous = dense.config._attn_implementation  # type: ignore[union-attr]
    dense.set_attn_implementation("eager")  # type: ignore[operator]
    try:
        exporter, reason = _export_onnx(dense, path, names, dict(example), opset)
    finally:
        dense.set_attn_implementation(previous)  # type: ignore[operator]
    fused: dict[str, int] = {}
    if optimize:
        fused = _optimize_onnx(path, head_size=_head_size(dense.config))
    return OnnxGraph(path=path, exporter=exporter, fallback_reason=reason, fused=fused)


def _head_size(config: Any) -> int:
    size = getattr(config, "attention_head_size", None)
    if size is None:  # a stock config (not an export): heads split the hidden size evenly
        hidden = getattr(config, "hidden_size", None) or config.dim
        size = hidden // (getattr(config, "num_attention_heads", None) or config.n_heads)
    return int(size)


def _optimize_onnx(path: Path, *, head_size: int) -> dict[str, int]:
    """Fuse `path` in place with onnxruntime's BERT optimizer; returns the fused operator counts."""
    import onnx
    from onnxruntime.transformers.fusion_attention import FusionAttention
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.onnx_model_bert import BertOnnxModel

    class PerLayerAttention(FusionAttention):
        """Reads each layer's head count from its query projection's width."""

        def get_num_heads_and_hidden_size(self, reshape_q: Any) -> tuple[int, int]:
            # Reshape(Add(MatMul(x, Wq), bq)), the Add's operands in either order:
            # Wq is [hidden_in, heads * head_size].
            add = self.model.get_parent(reshape_q, 0)
            parents = [] if add is None else [self.model.get_parent(add, i) for i in range(len(add.input))]
            for node in [add, *parents]:
                if node is not None and node.op_type == "MatMul":
                    weight = self.model.get_initializer(node.input[1])
                    if weight is not None and len(weight.dims) == 2 and weight.dims[1] % head_size == 0:
                        # (heads, their width): the Attention op checks width % heads == 0.
                        return int(weight.dims[1]) // head_size, int(weight.dims[1])
            return 0, 0  # not a pattern this knows: the fusion skips this layer

    model = BertOnnxModel(onnx.load(str(path)), num_heads=0, hidden_size=0)
    model.attention_fusion = PerLayerAttention(model, 0, 0, model.attention_mask)
    # The optimizer logs each pattern it did not match at WARNING; the counts are the report.
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        options = FusionOptions("bert")
        # EmbedLayerNormalization takes ~104 us at [1, 128, 384] on one thread (onnxruntime 1.32),
        # the Gathers, Sums and LayerNormalization it replaces ~58 us.
        options.enable_embed_layer_norm = False
        model.optimize(options)
        model.topological_sort()
        fused = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    finally:
        quiet.setLevel(level)
    rewritten = _unfuse_skip_layer_norms(model.model)
    if rewritten:
        kept = fused.pop("SkipLayerNormalization", 0) - rewritten  # those whose statistics are used
        if kept > 0:
            fused["SkipLayerNormalization"] = kept
        fused["LayerNormalization"] = fused.get("LayerNormalization", 0) + rewritten
    model.save_model_to_file(str(path))
    return fused


ONNX_GRAPH_REVISION = 3
"""Bumped whenever `write_onnx` writes a different graph for the same model (2: LayerNorms as
primitives; 3: SkipLayerNormalization as Sum + LayerNormalization). onnxruntime latencies cached
under another revision are measured again."""

INT8_GRAPH_REVISION = 2
"""Bumped whenever `write_int8` writes a different int8 graph from the same FP32 one (2: each GELU's
bias added by the quantized MatMul before it, `_bias_out_of_gelus`). int8 latencies, int8 scores
and int8 profile kits of another revision are measured (or refused) again."""


def graph_revisions(*, int8: bool) -> dict[str, int]:
    """The revisions a record of onnxruntime figures stamps: the FP32 graph's, and the int8 one's."""
    return {"onnx_graph": ONNX_GRAPH_REVISION} | ({"int8_graph": INT8_GRAPH_REVISION} if int8 else {})


def graph_change(recorded: Mapping[str, Any], *, int8: bool) -> str | None:
    """How the graphs a record (cache, kit, table) stamped differ from what is written now, or None.

    e.g. "ONNX graph revision 2, now 3"; a record from before a revision was stamped holds revision 1.
    """
    for key, now in graph_revisions(int8=int8).items():
        then = recorded.get(key, 1)
        if then != now:
            return f"{'ONNX' if key == 'onnx_graph' else 'int8'} graph revision {then}, now {now}"
    return None


def _unfuse_skip_layer_norms(model: Any) -> int:
    """Rewrite every SkipLayerNormalization as [bias Add,] Sum(input, skip), LayerNormalization.

    From onnxruntime 1.30 the contrib SkipLayerNormalization CPU kernel takes ~490 us for one
    128 x 768 tensor on one thread while ONNX's LayerNormalization kernel takes ~52 us and an
    elementwise op over the same tensor ~20 us (1.27-1.29 had it the other way round; both
    ~110 us before; BENCHMARKS.md "Exported models"). The residual is a Sum, not an Add, so that
    onnxruntime's SkipLayerNormFusion does not put the slow kernel back; the bias stays an Add,
    which the (int8) MatMul before it absorbs. A node whose mean / inverse-std outputs are used
    keeps its kernel. Returns how many nodes were rewritten.
    """
    from onnx import helper

    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    nodes: list[Any] = []
    count = 0
    for node in graph.node:
        inputs = list(node.input) + [""] * 5
        outputs = list(node.output) + [""] * 4
        skip = node.op_type == "SkipLayerNormalization" and node.domain == "com.microsoft"
        if not skip or any(o and o in used for o in outputs[1:3]):
            nodes.append(node)
            continue
        # (input, skip, gamma, beta, bias) -> (out, mean, inv_std, input + skip + bias).
        p = f"skip_layer_norm/{count}"
        x, new = inputs[0], []
        if inputs[4]:
            new.append(helper.make_node("Add", [x, inputs[4]], [f"{p}/biased"]))
            x = f"{p}/biased"
        total = outputs[3] or f"{p}/sum"
        new.append(helper.make_node("Sum", [x, inputs[1]], [total]))
        epsilon = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
        norm_inputs = [total, inputs[2]] + ([inputs[3]] if inputs[3] else [])
        new.append(
            helper.make_node("LayerNormalization", norm_inputs, [outputs[0]], axis=-1, epsilon=epsilon)
        )
        for i, n in enumerate(new):
            n.name = f"{p}/{i}"
        nodes += new
        count += 1
    # A plain LayerNormalization after an Add (the embeddings' sum) is fused the same way.
    producers = {o: n for n in nodes for o in n.output}
    for node in nodes:
        parent = producers.get(node.input[0]) if node.op_type == "LayerNormalization" else None
        if parent is not None and parent.op_type == "Add" and parent.domain in ("", "ai.onnx"):
            parent.op_type = "Sum"
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
    return count


def _export_onnx(
    dense: nn.Module, path: Path, names: list[str], example: dict[str, torch.Tensor], opset: int
) -> tuple[str, str | None]:
    """Write `path`; returns (exporter used, why TorchScript was not used or None)."""
    wrapper = _OnnxModule(dense).eval()
    args = tuple(example[n] for n in names)
    with torch.no_grad():
        sample = dense(**example)
    outputs = _output_names(sample)
    common = dict(input_names=names, output_names=list(outputs), opset_version=opset)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    for output in outputs:
        # Per-token outputs (token logits, start/end logits, hidden states) vary with the sequence.
        per_token = getattr(sample, output).dim() == 3 or output in ("start_logits", "end_logits")
        axes[output] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    try:
        # The TorchScript exporter warns about its deprecation; the result is verified by the caller.
        with warnings.catch_warnings(), torch.no_grad(), _quiet_stdout():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, str(path), dynamo=False, dynamic_axes=axes, **common)
        return "torchscript", None
    except Exception as err:  # noqa: BLE001 - any failure falls back to dynamo, the reason is reported
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"[:300]
        path.unlink(missing_ok=True)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    shapes = tuple({0: batch, 1: seq} for _ in names)
    # The exporter warns about internals (pytree deprecations, opset conversion).
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper, args, dynamo=True, dynamic_shapes=shapes, verbose=False, **common
        )
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise RuntimeError(f"neither ONNX exporter produced a graph (TorchScript: {reason})")
    # One self-contained file (weights inline): fine below ONNX's 2 GB limit.
    program.save(str(path), external_data=False)
    return "dynamo", reason


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence the process's standard output (file descriptor 1) for the block.

    When the TorchScript exporter fails, it prints the whole TorchScript graph (hundreds of lines)
    from C++, as its ONNX log is left switched on; the failure's reason is reported instead.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class _DropRecord(logging.Filter):
    """Drop log records whose message starts with one of `prefixes`."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def onnx_opsets() -> tuple[int, int]:
    """The lowest and highest ONNX opset this torch's exporters write."""
    from torch.onnx import _constants  # no public name for the range; both exist since torch 1.x

    return int(_constants.ONNX_MIN_OPSET), int(_constants.ONNX_MAX_OPSET)


def _file_opset(path: Path) -> int:
    """The default-domain opset the file really has (the exporter may not reach the requested one)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _quantize_int8(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    # The dynamo exporter's cached value_info trips the quantizer's second shape
    # inference ("Inferred shape and existing shape differ"); it is only a
    # cache, so drop it and let the quantizer infer shapes afresh.
    del model.graph.value_info[:]
    _bias_out_of_gelus(model)
    # The quantizer advises static-quantization pre-processing on the root logger (dynamic int8 needs
    # none), and on graphs of an old opset (--opset 9) logs each tensor whose type its shape
    # inference missed, 24 lines for a small BERT: it quantizes them all the same.
    quiet = _DropRecord("Please consider to run pre-processing", "Failed to infer data type of tensor")
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            model_input=model,
            model_output=str(dst),
            weight_type=QuantType.QInt8,
            # onnx's shape inference stops at onnxruntime's fused ops (com.microsoft
            # domain); every float tensor in these graphs is FP32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(quiet)


def _bias_out_of_gelus(model: Any) -> int:
    """Rewrite each biased GELU (BiasGelu, FastGelu with a bias) as Add(x, bias) and the plain GELU.

    The FFN's first linear comes out of the BERT optimizer as MatMul + BiasGelu. In the int8 graph
    onnxruntime fuses that MatMul into a DynamicQuantizeMatMul, which adds a bias for free as it
    scales the int32 product back to float32, but only an `Add` right after it: BiasGelu keeps the
    bias, and adds it in a pass of its own over the FFN's widest tensor. Once written as an Add, the
    bias moves into the MatMul and a plain `Gelu` remains (same arithmetic, x + bias then the GELU;
    BiasGelu ~44 us against Gelu ~30 us at [1, 128, 384], one thread). A GELU after a MatMul left
    in float32 is fused back into BiasGelu by onnxruntime. Returns how many nodes were rewritten.
    """
    from onnx import helper

    nodes: list[Any] = []
    count = 0
    for node in model.graph.node:
        biased = node.domain == "com.microsoft" and (
            node.op_type == "BiasGelu" or (node.op_type == "FastGelu" and len(node.input) > 1)
        )
        if not biased or not node.input[1]:
            nodes.append(node)
            continue
        summed = f"gelu_bias/{count}"
        gelu = "Gelu" if node.op_type == "BiasGelu" else "FastGelu"
        nodes += [
            helper.make_node("Add", list(node.input[:2]), [summed], name=f"{summed}/add"),
            helper.make_node(
                gelu, [summed], list(node.output), name=f"{summed}/gelu", domain="com.microsoft"
            ),
        ]
        count += 1
    if count:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return count


def write_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Quantize an ONNX graph (from `write_onnx`) to dynamic int8 weights, as `export_subnet` does.

    Args:
        src: the FP32 graph.
        dst: the int8 file to write.
    """
    _quantize_int8(Path(src), Path(dst))


def onnx_fingerprint(path: str | os.PathLike[str]) -> str:
    """A SHA-256 of what an ONNX graph computes, blind to node and tensor names.

    Hashes, in graph order, every node's op type, domain and attributes (and
    how its inputs connect, by position of the producing node), every weight's
    shape, type and bytes, and the opsets. Two exports of the same subnet by
    the same code give the same fingerprint.

    Args:
        path: the .onnx file.
    """
    import hashlib

    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    h = hashlib.sha256()
    for o in sorted((o.domain, o.version) for o in model.opset_import):
        h.update(repr(o).encode())
    producers: dict[str, str] = {i.name: f"in{k}" for k, i in enumerate(graph.input)}
    for k, init in enumerate(graph.initializer):
        producers[init.name] = f"w{k}"
        h.update(repr((list(init.dims), init.data_type)).encode())
        h.update(onnx.numpy_helper.to_array(init).tobytes())
    for k, node in enumerate(graph.node):
        for j, out in enumerate(node.output):
            producers[out] = f"n{k}.{j}"
        attrs = [(a.name, onnx.helper.get_attribute_value(a)) for a in node.attribute]
        # A subgraph or tensor attribute prints its names too; weights and constants stay in.
        inputs = [producers.get(i, "" if not i else "?") for i in node.input]
        h.update(repr((node.op_type, node.domain, inputs, sorted(attrs, key=lambda a: a[0]))).encode())
    return h.hexdigest()


def _layer_shapes(dense: nn.Module, spec: FamilySpec, layers: list[int]) -> list[dict[str, Any]]:
    out = []
    for index, layer in zip(layers, dense.base_model.get_submodule(spec.layers), strict=True):
        entry: dict[str, Any] = {"layer": index}
        for part in _SLICED:
            lin = layer.get_submodule(getattr(spec, part))
            entry[part] = [lin.out_features, lin.in_features]
        out.append(entry)
    return out


def _second_shape(batch: int, seq: int, max_seq: int) -> tuple[int, int]:
    """A (batch, seq) differing from the first in both axes, within the position limit."""
    seq2 = seq // 2 + 1 if seq >= 4 else seq + 2
    return batch + 2, max(2, min(seq2, max_seq))


def _commit(tmp: Path, out: Path) -> None:
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()  # an empty target is fine; os.replace of a dir onto a dir is not portable
    try:
        os.replace(tmp, out)
    except OSError as err:  # someone wrote out_dir meanwhile: keep theirs
        raise FileExistsError(
            f"{out} appeared while exporting: pass a new --out or remove it (export never overwrites files)"
        ) from err


# --------------------------------------------------------------------------- export


def export_subnet(
    model: nn.Module,
    cfg: SubnetConfig,
    out_dir: str | os.PathLike[str],
    *,
    tokenizer: Any = None,
    onnx: bool = True,
    int8: bool = False,
    opset: int = DEFAULT_OPSET,
    parity_batch: Batch | None = None,
    dev_eval: Callable[[Predict], float] | None = None,
    space: SearchSpace | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export subnet `cfg` of a supernet as a dense model folder, checked for parity.

    The folder is built in `<out_dir>.tmp-<pid>` and moved into place only once
    complete, so `out_dir` is either absent or a finished export. The
    supernet's active subnet and train/eval mode are restored afterwards.

    Args:
        model: a converted supernet (any active subnet; `cfg` is activated).
        cfg: the subnet to export.
        out_dir: the export folder; must not exist or be empty.
        tokenizer: saved beside the model (needed for `pipeline(...)`).
        onnx: also write model.onnx and check it with ONNX Runtime on two shapes.
        int8: also write model.int8.onnx (dynamic quantization, int8 weights); needs onnx.
        opset: ONNX opset.
        parity_batch: tokenized inputs (input_ids, attention_mask, ...) to measure
            parity on; default a random batch with ragged padding.
        dev_eval: called once per artefact with a predict function
            (batch dict -> logits tensor); returns an accuracy recorded in parity.json.
        on_step: called with what is written or checked next ("exporting model.onnx", ...): at
            BERT-base size the files take a minute before the first artefact is scored.
        space: the search space the supernet was trained on; a subnet outside it
            triggers a warning (it is exported anyway).

    Returns:
        The report, also written as parity.json.

    Raises:
        FileExistsError: out_dir exists and is not empty (nothing is written).
        ValueError: int8 without onnx, a multiple-choice model (3-D inputs), or with onnx a model
            whose weights are not float32 (the graph is float32).
        RuntimeError: the dense model does not reproduce the supernet within TORCH_TOL.
    """
    out = Path(out_dir).absolute()  # absolute, so "." still has a name for the temporary sibling
    _refuse_non_empty(out)
    if int8 and not onnx:
        raise ValueError("int8=True quantizes the ONNX model: it needs onnx=True")
    floating = next((p for p in model.parameters() if p.is_floating_point()), None)
    if onnx and floating is not None and floating.dtype != torch.float32:
        # onnxruntime's CPU kernels have no bfloat16 Add: it failed after the whole export, deep inside.
        kind = str(floating.dtype).removeprefix("torch.")
        raise ValueError(
            f"the model is in {kind} and the ONNX graph is float32: export model.float(), "
            f"or pass onnx=False for a {kind} dense model only"
        )
    if type(model).__name__.endswith("ForMultipleChoice"):
        # Its inputs are [batch, choices, sequence]: the parity batches and the ONNX axes are 2-D.
        raise ValueError(
            f"export_subnet does not export {type(model).__name__} (inputs of [batch, choices, sequence]); "
            "get_active_subnet(model) gives its dense model to save_pretrained"
        )
    state = supernet_state(model)
    resolved = resolve_subnet(state.arch, cfg)
    if space is not None and not _in_space(state.arch, resolved, space):
        warnings.warn(
            f"subnet {cfg.name} is outside the trained search space (widths {list(space.width_mults)}, "
            f"depths {list(space.depth_mults)}): exporting it anyway, check its accuracy",
            stacklevel=2,
        )

    # Hidden, so that the sweep of killed exports' folders below can never take a folder of the user's.
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():  # left by an earlier crashed export in a process with our pid
        shutil.rmtree(tmp)
    for stale in remove_stale_temporaries(out.parent, [f".{glob.escape(out.name)}.tmp-*"]):
        warnings.warn(f"removed {stale}, the unfinished folder of an export that was killed", stacklevel=2)
    previous, was_training = state.active, model.training
    try:
        model.eval()
        set_active_subnet(model, cfg)
        report = _export_into(
            model,
            cfg,
            resolved,
            out,
            tmp,
            tokenizer,
            onnx,
            int8,
            opset,
            parity_batch,
            dev_eval,
            on_step or (lambda step: None),
        )
        share_files(tmp)
        _commit(tmp, out)
        return report
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        set_active_subnet(model, MAX_NET if previous is None else previous)
        model.train(was_training)
        # The exporters leave reference cycles that hold the dense model and the graph until a full
        # collection, which allocation counts seldom trigger: search.py --backend onnxruntime grew by
        # 1.2-1.8 GB per BERT-base graph (12.4 GB peak) and ~400 MB per MiniLM one.
        gc.collect()


def export_graph(
    model: nn.Module,
    cfg: SubnetConfig,
    folder: str | os.PathLike[str],
    *,
    tokenizer: Any = None,
    int8: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export `cfg` exactly as `export.py` does (same graph, optimisation and quantisation); the graph.

    What `search.py --backend onnxruntime` times and what a device profile kit holds.

    Args:
        model: the supernet.
        cfg: the subnet.
        folder: a new folder to export into.
        tokenizer: the run's tokenizer (it decides whether token_type_ids is an input, as in export.py).
        int8: return the int8 graph instead of the FP32 one.
        opset: ONNX opset.

    Returns:
        model.onnx, or model.int8.onnx with `int8`.
    """
    report = export_subnet(model, cfg, folder, tokenizer=tokenizer, onnx=True, int8=int8, opset=opset)
    path = report.int8_path if int8 else report.onnx_path
    assert path is not None  # onnx=True
    return path


def _export_into(
    model: nn.Module,
    cfg: SubnetConfig,
    resolved: ResolvedSubnet,
    out: Path,
    tmp: Path,
    tokenizer: Any,
    onnx: bool,
    int8: bool,
    opset: int,
    parity_batch: Batch | None,
    dev_eval: Callable[[Predict], float] | None,
    on_step: Callable[[str], None],
) -> ExportReport:
    state = supernet_state(model)
    spec = state.spec
    layers = list(resolved.layers)
    dense = get_active_subnet(model).eval()
    config = dense.config
    names = _input_names(config, tokenizer)

    if parity_batch is not None:
        first = _select(parity_batch, names)
        given = "given"
    else:
        first = _random_batch(config, names, batch=3, seq=16, seed=0)
        given = "random"
    b, s = first["input_ids"].shape
    # RoBERTa-style positions start after the padding index, so stay 2 short of the table.
    b2, s2 = _second_shape(int(b), int(s), int(config.max_position_embeddings) - 2)
    second = _random_batch(config, names, batch=b2, seq=s2, seed=1)

    sup, ref = _torch_predict(model, names), _torch_predict(dense, names)
    torch_diff = max(_max_diff(sup(x), ref(x)) for x in (first, second))
    if not torch_diff <= TORCH_TOL:
        raise RuntimeError(
            f"dense export differs from the supernet at {cfg.name} by {torch_diff:.3g} > {TORCH_TOL}: not written"
        )
    if next(dense.parameters()).device.type != "cpu":
        # Compared on the supernet's device above; ONNX export and ORT checks run on CPU.
        dense = dense.cpu()
        ref = _torch_predict(dense, names)

    on_step("writing model.safetensors")
    save_exported(dense, tmp, tokenizer=tokenizer)
    paths = {"model": "model.safetensors", "config": "config.json", "modeling": MODELING_FILE}
    onnx_diff = int8_diff = None
    exporter = fallback = None
    fused: dict[str, int] = {}
    file_opset = opset
    predictors: dict[str, Predict] = {"supernet": sup, "torch": ref}
    if onnx:
        onnx_file = tmp / "model.onnx"
        # Traced on a fixed random batch, not parity_batch: the graph then depends only on the
        # subnet, so search.py (which has no parity batch) times the very graph written here.
        trace = _random_batch(config, names, batch=3, seq=16, seed=0)
        on_step("exporting and optimising model.onnx")
        graph = write_onnx(dense, onnx_file, names=names, example=trace, opset=opset)
        exporter, fallback, fused = graph.exporter, graph.fallback_reason, graph.fused
        run = onnx_predict(onnx_file)
        onnx_diff = max(_max_diff(run(x), ref(x)) for x in (first, second))
        if not onnx_diff <= ONNX_TOL:
            warnings.warn(
                f"ONNX logits differ from PyTorch by {onnx_diff:.3g} > {ONNX_TOL} (see parity.json)",
                stacklevel=3,
            )
        predictors["onnx"] = run
        file_opset = _file_opset(onnx_file)
        if fallback is not None:
            reached = "" if file_opset == opset else f", at opset {file_opset} instead of {opset}"
            warnings.warn(
                f"the TorchScript exporter failed ({fallback.split('. ')[0]}); model.onnx was written by the dynamo "
                f"exporter{reached}, whose graph onnxruntime fuses less (see parity.json)",
                stacklevel=3,
            )
        paths["onnx"] = onnx_file.name
        if int8:
            int8_file = tmp / "model.int8.onnx"
            on_step("quantizing model.int8.onnx")
            _quantize_int8(onnx_file, int8_file)
            run8 = onnx_predict(int8_file)
            int8_diff = max(_max_diff(run8(x), run(x)) for x in (first, second))
            if not math.isfinite(int8_diff):
                raise RuntimeError("the int8 model produced non-finite logits")
            predictors["int8"] = run8
            paths["int8"] = int8_file.name

    accuracy = None
    if dev_eval is not None:
        accuracy = {name: float(dev_eval(predict)) for name, predict in predictors.items()}

    param_count = sum(p.numel() for p in dense.parameters())
    expected = count_params(model, cfg)
    if param_count != expected:  # pragma: no cover - guarded by tests
        raise RuntimeError(f"dense model has {param_count} parameters, the cost model says {expected}")

    paths["parity"] = "parity.json"
    report = ExportReport(
        out_dir=out,
        onnx_path=out / "model.onnx" if onnx else None,
        int8_path=out / "model.int8.onnx" if int8 else None,
        parity_path=out / "parity.json",
        family=spec.name,
        subnet=cfg.name,
        spec=cfg.to_dict(),
        layers=layers,
        heads_per_layer=[resolved.heads[i] for i in layers],
        ffn_per_layer=[resolved.ffn[i] for i in layers],
        param_count=param_count,
        shapes=_layer_shapes(dense, spec, layers),
        inputs={"names": names, "shapes": [[int(b), int(s)], [b2, s2]]},
        parity_inputs=given,
        max_abs_diff_torch_vs_supernet=torch_diff,
        max_abs_diff_onnx_vs_torch=onnx_diff,
        max_abs_diff_int8_vs_fp32=int8_diff,
        accuracy=accuracy,
        tolerances={"torch_vs_supernet": TORCH_TOL, "onnx_vs_torch": ONNX_TOL},
        parity_ok=torch_diff <= TORCH_TOL and (onnx_diff is None or onnx_diff <= ONNX_TOL),
        onnx_exporter=exporter,
        onnx_fallback_reason=fallback,
        onnx_fused=fused,
        onnx_fingerprint=onnx_fingerprint(onnx_file) if onnx else None,
        int8_fingerprint=onnx_fingerprint(int8_file) if int8 else None,
        opset=file_opset,
        paths=paths,
        files=sorted({p.name for p in tmp.iterdir()} | {"parity.json"}),
    )
    (tmp / "parity.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
