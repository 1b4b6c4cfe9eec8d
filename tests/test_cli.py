"""The bad-input catalogue: one line on stderr naming the cause, exit 2, files left as they were."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import types
from pathlib import Path

import pytest
import torch
import transformers
from conftest import TINY_RUN, save_tiny_model_dir

from supernet.cli import export_main, search_main, train_main
from supernet.config import TrainConfig, load_config, save_config
from supernet.io import RunDir
from supernet.latency import LatencySetting
from supernet.subnet import SubnetConfig
from supernet.trainer import config_changes


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under root with its content hash (to prove nothing changed)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _fails(capsys, main, argv: list[str], message: str, *, watch: Path | None = None) -> None:
    before = _snapshot(watch) if watch else None
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert lines[-1] == f"error: {message}", err
    assert "Traceback" not in err
    if watch is not None:
        assert _snapshot(watch) == before


@pytest.fixture
def preset(tmp_path: Path, tiny_model_dir: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    lines = [f"model: {tiny_model_dir}", f"output_dir: {tmp_path / 'run'}"]
    lines += [line.replace("=", ": ", 1) for line in TINY_RUN if "." not in line.split("=")[0]]
    path.write_text("\n".join(lines) + "\n")
    return path


def _dotted(overrides: list[str]) -> list[str]:
    return [o for o in TINY_RUN if "." in o.split("=")[0]] + overrides


def test_unknown_key_suggests_nearest(capsys, preset: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "learning_rat=1e-4"],
        "unknown config key 'learning_rat'; did you mean 'learning_rate'?",
    )


def test_wrong_type(capsys, preset: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "batch_size=abc"],
        "config key 'batch_size' must be int, got 'abc' (str)",
    )


def test_multiplier_out_of_range(capsys, preset: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "width_mults=[1.0, 1.5]"],
        "width_mults must only contain values in (0, 1], got [1.0, 1.5]",
    )


def test_width_giving_zero_heads_fails_before_training(capsys, preset: Path, tmp_path: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted(["width_mults=[1.0, 0.1]"])],
        "width_mults: width_mult=0.1 gives 0 of 4 heads; use width_mult > 0.125 (1 head)",
    )
    assert not (tmp_path / "run" / "teacher").exists()


def test_depth_giving_zero_layers_fails_before_training(capsys, preset: Path, tmp_path: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted(["depth_mults=[1.0, 0.1]"])],
        "depth_mults: depth_mult=0.1 keeps 0 of 4 layers; use depth_mult > 0.125 (1 layer)",
    )
    assert not (tmp_path / "run" / "teacher").exists()


def test_multipliers_giving_the_same_subnet_fail_before_training(
    capsys, preset: Path, tmp_path: Path
) -> None:
    """depth_mults [1.0, 0.75, 0.7] trained and searched one model under two names (w1.00-d0.75 and
    w1.00-d0.70 keep the same layers of 6), at every width."""
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted(["depth_mults=[1.0, 0.75, 0.7]"])],
        "depth_mults: 0.75 and 0.70 both keep layers [0, 1, 2] of 4 on this model: drop one",
    )
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted(["width_mults=[1.0, 0.5, 0.49]"])],
        "width_mults: 0.50 and 0.49 both give 2 of 4 heads and 24 of 48 FFN neurons on this model: drop one",
    )
    assert not (tmp_path / "run" / "teacher").exists()


def test_unsupported_family(capsys, preset: Path, tmp_path: Path, minilm_dir: Path) -> None:
    gpt2 = tmp_path / "gpt2"
    transformers.GPT2Model(
        transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=30522)
    ).save_pretrained(gpt2)
    transformers.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(gpt2)
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={gpt2}"],
        "model_type 'gpt2' is not supported: it has no family table and no known layout "
        "(base_model has no module encoder.layer); supported families: bert, camembert, data2vec-text, "
        "distilbert, electra, ernie, roberta, roberta-prelayernorm, xlm-roberta",
    )


def test_hidden_size_that_heads_do_not_divide(capsys, preset: Path, tmp_path: Path, minilm_dir: Path) -> None:
    """A config.json edited to 5 heads on a hidden size of 32 ended train.py in a traceback."""
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)  # hidden size 32
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "num_attention_heads": 5}))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={model}", f"output_dir={tmp_path / 'run'}"],
        f"model '{model}': hidden size 32 is not a multiple of the head count 5 in its config.json; make the "
        "head count divide the hidden size there, or pass another model",
    )
    assert not (tmp_path / "run").exists()


def test_refused_family_says_why(capsys, preset: Path, tmp_path: Path, minilm_dir: Path) -> None:
    albert = tmp_path / "albert"
    transformers.AlbertModel(
        transformers.AlbertConfig(
            vocab_size=30522, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4
        )
    ).save_pretrained(albert)
    transformers.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(albert)
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={albert}"],
        "model_type 'albert' is not supported: ALBERT shares one set of layer weights across all its "
        "layers, so layers cannot be dropped or narrowed one at a time; supported families: bert, camembert, "
        "data2vec-text, distilbert, electra, ernie, roberta, roberta-prelayernorm, xlm-roberta",
    )


def test_model_path_missing(capsys, preset: Path, tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "nope"
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={missing}"],
        f"model '{missing}' is neither a packaged model (all-minilm-l6-v2) nor an existing folder",
    )
    # The teacher's folder is named by its own key; flags may sit between the overrides.
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "seed=1", "--no-progress", f"teacher.path={missing}"],
        f"teacher.path '{missing}' is neither a packaged model (all-minilm-l6-v2) nor an existing folder",
        watch=tmp_path,
    )
    # A Hub id, which from_pretrained would download: the one line says how to get it here.
    for name in ("bert-base-uncased", "google-bert/bert-base-uncased"):
        _fails(
            capsys,
            train_main,
            ["--config", str(preset), f"model={name}"],
            f"model '{name}' is neither a packaged model (all-minilm-l6-v2) nor an existing folder; if it is a "
            f"Hub id: models are not downloaded, fetch it where there is a network (hf download {name} "
            "--local-dir DIR) and pass DIR",
        )
    # A mistyped folder under an existing one is not taken for a Hub id.
    monkeypatch.chdir(tmp_path.parent)
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={tmp_path.name}/nope"],
        f"model '{tmp_path.name}/nope' is neither a packaged model (all-minilm-l6-v2) nor an existing folder",
    )


def _damage(folder: Path, how: str) -> str:
    """Damage a saved model folder `how`; returns the one line train.py must print for it."""
    where = f"model folder '{folder}'"
    weights = folder / "model.safetensors"
    if how == "config not JSON":
        (folder / "config.json").write_text('{"model_type": "bert",')
        return f"{where}: config.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 23 (char 22))"
    if how == "no model_type":
        (folder / "config.json").write_text("{}")
        return f"{where}: config.json names no model_type: point to a Hugging Face model folder"
    if how == "unknown model_type":
        (folder / "config.json").write_text('{"model_type": "nonesuch"}')
        return (
            f"{where}: transformers {transformers.__version__} cannot read its config (model_type 'nonesuch'): "
            "The checkpoint you are trying to load has model type `nonesuch` but Transformers does not "
            "recognize this architecture. This could be because of an issue with the checkpoint, or because "
            "your version of Transformers is out of date."
        )
    if how == "no weights":
        weights.unlink()
        return f"{where} has no weights (model.safetensors or pytorch_model.bin): copy the whole model folder"
    if how == "weights cut short":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return f"{where}: model.safetensors cannot be read (Error while deserializing header: incomplete metadata, file not fully covered): copy it again"
    assert how == "no tokenizer"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    return (
        f"{where} has no tokenizer files (the tokenizer built from it knows only its 5 special tokens): "
        "copy the tokenizer saved with the model (tokenizer.json or vocab.txt) into it"
    )


def test_output_dir_that_is_a_file(capsys, preset: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"output_dir={afile}"],
        f"output_dir '{afile}' is a file; choose a new or empty output_dir",
        watch=tmp_path,
    )


@pytest.mark.parametrize("name", ["checkpoints", "teacher", "stage_w", "supernet"])
def test_a_file_where_the_run_keeps_a_folder_is_refused_first(
    capsys, preset: Path, tmp_path: Path, name: str
) -> None:
    """A file named checkpoints in output_dir was a NotADirectoryError traceback at the first checkpoint."""
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_text("mine")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted([])],
        f"output_dir '{run}' holds a file named {name}, where the run keeps a folder; move it out or choose "
        "a new output_dir",
        watch=tmp_path,
    )


@pytest.mark.parametrize(
    "how",
    [
        "config not JSON",
        "no model_type",
        "unknown model_type",
        "no weights",
        "weights cut short",
        "no tokenizer",
    ],
)
def test_a_damaged_model_folder_is_one_line_before_anything_is_written(
    capsys, preset: Path, tmp_path: Path, minilm_dir: Path, how: str
) -> None:
    """Each was a traceback (two of them after config.yaml was written), and a folder without
    tokenizer files trained at chance: transformers builds a tokenizer that maps every word to [UNK]."""
    folder = save_tiny_model_dir(tmp_path / "damaged", minilm_dir)
    message = _damage(folder, how)
    _fails(capsys, train_main, ["--config", str(preset), f"model={folder}"], message, watch=tmp_path)


def test_tokenizer_does_not_fit(capsys, preset: Path, tmp_path: Path, minilm_dir: Path) -> None:
    small = save_tiny_model_dir(tmp_path / "small-vocab", minilm_dir)
    config = json.loads((small / "config.json").read_text())
    config["vocab_size"] = 1000
    (small / "config.json").write_text(json.dumps(config))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={small}"],
        "tokenizer vocabulary (30522 tokens) does not fit the model's embedding table (1000 rows): "
        "use the tokenizer saved with this model",
    )


def test_max_length_beyond_the_position_table(capsys, preset: Path, tmp_path: Path) -> None:
    # The tiny model has 128 positions: a longer data.max_length would end in an IndexError mid-training.
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "data.max_length=129"],
        "data.max_length 129 exceeds the 128 positions the model has (max_position_embeddings 128); "
        "set data.max_length <= 128",
        watch=tmp_path,
    )


def test_data_file_missing(capsys, preset: Path, tmp_path: Path) -> None:
    missing = tmp_path / "data.csv"
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={missing}"],
        f"task '{missing}' is neither a packaged task (rt-sentences, trec, sms-spam, rt-scores) "
        "nor an existing file or directory",
    )


def test_column_missing(capsys, preset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"sentence {i},{i % 2}\n" for i in range(40)))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={data}", "data.text_column=txt"],
        "column 'txt' not found in data.csv (set data.text_column); columns present: label, text",
        watch=tmp_path / "data.csv",
    )


def test_empty_split(capsys, preset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\n")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={data}"],
        "data.csv has no data rows: add examples",
    )


def test_labels_not_a_class_set(capsys, preset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": f"s {i}", "label": i / 7}) + "\n" for i in range(40)))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={data}", "data.task_kind=classification"],
        "column 'label' in data.jsonl holds non-integer labels (e.g. 0.14285714285714285): labels must be "
        "class ids or class names; set data.task_kind=regression for continuous targets",
    )


def test_regression_target_not_numeric(capsys, preset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,score\n" + "".join(f"s {i},{'high' if i == 7 else i / 3}\n" for i in range(40)))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={data}", "data.label_column=score", "data.task_kind=regression"],
        "column 'score' in data.csv holds a non-numeric value 'high' (data row 8): regression targets must be numbers",
    )
    assert not (tmp_path / "run").exists()


def test_task_kind_the_model_head_cannot_serve(
    capsys, preset: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    classifier = save_tiny_model_dir(tmp_path / "classifier", minilm_dir, head="seq-cls")  # 2 labels
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"model={classifier}", "task=rt-scores"],
        f"model '{classifier}' has a sequence classifier with 2 labels, which cannot serve the regression "
        "task (needs a regression head (num_labels=1, problem_type=regression)); pass its base model or a "
        "matching checkpoint",
    )
    assert not (tmp_path / "run").exists()


def test_unknown_task_kind(capsys, preset: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), "data.task_kind=ner"],
        "data.task_kind must be one of auto, classification, regression, token-classification, "
        "question-answering, got 'ner'",
    )


def test_bad_data_leaves_nothing_behind(capsys, preset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"sentence {i},{'' if i == 5 else i % 2}\n" for i in range(40)))
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"task={data}"],
        "column 'label' in data.csv has 1 missing value(s) (first at data row 6): fill or drop those rows",
    )
    # No run folder, so the corrected command is not refused as "already holds a run".
    assert not (tmp_path / "run").exists()


def test_teacher_that_cannot_serve_the_task_leaves_nothing_behind(
    capsys, preset: Path, tmp_path: Path
) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted([f"teacher.path={preset.parent / 'tiny-model'}"])],
        f"teacher.path '{preset.parent / 'tiny-model'}' is not a sequence classifier with 2 labels; "
        "pass a task-tuned teacher or leave teacher.path empty to fine-tune one",
    )
    assert not (tmp_path / "run").exists()


def test_run_that_stopped_before_its_first_step_counts_as_new(preset: Path, tmp_path: Path) -> None:
    """An older version wrote config.yaml before checking the data; such a folder is not a run to
    resume. Run with another config, it is refused (a config.yaml alone may be the user's, tuned by
    hand: test_a_saved_config_alone_that_differs_is_not_taken_over); with the same, it trains anew."""
    from supernet.config import TrainConfig, load_config, save_config
    from supernet.trainer import RunError, _Job

    run = tmp_path / "run"
    run.mkdir()
    stale = load_config(TrainConfig, preset, ["learning_rate=0.5"])
    save_config(stale, run / "config.yaml")
    (run / ".DS_Store").write_bytes(b"\0")  # hidden files aside (a desktop's litter)
    cfg = load_config(TrainConfig, preset, [])
    with pytest.raises(RunError, match="holds a config.yaml but no run, and this config differs from it"):
        _Job(cfg, progress=False).check_run_dir()
    save_config(cfg, run / "config.yaml")
    job = _Job(cfg, progress=False)
    job.check_run_dir()  # neither "already holds a run" nor "resume refused"
    assert job.fresh
    job.prepare_run_dir()
    assert load_config(TrainConfig, run / "config.yaml", []) == cfg
    (run / "teacher").mkdir()  # one finished stage: now it is a run
    job.release()  # that job has ended (while it holds the folder, a second one is told so first)
    with pytest.raises(RuntimeError, match="already holds a run; pass resume=true"):
        _Job(cfg, progress=False).check_run_dir()


def test_output_dir_not_writable(capsys, preset: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"output_dir={blocker / 'run'}"],
        f"output_dir '{blocker / 'run'}' cannot be written: {blocker} is a file; choose another",
        watch=tmp_path / "a-file",
    )


def test_output_dir_that_is_not_a_run_is_left_alone(capsys, preset: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("do not touch")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"output_dir={mine}"],
        f"output_dir '{mine}' exists and is not a run directory; choose a new or empty output_dir",
        watch=mine,
    )


@pytest.mark.parametrize("kept", ["other-tool", "the-preset"])
def test_a_config_yaml_train_did_not_write_is_left_alone(
    capsys, preset: Path, tmp_path: Path, kept: str
) -> None:
    """A folder holding only a config.yaml was taken for a run that stopped before its first step,
    and the file replaced: another tool's file, or the --config preset itself (its comments lost)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    config = mine / "config.yaml"
    if kept == "other-tool":
        config.write_text("services:\n  web: {image: nginx}\n")
        argv = ["--config", str(preset), f"output_dir={mine}"]
    else:
        config.write_text("# my notes on this experiment\n" + preset.read_text())
        argv = ["--config", str(config), f"output_dir={mine}"]
    message = (
        f"output_dir '{mine}' holds a config.yaml that train.py did not write (a preset, or another tool's "
        "file), which the run would replace; move it out or choose a new output_dir"
    )
    _fails(capsys, train_main, argv, message, watch=mine)
    (mine / "notes.txt").write_text("beside it")  # said the same, not "already holds a run"
    _fails(capsys, train_main, [*argv, "resume=true"], message, watch=mine)


def test_a_saved_config_beside_own_files_is_not_a_run(capsys, preset: Path, tmp_path: Path) -> None:
    """A project folder holding a config.yaml saved from --print-config (train.py's own layout) and
    files of the user's: it was told "already holds a run; pass resume=true", and resume=true then
    replaced the user's teacher/ folder with the fine-tuned teacher."""
    from supernet.config import TrainConfig, load_config, save_config

    mine = tmp_path / "mine"
    (mine / "teacher").mkdir(parents=True)
    (mine / "teacher" / "README.md").write_text("my own model card")
    (mine / "notes.txt").write_text("do not touch")
    save_config(load_config(TrainConfig, preset, [f"output_dir={mine}"]), mine / "config.yaml")
    (mine / ".DS_Store").write_bytes(b"\0")  # a desktop's litter is not named
    message = (
        f"output_dir '{mine}' holds a config.yaml and other files (teacher/, notes.txt) but no run train.py "
        "trained (no inputs.json, train_metrics.jsonl, eval.jsonl, checkpoint or saved model); move them "
        "out or choose a new output_dir"
    )
    for extra in ([], ["resume=true"]):
        _fails(capsys, train_main, ["--config", str(mine / "config.yaml"), *extra], message, watch=mine)
    # Folders first and marked: the teacher/ the run would replace was hidden in "and 1 more".
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (mine / name).write_text("mine")
    _fails(
        capsys,
        train_main,
        ["--config", str(mine / "config.yaml")],
        message.replace("(teacher/, notes.txt)", "(teacher/, a.txt, b.txt, c.txt and 2 more)"),
        watch=mine,
    )


@pytest.mark.slow
def test_a_run_config_with_a_key_of_a_newer_version_is_named(
    capsys, trained_run: Path, tmp_path: Path
) -> None:
    """A run's config.yaml with a key this version does not know (written by a newer one): the error
    names the file, not only the key (the --config file given is fine)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text() + "a_newer_key: 1\n")
    _fails(
        capsys,
        train_main,
        ["--config", str(trained_run / "config.yaml"), f"output_dir={run}", "resume=true"],
        f"{config}: unknown config key 'a_newer_key'",
        watch=run,
    )


def test_a_preset_passed_without_config_flag_is_pointed_at(capsys, preset: Path) -> None:
    for argv, hint in (
        ([str(preset), "seed=1"], f": python train.py --config {preset} ..."),
        (["seed=1"], ""),
    ):
        with pytest.raises(SystemExit) as exit_info:
            train_main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"train.py: error: the following arguments are required: --config{hint} (usage: train.py --help)"
        )


def test_debug_shows_traceback(capsys, preset: Path) -> None:
    with pytest.raises(Exception, match="did you mean 'learning_rate'"):
        train_main(["--config", str(preset), "learning_rat=1e-4", "--debug"])


def test_search_and_export_need_a_run(capsys, tmp_path: Path) -> None:
    _fails(
        capsys,
        search_main,
        ["--run", str(tmp_path), "--latency-budget-ms", "5"],
        f"'{tmp_path}' is not a run directory (no config.yaml): run train.py first",
    )
    _fails(
        capsys,
        export_main,
        ["--run", str(tmp_path)],
        f"'{tmp_path}' is not a run directory (no config.yaml): run train.py first",
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--dtype", "bfloat16", "--backend", "onnxruntime"],
            "--dtype bfloat16 needs backend torch: the ONNX graphs are float32 (or int8 with --int8)",
        ),
        (
            ["--dtype", "float16", "--latency-table", "table.json"],
            "--dtype float16: a latency table times the float32 (or int8) ONNX graphs; drop --dtype",
        ),
    ],
)
def test_search_dtype_needs_torch(flags, message, capsys, tmp_path: Path) -> None:
    # Refused before the run is opened (or the table read): nothing is written.
    _fails(capsys, search_main, ["--run", str(tmp_path), *flags], message, watch=tmp_path)


def test_search_int8_needs_onnxruntime(capsys, tmp_path: Path) -> None:
    # Refused before the run is even opened: nothing is written.
    _fails(
        capsys,
        search_main,
        ["--run", str(tmp_path), "--int8"],
        "--int8 needs backend onnxruntime (--backend onnxruntime)",
        watch=tmp_path,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--verify-top", "-1"],
            "--verify-top must be >= 1 (the per-layer subnets a --per-layer search keeps), got -1",
        ),
        (
            ["--verify-top", "0"],
            "--verify-top must be >= 1 (the per-layer subnets a --per-layer search keeps), got 0",
        ),
        (["--per-layer", "--population", "1"], "--population must be >= 2, got 1"),
        (["--latency-budget-ratio", "0"], "--latency-budget-ratio must be in (0, 1], got 0.0"),
        (["--latency-budget-ratio", "1.5"], "--latency-budget-ratio must be in (0, 1], got 1.5"),
        (["--latency-budget-ms", "inf"], "--latency-budget-ms must be a finite number > 0, got inf"),
        (["--latency-budget-ms", "nan"], "--latency-budget-ms must be a finite number > 0, got nan"),
        (["--device", "tpu"], "--device must be 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'"),
        (["--device", "cuda:x"], "--device must be 'cpu', 'cuda' or 'cuda:<index>', got 'cuda:x'"),
        (["--threads", "0"], "--threads must be > 0, got 0"),
        (["--warmup", "-1"], "--warmup must be >= 0, got -1"),
        (["--repeats", "0"], "--repeats must be > 0, got 0"),
    ],
)
def test_search_refuses_bad_settings_before_the_run_is_opened(capsys, tmp_path: Path, flags, message) -> None:
    # A negative --verify-top used to slice candidates off the end; a population of 1 and an unknown
    # device were tracebacks; a budget ratio out of range, and an infinite budget, were refused only
    # after the whole grid was timed. Each names the flag, not SearchConfig's field (num_threads).
    _fails(capsys, search_main, ["--run", str(tmp_path), *flags], message, watch=tmp_path)


def test_per_layer_options_without_per_layer_are_said_to_do_nothing(capsys, tmp_path: Path) -> None:
    """--accuracy-subset 10 --population 7 without --per-layer were taken without a word."""
    code = search_main(["--run", str(tmp_path / "none"), "--accuracy-subset", "10", "--population", "7"])
    shown = capsys.readouterr()
    assert code == 2 and shown.out.splitlines()[0] == (
        "note: --population and --accuracy-subset ignored: they set the per-layer search (--per-layer)"
    )
    assert search_main(["--run", str(tmp_path / "none"), "--per-layer", "--population", "7"]) == 2
    assert "ignored" not in capsys.readouterr().out
    # One flag: "it sets"; an invalid value is an error, not first a note.
    assert search_main(["--run", str(tmp_path / "none"), "--generations", "2"]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        "note: --generations ignored: it sets the per-layer search (--per-layer)"
    )
    assert search_main(["--run", str(tmp_path / "none"), "--population", "1"]) == 2
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err == "error: --population must be >= 2, got 1\n"


@pytest.mark.slow
def test_train_shows_a_bar_for_every_long_step(capsys, tmp_path: Path, minilm_dir: Path) -> None:
    """The teacher's dev and test scoring and the importance passes ran silent (a minute on the
    packaged task's whole dev split, more on a large one); each has a bar now, and --no-progress hides them."""
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    preset = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    argv = ["--config", preset, f"model={model}", *TINY_RUN, "importance.num_batches=null"]
    assert train_main([*argv, f"output_dir={tmp_path / 'shown'}"]) == 0
    bars = capsys.readouterr().err.replace("\r", "\n").splitlines()
    shown = {line.split(":")[0] for line in bars if re.match(r"[a-z ]+: +\d+%", line)}
    assert {"teacher dev", "teacher test", "importance"} <= shown, (
        shown
    )  # the teacher's are cleared when done
    # importance: one backward pass and 4 + 1 forward passes (4 layers) over the 32 dev sentences' one batch.
    assert any(line.startswith("importance: 100%") and "| 6/6 " in line for line in bars), bars
    # resume=true where there is no run says it starts a new one (a mistyped path is not silent).
    assert train_main([*argv, f"output_dir={tmp_path / 'hidden'}", "--no-progress", "resume=true"]) == 0
    shown = capsys.readouterr()
    assert shown.err == ""
    # (After TINY_RUN's learning_rate and stage_w notes: the preset sets every stage's rate and has no
    # stage W.)
    assert shown.out.splitlines()[:3] == [
        "note: learning_rate=0.001 is not used: every stage this run trains sets its own "
        "(stage_wd.learning_rate=0.0003) and the teacher uses teacher.learning_rate=0.0001; override those",
        "note: stage_w.max_steps=2 is not used: recipe 'single-stage' has no stage W (it trains stage_wd only)",
        f"note: output_dir '{tmp_path / 'hidden'}' holds no run to resume: starting a new one there",
    ]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, minilm_dir) -> Path:
    """One tiny finished run shared by the tests below (they must not modify it)."""
    root = tmp_path_factory.mktemp("trained")
    model = save_tiny_model_dir(root / "model", minilm_dir)
    run = root / "run"
    assert (
        train_main(
            [
                "--config",
                str(Path(__file__).parents[1] / "configs" / "quickstart.yaml"),
                "--no-progress",
                f"model={model}",
                f"output_dir={run}",
                *TINY_RUN,
            ]
        )
        == 0
    )
    return run


@pytest.mark.slow
def test_resume_with_changed_config_lists_keys(capsys, trained_run: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(trained_run / "config.yaml"), "resume=true", "batch_size=8", "seed=7"],
        "resume refused: the config differs from the run's (seed: 42 -> 7; batch_size: 16 -> 8); "
        "undo the changes or start a new output_dir",
        watch=trained_run,
    )


@pytest.mark.slow
def test_a_moved_run_resumes_where_it_now_is(tmp_path: Path, trained_run: Path) -> None:
    # A run folder renamed or moved is the same run: resume accepts it (output_dir is not compared)
    # and records its new place (only that) in config.yaml, and nothing in it is trained again.
    moved = tmp_path / "renamed"
    shutil.copytree(trained_run, moved)
    before = (moved / "eval.jsonl").read_text()
    assert train_main(["--config", str(trained_run / "config.yaml"), "--no-progress", "resume=true",
                       f"output_dir={moved}"]) == 0  # fmt: skip
    saved = load_config(TrainConfig, moved / "config.yaml")
    assert saved.output_dir == str(moved)
    assert saved.resume is False  # only the place changed, not the run's own settings
    assert (moved / "eval.jsonl").read_text() == before
    assert config_changes(RunDir(moved), load_config(TrainConfig, trained_run / "config.yaml")) == []


@pytest.mark.slow
def test_existing_run_without_resume(capsys, trained_run: Path) -> None:
    _fails(
        capsys,
        train_main,
        ["--config", str(trained_run / "config.yaml")],
        f"output_dir '{trained_run}' already holds a run; pass resume=true to continue it or choose a new output_dir",
        watch=trained_run,
    )


@pytest.mark.slow
def test_budget_below_fastest_subnet(capsys, trained_run: Path) -> None:
    code = search_main(
        [
            "--run",
            str(trained_run),
            "--latency-budget-ms",
            "0.001",
            "--repeats",
            "3",
            "--warmup",
            "1",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    # Which subnet measures fastest on a tiny model is up to timing noise; the message's form is not.
    assert re.fullmatch(
        r"error: latency budget 0\.001 ms is below the fastest subnet \(w[0-9.]+-d[0-9.]+, [0-9.]+ ms\); "
        r"raise the budget to at least [0-9.]+ ms",
        err,
    ), err


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    ["weights", "random state", "state not JSON", "state a list", "state step not a number", "no optimizer"],
)
def test_corrupt_checkpoint(capsys, trained_run: Path, tmp_path: Path, damage: str) -> None:
    """A damaged random state was worse than a traceback: accelerate only logs it, so the resume went
    on and silently differed from the run it continued."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "supernet")  # make resume go back to the last checkpoint
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    state = ckpt / "trainer_state.json"
    message = f"checkpoint '{ckpt}' is corrupt or truncated; delete it to resume from the one before"
    if damage in ("weights", "random state"):
        damaged = ckpt / ("model.safetensors" if damage == "weights" else "random_states_0.pkl")
        damaged.write_bytes(damaged.read_bytes()[:100])  # truncated
    elif damage == "no optimizer":  # it was only called corrupt, not named
        (ckpt / "optimizer.bin").unlink()
        message = (
            f"checkpoint '{ckpt}' is incomplete (no optimizer.bin); delete it to resume from the one before"
        )
    else:
        text, reason = {
            "state not JSON": (
                '{"stage": "stage_wd",',
                "Expecting property name enclosed in double quotes: line 1 column 22 (char 21)",
            ),
            "state a list": ("[1, 2]", "no stage"),
            "state step not a number": (
                state.read_text().replace('"stage_step": ', '"stage_step": "x", "was": '),
                "stage_step is not a step count",
            ),
        }[damage]
        state.write_text(text)
        message = (
            f"checkpoint '{ckpt}' has a damaged trainer_state.json ({reason}); delete that checkpoint folder "
            "to resume from the one before"
        )
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(str(trained_run), str(run)))
    _fails(capsys, train_main, ["--config", str(config), "resume=true", "--no-progress"], message, watch=run)


@pytest.mark.slow
def test_corrupt_supernet_weights(capsys, trained_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    weights = run / "supernet" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    _fails(
        capsys,
        search_main,
        ["--run", str(run), "--latency-budget-ms", "5"],
        f"'{run / 'supernet'}' could not be loaded (corrupt or truncated weights?); delete it and rerun "
        "train.py with resume=true",
        watch=run,
    )


@pytest.mark.slow
def test_missing_supernet_weights_are_named(capsys, trained_run: Path, tmp_path: Path) -> None:
    """Without supernet/model.safetensors, export of the chosen subnet blamed a retraining (the digest of
    no files differs from the search's) and search blamed corrupt weights."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    fast = ["--repeats", "2", "--warmup", "1", "--threads", "1", "--no-progress"]
    assert search_main(["--run", str(run), "--latency-budget-ms", "10000", *fast]) == 0
    (run / "supernet" / "model.safetensors").unlink()
    message = (
        f"'{run / 'supernet' / 'model.safetensors'}' is missing (the folder holds no weights): put it back, "
        f"or delete '{run / 'supernet'}' and rerun train.py with resume=true"
    )
    _fails(capsys, export_main, ["--run", str(run), "--out", str(tmp_path / "exp"), "--no-onnx"], message)
    _fails(capsys, search_main, ["--run", str(run), "--latency-budget-ms", "5", *fast], message)
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_export_outside_space_warns(capsys, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    code = export_main(["--run", str(trained_run), "--subnet", "w0.60-d1.00", "--out", str(out), "--no-onnx"])
    assert code == 0
    stdout = capsys.readouterr().out.splitlines()
    assert (
        "warning: subnet w0.60-d1.00 is outside the trained search space (widths [1.0, 0.75, 0.5, 0.25], "
        "depths [1.0, 0.75, 0.5]): exporting it anyway, check its accuracy"
    ) in stdout
    # Exported as asked: 0.6 of 4 heads and of 48 neurons in every layer, parity-checked.
    parity = json.loads((out / "parity.json").read_text())
    assert parity["heads_per_layer"] == [2] * 4 and parity["ffn_per_layer"] == [29] * 4
    assert parity["parity_ok"] is True


@pytest.mark.slow
def test_export_refuses_to_overwrite(capsys, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    argv = ["--run", str(trained_run), "--subnet", "w0.50-d1.00", "--no-onnx", "--no-progress"]
    for flags in ([], ["--overwrite"]):  # the hint no longer offers --overwrite, which would be refused
        _fails(
            capsys,
            export_main,
            [*argv, "--out", str(out), *flags],
            f"'{out}' already exists and is not an earlier export (no parity.json): pass a new --out "
            "(export only ever replaces an earlier export)",
            watch=out,
        )
    # A parity.json of the user's own was enough for --overwrite to delete the folder, thesis and all.
    (out / "parity.json").write_text("{}")
    _fails(
        capsys,
        export_main,
        [*argv, "--out", str(out), "--overwrite"],
        f"'{out}' already exists and is not an earlier export (its parity.json is not one export.py wrote): "
        "pass a new --out (export only ever replaces an earlier export)",
        watch=out,
    )
    # A real export with a file of the user's added: refused, naming it; without it, replaced.
    export = tmp_path / "exp"
    assert export_main([*argv, "--out", str(export)]) == 0
    (export / "NOTES.md").write_text("mine")
    _fails(
        capsys,
        export_main,
        [*argv, "--out", str(export), "--overwrite"],
        f"'{export}' holds an earlier export and NOTES.md, which export.py did not write and replacing the "
        "folder would delete: move it out to replace the export, or pass a new --out",
        watch=export,
    )
    _fails(
        capsys,
        export_main,
        [*argv, "--out", str(export)],
        f"'{export}' holds an earlier export and NOTES.md, which export.py did not write and replacing the "
        "folder would delete: move it out to replace the export, or pass a new --out",
        watch=export,
    )
    (export / "NOTES.md").unlink()
    # Files named as an export could name them, which this one did not write (a --no-onnx export and
    # the user's own int8 graph and vocabulary): --overwrite deleted them. parity.json lists its files.
    assert "model.int8.onnx" not in json.loads((export / "parity.json").read_text())["files"]
    for name in ("model.int8.onnx", "vocab.json"):
        (export / name).write_text("mine")
        _fails(
            capsys,
            export_main,
            [*argv, "--out", str(export), "--overwrite"],
            f"'{export}' holds an earlier export and {name}, which export.py did not write and replacing the "
            "folder would delete: move it out to replace the export, or pass a new --out",
            watch=export,
        )
        (export / name).unlink()
    _fails(
        capsys,
        export_main,
        [*argv, "--out", str(export)],
        f"'{export}' holds an earlier export: pass --overwrite to replace it, or a new --out",
        watch=export,
    )
    # An immutable (chattr +i) export: its swap failed after the work, leaving an empty .exp.old-*
    # beside: refused by the check before the work, and, made unmovable after that check, at the
    # swap, the earlier export left as it was and nothing beside it. Root passes permission checks,
    # so the system's refusal is simulated.
    from supernet import export_cli

    real_unwritable, real_rename = export_cli.unwritable, Path.rename

    def unmovable(self, target):
        if self == export:
            raise PermissionError(1, "Operation not permitted")
        return real_rename(self, target)

    def unwritable(path, **kw):
        return "Operation not permitted" if Path(path) == export else real_unwritable(path, **kw)

    for owner, name, refusal in ((export_cli, "unwritable", unwritable), (Path, "rename", unmovable)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(owner, name, refusal)
            _fails(
                capsys,
                export_main,
                [*argv, "--out", str(export), "--overwrite"],
                f"'{export}' holds an earlier export that cannot be replaced (Operation not permitted): pass a "
                "new --out",
                watch=export,
            )
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".exp")) == [], name
    assert export_main([*argv, "--out", str(export), "--overwrite"]) == 0
    # Through a link: the linked export is replaced, the link stays a link (it became a folder).
    link = tmp_path / "latest"
    link.symlink_to(export)
    before = (export / "parity.json").stat().st_mtime_ns
    assert export_main([*argv, "--out", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and link.resolve() == export.resolve()
    assert (export / "parity.json").stat().st_mtime_ns != before


@pytest.mark.slow
def test_export_scores_dev_as_training_batched_it(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    """The quickstart preset reads dev longest first; the export's dev score uses the same batches."""
    from supernet import trainer

    calls: list[bool] = []
    real = trainer.make_dataloader

    def spy(*args, **kwargs):
        calls.append(kwargs.get("group_by_length", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "make_dataloader", spy)  # behind trainer.eval_dataloader
    out = tmp_path / "exp"
    assert (
        export_main(["--run", str(trained_run), "--subnet", "w0.50-d0.75", "--out", str(out), "--no-onnx"])
        == 0
    )
    assert calls == [True]  # the scoring loader (export's parity batch is read in stored order)
    trained = {
        row["subnet"]: row["accuracy"]
        for row in map(json.loads, (trained_run / "eval.jsonl").read_text().splitlines())
    }
    accuracy = json.loads((out / "parity.json").read_text())["accuracy"]
    assert accuracy["supernet"] == accuracy["torch"] == trained["w0.50-d0.75"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--opset", "5"], "--opset must be between 7 and 23 (what this torch exports), got 5"),
        (["--opset", "99"], "--opset must be between 7 and 23 (what this torch exports), got 99"),
        (["--int8", "--no-onnx"], "--int8 quantizes model.onnx: drop --no-onnx"),
    ],
)
def test_export_refuses_bad_onnx_flags_before_the_run_is_opened(
    capsys, tmp_path: Path, flags, message
) -> None:
    # Out-of-range opsets ran the whole export and silently wrote opset 18; --int8 --no-onnx was a
    # ValueError traceback after the model was loaded.
    from torch.onnx import _constants

    assert (_constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET) == (7, 23)  # this torch's range
    _fails(capsys, export_main, ["--run", str(tmp_path), *flags], message, watch=tmp_path)


@pytest.mark.slow
def test_an_opset_the_exporter_cannot_write_is_one_warning(
    capfd, caplog, trained_run: Path, tmp_path: Path
) -> None:
    """Opset 9 is in torch's range, but the TorchScript exporter cannot write a BERT at it: the
    fallback's file (opset 18) is named in one warning line, not a graph dump of hundreds of lines
    and a logged traceback. With --int8, onnxruntime's quantizer logged 24 lines of 'Failed to infer
    data type of tensor' on that graph."""
    out = tmp_path / "exp"
    argv = ["--run", str(trained_run), "--subnet", "w0.50-d1.00", "--out", str(out), "--opset", "9"]
    assert export_main([*argv, "--no-progress", "--int8"]) == 0
    assert not [r.getMessage() for r in caplog.records if r.name == "root"]  # (pytest takes root's records)
    shown = capfd.readouterr()
    assert "Torch IR graph" not in shown.out and shown.err == ""
    assert [line for line in shown.out.splitlines() if line.startswith("  ") and line.endswith(" ...")] == [
        "  writing model.safetensors ...",
        "  exporting and optimising model.onnx ...",
        "  quantizing model.int8.onnx ...",
    ]
    warning = [line for line in shown.out.splitlines() if line.startswith("warning: the TorchScript")]
    assert warning == [
        "warning: the TorchScript exporter failed (SymbolicValueError: Unsupported: ONNX export of Slice "
        "with dynamic inputs); model.onnx was written by the dynamo exporter, at opset 18 instead of 9, "
        "whose graph onnxruntime fuses less (see parity.json)"
    ]
    parity = json.loads((out / "parity.json").read_text())
    assert (parity["onnx_exporter"], parity["opset"]) == ("dynamo", 18)


@pytest.mark.slow
def test_export_shows_what_it_does_and_hides_bars_on_request(
    capsys, trained_run: Path, tmp_path: Path
) -> None:
    """Scoring every artefact on dev can take minutes on a large dev set: one bar over all of them,
    named by the artefact being scored; --no-progress hides it and the latency bar."""
    out = tmp_path / "exp"
    argv = ["--run", str(trained_run), "--subnet", "w0.50-d0.75", "--out", str(out), "--no-onnx"]
    capsys.readouterr()
    assert export_main(argv) == 0
    shown = capsys.readouterr()
    # Each file's step said before it (a minute of silence at BERT-base size before the first bar).
    assert shown.out.splitlines()[:2] == [
        "exporting w0.50-d0.75 (dense model) ...",
        "  writing model.safetensors ...",
    ]
    last = shown.err.replace("\r", "\n").splitlines()
    # tqdm draws 100% again as it closes when its last update was drawn too (a slow machine): 1-2 lines.
    score = [line for line in last if line.startswith("score dev: 100%")]
    assert len(score) in (1, 2) and all(line.rstrip().endswith("torch]") for line in score), shown.err
    total = score[-1].split("|")[2].split()[0]  # "N/N" over supernet and torch
    done, of = total.split("/")
    assert done == of and int(of) % 2 == 0
    assert any(line.startswith("latency: 100%") for line in last)
    # Folders of the user's beside it, named as the swap's were (OUT.new, OUT.old), are not touched.
    for sibling in ("exp.new", "exp.old"):
        (tmp_path / sibling).mkdir()
        (tmp_path / sibling / "notes.txt").write_text("mine")
    assert export_main([*argv, "--overwrite", "--no-progress"]) == 0
    hidden = capsys.readouterr()
    assert hidden.err == ""
    assert hidden.out.splitlines()[0] == "exporting w0.50-d0.75 (dense model) ..."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "exp.new", "exp.old"]  # no temporaries
    assert all((tmp_path / s / "notes.txt").read_text() == "mine" for s in ("exp.new", "exp.old"))
    assert (out / "parity.json").is_file()


@pytest.mark.slow
def test_export_refuses_bad_subnets_and_outputs_in_one_line(
    capsys, trained_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    argv = ["--run", str(run), "--no-onnx", "--no-progress"]
    afile = tmp_path / "afile"
    afile.write_text("mine")
    _fails(
        capsys,
        export_main,
        [*argv, "--subnet", "w0.50-d1.00", "--out", str(afile)],
        f"'{afile}' is a file: pass a folder to --out",
        watch=tmp_path,
    )
    assert afile.read_text() == "mine"
    _fails(
        capsys,
        export_main,
        [*argv, "--subnet", "w0.01-d1.00"],
        "--subnet w0.01-d1.00: width_mult=0.01 gives 0 of 4 heads; use width_mult > 0.125 (1 head)",
        watch=run,
    )
    _fails(
        capsys,
        export_main,
        [*argv, "--subnet", "w0.5.5-d1"],
        "subnet name 'w0.5.5-d1' is not of the form w<width>-d<depth>, e.g. w0.50-d0.75",
        watch=run,
    )
    chosen = run / "search" / "chosen.json"
    chosen.parent.mkdir(exist_ok=True)
    chosen.write_text('{"spec": {"width')
    _fails(
        capsys,
        export_main,
        [*argv, "--subnet", "best"],
        f"'{chosen}' cannot be read (Unterminated string starting at: line 1 column 11 (char 10)): "
        "run search.py again, or pass --subnet NAME",
        watch=run,
    )
    chosen.write_text('{"name": "w0.50-d1.00"}')
    _fails(
        capsys,
        export_main,
        [*argv, "--subnet", "best"],
        f"'{chosen}' is not a choice search.py wrote (no 'spec'): run search.py again, or pass --subnet NAME",
        watch=run,
    )


@pytest.mark.slow
def test_an_export_at_another_opset_is_not_compared_with_search(
    capsys, trained_run: Path, tmp_path: Path
) -> None:
    """search.py times the graph written at opset 18. An export at --opset 9 (the dynamo exporter's
    file, fused less) was set beside search's figure: "+99% here", put down to the machine."""
    from supernet.latency import graph_stamp

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    setting = LatencySetting(backend="onnxruntime", seq_len=16, warmup=1, repeats=3, num_threads=1)
    chosen = {
        "spec": SubnetConfig.from_name("w0.50-d1.00").to_dict(),
        "latency_ms": 1.0,
        "setting": setting.to_dict(),
        **graph_stamp(setting),
    }
    (run / "search").mkdir(exist_ok=True)
    (run / "search" / "chosen.json").write_text(json.dumps(chosen))
    for opset in ("17", "18"):
        out = tmp_path / f"opset-{opset}"
        assert export_main(["--run", str(run), "--out", str(out), "--opset", opset, "--no-progress"]) == 0
        said = capsys.readouterr().out.splitlines()
        compared = json.loads((out / "summary.json").read_text())["search_latency"]
        note = (
            "note: search timed w0.50-d1.00's graph written at opset 18; --opset 17 writes another, so "
            "search's figure is not compared"
        )
        if opset == "17":
            assert note in said and compared is None
            assert not any(line.startswith("  search timed") for line in said)
        else:  # the graph search timed: compared
            assert note not in said and compared["search_ms"] == 1.0
            assert compared["artefact"] == "onnxruntime"
            assert any(line.startswith("  search timed model.onnx at 1.00 ms: ") for line in said)


@pytest.mark.slow
def test_search_on_a_device_this_machine_lacks(capsys, trained_run: Path, monkeypatch) -> None:
    """--device cuda without a usable GPU is one line before anything is loaded, not a torch assertion."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(
        capsys,
        search_main,
        ["--run", str(trained_run), "--device", "cuda", "--no-progress"],
        f"cannot measure latency on cuda: this torch ({torch.__version__}) sees no CUDA device; "
        "search on the machine you target (or --device cpu)",
        watch=trained_run,
    )


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_export_of_a_gpu_search_on_a_cpu_machine(
    capsys, trained_run: Path, tmp_path: Path, monkeypatch, dtype: str
) -> None:
    """Search ran on a GPU, the export runs where there is none: files as usual, latency on the CPU
    (in float32: a bfloat16 figure is the GPU's), and no search-vs-export comparison across two devices."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    chosen = {
        "spec": SubnetConfig.from_name("w0.50-d1.00").to_dict(),
        "latency_ms": 1.0,
        "setting": LatencySetting(device="cuda", seq_len=16, warmup=1, repeats=3, dtype=dtype).to_dict(),
    }
    (run / "search").mkdir(exist_ok=True)
    (run / "search" / "chosen.json").write_text(json.dumps(chosen))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "exp"
    assert export_main(["--run", str(run), "--subnet", "w0.50-d1.00", "--out", str(out), "--no-onnx"]) == 0
    stdout = capsys.readouterr().out
    assert (
        f"note: search measured on cuda, but this torch ({torch.__version__}) sees no CUDA device: "
        "latency measured on cpu here" + ("" if dtype == "float32" else " in float32 (search timed bfloat16)")
    ) in stdout.splitlines()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setting"] == {k: v for k, v in chosen["setting"].items() if k != "dtype"} | {
        "device": "cpu"
    }
    assert summary["search_latency"] is None
    assert summary["latency"]["torch"]["repeats"] == 3
    # The folder says where it was cut from, as chosen.json does (a probe found it said nothing).
    from supernet.io import weights_digest
    from supernet.profile_kit import run_identity

    assert summary["run"] == run_identity(run) and summary["run"]["name"] == "run"
    assert summary["weights_sha256"] == weights_digest(trained_run / "supernet")


@pytest.mark.slow
def test_search_seq_len_beyond_the_position_table(capsys, trained_run: Path) -> None:
    _fails(
        capsys,
        search_main,
        ["--run", str(trained_run), "--seq-len", "129", "--no-progress"],
        "--seq-len: seq_len 129 exceeds the 128 positions the model has (max_position_embeddings 128); "
        "pass a shorter --seq-len",
        watch=trained_run,
    )


@pytest.mark.slow
def test_export_refuses_bad_threads_before_writing(capsys, trained_run: Path, tmp_path: Path) -> None:
    _fails(
        capsys,
        export_main,
        [
            "--run",
            str(trained_run),
            "--subnet",
            "w0.50-d1.00",
            "--out",
            str(tmp_path / "exp"),
            "--threads",
            "0",
        ],
        "--threads must be >= 1, got 0",
        watch=tmp_path,
    )


def test_a_file_as_the_run_is_named_as_such(capsys, tmp_path: Path) -> None:
    # It said "the run's search folder '.../search' is not writable: ... is a file; pass --out DIR".
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    message = f"--run '{notes}' is a file, not a run directory: pass the output_dir train.py wrote"
    _fails(capsys, search_main, ["--run", str(notes)], message, watch=tmp_path)
    assert notes.read_text() == "mine"


def test_more_threads_than_cores_are_refused_before_anything_is_timed(capsys, tmp_path: Path) -> None:
    # 64 threads on 2 cores timed a 6 ms subnet at 747 ms, cached it and chose by it, without a word;
    # 1000 threads made a search of 13 hours.
    from supernet.profile_kit_script import usable_cores

    cores = usable_cores()
    message = (
        f"--threads {cores + 1} is more than the {cores} core{'s' if cores > 1 else ''} this process may run on: "
        f"the extra threads would wait for each other, not time the model; pass --threads {cores} or fewer"
    )
    _fails(
        capsys, search_main, ["--run", str(tmp_path), "--threads", str(cores + 1)], message, watch=tmp_path
    )
    out = tmp_path / "exp"
    argv = ["--run", str(tmp_path), "--subnet", "w0.50-d1.00", "--out", str(out), "--threads", str(cores + 1)]
    _fails(capsys, export_main, argv, message, watch=tmp_path)


def test_export_times_a_searched_setting_with_at_most_the_cores_here(monkeypatch) -> None:
    # Without --threads, export.py took search's thread count (a bigger machine's, or a device's
    # latency table's) as it was, and timed 8 threads on 2 cores.
    from supernet import export_cli

    monkeypatch.setattr(export_cli, "usable_cores", lambda: 2)
    setting, note = export_cli._threads_here(LatencySetting(num_threads=8, batch_size=4))
    assert setting == LatencySetting(num_threads=2, batch_size=4)
    assert (
        note
        == "note: search timed with --threads 8, more than the 2 cores here: latency timed with --threads 2"
    )
    for fits in (LatencySetting(num_threads=2), LatencySetting()):
        assert export_cli._threads_here(fits) == (fits, None)


def test_a_learning_rate_no_stage_uses_is_said(tmp_path: Path, capsys) -> None:
    """The presets set every stage's learning rate: learning_rate=... on the command line is said to
    change nothing (before the run starts), naming the keys that would."""
    from supernet.trainer import unused_learning_rate

    taken = tmp_path / "a-file"
    taken.write_text("mine")
    preset = Path(__file__).resolve().parents[1] / "configs"
    assert (
        train_main(["--config", str(preset / "quickstart.yaml"), "learning_rate=5e-5", f"output_dir={taken}"])
        == 2
    )
    assert capsys.readouterr().out.splitlines()[0] == (
        "note: learning_rate=5e-05 is not used: every stage this run trains sets its own "
        "(stage_wd.learning_rate=0.0003) and the teacher uses teacher.learning_rate=0.0001; override those"
    )
    # DynaBERT's preset leaves stage W at the default: the top-level rate is used there.
    assert unused_learning_rate(load_config(TrainConfig, preset / "rt-minilm-dynabert.yaml")) is None
    given = load_config(TrainConfig, preset / "quickstart.yaml", ["teacher.path=somewhere"])
    assert unused_learning_rate(given) == (
        "note: learning_rate=0.0001 is not used: every stage this run trains sets its own "
        "(stage_wd.learning_rate=0.0003); override those"
    )
    # A stage without a rate of its own uses it.
    assert (
        unused_learning_rate(
            load_config(TrainConfig, preset / "quickstart.yaml", ["stage_wd.learning_rate=null"])
        )
        is None
    )


def test_stage_w_under_a_recipe_without_it_is_said(tmp_path: Path, capsys) -> None:
    """stage_w.max_steps on the single-stage recipe changed nothing without a word."""
    preset = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    mine = tmp_path / "mine.yaml"
    mine.write_text(preset.read_text() + "stage_w:\n  max_steps: 5\n")
    taken = tmp_path / "a-file"
    taken.write_text("mine")
    argv = [f"output_dir={taken}", "stage_w.learning_rate=1e-3"]
    assert train_main(["--config", str(mine), *argv]) == 2
    assert capsys.readouterr().out.splitlines()[0] == (
        "note: stage_w.max_steps=5, stage_w.learning_rate=0.001 are not used: recipe 'single-stage' has no "
        "stage W (it trains stage_wd only)"
    )
    # A two-stage recipe reads them: nothing to say.
    assert train_main(["--config", str(mine), *argv, "recipe=dynabert", "smallest_weight=1"]) == 2
    assert "stage_w" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["recipe=dynabert", "smallest_weight=1"],  # the quickstart preset's num_random_subnets is 1
            "num_random_subnets works with recipe=sandwich or single-stage only; set num_random_subnets=2 or "
            "one of those recipes (recipe is 'dynabert')",
        ),
        (
            ["distill.teacher_width=full"],
            "distill.teacher_width works with the two-stage recipes only (dynabert, layerdrop, sandwich); set "
            "distill.teacher_width=same or one of those recipes (recipe is 'single-stage', which has no "
            "stage-W net to take a teacher's width from)",
        ),
    ],
)
def test_an_option_the_recipe_does_not_read_is_refused_for_a_new_run(
    tmp_path: Path, capsys, overrides: list[str], message: str
) -> None:
    """Set under another recipe they trained nothing, without a word. A run saved before the check
    with such an option still loads (search, export) and starts its resume."""
    preset = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    run = tmp_path / "run"
    argv = ["--config", str(preset), f"output_dir={run}", *overrides]
    assert train_main(argv) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert train_main([*argv, "--print-config"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not run.exists()
    # An earlier version saved such a config: it loads, and train.py goes past the check to resume it.
    run.mkdir()
    save_config(load_config(TrainConfig, preset, [f"output_dir={run}", *overrides]), run / "config.yaml")
    assert load_config(TrainConfig, run / "config.yaml").recipe in ("dynabert", "single-stage")
    # A folder with only its config.yaml (a start killed at once) trains afresh: the check applies.
    assert train_main(["--config", str(run / "config.yaml"), "resume=true"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    (run / "train_metrics.jsonl").write_text("")  # more than a killed start's lone config.yaml
    # (Another task stops the resume at its config check, after the recipe check it no longer meets.)
    assert train_main(["--config", str(run / "config.yaml"), "resume=true", "task=trec"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: resume refused: the config differs from the run's (task:"
    )


def test_print_config_shows_the_config_a_run_would_use(tmp_path: Path, capsys) -> None:
    """There was no way to check a preset and its overrides short of starting a run."""
    preset = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    argv = ["--config", str(preset), "--print-config", "seed=3", "data.max_length=48", "stage_w.epochs=1"]
    assert train_main(argv) == 0
    shown = capsys.readouterr()
    # The notes on stderr, the YAML alone on stdout: kept as a file, it loads back to the same config.
    assert shown.err == (
        "note: stage_w.epochs=1.0 is not used: recipe 'single-stage' has no stage W (it trains stage_wd only)\n"
    )
    kept = tmp_path / "mine.yaml"
    kept.write_text(shown.out)
    wanted = load_config(TrainConfig, preset, ["seed=3", "data.max_length=48", "stage_w.epochs=1"])
    assert load_config(TrainConfig, kept) == wanted
    assert train_main(["--config", str(preset), "--print-config", "seed=-1"]) == 2
    assert capsys.readouterr() == ("", "error: seed must be >= 0, got -1\n")


def test_print_config_notes_the_paths_this_machine_lacks(tmp_path: Path, capsys) -> None:
    """--print-config said nothing of a model, teacher or data file that is not there: the run it
    printed was refused at once. A config may be printed to run on another machine, so these are notes
    on stderr, not a refusal, and only for a new run (a resume reads the paths its run recorded)."""
    preset = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    overrides = [
        f"output_dir={tmp_path / 'run'}",
        f"model={tmp_path / 'no-model'}",
        f"teacher.path={tmp_path}",
        f"task={tmp_path / 'rows.csv'}",
    ]
    assert train_main(["--config", str(preset), "--print-config", *overrides]) == 0
    shown = capsys.readouterr()
    refused = "note: train.py would refuse this config here: "
    assert shown.err.splitlines() == [
        f"{refused}model '{tmp_path / 'no-model'}' is neither a packaged model (all-minilm-l6-v2) nor an "
        "existing folder",
        f"{refused}teacher.path folder '{tmp_path}' has no config.json: point to a Hugging Face model folder",
        f"{refused}task '{tmp_path / 'rows.csv'}' is neither a packaged task (rt-sentences, trec, sms-spam, "
        "rt-scores) nor an existing file or directory",
    ]
    kept = tmp_path / "printed.yaml"
    kept.write_text(shown.out)
    assert load_config(TrainConfig, kept) == load_config(TrainConfig, preset, overrides)
    # The note is the run's own refusal.
    assert train_main(["--config", str(preset), *overrides]) == 2
    assert capsys.readouterr().err == f"error: {shown.err.splitlines()[0].removeprefix(refused)}\n"


def test_one_search_or_export_of_a_run_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Two searches into one folder at once: the later writer won without a word and the other said
    the opposite; an export timed with a setting a search wrote meanwhile. The second one waits."""
    import threading

    from supernet import export_cli, search_cli
    from supernet import io as io_module
    from supernet.io import RunDir, one_timing_job

    run = tmp_path / "run"
    run.mkdir()
    lines: list[str] = []
    entered = threading.Event()
    # One that waited lets the other end before it times (the holder's exit read as load).
    settled: list[float] = []
    monkeypatch.setattr(io_module, "time", types.SimpleNamespace(sleep=settled.append))

    def second() -> None:
        with one_timing_job(run, lines.append):
            entered.set()

    with one_timing_job(run, lines.append):
        waiter = threading.Thread(target=second)
        waiter.start()
        for _ in range(200):  # the waiting line comes before it blocks
            if lines:
                break
            threading.Event().wait(0.01)
        assert not entered.wait(0.2)  # held: it waits
    waiter.join(5)
    assert entered.is_set() and settled == [io_module.SETTLE_S] == [2.0]
    assert lines == [
        f"waiting for another search.py or export.py of run '{run}' to finish (they would time each "
        "other, and write the same files) ..."
    ]
    # A thread already holding the run passes through (a script searching, then exporting, in one hold).
    with one_timing_job(run, lines.append), one_timing_job(run, lines.append):
        pass
    assert len(lines) == 1
    # Ctrl-C while waiting says so (it said a batch of subnets being timed "starts again").
    import fcntl

    real_flock = fcntl.flock

    def busy(fd, op):
        if op & fcntl.LOCK_NB:
            raise BlockingIOError
        if op & fcntl.LOCK_EX:
            raise KeyboardInterrupt
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", busy)
    with pytest.raises(KeyboardInterrupt) as info, one_timing_job(run, lines.append):
        pass
    assert str(info.value) == "interrupted while waiting: nothing was timed or written"
    monkeypatch.setattr(fcntl, "flock", real_flock)
    lines.clear()
    # A folder that is not there (yet) holds nothing: the run's own checks say what is wrong.
    with one_timing_job(tmp_path / "none", lines.append):
        pass
    # search.py and export.py hold the run for their whole work (not a kit: it times nothing), and
    # the folder an --out names (two runs writing into one shared folder at once).
    held: list[tuple[str, Path]] = []

    class Stop(BaseException):
        pass

    @contextlib.contextmanager
    def record(root, log, out=None):
        held.append(("run", Path(root)))
        if out is not None:
            held.append(("--out", Path(out)))
        yield
        raise Stop

    for module in (search_cli, export_cli):
        monkeypatch.setattr(module, "one_timing_job", record)
    monkeypatch.setattr(search_cli, "_measured_search", lambda args, log: 0)
    monkeypatch.setattr(export_cli, "_export", lambda args, run_dir: 0)
    monkeypatch.setattr(export_cli, "trained_run", lambda path: RunDir(Path(path)))
    monkeypatch.setattr(
        export_cli,
        "_default_out",
        lambda args, run_dir: RunDir(run_dir.root).export / "w0.50-d0.50",
    )
    with pytest.raises(Stop):
        search_main(["--run", str(run), "--no-progress"])
    with pytest.raises(Stop):
        export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--no-onnx", "--no-progress"])
    assert held == [("run", run), ("run", run)]
    held.clear()
    shared = tmp_path / "shared"
    with pytest.raises(Stop):
        search_main(["--run", str(run), "--out", str(shared / "s"), "--no-progress"])
    with pytest.raises(Stop):
        export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--no-onnx", "--out", str(shared / "m")])
    assert held == [("run", run), ("--out", shared / "s"), ("run", run), ("--out", shared / "m")]
    # What needs no hold is refused before waiting for one (it came after 64 s and 73 s of waiting).
    held.clear()
    monkeypatch.setattr(search_cli, "too_many_threads", lambda threads: f"--threads {threads} is too many")
    assert search_main(["--run", str(run), "--threads", "64", "--no-progress"]) == 2
    mine = RunDir(run).export / "w0.50-d0.50"
    mine.mkdir(parents=True)
    (mine / "notes.md").write_text("mine")
    assert export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--no-onnx", "--no-progress"]) == 2
    assert held == [] and (mine / "notes.md").read_text() == "mine"


def test_one_command_writes_into_an_output_folder_at_a_time(tmp_path: Path) -> None:
    """Two runs searching into one shared --out at once: each found it empty, and the later one
    replaced the other's results without a word. The folder --out is written in is held as the run
    is (flock on the folder itself: --out may not exist yet, and an export replaces it whole), in one
    order whatever the command, so that two runs writing into each other's folders never wait on
    each other; nothing is written anywhere."""
    import threading

    from supernet.io import one_timing_job

    runs, shared = tmp_path / "runs", tmp_path / "shared"
    for folder in (runs / "a", runs / "b", shared):
        folder.mkdir(parents=True)
    lines: list[str] = []
    entered = threading.Event()

    def second(run: Path, out: Path) -> None:
        with one_timing_job(run, lines.append, out=out):
            entered.set()

    with one_timing_job(runs / "a", lines.append, out=shared / "search"):
        waiter = threading.Thread(target=second, args=(runs / "b", shared / "new" / "deeper"))
        waiter.start()
        assert not entered.wait(0.3)  # another run, but the same folder written in: it waits
    waiter.join(5)
    assert entered.is_set()
    assert lines == [
        f"waiting for another search.py or export.py writing into '{shared}' to finish (they would replace "
        "each other's results) ..."
    ]
    # Crossed: run a writing into b's folder while run b writes into a's (taken in one order: no deadlock).
    lines.clear()
    done: list[str] = []

    def crossed(run: Path, out: Path) -> None:
        with one_timing_job(run, lines.append, out=out):
            done.append(run.name)

    pair = [
        threading.Thread(target=crossed, args=(runs / "a", runs / "b" / "search")),
        threading.Thread(target=crossed, args=(runs / "b", runs / "a" / "search")),
    ]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join(10)
    assert sorted(done) == ["a", "b"]
    # --out inside the run is the run's own lock; nothing was written anywhere.
    with one_timing_job(runs / "a", lines.append, out=runs / "a" / "search-pi"):
        pass
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "runs",
        "runs/a",
        "runs/b",
        "shared",
    ]


def test_output_folders_follow_links_and_refuse_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    """--out LINK failed with NotADirectoryError after the export (or, with --overwrite, replaced the
    link by a folder, the linked export left stale); --out . in an empty folder replaced the shell's
    current folder by the export."""
    from supernet.cli import output_target
    from supernet.trainer import RunError

    folder, here = tmp_path / "exports", tmp_path / "here"
    folder.mkdir()
    here.mkdir()
    (tmp_path / "link").symlink_to(folder)
    assert output_target(tmp_path / "link", "--out") == folder
    assert output_target(tmp_path / "new", "--out") == tmp_path / "new"
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "to-file").symlink_to(tmp_path / "a-file")
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")  # a loop: pathlib raised RuntimeError
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    monkeypatch.chdir(here)
    for path, flag, message in (
        (tmp_path / "loop-a", "--out", "leads round a loop of symbolic links: pass another path"),
        (
            tmp_path / "loop-b" / "kit",
            "--profile-kit",
            "leads round a loop of symbolic links: pass another path",
        ),
        (
            tmp_path / "dangling",
            "--out",
            f"is a link to '{tmp_path / 'gone'}', which does not exist: pass a folder, or the link's target",
        ),
        (
            tmp_path / "to-file",
            "--out",
            f"is a link to '{tmp_path / 'a-file'}', which is a file: pass a folder",
        ),
        (Path("."), "--out", "is the current folder or holds it: pass a new folder, e.g. --out ./out"),
        (
            Path(".."),
            "--profile-kit",
            "is the current folder or holds it: pass a new folder, e.g. --profile-kit ./profile-kit",
        ),
    ):
        with pytest.raises(RunError) as info:
            output_target(path, flag)
        assert str(info.value) == f"{flag} '{path}' {message}"
    assert sorted(p.name for p in here.iterdir()) == []
    # search.py's --out writes files into its folder, never replaces it: the current folder is fine.
    assert output_target(Path("."), "--out", replaced=False) == Path(".")


def test_bench_argument_types_refuse_before_any_work(tmp_path: Path, capsys) -> None:
    """at_least and output_file: the benches' counts and --json, refused in argparse's usage line."""
    import argparse

    from supernet.cli import at_least, figures_file, output_file, predictor_file, write_figures

    parser = argparse.ArgumentParser(prog="bench.py")
    parser.add_argument("--threads", type=at_least(1))
    parser.add_argument("--warmup", type=at_least(0))
    parser.add_argument("--json", type=output_file)
    parser.add_argument("--speed-json", type=figures_file("bench/export_speed.py"))
    parser.add_argument("--save-predictor", type=predictor_file)
    notes, config = tmp_path / "notes.md", tmp_path / "config.json"
    notes.write_text("my notes, not JSON")
    config.write_text('{"hidden_size": 384}')
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone.json")
    assert vars(
        parser.parse_args(["--threads", "2", "--warmup", "0", "--json", str(tmp_path / "f.json")])
    ) == {
        "threads": 2,
        "warmup": 0,
        "json": tmp_path / "f.json",
        "speed_json": None,
        "save_predictor": None,
    }
    # A figures file a bench wrote is replaced: write_figures marks it with its script.
    write_figures(tmp_path / "f.json", {"ms": 1.5}, script="bench/export_speed.py")
    assert json.loads((tmp_path / "f.json").read_text()) == {"bench": "export_speed.py", "ms": 1.5}
    assert parser.parse_args(["--json", str(tmp_path / "f.json")]).json == tmp_path / "f.json"
    # Through a link, the file it names is the one replaced (the link became a plain file).
    (tmp_path / "latest.json").symlink_to(tmp_path / "f.json")
    assert parser.parse_args(["--json", str(tmp_path / "latest.json")]).json == tmp_path / "f.json"
    # A bench's own --json replaces only its own figures; a saved predictor replaces a predictor.
    assert parser.parse_args(["--speed-json", str(tmp_path / "f.json")]).speed_json == tmp_path / "f.json"
    write_figures(tmp_path / "anatomy.json", {"ms": 1.0}, script="bench/int8_anatomy.py")
    predictor = tmp_path / "predictor.json"
    predictor.write_text(json.dumps({"format": 1, "setting": {}, "table": []}))
    assert parser.parse_args(["--save-predictor", str(predictor)]).save_predictor == predictor
    for argv, message in (
        (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
        (["--warmup", "-1"], "argument --warmup: must be >= 0, got -1"),
        (["--threads", "two"], "argument --threads: expected an integer, got 'two'"),
        (["--json", str(tmp_path)], f"argument --json: {tmp_path} is a folder: pass a file path"),
        (
            ["--json", str(tmp_path / "no" / "f.json")],
            f"argument --json: folder {tmp_path / 'no'} does not exist",
        ),
        # A file no bench wrote (a user's notes; a JSON of another tool) is not replaced by figures.
        (
            ["--json", str(notes)],
            f"argument --json: {notes} exists and is not a figures file of this version's bench scripts "
            "(they mark theirs with a 'bench' key): pass a new path, or move it away",
        ),
        (
            ["--json", str(config)],
            f"argument --json: {config} exists and is not a figures file of this version's bench scripts "
            "(they mark theirs with a 'bench' key): pass a new path, or move it away",
        ),
        (
            ["--speed-json", str(tmp_path / "anatomy.json")],
            f"argument --speed-json: {tmp_path / 'anatomy.json'} holds the figures of int8_anatomy.py, not of "
            "export_speed.py: pass a new path, or move it away",
        ),
        (
            ["--save-predictor", str(tmp_path / "f.json")],
            f"argument --save-predictor: {tmp_path / 'f.json'} exists and is not a saved latency predictor: "
            "pass a new path, or move it away",
        ),
        # A loop of links was a traceback (RuntimeError from pathlib); a dangling link "not a figures file".
        (
            ["--json", str(tmp_path / "loop-a")],
            f"argument --json: {tmp_path / 'loop-a'} leads round a loop of symbolic links: pass a file path",
        ),
        (
            ["--json", str(tmp_path / "loop-a" / "f.json")],
            f"argument --json: {tmp_path / 'loop-a' / 'f.json'} leads round a loop of symbolic links: pass a file path",
        ),
        (
            ["--json", str(tmp_path / "dangling.json")],
            f"argument --json: {tmp_path / 'dangling.json'} is a link to {tmp_path / 'gone.json'}, which does "
            "not exist: pass a file path, or the link's target",
        ),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert capsys.readouterr().err.splitlines()[-1] == f"bench.py: error: {message}"


# --------------------------------------------------------------------------- found before any work


def test_outputs_that_cannot_be_written_are_refused_first(trained_run: Path, tmp_path: Path, capsys) -> None:
    """search.py timed every subnet, and export.py scored the model, before finding out."""
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    before = _snapshot(trained_run)
    _fails(
        capsys,
        search_main,
        ["--run", str(trained_run), "--latency-budget-ms", "100", "--out", str(blocker / "s")],
        f"--out '{blocker / 's'}' cannot be written: {blocker} is a file; pass another folder",
    )
    _fails(
        capsys,
        export_main,
        ["--run", str(trained_run), "--subnet", "w0.50-d1.00", "--out", str(blocker / "m")],
        f"--out '{blocker / 'm'}' cannot be written: {blocker} is a file; pass another folder",
    )
    assert _snapshot(trained_run) == before  # no latency measured, nothing cached
    assert blocker.read_text() == "mine"


def test_unwritable_folder_is_named(tmp_path: Path, monkeypatch) -> None:
    """Root ignores permission bits, so a read-only mount or immutable folder is simulated."""
    import tempfile

    from supernet.io import unwritable

    assert unwritable(tmp_path / "new" / "deeper") is None and list(tmp_path.iterdir()) == []

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert unwritable(tmp_path / "new") == f"{tmp_path} is not writable (Operation not permitted)"
    # The folder itself: the reason alone, as the caller's message names the folder; or named, for a
    # caller whose message names another (export.py writes beside --out: its folder must be writable).
    assert unwritable(tmp_path) == "Operation not permitted"
    assert unwritable(tmp_path, named=True) == f"{tmp_path} is not writable (Operation not permitted)"


def test_export_best_of_an_unfinished_run_says_so(capsys, tmp_path: Path, trained_run: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    _fails(
        capsys,
        export_main,
        ["--run", str(run)],
        f"run '{run}' has no trained supernet yet: finish train.py (resume=true) first",
    )


def test_search_and_export_of_a_run_in_training_say_so(capsys, tmp_path: Path, trained_run: Path) -> None:
    """Both said to finish it with resume=true, which train.py refuses while the first one runs, and
    each worded it its own way."""
    from supernet.trainer import _lock_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    lock = _lock_run_dir(run)
    try:
        holder = (run / ".train.lock").read_text().strip()
        assert f"(pid {os.getpid()} on " in holder
        message = f"run '{run}' is still being trained by {holder}: run this again when it has finished"
        _fails(capsys, export_main, ["--run", str(run)], message)
        _fails(capsys, search_main, ["--run", str(run), "--latency-budget-ms", "5"], message)
    finally:
        lock.close()


def test_run_paths_expand_home(capsys, tmp_path: Path, monkeypatch) -> None:
    """--run=~/x (no shell expansion after '=', nor in the quoted commands the scripts print) looked
    for a folder named '~'."""
    monkeypatch.setenv("HOME", str(tmp_path))
    message = f"run '{tmp_path / 'missing'}' does not exist: pass the output_dir train.py wrote"
    _fails(capsys, search_main, ["--run=~/missing", "--latency-budget-ms", "5"], message)
    _fails(capsys, export_main, ["--run=~/missing"], message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["BATCH_SIZE=8"], "unknown config key 'BATCH_SIZE'; did you mean 'batch_size'?"),
        (["task="], "override 'task=' has no value; config key 'task' must not be empty"),
        (
            ["stage_wd.learning_rate=.inf"],
            "config key 'stage_wd.learning_rate' must be a finite number, got inf",
        ),
        (["distill.temperature=.nan"], "config key 'distill.temperature' must be a finite number, got nan"),
    ],
)
def test_override_mistakes_are_one_line(capsys, preset: Path, tmp_path: Path, overrides, message) -> None:
    _fails(capsys, train_main, ["--config", str(preset), *overrides], message, watch=tmp_path)


def test_config_file_that_is_not_utf8(capsys, tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes("model: x\n".encode("utf-16"))
    _fails(
        capsys,
        train_main,
        ["--config", str(path)],
        f"config file '{path}' is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8",
    )


def test_argument_errors_are_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        search_main(["--run", "r", "--latency-budget-ms", "abc"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "search.py: error: argument --latency-budget-ms: invalid float value: 'abc' (usage: search.py --help)\n"
    )


@pytest.mark.parametrize(
    ("main", "argv", "unrecognized"),
    [
        (
            search_main,
            ["--run", "r", "--thread", "1"],
            "search.py: error: unrecognized arguments: --thread 1",
        ),
        (
            export_main,
            ["--run", "r", "--int", "--out", "o"],
            "export.py: error: unrecognized arguments: --int",
        ),
        (train_main, ["--config", "c.yaml", "--print"], "train.py: error: unrecognized arguments: --print"),
    ],
)
def test_abbreviated_options_are_refused(capsys, main, argv: list[str], unrecognized: str) -> None:
    # An abbreviation accepted today would change meaning the day an option sharing its prefix is added.
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    name = unrecognized.split(":")[0]
    assert capsys.readouterr().err == f"{unrecognized} (usage: {name} --help)\n"


def test_train_help_lists_the_config_keys(capsys) -> None:
    with pytest.raises(SystemExit):
        train_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "stage_wd.{epochs, max_steps, learning_rate}" in text and "gradient_accumulation_steps" in text


def test_teacher_without_steps_on_a_headless_model_is_refused(capsys, preset: Path, tmp_path: Path) -> None:
    """teacher.epochs=0 skipped the fine-tune: every subnet then distilled from a random head."""
    model = next(
        line.split(": ", 1)[1] for line in preset.read_text().splitlines() if line.startswith("model:")
    )
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), *_dotted(["teacher.max_steps=null", "teacher.epochs=0"])],
        f"model '{model}' has no task head and teacher.epochs=0 with no teacher.max_steps: its new head would "
        "stay untrained and every subnet would learn from it; give teacher.epochs or teacher.max_steps, or "
        "teacher.path=a task-tuned model",
    )
    assert not (tmp_path / "run").exists()


def test_resume_of_a_run_stopped_in_its_first_checkpoint_says_so(
    capsys, trained_run: Path, tmp_path: Path, monkeypatch
) -> None:
    """A second SIGTERM while the first checkpoint was written left only its half (.step-N.tmp):
    resume=true then trained from the first step without a word."""
    import supernet.trainer as trainer

    def stop(*args, **kwargs):  # what follows is a fresh run's training, checked elsewhere
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_load_classifier", stop)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "inputs.json"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    half = run / "checkpoints" / ".step-2.tmp"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"half")
    argv = ["--config", str(run / "config.yaml"), "--no-progress", f"output_dir={run}", "resume=true"]
    assert train_main(argv) == 130  # stopped as the teacher's fine-tuning began
    assert (
        f"note: output_dir '{run}' holds no finished checkpoint to resume (the run stopped before its first "
        "was written): training from the first step"
    ) in capsys.readouterr().out.splitlines()
    assert not half.exists()


def test_resume_with_nothing_to_resume_says_so(capsys, trained_run: Path, tmp_path: Path) -> None:
    """A results folder kept without its weights (results/ in git): resume=true trained it from the
    first step without a word and mixed the new metrics into the old file."""
    run = tmp_path / "results"
    run.mkdir()
    for name in ("config.yaml", "eval.jsonl", "train_metrics.jsonl"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    old_metrics = (run / "train_metrics.jsonl").read_text()
    code = train_main(
        ["--config", str(run / "config.yaml"), "--no-progress", f"output_dir={run}", "resume=true"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert (
        f"note: output_dir '{run}' holds no weights or checkpoint to resume: training from the first step "
        "(its train_metrics.jsonl is kept as train_metrics.previous.jsonl)"
    ) in out.splitlines()
    assert (run / "train_metrics.previous.jsonl").read_text() == old_metrics
    # It ends by saying where the supernet is and what to run next.
    assert out.splitlines()[-2:] == [
        f"supernet: {run / 'supernet'}",
        f"next: python search.py --run {run} --latency-budget-ratio 0.5 (or --latency-budget-ms MS), then "
        f"python export.py --run {run} --subnet best --out DIR",
    ]
    # Trained again from step 1 with the same config: the same steps, logged once each.
    new_steps = [json.loads(line)["step"] for line in (run / "train_metrics.jsonl").read_text().splitlines()]
    assert new_steps == [json.loads(line)["step"] for line in old_metrics.splitlines()]
    # ...and, training being deterministic on CPU, the same scores.
    assert (run / "eval.jsonl").read_text() == (trained_run / "eval.jsonl").read_text()
    assert (run / "supernet" / "model.safetensors").is_file()


@pytest.mark.slow
def test_budget_ratio_below_fastest_subnet_names_the_ratio_that_fits(
    capsys, trained_run: Path, tmp_path: Path
) -> None:
    """The budget was given as a ratio, and the message only said which milliseconds would fit."""
    argv = ["--run", str(trained_run), "--repeats", "3", "--warmup", "1", "--no-progress", "--threads", "1"]
    assert search_main([*argv, "--latency-budget-ratio", "0.01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    match = re.fullmatch(
        r"error: latency budget [0-9.]+ ms is below the fastest subnet \(w[0-9.]+-d[0-9.]+, [0-9.]+ ms\); "
        r"raise the budget to at least [0-9.]+ ms \(--latency-budget-ratio ([0-9.]+) or more\)",
        err,
    )
    assert match, err
    # The ratio it names fits (the figures come from the cache the first call filled).
    assert search_main([*argv, "--latency-budget-ratio", match[1], "--out", str(tmp_path / "s")]) == 0


@pytest.mark.slow
def test_search_times_a_short_model_at_its_own_length(tmp_path: Path, minilm_dir: Path, capsys) -> None:
    """A model with 64 positions could not be searched without --seq-len: the default 128 was refused."""
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir, max_position_embeddings=64)
    run = tmp_path / "run"
    preset = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    argv = ["--config", preset, "--no-progress", f"model={model}", f"output_dir={run}", *TINY_RUN]
    assert train_main(argv) == 0
    capsys.readouterr()
    # export.py before any search: a traceback after the folder was committed, without summary.json.
    out = tmp_path / "export"
    assert (
        export_main(["--run", str(run), "--subnet", "w0.50-d1.00", "--out", str(out), "--threads", "1"]) == 0
    )
    assert (
        "note: the usual sequence length 128 exceeds the 64 positions the model has "
        "(max_position_embeddings 64): timing at the run's max_length 32"
    ) in capsys.readouterr().out.splitlines()
    assert json.loads((out / "summary.json").read_text())["setting"]["seq_len"] == 32
    flags = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *flags]) == 0
    assert (
        "note: the default --seq-len 128 exceeds the 64 positions the model has (max_position_embeddings 64): "
        "timing at the run's max_length 32 (--seq-len to choose)"
    ) in capsys.readouterr().out.splitlines()
    assert [p.name for p in (run / "latency").glob("cpu-torch-*.json")] == ["cpu-torch-b1-s32-t1.json"]


def test_an_unused_learning_rate_does_not_block_a_resume(trained_run: Path, tmp_path: Path, capsys) -> None:
    """train.py said learning_rate=3e-4 was not used, then refused the resume because it differed."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    argv = ["--config", str(run / "config.yaml"), "--no-progress", f"output_dir={run}", "resume=true"]
    assert train_main([*argv, "learning_rate=3e-4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: learning_rate=0.0003 is not used") and "already trained" in out
    # A key a stage does use still refuses the resume.
    assert train_main([*argv, "stage_wd.learning_rate=5e-4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: resume refused: the config differs from the run's (stage_wd.learning_rate: 0.0003 -> 0.0005); "
        "undo the changes or start a new output_dir"
    )


@pytest.mark.slow
def test_export_load_warning_follows_the_summary(
    capsys, trained_run: Path, tmp_path: Path, monkeypatch
) -> None:
    """The load/spread warning was printed inside the indented summary, between latency and params."""
    import supernet.export_cli as export_cli

    monkeypatch.setattr(
        export_cli, "load_warning", lambda results: f"latency of {', '.join(results)} is noisy"
    )
    argv = [
        "--run",
        str(trained_run),
        "--subnet",
        "w0.50-d0.75",
        "--out",
        str(tmp_path / "exp"),
        "--no-progress",
    ]
    capsys.readouterr()
    assert export_main([*argv, "--no-onnx"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[-6:]] == [
        f"exported w0.50-d0.75 to {tmp_path / 'exp'}",
        "  parity",
        "  dev accuracy",
        "  latency (cpu, batch 1, 128 tokens, default threads)",
        "  params",
        "warning",
    ]
    assert lines[-1] == "warning: latency of torch is noisy"


def test_a_copied_runs_config_names_both_folders(tmp_path: Path, monkeypatch, capsys) -> None:
    """`train.py --config COPY/config.yaml resume=true` resumed the folder the run was first trained
    in (its config's output_dir), not the copy: the original was trained on, the copy left as it was."""
    from supernet.config import save_config

    monkeypatch.chdir(tmp_path)
    original, copy = tmp_path / "runs" / "a", tmp_path / "backup" / "a"
    for root in (original, copy):
        root.mkdir(parents=True)
        save_config(
            load_config(TrainConfig, None, ["model=m", "output_dir=runs/a", "task=rt-sentences"]),
            root / "config.yaml",
        )
        (root / "train_metrics.jsonl").write_text("")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert train_main(["--config", "backup/a/config.yaml", "resume=true", "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: --config backup/a/config.yaml is the config of the run in 'backup/a', but its output_dir is "
        "'runs/a': pass output_dir=backup/a to resume that run, or output_dir=runs/a to train there"
    )
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    # The run's own config from where it was trained, or a preset named config.yaml, is not refused.
    from supernet.cli import _check_run_config
    from supernet.trainer import RunError

    _check_run_config(Path("runs/a/config.yaml"), "runs/a")
    # From inside runs/, the run's own config is the same run seen from elsewhere, not a copy.
    monkeypatch.chdir(tmp_path / "runs")
    with pytest.raises(RunError) as info:
        _check_run_config(Path("a/config.yaml"), "runs/a")
    assert (
        str(info.value)
        == f"--config a/config.yaml names its run 'runs/a' as seen from {tmp_path}: run this from there, or pass output_dir=a"
    )
    monkeypatch.chdir(tmp_path)
    # A project's own preset named config.yaml, beside folders named like a run's, is no run.
    (tmp_path / "config.yaml").write_text("task: rt-sentences\n")
    (tmp_path / "checkpoints" / "step-best").mkdir(parents=True)
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "config.json").write_text("{}")
    _check_run_config(Path("config.yaml"), "runs/b")


@pytest.mark.slow
def test_a_test_column_of_dev_figures_is_said_after_training(
    capsys, tmp_path: Path, minilm_dir: Path
) -> None:
    """A folder without test.* is evaluated on dev as its test split (warned at load): the table that
    ends training showed those dev figures under 'test' without a word."""
    data = tmp_path / "data"
    data.mkdir()
    words = ["good", "fine", "great", "bad", "poor", "awful"]
    for split, n in (("train", 48), ("dev", 16)):
        rows = [f"{words[i % 6]} film number {i},{int(i % 6 < 3)}" for i in range(n)]
        (data / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    preset = str(Path(__file__).parents[1] / "configs" / "quickstart.yaml")
    argv = ["--config", preset, f"model={model}", *TINY_RUN, f"task={data}", "--no-progress"]
    assert (
        train_main(
            [*argv, "width_mults=[1.0, 0.5]", "depth_mults=[1.0, 0.5]", f"output_dir={tmp_path / 'r'}"]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    note = (
        f"note: the test column holds dev figures: {data} has no labelled test split (eval.jsonl's "
        "test_* keys and teacher_eval.json's test are the dev split's)"
    )
    assert note in out and out[out.index(note) - 1].startswith("w0.50-d0.50 ")  # right under the table
    rows = [json.loads(line) for line in (tmp_path / "r" / "eval.jsonl").read_text().splitlines()]
    assert all(r["test_accuracy"] == r["accuracy"] for r in rows)


def test_a_figures_file_that_cannot_be_replaced_is_refused_first(tmp_path: Path, monkeypatch) -> None:
    """An immutable (chattr +i) figures file in a writable folder failed with a traceback after the
    bench's work. Root passes permission checks, so the system's refusal is simulated."""
    import argparse

    from supernet.cli import output_file, write_figures

    figures = tmp_path / "f.json"
    write_figures(figures, {"ms": 1.5}, script="bench/export_speed.py")
    assert output_file(str(figures)) == figures

    real_open = os.open

    refusal = {"errno": 1, "strerror": "Operation not permitted"}

    def refuse(path, flags, *args):
        if Path(path) == figures:
            raise PermissionError(refusal["errno"], refusal["strerror"])
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(argparse.ArgumentTypeError) as info:
        output_file(str(figures))
    assert str(info.value) == f"{figures} cannot be replaced (Operation not permitted)"
    # A read-only file (EACCES) in a writable folder is replaced: the new one is renamed over it.
    refusal.update(errno=13, strerror="Permission denied")
    assert output_file(str(figures)) == figures


def test_options_are_parsed_before_torch_is_imported() -> None:
    """--help, and an option argparse refuses, answered after 3-6 s of importing torch, transformers
    and onnx: the package and the three commands' options import none of them."""
    import subprocess
    import sys

    import supernet

    probe = (
        "import sys, supernet.cli, supernet.parsers\n"
        "supernet.parsers.search_parser(); supernet.parsers.export_parser()\n"
        "print(sorted(m for m in ('torch', 'transformers', 'onnx', 'onnxruntime', 'datasets') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
    # Submodules stay reachable through the package, as when it imported them all.
    reach = "import supernet\nprint(supernet.io.RunDir.__name__, supernet.subnet.SubnetConfig.__name__)"
    done = subprocess.run([sys.executable, "-c", reach], capture_output=True, text=True, check=True)
    assert done.stdout == "RunDir SubnetConfig\n"
    for name in ("search.py", "export.py", "train.py"):
        shown = subprocess.run(
            [sys.executable, str(Path(__file__).parents[1] / name), "--help"], capture_output=True, text=True
        )
        assert shown.returncode == 0 and shown.stdout.startswith(f"usage: {name}")
    # Every name the package offers is there, loaded on first use.
    assert sorted(supernet.__all__) == sorted(supernet._WHERE)
    assert [getattr(supernet, name).__name__ for name in ("SearchSpace", "to_supernet")] == [
        "SearchSpace",
        "to_supernet",
    ]


def test_the_onnx_exporters_warnings_stay_quiet_in_a_fresh_process() -> None:
    """Since the commands import torch after parsing, quiet_libraries ran before torch's import, which
    reset torch.onnx's level: an export at --opset 9 printed torch's "W1202 ... Setting ONNX exporter
    to use operator set version 18" and four torchvision lines above export.py's own warning."""
    import subprocess
    import sys

    probe = (
        "import logging, supernet.cli\n"
        "supernet.cli.quiet_libraries()\n"
        "import supernet.export\n"
        "print(logging.getLogger('torch.onnx').getEffectiveLevel() == logging.ERROR)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "True\n"


def test_a_saved_config_alone_that_differs_is_not_taken_over(capsys, preset: Path, tmp_path: Path) -> None:
    """A config.yaml saved from --print-config alone in a folder, its learning rate tuned by hand:
    train.py with the preset replaced it by the preset's values and trained, without a word. (A
    start killed at its first step leaves inputs.json beside it, and trains afresh, as before.)"""
    from supernet.config import TrainConfig, load_config, save_config

    mine = tmp_path / "mine"
    mine.mkdir()
    tuned = load_config(TrainConfig, preset, [f"output_dir={mine}", "seed=7"])
    save_config(tuned, mine / "config.yaml")
    _fails(
        capsys,
        train_main,
        ["--config", str(preset), f"output_dir={mine}"],
        f"output_dir '{mine}' holds a config.yaml but no run, and this config differs from it (seed: 7 -> "
        f"{load_config(TrainConfig, preset).seed}): train that one with --config {mine / 'config.yaml'}, or move it out",
        watch=mine,
    )
