"""Token classification: CoNLL and JSON-lines files, label alignment, entity F1, the whole pipeline."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import pytest
import torch
import transformers
from conftest import (
    TINY_RUN,
    check_int8_search_scores_what_export_ships,
    save_tiny_model_dir,
    tiny_bert_config,
)

import supernet as sn
from supernet.cli import export_main, search_main, train_main
from supernet.data import DataError, load_task, make_dataloader, tokenize_task
from supernet.export import load_exported
from supernet.subnet import SubnetConfig
from supernet.tasks import (
    TASK_KINDS,
    entities,
    entity_scores,
    get_task_kind,
    tags_mark_chunks,
    task_kind_of_config,
)
from supernet.trainer import evaluate_subnet

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
FAST = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]
TOKEN = TASK_KINDS["token-classification"]

FIRST = ["Anna", "Pierre", "Maria", "John"]
LAST = ["Smith", "Dubois", "Rossi"]
CITIES = ["Paris", "Berlin", "Lisbon", "Oslo"]


def _sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """Generated sentences: '<First> [Last] lives in <City> .' with PER and LOC tags (IOB2)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [(rng.choice(FIRST), "B-PER")]
        if rng.random() < 0.5:
            words.append((rng.choice(LAST), "I-PER"))
        words += [("lives", "O"), ("in", "O"), (rng.choice(CITIES), "B-LOC"), (".", "O")]
        out.append(words)
    return out


def _write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    blocks = ["\n".join(f"{word} NNP {tag}" for word, tag in sentence) for sentence in sentences]
    path.write_text("-DOCSTART- -X- O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    rows = [{"tokens": [w for w, _ in s], "tags": [t for _, t in s]} for s in sentences]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _error(call) -> str:
    with pytest.raises(DataError) as info:
        call()
    return str(info.value)


# --------------------------------------------------------------------------- metric


def test_entities_follow_conlleval() -> None:
    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    # IOB1: an I- tag after O or after another type starts a chunk.
    assert entities(["I-PER", "I-PER", "I-LOC", "O", "I-LOC"]) == {
        ("PER", 0, 2),
        ("LOC", 2, 3),
        ("LOC", 4, 5),
    }
    # B- always starts a new chunk, even of the same type.
    assert entities(["B-PER", "B-PER", "I-PER"]) == {("PER", 0, 1), ("PER", 1, 3)}
    assert entities(["O", "O"]) == set()


def test_entities_read_iobes_and_bilou() -> None:
    """E-/S- (IOBES) and L-/U- (BILOU) were read as part of the type: B-PER E-PER gave a PER and an
    'E-PER' chunk, and scored 0 against B-PER I-PER, which seqeval's default mode scores 1."""
    assert entities(["B-PER", "E-PER"]) == {("PER", 0, 2)}
    assert entities(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-ORG", "S-ORG"]) == {
        ("PER", 0, 1),
        ("LOC", 2, 5),
        ("ORG", 5, 6),
        ("ORG", 6, 7),
    }
    assert entities(["U-PER", "B-LOC", "L-LOC", "I-LOC"]) == {("PER", 0, 1), ("LOC", 1, 3), ("LOC", 3, 4)}
    # conlleval: an E- after O starts (and ends) a chunk; an I- after E- starts a new one.
    assert entities(["O", "E-PER", "I-PER", "I-PER"]) == {("PER", 1, 2), ("PER", 2, 4)}
    # Types still split chunks, and IOB tags read as before.
    assert entities(["B-PER", "E-LOC"]) == {("PER", 0, 1), ("LOC", 1, 2)}
    assert entity_scores([["B-PER", "E-PER"]], [["B-PER", "I-PER"]])["f1"] == 1.0
    assert entity_scores([["S-PER", "S-PER"]], [["B-PER", "I-PER"]])["f1"] == 0.0


def test_entity_scores_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-LOC"]]
    # gold chunks 3; predicted 4 (PER 0-1 wrong span, LOC right, ORG right, LOC extra): tp 2
    scores = entity_scores(gold, pred)
    assert scores == pytest.approx(
        {"precision": 2 / 4, "recall": 2 / 3, "f1": 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)}
    )
    assert entity_scores([["O"]], [["O"]]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_metrics_skip_unlabelled_positions() -> None:
    config = transformers.BertConfig(id2label={0: "B-PER", 1: "I-PER", 2: "O"})
    labels = torch.tensor([[-100, 0, -100, 1, 2, -100]])
    preds = torch.tensor([[2, 0, 2, 1, 0, 1]])  # right entity; the O predicted as B-PER adds a false chunk
    out = TOKEN.metrics([preds], [labels], config)
    assert out == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "accuracy": 2 / 3})


def test_per_token_kd_averages_over_real_tokens() -> None:
    student = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [5.0, -5.0]]])
    teacher = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [-5.0, 5.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third position is padding: ignored
    value = TOKEN.logit_kd(student, teacher, 1.0, mask)
    first = -(0.5 * torch.log_softmax(student[0, 0], -1)).sum()
    second = torch.log(torch.tensor(2.0))
    assert value.item() == pytest.approx(((first + second) / 2).item())
    labels = torch.tensor([[0, -100, 1]])
    assert TOKEN.hard_loss(student, labels).item() == pytest.approx(
        torch.nn.functional.cross_entropy(student[0, [0, 2]], torch.tensor([0, 1])).item()
    )


# --------------------------------------------------------------------------- data


def test_conll_and_jsonl_read_the_same(tmp_path: Path) -> None:
    sentences = _sentences(30, seed=1)
    from_conll = load_task(str(_write_conll(tmp_path / "ner.conll", sentences)))
    from_jsonl = load_task(str(_write_jsonl(tmp_path / "ner.jsonl", sentences)))
    for task in (from_conll, from_jsonl):
        assert task.kind == "token-classification"
        assert task.label_names == ("B-LOC", "B-PER", "I-PER", "O")
        assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [24, 3, 3]
    for split in ("train", "dev", "test"):
        assert from_conll.splits[split]["tokens"][:] == from_jsonl.splits[split]["tokens"][:]
        assert from_conll.splits[split]["tags"][:] == from_jsonl.splits[split]["tags"][:]
    every = [tuple(t) for s in ("train", "dev", "test") for t in from_conll.splits[s]["tokens"][:]]
    assert sorted(every) == sorted(tuple(w for w, _ in s) for s in sentences)
    # Saved with a byte-order mark (Windows editors): its -DOCSTART- was read as a one-word sentence.
    text = (tmp_path / "ner.conll").read_text()
    (tmp_path / "bom.conll").write_text("\ufeff-DOCSTART- -X- O O\n\n" + text, encoding="utf-8")
    with_bom = load_task(str(tmp_path / "bom.conll"))
    for split in ("train", "dev", "test"):
        assert with_bom.splits[split][:] == from_conll.splits[split][:]


def test_tags_sit_on_first_sub_tokens(tmp_path: Path, minilm_dir: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    _write_jsonl(tmp_path / "train.jsonl", [[("Dubrovnikovich", "B-PER"), ("smiled", "O")]] * 2)
    _write_jsonl(tmp_path / "dev.jsonl", [[("Dubrovnikovich", "B-PER"), ("smiled", "O")]])
    task = load_task(str(tmp_path))
    row = tokenize_task(task, tokenizer, 32, splits=("dev",))["dev"][0]
    pieces = tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and len(pieces) > 4  # the name splits into pieces
    first_of_smiled = pieces.index("smiled")
    expected = [-100, 0] + [-100] * (first_of_smiled - 2) + [1] + [-100] * (len(pieces) - first_of_smiled - 1)
    assert row["labels"] == expected  # B-PER = 0, O = 1 (sorted tag names)
    batch = next(
        iter(
            make_dataloader(
                tokenize_task(task, tokenizer, 32)["train"],
                tokenizer,
                2,
                shuffle=False,
                collate_fn=TOKEN.collator(tokenizer),
            )
        )
    )
    assert batch["labels"].shape == batch["input_ids"].shape


def test_evaluation_scores_what_the_model_says_of_each_sentence_alone(
    tmp_path: Path, minilm_dir: Path
) -> None:
    """The batched, padded evaluation of a subnet scores what it tags each dev sentence with on its own.

    A random-weight tagger, so that its tags vary from token to token: a trained tiny model tags every
    token alike, and then any alignment of tags to words scores the same."""
    _write_conll(tmp_path / "train.conll", _sentences(4, seed=2))
    _write_conll(tmp_path / "dev.conll", _sentences(24, seed=4))
    task = load_task(str(tmp_path))
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    names = dict(enumerate(task.label_names))
    config = tiny_bert_config(id2label=names, label2id={v: k for k, v in names.items()})
    torch.manual_seed(0)
    model = sn.to_supernet(transformers.BertForTokenClassification(config)).eval()
    subnet = SubnetConfig(width_mult=0.5, depth_mult=0.5)
    dev = tokenize_task(task, tokenizer, 32, splits=("dev",))["dev"]
    loader = make_dataloader(dev, tokenizer, 5, shuffle=False, collate_fn=TOKEN.collator(tokenizer))
    assert len({len(row["input_ids"]) for row in dev}) > 1  # batches of 5 are padded
    scores = evaluate_subnet(model, subnet, loader)
    sn.set_active_subnet(model, subnet)
    gold, said = [], []
    for sentence in _sentences(24, seed=4):
        enc = tokenizer([w for w, _ in sentence], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            tags = model(**enc).logits[0].argmax(-1).tolist()
        first: dict[int, int] = {}
        for position, word in enumerate(enc.word_ids()):
            if word is not None:
                first.setdefault(word, position)
        gold.append([tag for _, tag in sentence])
        said.append([names[tags[first[i]]] for i in range(len(sentence))])
    hits = sum(g == p for gs, ps in zip(gold, said, strict=True) for g, p in zip(gs, ps, strict=True))
    words = sum(len(g) for g in gold)
    assert 0 < hits < words and len({t for tags in said for t in tags}) > 1
    assert scores["accuracy"] == pytest.approx(hits / words, abs=1e-9)
    assert {k: scores[k] for k in ("f1", "precision", "recall")} == pytest.approx(
        entity_scores(gold, said), abs=1e-9
    )


def test_tag_set_differs_between_train_and_dev(tmp_path: Path) -> None:
    _write_conll(tmp_path / "train.conll", _sentences(10, seed=2))
    _write_conll(tmp_path / "dev.conll", [[("Acme", "B-ORG"), ("Corp", "I-ORG"), ("won", "O")]])
    assert _error(lambda: load_task(str(tmp_path))) == (
        "dev.conll has tags that train.conll lacks (B-ORG, I-ORG): the splits must share one tag set; "
        "fix the tags or add training sentences with them"
    )


def test_bad_token_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n")
    assert (
        _error(lambda: load_task(str(bad))) == "row 1 of bad.jsonl has 2 tokens but 1 tags: one tag per token"
    )
    conll = tmp_path / "bad.conll"
    conll.write_text("Anna B-PER\nlives\n")
    assert _error(lambda: load_task(str(conll))) == (
        "line 2 of bad.conll has one column ('lives'): CoNLL lines are 'token ... tag', "
        "with a blank line between sentences"
    )


# --------------------------------------------------------------------------- pipeline


def _train_tagger(root: Path, minilm_dir: Path) -> tuple[Path, str]:
    """Train a tiny tagger on the files in `root`/data (a 2 x 2 grid): the run and what train.py printed."""
    model = save_tiny_model_dir(root / "model", minilm_dir)
    run = root / "run"
    argv = ["--config", str(PRESET), "--no-progress", f"model={model}", f"output_dir={run}", *TINY_RUN]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = train_main(
            [*argv, f"task={root / 'data'}", "width_mults=[1.0, 0.5]", "depth_mults=[1.0, 0.5]"]
        )
    assert code == 0
    return run, printed.getvalue()


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, minilm_dir) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ner")
    data = root / "data"
    data.mkdir()
    _write_conll(data / "train.conll", _sentences(64, seed=3))
    _write_conll(data / "dev.conll", _sentences(16, seed=4))
    return _train_tagger(root, minilm_dir)


@pytest.mark.slow
def test_token_classification_end_to_end(ner_run, capsys) -> None:
    run, train_out = ner_run
    assert "task " in train_out and "token-classification" in train_out
    assert "dev entity F1" in train_out
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    for r in rows:
        assert {"f1", "precision", "recall", "accuracy", "test_f1"} <= r.keys()
    config = transformers.AutoConfig.from_pretrained(run / "supernet")
    assert config.architectures == ["BertForTokenClassification"]
    assert config.id2label == {0: "B-LOC", 1: "B-PER", 2: "I-PER", 3: "O"}

    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    lines = [json.loads(line) for line in (run / "search" / "results.jsonl").read_text().splitlines()]
    assert all(line["metric"] == "f1" for line in lines)
    assert {line["name"]: line["f1"] for line in lines} == {r["subnet"]: r["f1"] for r in rows}
    chosen = json.loads((run / "search" / "chosen.json").read_text())["name"]

    out_dir = run / "export" / "chosen"
    assert export_main(["--run", str(run), "--subnet", chosen, "--out", str(out_dir), "--onnx"]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["metric"] == "f1" and summary["parity_ok"]
    assert summary["accuracy"]["onnx"] == pytest.approx(summary["accuracy"]["torch"], abs=1e-6)
    assert summary["accuracy"]["torch"] == pytest.approx(
        {r["subnet"]: r["f1"] for r in rows}[chosen], abs=1e-6
    )
    dense = load_exported(out_dir).eval()
    assert type(dense).__name__.endswith("ForTokenClassification")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    tagger = transformers.pipeline("token-classification", model=dense, tokenizer=tokenizer)
    sentence = "Anna Rossi lives in Oslo ."
    got = tagger(sentence)
    enc = tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        ids = dense(**enc).logits[0].argmax(-1).tolist()
    words = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    # pipeline() drops "O" tokens and special tokens; the rest are the model's own argmax tags.
    expected = [
        (w, dense.config.id2label[i])
        for w, i in zip(words, ids, strict=True)
        if w not in ("[CLS]", "[SEP]") and dense.config.id2label[i] != "O"
    ]
    assert [(g["word"], g["entity"]) for g in got] == expected


@pytest.mark.slow
def test_token_classification_int8_search_scores_the_int8_graph(ner_run, tmp_path: Path) -> None:
    check_int8_search_scores_what_export_ships(ner_run[0], tmp_path, "f1")


# --------------------------------------------------------------------------- tags that mark no chunks

POS = {"Anna": "NNP", "Rossi": "NNP", "lives": "VBZ", "in": "IN", "Oslo": "NNP", ".": "."}


def test_tag_sets_that_mark_chunks() -> None:
    assert tags_mark_chunks(["B-PER", "I-PER", "O"]) and tags_mark_chunks(["PER", "LOC", "O"])  # IOB2, IO
    assert tags_mark_chunks(["S-LOC", "E-PER"]) and tags_mark_chunks(["U-ORG", "L-ORG"])  # IOBES, BILOU
    assert not tags_mark_chunks(["NNP", "VBZ", "IN", "."]) and not tags_mark_chunks(["LABEL_0", "LABEL_1"])


def test_part_of_speech_tags_are_ranked_by_token_accuracy() -> None:
    """Entity F1 read 'NNP NNP' as one NNP chunk: for such tags token accuracy is the figure."""
    pos = get_task_kind("token-classification", ["NNP", "VBZ", "IN", "."])
    assert pos.name == "token-classification" and pos.main_metric == "accuracy"
    assert [c.key for c in pos.columns(4)] == ["accuracy"]
    assert get_task_kind("token-classification", ["B-PER", "O"]) is TOKEN and TOKEN.main_metric == "f1"
    assert get_task_kind("token-classification") is TOKEN  # labels unknown: the NER default
    config = transformers.BertConfig(architectures=["BertForTokenClassification"])
    config.id2label = {0: "NNP", 1: "VBZ", 2: "IN", 3: "."}
    assert task_kind_of_config(config).main_metric == "accuracy"
    config.id2label = {0: "B-PER", 1: "O"}
    assert task_kind_of_config(config) is TOKEN


@pytest.mark.slow
def test_part_of_speech_run_searches_on_token_accuracy(tmp_path: Path, minilm_dir: Path) -> None:
    sentence = [(w, POS[w]) for w in ("Anna", "Rossi", "lives", "in", "Oslo", ".")]
    data = tmp_path / "data"
    data.mkdir()
    _write_jsonl(data / "train.jsonl", [sentence] * 32)
    _write_jsonl(data / "dev.jsonl", [sentence] * 8)
    run, printed = _train_tagger(tmp_path, minilm_dir)
    assert "dev token acc %" in printed and "entity F1" not in printed
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    lines = [json.loads(line) for line in (run / "search" / "results.jsonl").read_text().splitlines()]
    assert all(line["metric"] == "accuracy" for line in lines)
    assert {line["name"]: line["accuracy"] for line in lines} == {r["subnet"]: r["accuracy"] for r in rows}


def test_byte_level_bpe_tags_the_tokens_raw_text_gives(tmp_path: Path) -> None:
    """RoBERTa's tokenizer marks a word's start by the space before it: words given one by one came out
    as 'in', raw text as 'Ġin', so a tagger scored 100 on dev and mislabelled real sentences."""
    from tokenizers import ByteLevelBPETokenizer

    from supernet.trainer import _auto_tokenizer

    bpe = ByteLevelBPETokenizer()
    sentences = ["Anna Rossi lives in Oslo .", "Maria lives in Paris ."] * 20
    bpe.train_from_iterator(
        sentences, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(tmp_path))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (tmp_path / "merges.txt").read_text().splitlines()[1:] if line]
    transformers.RobertaTokenizer(vocab=vocab, merges=merges).save_pretrained(tmp_path / "model")
    words = ["Anna", "lives", "in", "Oslo"]

    def tokens(tok, text) -> list[str]:
        split = isinstance(text, list)
        return tok.convert_ids_to_tokens(tok(text, is_split_into_words=split).input_ids)

    stock = _auto_tokenizer(tmp_path / "model")
    assert stock.add_prefix_space is False and tokens(stock, words) != tokens(stock, " ".join(words))
    tagger = _auto_tokenizer(tmp_path / "model", words=True)
    assert tokens(tagger, words) == tokens(tagger, " ".join(words))
    assert "Ġin" in tokens(tagger, words)
    # What the run saves (and export copies) tokenizes raw text the same way.
    tagger.save_pretrained(tmp_path / "saved")
    saved = transformers.AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert tokens(saved, " ".join(words)) == tokens(tagger, words)


def test_a_tag_the_shuffle_left_out_of_train_is_warned(tmp_path: Path, caplog) -> None:
    # One file is split by a plain shuffle: a rare tag can land in dev or test only, which a folder's
    # files are refused for; here it was silent.
    rows = [
        {"tokens": [name, "lives", "in", city, str(i), "."], "tags": ["B-PER", "O", "O", "B-LOC", "O", "O"]}
        for i, (name, city) in enumerate(
            zip(["Anna", "Marco", "Lena"] * 20, ["Oslo", "Rome", "Paris"] * 20, strict=True)
        )
    ]
    rows[7] = {"tokens": ["Acme", "Corp", "hires"], "tags": ["B-ORG", "I-ORG", "O"]}
    path = tmp_path / "ner_rare.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    task = load_task(str(path))
    where = [split for split, ds in task.splits.items() if any(3 in tags for tags in ds["tags"])]
    assert task.label_names == ("B-LOC", "B-ORG", "B-PER", "I-ORG", "O") and where == ["test"]
    assert caplog.messages == [
        "ner_rare.jsonl: tags B-ORG, I-ORG occur in test but in no training sentence: the model cannot learn "
        "them; add sentences with them, or try another data.split_seed"
    ]
    caplog.clear()
    rows[7] = {"tokens": ["Acme", "hires"], "tags": ["B-ORG", "O"]}  # one tag
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    load_task(str(path))
    assert caplog.messages == [
        "ner_rare.jsonl: tag B-ORG occurs in test but in no training sentence: the model cannot learn it; add "
        "sentences with it, or try another data.split_seed"
    ]
    caplog.clear()
    rows[7] = rows[8]  # every tag in every split
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    load_task(str(path))
    assert caplog.messages == []
