"""Export: dense subnet parity, real shapes, folder round trips (with and without remote code), ONNX."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers
from conftest import FAMILY_NAMES, REAL_SENTENCES, DomainBertConfig, tiny_batch, tiny_config, tiny_model
from reference import reference_subnet

import supernet as sn
from supernet import export_modeling
from supernet.export import (
    MODELING_FILE,
    ExportReport,
    export_subnet,
    get_active_subnet,
    load_exported,
    onnx_fingerprint,
    save_exported,
    write_int8,
    write_onnx,
)

TORCH_TOL = 1e-6
ONNX_TOL = 1e-6
# Dynamic int8 against the FP32 graph, as a share of the largest |logit|. Measured: up to 1.2% on
# the tiny random models; up to 28% on MiniLM's w0.50-d0.50 under a random head, whose logits (~0.017)
# are mostly the same for every sentence (the sentence encoder's pooler was never trained), so that
# int8's error is large against them. A graph with a wrong scale, zero point or weight layout is off
# by about the logits' own size.
INT8_REL_TOL = 0.05
INT8_REL_TOL_MINILM = 0.5


def _assert_int8_close(q: torch.Tensor, want: torch.Tensor, rel: float = INT8_REL_TOL) -> None:
    assert q.shape == want.shape
    err, scale = _max_diff(q, want), want.abs().max().item()
    assert err <= rel * scale, (err, scale)


UNIFORM = sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)
# Tiny models have 4 layers of 4 heads (size 8) and 48 FFN neurons; layer 1 is dropped.
HETERO = sn.SubnetConfig(heads=(1, 4, 2, 3), ffn=(5, 48, 20, 1), layers=(0, 2, 3))
SUBNETS = {"uniform": UNIFORM, "hetero": HETERO, "max": sn.MAX_NET}

PARITY_KEYS = {
    "family",
    "subnet",
    "spec",
    "layers",
    "heads_per_layer",
    "ffn_per_layer",
    "param_count",
    "shapes",
    "inputs",
    "parity_inputs",
    "max_abs_diff_torch_vs_supernet",
    "max_abs_diff_onnx_vs_torch",
    "max_abs_diff_int8_vs_fp32",
    "accuracy",
    "tolerances",
    "parity_ok",
    "onnx_exporter",
    "onnx_fallback_reason",
    "onnx_fused",
    "onnx_fingerprint",
    "int8_fingerprint",
    "opset",
    "paths",
    "files",
}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def _logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def _supernet(family: str, head: str = "seq-cls", cfg: sn.SubnetConfig = HETERO):
    stock = tiny_model(family, head)
    model = sn.to_supernet(copy.deepcopy(stock))
    sn.set_active_subnet(model, cfg)
    return stock, model


# --------------------------------------------------------------------------- dense model


def test_layouts_mirror_the_family_tables() -> None:
    # export_modeling is copied into export folders, so it cannot import the
    # family tables; this keeps its copy honest.
    families = {spec.name: spec for spec in sn.FAMILIES.values()}
    assert set(export_modeling.LAYOUTS) == set(families)
    for name, layout in export_modeling.LAYOUTS.items():
        spec = families[name]
        for part in ("layers", "query", "key", "value", "attn_out", "ffn_in", "ffn_out"):
            assert getattr(layout, part) == getattr(spec, part), (name, part)
        assert layout.ffn_attr == spec.ffn_attr


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("which", list(SUBNETS))
def test_dense_equals_supernet_and_reference(family: str, which: str) -> None:
    cfg = SUBNETS[which]
    stock, model = _supernet(family, cfg=cfg)
    dense = get_active_subnet(model)
    batch = tiny_batch()
    assert _max_diff(_logits(dense, batch), _logits(model, batch)) <= TORCH_TOL
    # ...and equal to the independent reference built from the stock model.
    r = sn.resolve_subnet(sn.supernet_state(model).arch, cfg)
    ref = reference_subnet(stock, list(r.heads), list(r.ffn), list(r.layers))
    assert _max_diff(_logits(dense, batch), _logits(ref, batch)) <= TORCH_TOL
    assert {k: v.shape for k, v in dense.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    assert sum(p.numel() for p in dense.parameters()) == sn.count_params(model, cfg)
    assert isinstance(dense, type(stock))  # a subclass of the stock class
    assert not any(isinstance(m, sn.ElasticLinear) for m in dense.modules())


def test_exact_layer_weight_shapes_of_a_heterogeneous_subnet() -> None:
    _, model = _supernet("bert", cfg=HETERO)
    dense = get_active_subnet(model)
    got = [
        (k.removeprefix("bert.encoder.layer."), tuple(v.shape))
        for k, v in dense.state_dict().items()
        if k.startswith("bert.encoder.layer.") and k.endswith(".weight")
    ]
    # Kept layers 0, 2, 3 -> dense 0, 1, 2 with 1, 2, 3 heads of 8 and 5, 20, 1 FFN neurons.
    assert got == [
        ("0.attention.self.query.weight", (8, 32)),
        ("0.attention.self.key.weight", (8, 32)),
        ("0.attention.self.value.weight", (8, 32)),
        ("0.attention.output.dense.weight", (32, 8)),
        ("0.attention.output.LayerNorm.weight", (32,)),
        ("0.intermediate.dense.weight", (5, 32)),
        ("0.output.dense.weight", (32, 5)),
        ("0.output.LayerNorm.weight", (32,)),
        ("1.attention.self.query.weight", (16, 32)),
        ("1.attention.self.key.weight", (16, 32)),
        ("1.attention.self.value.weight", (16, 32)),
        ("1.attention.output.dense.weight", (32, 16)),
        ("1.attention.output.LayerNorm.weight", (32,)),
        ("1.intermediate.dense.weight", (20, 32)),
        ("1.output.dense.weight", (32, 20)),
        ("1.output.LayerNorm.weight", (32,)),
        ("2.attention.self.query.weight", (24, 32)),
        ("2.attention.self.key.weight", (24, 32)),
        ("2.attention.self.value.weight", (24, 32)),
        ("2.attention.output.dense.weight", (32, 24)),
        ("2.attention.output.LayerNorm.weight", (32,)),
        ("2.intermediate.dense.weight", (1, 32)),
        ("2.output.dense.weight", (32, 1)),
        ("2.output.LayerNorm.weight", (32,)),
    ]
    config = dense.config
    assert config.num_hidden_layers == 3
    assert config.num_attention_heads_per_layer == [1, 2, 3]
    assert config.intermediate_size_per_layer == [5, 20, 1]
    assert config.attention_head_size == 8
    assert config.supernet_source["layers"] == [0, 2, 3]
    # Weights are copies: changing the supernet leaves the export alone.
    before = dense.bert.encoder.layer[1].attention.self.query.weight.clone()
    with torch.no_grad():
        model.bert.encoder.layer[2].attention.self.query.weight.add_(1.0)
    assert torch.equal(dense.bert.encoder.layer[1].attention.self.query.weight, before)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("head", ["token-cls", "mlm"])
def test_other_heads(family: str, head: str) -> None:
    _, model = _supernet(family, head)
    dense = get_active_subnet(model)
    batch = tiny_batch(seed=2)
    assert _max_diff(_logits(dense, batch), _logits(model, batch)) <= TORCH_TOL


def test_reads_the_live_widths_not_the_last_config() -> None:
    _, model = _supernet("bert", cfg=UNIFORM)
    sn.supernet_state(model).attentions[0].set_active_heads(1)  # behind set_active_subnet's back
    dense = get_active_subnet(model)
    assert dense.config.num_attention_heads_per_layer == [1, 2]
    assert dense.config.supernet_source["subnet"].startswith("sub-")
    batch = tiny_batch()
    assert _max_diff(_logits(dense, batch), _logits(model, batch)) <= TORCH_TOL


# --------------------------------------------------------------------------- folders


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_save_then_load_exported_without_remote_code(family: str, tmp_path: Path) -> None:
    _, model = _supernet(family)
    folder = save_exported(get_active_subnet(model), tmp_path / family)
    loaded = load_exported(folder)
    batch = tiny_batch(seed=3)
    assert _max_diff(_logits(loaded, batch), _logits(model, batch)) <= TORCH_TOL
    cls = export_modeling.MODEL_CLASSES[type(model).__name__]
    _, info = cls.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not info["error_msgs"]


def test_modeling_file_is_the_package_template_and_offline(tmp_path: Path) -> None:
    _, model = _supernet("bert")
    folder = tmp_path / "out"
    get_active_subnet(model).save_pretrained(folder)  # plain save_pretrained ships the file too
    text = (folder / MODELING_FILE).read_text()
    assert text == Path(export_modeling.__file__).read_text()
    imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", text, flags=re.M)
    allowed = {"os", "shutil", "typing", "transformers", "huggingface_hub", "torch"}
    assert {name.split(".")[0] for name in imports} <= allowed
    for banned in ("requests", "urllib", "socket", "subprocess", "os.system", "http"):
        assert banned not in text, banned
    assert not re.search(r"\b(import|from)\s+supernet\b", text)


def test_full_width_subnet_uses_the_same_format(tmp_path: Path) -> None:
    _, model = _supernet("roberta", cfg=sn.MAX_NET)
    folder = save_exported(get_active_subnet(model), tmp_path / "full")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "supernet-export-roberta"
    assert config["num_attention_heads_per_layer"] == [4, 4, 4, 4]
    assert config["intermediate_size_per_layer"] == [48, 48, 48, 48]
    assert "modeling_supernet_export.SupernetExportRobertaConfig" == config["auto_map"]["AutoConfig"]


# --------------------------------------------------------------------------- new families, layout-matched models


@pytest.mark.parametrize(
    "family, onnx",
    [
        ("camembert", False),
        ("data2vec-text", False),
        ("domain-bert", False),
        ("xlm-roberta-xl", False),
        # The ONNX export takes ~20 s per model on a CPU.
        pytest.param("roberta-prelayernorm", True, marks=pytest.mark.slow),
        pytest.param("xlm-roberta-xl", True, marks=pytest.mark.slow),
    ],
)
def test_new_family_and_layout_matched_export(family: str, onnx: bool, tmp_path: Path) -> None:
    stock, model = _supernet(family, cfg=sn.MAX_NET)
    report = export_subnet(model, HETERO, tmp_path / family, onnx=onnx)
    parity = json.loads(report.parity_path.read_text())
    assert parity["family"] == family and parity["parity_ok"] is True
    assert parity["max_abs_diff_torch_vs_supernet"] <= TORCH_TOL
    assert parity["layers"] == [0, 2, 3] and parity["heads_per_layer"] == [1, 2, 3]
    # A model matched by layout exports as the named family its classes derive from, if
    # any (the domain BERT), else as its own stock classes, its config carrying the layout.
    exported_family = "bert" if family == "domain-bert" else family
    config = json.loads((report.out_dir / "config.json").read_text())
    assert config["model_type"] == f"supernet-export-{exported_family}"
    prefix = (
        type(stock)
        .__mro__[1 if family == "domain-bert" else 0]
        .__name__.removesuffix("ForSequenceClassification")
    )
    assert config["auto_map"]["AutoModelForSequenceClassification"] == (
        f"modeling_supernet_export.SupernetExport{prefix}ForSequenceClassification"
    )
    if family == "xlm-roberta-xl":
        assert config["supernet_layout"] == {
            "prefix": "XLMRobertaXL",
            "layers": "encoder.layer",
            "query": "attention.self.query",
            "key": "attention.self.key",
            "value": "attention.self.value",
            "attn_out": "attention.output.dense",
            "ffn_in": "intermediate.dense",
            "ffn_out": "output.dense",
            "ffn_attr": "intermediate_size",
        }
    else:
        assert config["supernet_layout"] is None
    # The folder loads back (no remote code) and matches the independent reference and ONNX Runtime.
    dense = load_exported(report.out_dir)
    r = sn.resolve_subnet(sn.supernet_state(model).arch, HETERO)
    ref = reference_subnet(stock, list(r.heads), list(r.ffn), list(r.layers))
    batch = tiny_batch(seed=5, batch=4, seq=9)
    assert _max_diff(_logits(dense, batch), _logits(ref, batch)) <= TORCH_TOL
    if onnx:
        assert parity["max_abs_diff_onnx_vs_torch"] <= ONNX_TOL
        session = ort.InferenceSession(str(report.onnx_path), providers=["CPUExecutionProvider"])
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        feeds = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
        assert _max_diff(torch.from_numpy(session.run(None, feeds)[0]), _logits(dense, batch)) <= ONNX_TOL


class _OwnHead(transformers.BertPreTrainedModel):
    """A layout-matched model whose class derives from no stock head class."""

    config_class = DomainBertConfig

    def __init__(self, config) -> None:
        super().__init__(config)
        self.bert = transformers.BertModel(config)
        self.score = torch.nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        return self.score(self.bert(input_ids, attention_mask=attention_mask).last_hidden_state[:, 0])


def test_layout_matched_model_without_a_stock_head_class_is_refused(tmp_path: Path) -> None:
    model = sn.to_supernet(_OwnHead(tiny_config("domain-bert")).eval())
    assert sn.supernet_state(model).spec.matched_layout == "bert"
    with pytest.raises(sn.UnsupportedModelError) as err:
        export_subnet(model, UNIFORM, tmp_path / "out")
    assert str(err.value) == (
        "cannot export _OwnHead: it was matched by layout (bert), and an export subclasses a stock "
        "transformers class <Family>{Model, ForSequenceClassification, ForTokenClassification, "
        "ForMaskedLM, ForQuestionAnswering, ForMultipleChoice}, which it does not derive from"
    )
    assert list(tmp_path.iterdir()) == []
    assert sn.active_subnet(model) == sn.MAX_NET


def test_a_bfloat16_model_with_onnx_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """It failed after the whole export, deep in onnxruntime ("Could not find an implementation for
    Add(14)"); without ONNX a bfloat16 dense model is written as it is."""
    model = sn.to_supernet(tiny_model("bert")).to(torch.bfloat16).eval()
    cfg = sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)
    with pytest.raises(ValueError) as err:
        export_subnet(model, cfg, tmp_path / "onnx")
    assert str(err.value) == (
        "the model is in bfloat16 and the ONNX graph is float32: export model.float(), "
        "or pass onnx=False for a bfloat16 dense model only"
    )
    assert list(tmp_path.iterdir()) == []
    export_subnet(model, cfg, tmp_path / "dense", onnx=False)
    assert load_exported(tmp_path / "dense").dtype == torch.bfloat16


def test_multiple_choice_export_is_refused_in_one_line(tmp_path: Path) -> None:
    """Its [batch, choices, sequence] inputs met 2-D parity batches: 'too many values to unpack'."""
    torch.manual_seed(0)
    model = sn.to_supernet(transformers.BertForMultipleChoice(tiny_config("bert")).eval())
    with pytest.raises(ValueError) as err:
        export_subnet(model, UNIFORM, tmp_path / "out")
    assert str(err.value) == (
        "export_subnet does not export BertForMultipleChoice (inputs of [batch, choices, sequence]); "
        "get_active_subnet(model) gives its dense model to save_pretrained"
    )
    assert list(tmp_path.iterdir()) == [] and sn.active_subnet(model) == sn.MAX_NET
    ids = torch.randint(5, 99, (2, 3, 9))
    sn.set_active_subnet(model, UNIFORM)
    with torch.no_grad():
        assert torch.equal(get_active_subnet(model).eval()(input_ids=ids).logits, model(input_ids=ids).logits)


# --------------------------------------------------------------------------- real model, ONNX, remote code

DEV_LABELS = torch.tensor([1, 0, 1, 1])


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path):
    torch.manual_seed(0)  # the classifier on top of the sentence encoder is random
    model = transformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    return sn.to_supernet(model.eval()), tokenizer


@pytest.fixture(scope="module")
def minilm_export(minilm, tmp_path_factory):
    model, tokenizer = minilm
    out = tmp_path_factory.mktemp("minilm") / "w050-d050"
    batch = tokenizer(REAL_SENTENCES, padding=True, return_tensors="pt")
    calls: list[str] = []

    def dev_eval(predict) -> float:
        calls.append("x")
        return float((predict(batch).argmax(-1) == DEV_LABELS).float().mean())

    report = export_subnet(
        model, UNIFORM, out, tokenizer=tokenizer, int8=True, parity_batch=batch, dev_eval=dev_eval
    )
    return report, calls


@pytest.mark.slow
def test_real_model_export_parity_and_report(minilm, minilm_export) -> None:
    model, tokenizer = minilm
    report, calls = minilm_export
    assert isinstance(report, ExportReport)
    parity = json.loads(report.parity_path.read_text())
    assert set(parity) == PARITY_KEYS
    assert parity == json.loads(json.dumps(report.to_dict()))
    # Every file it wrote, and only those (export.py --overwrite replaces nothing else).
    assert parity["files"] == sorted(p.name for p in report.out_dir.iterdir())
    assert parity["subnet"] == "w0.50-d0.50" and parity["layers"] == [0, 2, 4]
    assert parity["heads_per_layer"] == [6, 6, 6] and parity["ffn_per_layer"] == [768, 768, 768]
    assert parity["param_count"] == sn.count_params(model, UNIFORM)
    assert parity["shapes"][0] == {
        "layer": 0,
        "query": [192, 384],
        "key": [192, 384],
        "value": [192, 384],
        "attn_out": [384, 192],
        "ffn_in": [768, 384],
        "ffn_out": [384, 768],
    }
    assert parity["parity_inputs"] == "given"
    assert parity["max_abs_diff_torch_vs_supernet"] <= TORCH_TOL
    assert parity["max_abs_diff_onnx_vs_torch"] <= ONNX_TOL
    sn.set_active_subnet(model, UNIFORM)
    logits = _logits(model, tokenizer(REAL_SENTENCES, padding=True, return_tensors="pt"))
    sn.set_max_net(model)
    assert parity["max_abs_diff_int8_vs_fp32"] <= INT8_REL_TOL_MINILM * logits.abs().max().item()
    assert parity["parity_ok"] is True
    # The optimised graph: every kept layer's attention, both LayerNorms and GELU fused.
    assert parity["onnx_exporter"] == "torchscript" and parity["onnx_fallback_reason"] is None
    assert parity["onnx_fused"] == {"Attention": 3, "BiasGelu": 3, "LayerNormalization": 7}
    assert parity["onnx_fingerprint"] == onnx_fingerprint(report.onnx_path)
    assert parity["int8_fingerprint"] == onnx_fingerprint(report.int8_path)
    assert len(calls) == 4 and set(parity["accuracy"]) == {"supernet", "torch", "onnx", "int8"}
    assert parity["accuracy"]["torch"] == parity["accuracy"]["supernet"] == parity["accuracy"]["onnx"]
    files = {p.name for p in report.out_dir.iterdir()}
    assert {"config.json", "model.safetensors", MODELING_FILE, "model.onnx", "model.int8.onnx"} <= files
    assert {"parity.json", "tokenizer_config.json"} <= files
    assert not [p for p in report.out_dir.parent.iterdir() if ".tmp-" in p.name]
    # The supernet is back at its previous subnet (the max net).
    assert sn.active_subnet(model) == sn.MAX_NET


@pytest.mark.slow
def test_onnx_matches_torch_on_new_shapes(minilm_export) -> None:
    report, _ = minilm_export
    dense = load_exported(report.out_dir)
    fp32 = ort.InferenceSession(str(report.onnx_path), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(report.int8_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in fp32.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    g = torch.Generator().manual_seed(7)
    for b, s in ((1, 5), (7, 33)):
        ids = torch.randint(1000, 30000, (b, s), generator=g)
        mask = torch.ones(b, s, dtype=torch.long)
        mask[b // 2 :, s // 2 :] = 0  # ragged padding
        batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        feeds = {k: v.numpy() for k, v in batch.items()}
        want = _logits(dense, batch)
        got = torch.from_numpy(fp32.run(None, feeds)[0])
        assert _max_diff(got, want) <= ONNX_TOL
        _assert_int8_close(torch.from_numpy(int8.run(None, feeds)[0]), want, INT8_REL_TOL_MINILM)


_SUBPROCESS_SCRIPT = r"""
import importlib.abc, importlib.util, json, sys

spec = json.load(open(sys.argv[1]))
importable = importlib.util.find_spec("supernet") is not None


class NoSupernet(importlib.abc.MetaPathFinder):
    # The editable install makes supernet importable here; refuse it, so remote code needing it fails loudly.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "supernet":
            raise ImportError("the export folder tried to import supernet")
        return None


sys.meta_path.insert(0, NoSupernet())

import torch
import transformers

out = {"importable": importable, "logits": [], "info": [], "classes": []}
for case in spec["cases"]:
    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        case["dir"], trust_remote_code=True, output_loading_info=True
    )
    model.eval()
    batch = {k: torch.tensor(case[k]) for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        out["logits"].append(model(**batch).logits.tolist())
    out["info"].append({k: sorted(map(str, v)) for k, v in info.items()})
    out["classes"].append([c.__module__.split(".")[0] + "." + c.__name__ for c in type(model).__mro__[:3]])
# A model loaded through remote code saves a folder that loads again the same way.
model.save_pretrained("resaved")
again = transformers.AutoModelForSequenceClassification.from_pretrained("resaved", trust_remote_code=True)
with torch.no_grad():
    out["resaved"] = again.eval()(**batch).logits.tolist()
clf = transformers.pipeline("text-classification", model=spec["pipeline_dir"], trust_remote_code=True)
out["pipeline"] = clf(spec["sentences"])
assert "supernet" not in sys.modules, "supernet was imported"
print(json.dumps(out))
"""


@pytest.mark.slow
def test_folder_loads_in_a_process_without_supernet(
    minilm, minilm_export, searched_exports, tmp_path: Path
) -> None:
    report, _ = minilm_export
    _, tokenizer = minilm
    cases, expected = [], []
    batch = tiny_batch(seed=4)
    families = [*FAMILY_NAMES, "xlm-roberta-xl"]  # the last one is matched by layout
    for family in families:
        _, model = _supernet(family)
        folder = save_exported(get_active_subnet(model), tmp_path / f"tiny-{family}")
        cases.append({"dir": str(folder), **{k: v.tolist() for k, v in batch.items()}})
        expected.append(_logits(model, batch))
    # export.py's folders of a searched per-layer subnet (ONNX files beside the weights) load the same way.
    for family in FAMILY_NAMES:
        model, searched = searched_exports[family]
        sn.set_active_subnet(model, SEARCHED)
        cases.append({"dir": str(searched.out_dir), **{k: v.tolist() for k, v in batch.items()}})
        expected.append(_logits(model, batch))
        sn.set_max_net(model)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps({"cases": cases, "pipeline_dir": str(report.out_dir), "sentences": REAL_SENTENCES})
    )
    work = tmp_path / "clean"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": "",
        "HOME": str(work),
        "HF_HOME": str(work / "hf"),  # remote-code modules are cached here, not in the user's home
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_SCRIPT, str(spec_file)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for got, want in zip(out["logits"], expected, strict=True):
        assert _max_diff(torch.tensor(got), want) <= TORCH_TOL
    assert _max_diff(torch.tensor(out["resaved"]), expected[-1]) <= TORCH_TOL
    for info in out["info"]:
        assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    for family, classes in zip([*families, *FAMILY_NAMES], out["classes"], strict=True):
        prefix = (
            export_modeling.LAYOUTS[family].prefix if family in export_modeling.LAYOUTS else "XLMRobertaXL"
        )
        assert classes[0] == f"transformers_modules.SupernetExport{prefix}ForSequenceClassification"
        assert classes[2] == f"transformers.{prefix}ForSequenceClassification"
    # The pipeline agrees with the exported model run here on each sentence alone.
    dense = load_exported(report.out_dir)
    for sentence, pred in zip(REAL_SENTENCES, out["pipeline"], strict=True):
        probs = _logits(dense, tokenizer(sentence, return_tensors="pt")).softmax(-1)[0]
        assert pred["label"] == dense.config.id2label[int(probs.argmax())]
        assert abs(pred["score"] - probs.max().item()) <= TORCH_TOL


# --------------------------------------------------------------------------- exporter fallback, refusals, warnings


def test_dynamo_fallback_without_token_types(tmp_path: Path, monkeypatch) -> None:
    real_export = torch.onnx.export

    def no_torchscript(*args, **kwargs):
        if not kwargs.get("dynamo"):
            raise RuntimeError("torchscript unavailable in this test")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", no_torchscript)
    _, model = _supernet("distilbert", cfg=sn.MAX_NET)
    empty = tmp_path / "out"
    empty.mkdir()  # an empty folder is fine to export into
    report = export_subnet(model, HETERO, empty, onnx=True)
    parity = json.loads(report.parity_path.read_text())
    assert parity["onnx_exporter"] == "dynamo"
    assert "torchscript unavailable" in parity["onnx_fallback_reason"]
    assert parity["inputs"]["names"] == ["input_ids", "attention_mask"]
    assert parity["parity_inputs"] == "random"
    assert parity["max_abs_diff_onnx_vs_torch"] <= ONNX_TOL
    assert parity["max_abs_diff_int8_vs_fp32"] is None and parity["accuracy"] is None
    assert parity["heads_per_layer"] == [1, 2, 3] and parity["layers"] == [0, 2, 3]
    assert sn.active_subnet(model) == sn.MAX_NET


def test_refuses_a_non_empty_out_dir_and_leaves_it_alone(tmp_path: Path) -> None:
    _, model = _supernet("bert")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(FileExistsError) as err:
        export_subnet(model, UNIFORM, out, onnx=False)
    assert str(err.value) == (
        f"{out} already exists and is not empty: pass a new --out or remove it (export never overwrites files)"
    )
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_export_files_are_readable_by_others_and_killed_exports_are_cleared(tmp_path: Path) -> None:
    """transformers wrote model.safetensors 0600 (unreadable by the user serving the export), and a
    killed export's temporary folder (100+ MB) stayed beside --out for good."""
    _, model = _supernet("bert")
    out = tmp_path / "exp"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, running, recent = (tmp_path / f".exp.tmp-{pid}" for pid in (dead.pid, os.getppid(), 999_999_999))
    users = tmp_path / f"exp.tmp-{dead.pid}"  # not hidden: a folder of the user's that only looks like one
    for folder in (stale, running, recent, users):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
    for folder in (stale, running, users):
        os.utime(folder, (0, 0))  # written long ago
    with pytest.warns(UserWarning) as caught:
        export_subnet(model, UNIFORM, out, onnx=True)
    assert [str(w.message) for w in caught if "killed" in str(w.message)] == [
        f"removed {stale}, the unfinished folder of an export that was killed"
    ]
    # The folder of a live process, and a recent one (maybe a job on another host), are kept.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["exp", running.name, recent.name, users.name]
    )
    umask = os.umask(0)
    os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {
        p.name: 0o666 & ~umask for p in out.iterdir()
    }


def test_warns_for_a_subnet_outside_the_search_space(tmp_path: Path) -> None:
    _, model = _supernet("bert")
    space = sn.SearchSpace(width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5))
    with pytest.warns(UserWarning) as caught:
        report = export_subnet(model, HETERO, tmp_path / "outside", onnx=False, space=space)
    assert [str(w.message) for w in caught if "search space" in str(w.message)] == [
        f"subnet {HETERO.name} is outside the trained search space (widths [1.0, 0.5], depths [1.0, 0.5]): "
        "exporting it anyway, check its accuracy"
    ]
    assert report.parity_path.is_file()  # exported anyway
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_subnet(model, UNIFORM, tmp_path / "inside", onnx=False, space=space)
    assert not [w for w in caught if "search space" in str(w.message)]


def test_a_failed_export_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    import supernet.export as export_module

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(export_module, "_export_onnx", broken)
    _, model = _supernet("bert", cfg=sn.MAX_NET)
    with pytest.raises(RuntimeError, match="exploded"):
        export_subnet(model, UNIFORM, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    assert sn.active_subnet(model) == sn.MAX_NET and not model.training


def test_export_config_checks_its_per_layer_fields() -> None:
    config_class = export_modeling.CONFIG_CLASSES["distilbert"]
    ok = config_class(dim=32, n_heads=4, n_layers=2, num_attention_heads_per_layer=[1, 4])
    assert ok.attention_head_size == 8 and ok.intermediate_size_per_layer == [ok.hidden_dim] * 2
    with pytest.raises(
        ValueError, match=r"^num_attention_heads_per_layer must list one value per layer \(2\), got 3$"
    ):
        config_class(dim=32, n_heads=4, n_layers=2, num_attention_heads_per_layer=[1, 2, 3])
    with pytest.raises(
        ValueError, match=r"^num_attention_heads_per_layer values must be in \[1, 4\], got 5$"
    ):
        config_class(dim=32, n_heads=4, n_layers=2, num_attention_heads_per_layer=[1, 5])


# --------------------------------------------------------------------------- per-layer subnets the search finds

# What search.py --per-layer returns on the tiny models (width multipliers 1, 0.75, 0.5, 0.25 give 4, 3, 2, 1
# heads and 48, 36, 24, 12 neurons): heads and FFN differ in every kept layer, layer 1 is skipped (its genes
# canonicalised to the widest), so the kept layers (0, 2, 3) are not contiguous.
SEARCHED = sn.SubnetConfig(heads=(3, 4, 1, 2), ffn=(36, 48, 12, 24), layers=(0, 2, 3))


# The dynamo ONNX export takes about a minute per tiny model on a loaded 2-core machine: the packaged
# model's family, and DistilBERT for its other layout and inputs (no token types).
ONNX_FAMILIES = ("bert", "distilbert")


@pytest.fixture(scope="module")
def searched_exports(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, ExportReport]]:
    root = tmp_path_factory.mktemp("searched")
    out = {}
    for family in FAMILY_NAMES:
        _, model = _supernet(family, cfg=sn.MAX_NET)
        onnx = family in ONNX_FAMILIES
        out[family] = (model, export_subnet(model, SEARCHED, root / family, onnx=onnx, int8=onnx))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_searched_per_layer_subnet_exports_with_parity(family: str, searched_exports) -> None:
    model, report = searched_exports[family]
    parity = json.loads(report.parity_path.read_text())
    assert parity["subnet"] == SEARCHED.name and parity["spec"] == SEARCHED.to_dict()
    assert parity["layers"] == [0, 2, 3]
    assert parity["heads_per_layer"] == [3, 1, 2] and parity["ffn_per_layer"] == [36, 12, 24]
    assert [s["query"][0] for s in parity["shapes"]] == [24, 8, 16]  # heads x head size 8
    assert [s["ffn_in"][0] for s in parity["shapes"]] == [36, 12, 24]
    assert parity["max_abs_diff_torch_vs_supernet"] <= TORCH_TOL
    assert parity["parity_ok"] is True
    assert parity["param_count"] == sn.count_params(model, SEARCHED)
    # The folder, loaded back without remote code, agrees with the supernet at that subnet on new shapes.
    dense = load_exported(report.out_dir)
    sn.set_active_subnet(model, SEARCHED)
    batches = [tiny_batch(seed=b, batch=b, seq=s) for b, s in ((1, 5), (5, 17))]
    for batch in batches:
        assert _max_diff(_logits(dense, batch), _logits(model, batch)) <= TORCH_TOL
    if family in ONNX_FAMILIES:  # ...and so does its ONNX file in onnxruntime, int8 runs
        assert parity["max_abs_diff_onnx_vs_torch"] <= ONNX_TOL
        fp32 = ort.InferenceSession(str(report.onnx_path), providers=["CPUExecutionProvider"])
        int8 = ort.InferenceSession(str(report.int8_path), providers=["CPUExecutionProvider"])
        for batch in batches:
            want = _logits(model, batch)
            ids = batch["input_ids"]  # token types, where the graph takes them, are all 0 as in the model
            feeds = {i.name: batch.get(i.name, torch.zeros_like(ids)).numpy() for i in fp32.get_inputs()}
            assert _max_diff(torch.from_numpy(fp32.run(None, feeds)[0]), want) <= ONNX_TOL
            _assert_int8_close(torch.from_numpy(int8.run(None, feeds)[0]), want)
    else:
        assert report.onnx_path is None and parity["max_abs_diff_onnx_vs_torch"] is None
    sn.set_max_net(model)


# --------------------------------------------------------------------------- optimised ONNX


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_onnx_fuses_every_layer_of_a_per_layer_subnet(tmp_path: Path, family: str) -> None:
    # Kept layers run 1, 2 and 3 heads: each layer's head count is read from its own query weight.
    _, model = _supernet(family)
    report = export_subnet(model, HETERO, tmp_path / "out", onnx=True, int8=True)
    assert report.onnx_exporter == "torchscript"
    assert report.onnx_fused["Attention"] == 3
    assert report.onnx_fused["LayerNormalization"] == 7  # embeddings + 2 per kept layer
    assert report.max_abs_diff_onnx_vs_torch <= ONNX_TOL
    int8 = ort.InferenceSession(str(report.int8_path), providers=["CPUExecutionProvider"])
    batch = tiny_batch()
    want = _logits(model, batch)  # the supernet is at HETERO
    feeds = {
        i.name: batch.get(i.name, torch.zeros_like(batch["input_ids"])).numpy() for i in int8.get_inputs()
    }
    _assert_int8_close(torch.from_numpy(int8.run(None, feeds)[0]), want)
    import onnx

    ops = [n.op_type for n in onnx.load(str(report.onnx_path)).graph.node]
    assert ops.count("Attention") == 3 and "Softmax" not in ops
    assert ops.count("LayerNormalization") == 7 and ops.count("Sum") == 7  # every residual a Sum
    assert not {"SkipLayerNormalization", "EmbedLayerNormalization"} & set(ops)
    heads = [
        next(a.i for a in n.attribute if a.name == "num_heads")
        for n in onnx.load(str(report.onnx_path)).graph.node
        if n.op_type == "Attention"
    ]
    assert heads == [1, 2, 3]


def _optimized_nodes(path: Path, tmp_path: Path) -> list:
    """The nodes of `path` as onnxruntime's CPU session runs them (after its own fusions)."""
    import onnx

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return list(onnx.load(options.optimized_model_filepath).graph.node)


def test_int8_matmuls_add_the_gelu_bias(tmp_path: Path, monkeypatch) -> None:
    # The FFN's bias, a BiasGelu input in the FP32 graph, is added by the int8 MatMul before the
    # GELU (DynamicQuantizeMatMul's bias input), and a plain Gelu remains: the same logits.
    from supernet import export as export_module

    # HETERO with every kept FFN wider than 1 (onnxruntime leaves the bias of a 1-wide FFN to BiasGelu).
    cfg = sn.SubnetConfig(heads=(1, 4, 2, 3), ffn=(5, 48, 20, 8), layers=(0, 2, 3))
    _, model = _supernet("bert", cfg=cfg)
    report = export_subnet(model, cfg, tmp_path / "out", onnx=True, int8=True)
    assert report.onnx_fused["BiasGelu"] == 3
    nodes = _optimized_nodes(report.int8_path, tmp_path)
    producers = {o: n for n in nodes for o in n.output}
    gelus = [n for n in nodes if n.op_type == "Gelu"]
    assert "BiasGelu" not in [n.op_type for n in nodes] and len(gelus) == 3
    feeding = [producers[g.input[0]] for g in gelus]
    assert [(n.op_type, n.input[4].endswith("intermediate.dense.bias")) for n in feeding] == [
        ("DynamicQuantizeMatMul", True)
    ] * 3
    # Quantized as before this rewrite: BiasGelu stays and its MatMul takes no bias.
    monkeypatch.setattr(export_module, "_bias_out_of_gelus", lambda model: 0)
    write_int8(report.onnx_path, tmp_path / "before.onnx")
    assert "BiasGelu" in [n.op_type for n in _optimized_nodes(tmp_path / "before.onnx", tmp_path)]
    batch = tiny_batch()
    runs = []
    for path in (report.int8_path, tmp_path / "before.onnx"):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {
            i.name: batch.get(i.name, torch.zeros_like(batch["input_ids"])).numpy()
            for i in session.get_inputs()
        }
        runs.append(session.run(None, feeds)[0])
    # x + bias is added once either way (before the GELU); only the order of float32 adds may differ.
    assert np.abs(runs[0] - runs[1]).max() <= ONNX_TOL


@pytest.mark.parametrize(("gelu", "plain"), [("BiasGelu", "Gelu"), ("FastGelu", "FastGelu")])
def test_bias_out_of_gelus_rewrites_both_biased_forms(tmp_path: Path, gelu: str, plain: str) -> None:
    # FastGelu (the tanh form, for gelu_new families) takes an optional bias too.
    from onnx import TensorProto, helper, numpy_helper

    from supernet.export import _bias_out_of_gelus

    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
        for name, shape in (("w", (16, 32)), ("b", (32,)), ("w2", (32, 16)))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node(gelu, ["h", "b"], ["g"], domain="com.microsoft"),
        helper.make_node("FastGelu", ["g"], ["g2"], domain="com.microsoft"),  # no bias: kept
        helper.make_node("MatMul", ["g2", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16])],
        initializer=weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    import onnx

    onnx.save(model, str(tmp_path / "fp32.onnx"))
    assert _bias_out_of_gelus(model) == 1
    assert [(n.op_type, list(n.input)) for n in model.graph.node] == [
        ("MatMul", ["x", "w"]),
        ("Add", ["h", "b"]),
        (plain, ["gelu_bias/0"]),
        ("FastGelu", ["g"]),
        ("MatMul", ["g2", "w2"]),
    ]
    write_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    ops = [
        (n.op_type, len([i for i in n.input if i]))
        for n in _optimized_nodes(tmp_path / "int8.onnx", tmp_path)
    ]
    assert ops == [("DynamicQuantizeMatMul", 5), (plain, 1), ("FastGelu", 1), ("DynamicQuantizeMatMul", 4)]


def test_write_onnx_is_deterministic_and_restores_attention(tmp_path: Path) -> None:
    _, model = _supernet("bert")
    dense = get_active_subnet(model).eval()
    before = dense.config._attn_implementation
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = {
        "input_ids": torch.randint(5, 99, (2, 7)),
        "attention_mask": torch.ones(2, 7, dtype=torch.long),
        "token_type_ids": torch.zeros(2, 7, dtype=torch.long),
    }
    a = write_onnx(dense, tmp_path / "a.onnx", names=names, example=example)
    b = write_onnx(dense, tmp_path / "b.onnx", names=names, example=example)
    plain = write_onnx(dense, tmp_path / "plain.onnx", names=names, example=example, optimize=False)
    assert dense.config._attn_implementation == before
    assert a.fused == b.fused and a.fused["Attention"] == 3 and plain.fused == {}
    assert onnx_fingerprint(a.path) == onnx_fingerprint(b.path)
    assert onnx_fingerprint(a.path) != onnx_fingerprint(plain.path)


@pytest.mark.parametrize("opset", [17, 18])
def test_unfused_skip_layer_norms_compute_what_the_kernels_compute(tmp_path: Path, opset: int) -> None:
    # A SkipLayerNormalization with bias whose input+skip+bias sum feeds a plain LayerNormalization
    # (both outputs of the graph), as the BERT optimizer writes them; and an Add feeding a
    # LayerNormalization (the embeddings' sum), which onnxruntime would fuse into the slow kernel.
    from onnx import TensorProto, helper, numpy_helper

    from supernet.export import _unfuse_skip_layer_norms

    rng = np.random.default_rng(0)
    width = 24

    def init(name: str, *shape: int) -> object:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [
        helper.make_node(
            "SkipLayerNormalization",
            ["x", "s", "g", "b", "bias"],
            ["y", "", "", "sum"],
            domain="com.microsoft",
            epsilon=1e-12,
        ),
        helper.make_node("LayerNormalization", ["sum", "g2"], ["z"], axis=-1, epsilon=1e-5),
        helper.make_node("Add", ["x", "s"], ["xs"]),
        helper.make_node("LayerNormalization", ["xs", "g3", "b3"], ["w"], axis=-1, epsilon=1e-5),
    ]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 5, width]) for n in ("x", "s")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "z", "w")]
    inits = [init(n, width) for n in ("g", "b", "bias", "g2", "g3", "b3")]
    graph = helper.make_graph(nodes, "ln", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    )
    before = model.SerializeToString()
    assert _unfuse_skip_layer_norms(model) == 1
    assert [n.op_type for n in model.graph.node] == [
        "Add", "Sum", "LayerNormalization", "LayerNormalization", "Sum", "LayerNormalization"
    ]  # fmt: skip

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    feeds = {n: rng.standard_normal((2, 5, width)).astype(np.float32) for n in ("x", "s")}
    kernels = ort.InferenceSession(before, providers=["CPUExecutionProvider"]).run(None, feeds)
    rewritten = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for want, got in zip(kernels, rewritten.run(None, feeds), strict=True):
        assert np.abs(want - got).max() <= 1e-5
    # onnxruntime's own fusions do not put the SkipLayerNormalization kernel back.
    import onnx

    optimized = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert optimized.count("LayerNormalization") == 3 and "SkipLayerNormalization" not in optimized


def test_skip_layer_norm_whose_statistics_are_used_keeps_its_kernel() -> None:
    # Only the BERT optimizer's form (no mean / inverse-std consumers) is rewritten; a graph that
    # reads the statistics keeps the node as it is.
    from onnx import TensorProto, helper

    from supernet.export import _unfuse_skip_layer_norms

    skip = helper.make_node(
        "SkipLayerNormalization", ["x", "s", "g", "b"], ["y", "mean"], domain="com.microsoft", epsilon=1e-12
    )
    graph = helper.make_graph(
        [skip],
        "ln",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4]) for n in ("x", "s", "g", "b")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "mean")],
    )
    model = helper.make_model(graph)
    assert _unfuse_skip_layer_norms(model) == 0
    assert [(n.op_type, list(n.output)) for n in model.graph.node] == [
        ("SkipLayerNormalization", ["y", "mean"])
    ]


def test_an_export_leaves_no_garbage_behind(tmp_path: Path) -> None:
    """Each export left reference cycles (~1,200-2,600 objects for a tiny model) holding its dense
    model's and graph's memory until a full collection, which allocation counts seldom trigger:
    search.py --backend onnxruntime on BERT-base grew 1.2-1.8 GB per graph (12.4 GB peak), MiniLM
    ~400 MB. export_subnet collects them before it returns."""
    import gc

    _, model = _supernet("bert")
    gc.collect()
    gc.disable()  # no automatic collection may hide the export's garbage
    try:
        export_subnet(model, HETERO, tmp_path / "a", onnx=True)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_saved_tokenizer_holds_no_truncation_or_padding(tmp_path: Path, minilm_dir: Path) -> None:
    """tokenizer.json kept the truncation of the tokenizer's last call (32, or the QA windows' only-second
    with its stride) or the packaged MiniLM's padding to 128, whichever the process had done: two
    exports of one subnet differed, and plain `tokenizers` users got truncated or refused encodings."""
    from tokenizers import Tokenizer

    from supernet.io import save_tokenizer

    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    packaged = json.loads((minilm_dir / "tokenizer.json").read_text())
    assert packaged["padding"]["strategy"] == {"Fixed": 128}  # as shipped
    tokenizer(["what a film"], ["it was long"], truncation="only_second", max_length=16, stride=4)
    before = tokenizer.backend_tokenizer.truncation
    save_tokenizer(tokenizer, tmp_path / "tok")
    saved = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert saved["truncation"] is None and saved["padding"] is None
    assert tokenizer.backend_tokenizer.truncation == before  # the caller's tokenizer is left alone
    text = "a long review " * 100
    assert len(Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json")).encode(text).ids) == len(
        tokenizer(text)["input_ids"]
    )


def test_the_exports_load_warning_names_artefacts_as_its_latency_line_does(tmp_path, capsys) -> None:
    """The latency line says "int8"; the warning under it said "onnxruntime_int8" (summary.json's key)."""
    from types import SimpleNamespace

    from supernet.export_cli import _say_summary
    from supernet.latency import LatencyResult, LatencySetting
    from supernet.subnet import SubnetConfig

    def timed(ms: float, spread: float) -> LatencyResult:
        return LatencyResult(
            median_ms=ms,
            p10_ms=ms * (1 - spread),
            p90_ms=ms * (1 + spread),
            mean_ms=ms,
            std_ms=0.0,
            repeats=3,
        )

    results = {
        "torch": timed(4.0, 0.01),
        "onnxruntime": timed(2.0, 0.01),
        "onnxruntime_int8": timed(1.0, 0.2),
    }
    report = SimpleNamespace(
        max_abs_diff_torch_vs_supernet=0.0, max_abs_diff_onnx_vs_torch=1e-6, accuracy=None, param_count=1e6
    )
    summary = {"search_latency": None, "device_prediction": None}
    kind = SimpleNamespace(main_metric="accuracy")
    setting = LatencySetting(num_threads=1)
    _say_summary(tmp_path, SubnetConfig.from_name("w0.50-d1.00"), kind, report, results, setting, summary)
    said = capsys.readouterr().out.splitlines()
    assert (
        said[3]
        == "  latency (cpu, batch 1, 128 tokens, 1 thread): torch 4.00 ms, onnxruntime 2.00 ms, int8 1.00 ms"
    )
    assert said[-1] == (
        "warning: latency of int8 may not be the model's alone: p10-p90 spread up to 40% of the median (bound "
        "10%); remeasure on an idle machine"
    )
