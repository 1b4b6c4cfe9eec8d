"""Extractive question answering: SQuAD files, windows with doc stride, EM/F1, losses, the whole pipeline."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
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
from supernet.distill import soft_cross_entropy
from supernet.export import load_exported
from supernet.subnet import SubnetConfig
from supernet.tasks import (
    TASK_KINDS,
    answer_question,
    best_span,
    head_conflict,
    normalize_answer,
    squad_scores,
)
from supernet.trainer import evaluate_subnet

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
FAST = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]
QA = TASK_KINDS["question-answering"]

PEOPLE = ["Anna Smith", "Pierre Dubois", "Maria Rossi", "John Berg", "Lena Novak", "Omar Haddad"]
CITIES = ["Paris", "Berlin", "Lisbon", "Oslo", "Vienna", "Prague"]
JOBS = ["a teacher", "a baker", "an engineer", "a nurse", "a pilot", "a farmer"]
FILLER = "The weather that year was mild and the harvest was good across the whole region."


def _paragraphs(n: int, seed: int, filler: int = 0) -> list[dict]:
    """Generated SQuAD paragraphs: '<Person> was born in <City> in <Year>. <filler> She works as <job>.'"""
    rng = random.Random(seed)
    out = []
    for index in range(n):
        person, city, job = rng.choice(PEOPLE), rng.choice(CITIES), rng.choice(JOBS)
        year = str(rng.randint(1900, 2000))
        context = (
            f"{person} was born in {city} in {year}. " + " ".join([FILLER] * filler) + f" She works as {job}."
        )
        context = " ".join(context.split())
        qas = [
            (f"Where was {person} born?", city),
            (f"When was {person} born?", year),
            (f"What does {person} work as?", job),
        ]
        out.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{seed}-{index}-{k}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": context.index(answer)}],
                    }
                    for k, (question, answer) in enumerate(qas)
                ],
            }
        )
    return out


def _write_squad(path: Path, paragraphs: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "people", "paragraphs": paragraphs}]}))
    return path


def _write_rows(path: Path, paragraphs: list[dict]) -> Path:
    rows = [
        {
            "id": qa["id"],
            "question": qa["question"],
            "context": p["context"],
            "answers": {
                "text": [a["text"] for a in qa["answers"]],
                "answer_start": [a["answer_start"] for a in qa["answers"]],
            },
        }
        for p in paragraphs
        for qa in p["qas"]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _error(call) -> str:
    with pytest.raises(DataError) as info:
        call()
    return str(info.value)


# --------------------------------------------------------------------------- metric


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Eiffel   Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    gold = {0: ["Paris"], 1: ["in 1970", "1970"], 2: ["a young teacher"]}
    predicted = {0: "paris.", 1: "1970", 2: "teacher at school"}
    scores = squad_scores(predicted, gold)
    # 0: exact after normalisation; 1: exact against the second gold answer; 2: F1 of
    # {teacher, at, school} vs {young, teacher} = 2 * (1/3) * (1/2) / (1/3 + 1/2) = 0.4
    assert scores == pytest.approx({"exact_match": 2 / 3, "f1": (1 + 1 + 0.4) / 3})
    assert squad_scores({}, {0: ["x"]}) == {"exact_match": 0.0, "f1": 0.0}


def test_best_span_keeps_to_the_context_and_valid_pairs() -> None:
    # Tokens 0-1 are the question ([-1, -1]); 2-5 the context, 6 padding past the offsets.
    offsets = [[-1, -1], [-1, -1], [0, 4], [5, 9], [10, 14], [15, 19]]
    logits = torch.tensor(
        [[9.0, 9.0], [8.0, 0.0], [0.0, 0.0], [1.0, 3.0], [2.0, 0.5], [0.0, 1.0], [50.0, 50.0]]
    )
    # Start 4 (2.0) has only end 4 (0.5) or 5 (1.0) after it: 3.0; start 3 (1.0) + end 3 (3.0) = 4.0 wins.
    assert best_span(logits, offsets) == (4.0, 5, 9)
    assert best_span(logits, [[-1, -1]] * 6) is None


def test_qa_losses_by_hand() -> None:
    student = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]])  # [batch 1, seq 3, (start, end)]
    teacher = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [9.0, 9.0]]])
    labels = torch.tensor([[0, 1]])
    ce = torch.nn.functional.cross_entropy
    expected = (ce(student[:, :, 0], labels[:, 0]) + ce(student[:, :, 1], labels[:, 1])) / 2
    assert QA.hard_loss(student, labels).item() == pytest.approx(expected.item())
    mask = torch.tensor([[1, 1, 0]])  # the third position is padding: no probability on either side
    kd = QA.logit_kd(student, teacher, 2.0, mask)
    by_hand = soft_cross_entropy(student[0, :2].T, teacher[0, :2].T, 2.0)
    assert kd.item() == pytest.approx(by_hand.item(), rel=1e-6)


# --------------------------------------------------------------------------- data


def test_squad_json_and_rows_read_the_same(tmp_path: Path) -> None:
    paragraphs = _paragraphs(20, seed=1)
    squad = load_task(str(_write_squad(tmp_path / "qa.json", paragraphs)))
    rows = load_task(str(_write_rows(tmp_path / "qa.jsonl", paragraphs)))
    for task in (squad, rows):
        assert task.kind == "question-answering" and task.num_labels == 2
        # 20 contexts split 16/2/2 by context, 3 questions each.
        assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [48, 6, 6]
        contexts = {s: set(task.splits[s]["context"]) for s in ("train", "dev", "test")}
        assert not (contexts["train"] & contexts["dev"] or contexts["train"] & contexts["test"])
    for split in ("train", "dev", "test"):
        assert squad.splits[split][:] == rows.splits[split][:]
    # With a byte-order mark it was not taken for SQuAD ("column 'text' not found ... data, version").
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "qa.json").read_bytes())
    with_bom = load_task(str(tmp_path / "bom.json"))
    for split in ("train", "dev", "test"):
        assert with_bom.splits[split][:] == squad.splits[split][:]


def test_one_answer_as_plain_values_reads_as_a_list(tmp_path: Path) -> None:
    """{"text": "Oslo", "answer_start": 17} was a TypeError traceback ('int' object is not iterable)."""
    paragraphs = _paragraphs(20, seed=1)
    listed = load_task(str(_write_rows(tmp_path / "listed.jsonl", paragraphs)))
    lines = (tmp_path / "listed.jsonl").read_text().splitlines()
    plain = []
    for line in lines:
        row = json.loads(line)
        (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
        row["answers"] = {"text": text, "answer_start": start}
        plain.append(json.dumps(row) + "\n")
    (tmp_path / "plain.jsonl").write_text("".join(plain))
    task = load_task(str(tmp_path / "plain.jsonl"))
    for split in ("train", "dev", "test"):
        assert task.splits[split][:] == listed.splits[split][:]


def test_windows_label_the_answer_span(tmp_path: Path, minilm_dir: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    paragraphs = _paragraphs(4, seed=2, filler=3)
    _write_squad(tmp_path / "train.json", paragraphs)
    _write_squad(tmp_path / "dev.json", paragraphs)
    task = load_task(str(tmp_path))
    dev = tokenize_task(task, tokenizer, 48, splits=("dev",), doc_stride=16)["dev"]
    questions = task.splits["dev"]
    assert len(dev) > len(questions)  # long contexts make several windows per question
    assert sorted(set(dev["qa_example"])) == list(range(len(questions)))
    for window in dev:
        start, end = window["labels"]
        answers = questions[window["qa_example"]]["answers"]
        first, text = answers["answer_start"][0], answers["text"][0]
        assert len(window["input_ids"]) <= 48
        context = [o for o in window["qa_offsets"] if o[0] >= 0]
        inside = context[0][0] <= first and context[-1][1] >= first + len(text)
        assert (start > 0) == inside
        if inside:
            assert window["qa_context"][window["qa_offsets"][start][0] : window["qa_offsets"][end][1]] == text
        else:
            assert end == 0  # [CLS] stands for "not in this window"
    # Every question's answer lies whole in at least one of its windows.
    assert {w["qa_example"] for w in dev if w["labels"][0] > 0} == set(range(len(questions)))

    # Logits that point at the labels score EM = F1 = 1 through the collator and the metrics.
    loader = make_dataloader(dev, tokenizer, 5, shuffle=False, collate_fn=QA.collator(tokenizer))
    predictions, references = [], []
    for batch in loader:
        assert batch["labels"].shape == (len(batch["input_ids"]), 2)
        logits = torch.zeros(*batch["input_ids"].shape, 2)
        for row, (start, end) in enumerate(batch["labels"].tolist()):
            if start > 0:
                logits[row, start, 0] = logits[row, end, 1] = 10.0
        predictions.append(QA.predictions(logits))
        references.append(QA.references(batch))
    assert QA.metrics(predictions, references, None) == {"f1": 1.0, "exact_match": 1.0, "n": len(questions)}


def test_evaluation_scores_the_answer_to_each_question_asked_alone(tmp_path: Path, minilm_dir: Path) -> None:
    """The batched evaluation of a subnet over windows scores the answer it gives each dev question
    on its own (answer_question, checked against a brute-force span search in the pipeline test).

    A random-weight model, so that its answers vary: a trained tiny model answers nothing, and then
    every way of scoring gives 0."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    paragraphs = _paragraphs(12, seed=2, filler=1)
    _write_squad(tmp_path / "train.json", _paragraphs(2, seed=1))
    _write_squad(tmp_path / "dev.json", paragraphs)
    task = load_task(str(tmp_path))
    dev = tokenize_task(task, tokenizer, 48, splits=("dev",), doc_stride=16)["dev"]
    torch.manual_seed(0)
    model = sn.to_supernet(transformers.BertForQuestionAnswering(tiny_bert_config())).eval()
    subnet = SubnetConfig(width_mult=0.5, depth_mult=0.5)
    loader = make_dataloader(dev, tokenizer, 5, shuffle=False, collate_fn=QA.collator(tokenizer))
    scores = evaluate_subnet(model, subnet, loader)
    questions = [(qa, p["context"]) for p in paragraphs for qa in p["qas"]]
    said = {
        i: answer_question(model, tokenizer, qa["question"], context, max_length=48, doc_stride=16)["answer"]
        for i, (qa, context) in enumerate(questions)
    }
    gold = {i: [a["text"] for a in qa["answers"]] for i, (qa, _) in enumerate(questions)}
    expected = squad_scores(said, gold)
    assert 0 < expected["f1"] < 1 and len(set(said.values())) > 1
    assert scores == pytest.approx({**expected, "n": len(questions)}, abs=1e-9)


def test_question_without_answer_in_train(tmp_path: Path) -> None:
    paragraphs = _paragraphs(3, seed=3)
    paragraphs[1]["qas"][2]["answers"] = []
    _write_squad(tmp_path / "train.json", paragraphs)
    _write_squad(tmp_path / "dev.json", _paragraphs(2, seed=4))
    assert _error(lambda: load_task(str(tmp_path))) == (
        "question '3-1-2' of train.json has no answer: extractive QA needs an answer span in the context "
        "for every question (SQuAD v1.1; unanswerable SQuAD 2.0 questions are not supported)"
    )


def test_answer_not_at_its_start(tmp_path: Path) -> None:
    paragraphs = _paragraphs(10, seed=5)
    paragraphs[0]["qas"][0]["answers"][0]["answer_start"] += 1
    answer = paragraphs[0]["qas"][0]["answers"][0]
    assert _error(lambda: load_task(str(_write_squad(tmp_path / "qa.json", paragraphs)))) == (
        f"the answer {answer['text']!r} of question '5-0-0' in qa.json is not at character "
        f"{answer['answer_start']} of its context: answer_start counts characters from the start of the context"
    )


def test_head_that_cannot_answer_questions() -> None:
    qa_config = transformers.BertConfig(architectures=["BertForQuestionAnswering"])
    assert head_conflict(qa_config, TASK_KINDS["classification"], 2) == (
        "has a question-answering head (start and end logits), which cannot serve the classification task "
        "(needs a sequence classifier with 2 labels)"
    )
    classifier = transformers.BertConfig(architectures=["BertForSequenceClassification"], num_labels=3)
    assert head_conflict(classifier, QA, 2) == (
        "has a sequence classifier with 3 labels, which cannot serve the question-answering task "
        "(needs a question-answering head (start and end logits))"
    )
    assert head_conflict(qa_config, QA, 2) is None


def test_not_squad(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    question = {"id": "q1", "question": "Who?", "answers": [{"text": "x", "answer_start": 0}]}
    path.write_text(json.dumps({"data": [{"title": "x", "paragraphs": [{"qas": [question]}]}]}))
    assert _error(lambda: load_task(str(path))) == (
        "qa.json is not SQuAD v1.1 JSON (missing or malformed 'context'): each article needs 'paragraphs', "
        "each paragraph 'context' and 'qas', each question 'question' and 'answers' with 'text' and "
        "'answer_start'"
    )


def test_bad_qa_file_leaves_nothing_behind(tmp_path: Path, minilm_dir: Path, capsys) -> None:
    paragraphs = _paragraphs(10, seed=6)
    paragraphs[4]["qas"][1]["answers"] = []
    data = _write_squad(tmp_path / "qa.json", paragraphs)
    run = tmp_path / "run"
    code = train_main(
        ["--config", str(PRESET), "--no-progress", f"model={minilm_dir}", f"output_dir={run}", f"task={data}"]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: question '6-4-1' of qa.json has no answer: extractive QA needs an answer span in the context "
        "for every question (SQuAD v1.1; unanswerable SQuAD 2.0 questions are not supported)"
    )
    assert not run.exists()


# --------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, minilm_dir) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("qa")
    data = root / "data"
    data.mkdir()
    _write_squad(data / "train.json", _paragraphs(24, seed=7, filler=1))
    _write_squad(data / "dev.json", _paragraphs(6, seed=8, filler=1))
    model = save_tiny_model_dir(root / "model", minilm_dir)
    run = root / "run"
    argv = ["--config", str(PRESET), "--no-progress", f"model={model}", f"output_dir={run}", *TINY_RUN]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = train_main(
            [
                *argv,
                f"task={data}",
                "data.max_length=40",
                "data.doc_stride=12",
                "width_mults=[1.0, 0.5]",
                "depth_mults=[1.0, 0.5]",
            ]
        )
    assert code == 0
    return run, printed.getvalue()


@pytest.mark.slow
def test_question_answering_end_to_end(qa_run) -> None:
    run, train_out = qa_run
    assert "question-answering" in train_out and "dev F1" in train_out
    # The task line counts questions, and the windows long contexts are cut into apart.
    squad = json.loads((run.parent / "data" / "train.json").read_text())
    questions = sum(len(p["qas"]) for article in squad["data"] for p in article["paragraphs"])
    line = next(line for line in train_out.splitlines() if line.startswith("task "))
    match = re.search(r"question-answering, train (\d+)(?: \((\d+) windows\))?, dev", line)
    assert match and int(match[1]) == min(questions, 64), line  # TINY_RUN: data.max_train_samples=64
    assert match[2] is None or int(match[2]) > questions
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [r["subnet"] for r in rows] == ["w1.00-d1.00", "w1.00-d0.50", "w0.50-d1.00", "w0.50-d0.50"]
    for r in rows:
        assert {"f1", "exact_match", "test_f1", "test_exact_match"} <= r.keys()
    config = transformers.AutoConfig.from_pretrained(run / "supernet")
    assert config.architectures == ["BertForQuestionAnswering"]

    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    lines = [json.loads(line) for line in (run / "search" / "results.jsonl").read_text().splitlines()]
    assert all(line["metric"] == "f1" for line in lines)
    assert {line["name"]: line["f1"] for line in lines} == {r["subnet"]: r["f1"] for r in rows}

    out_dir = run / "export" / "w0.50-d0.50"
    assert export_main(["--run", str(run), "--subnet", "w0.50-d0.50", "--out", str(out_dir), "--onnx"]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["metric"] == "f1" and summary["parity_ok"]
    # What the scores were taken at (the saved tokenizer cuts nothing by itself): data.max_length=40,
    # data.doc_stride=12.
    assert summary["tokenization"] == {"max_length": 40, "doc_stride": 12}
    assert summary["accuracy"]["onnx"] == pytest.approx(summary["accuracy"]["torch"], abs=1e-6)
    assert summary["accuracy"]["torch"] == pytest.approx({r["subnet"]: r["f1"] for r in rows}["w0.50-d0.50"])

    import onnxruntime as ort

    session = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["start_logits", "end_logits"]

    dense = load_exported(out_dir).eval()
    assert type(dense).__name__.endswith("ForQuestionAnswering")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    # transformers 5 has no question-answering pipeline; answer_question does its job. A long context
    # read in windows of 40 tokens sharing 12: the answer is the best span over every window.
    question = "Where was Anna Smith born?"
    context = "Anna Smith was born in Oslo in 1950. " + " ".join([FILLER] * 3) + " She works as a baker."
    got = answer_question(dense, tokenizer, question, context, max_length=40, doc_stride=12)
    enc = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=40,
        stride=12,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    assert len(enc["input_ids"]) > 2
    best = None
    for window, ids in enumerate(enc["input_ids"]):
        with torch.no_grad():
            out = dense(
                input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([enc["token_type_ids"][window]])
            )
        parts = enc.sequence_ids(window)
        for s in range(len(ids)):
            for e in range(s, min(len(ids), s + 30)):
                if parts[s] == 1 and parts[e] == 1:
                    score = float(out.start_logits[0, s] + out.end_logits[0, e])
                    if best is None or score > best[0]:
                        best = (
                            score,
                            enc["offset_mapping"][window][s][0],
                            enc["offset_mapping"][window][e][1],
                        )
    # (best_span pairs the 20 best starts with the 20 best ends; the best pair is among them here.)
    assert (got["start"], got["end"]) == best[1:] and got["answer"] == context[best[1] : best[2]]
    assert got["score"] == pytest.approx(best[0], abs=1e-5)


@pytest.mark.slow
def test_question_answering_int8_search_scores_the_int8_graph(qa_run, tmp_path: Path) -> None:
    check_int8_search_scores_what_export_ships(qa_run[0], tmp_path, "f1")
