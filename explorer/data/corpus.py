"""Reading and checking corpora (txt, jsonl, csv), queries and relevance labels.

Every reader takes bytes or a path and returns plain data or raises `ExplorerError` with
a message that names the line at fault. Nothing else escapes: the property tests feed
random bytes to prove it. A line (or field) with no visible character, only spaces, no-break
spaces, zero-width or other format characters (`budgets.is_blank`), counts as blank everywhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from explorer.budgets import MAX_CORPUS_BYTES, MAX_DOCUMENTS, MAX_QREL_GRADE, MAX_QRELS, check_encodable, is_blank
from explorer.errors import ExplorerError

FORMATS = ("txt", "jsonl", "csv")


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""


@dataclass
class Corpus:
    """An ordered list of documents with unique ids; `fingerprint` identifies the content."""

    documents: list[Document]
    name: str = "corpus"
    fingerprint: str = field(default="", init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(doc.id.encode() + b"\x00" + doc.text.encode() + b"\x01")
        self.fingerprint = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def texts(self) -> list[str]:
        return [doc.text for doc in self.documents]

    def by_id(self) -> dict[str, Document]:
        return {doc.id: doc for doc in self.documents}


def _decode(data: bytes, what: str) -> str:
    if b"\x00" in data:
        raise ExplorerError(f"{what} looks like a binary file (it contains NUL bytes); give UTF-8 text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ExplorerError(f"{what} is not UTF-8 text (bad byte at line {line}); save it as UTF-8.") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_size(data: bytes, what: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ExplorerError(
            f"{what} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB. Use a smaller corpus."
        )


def _finish(documents: list[Document], name: str, max_documents: int) -> Corpus:
    if not documents:
        raise ExplorerError(f"{name} has no documents: give at least one non-empty document.")
    if len(documents) > max_documents:
        raise ExplorerError(
            f"{name} has {len(documents):,} documents; the limit is {max_documents:,}. Use a smaller corpus."
        )
    seen: dict[str, int] = {}
    for position, doc in enumerate(documents):
        if doc.id in seen:
            raise ExplorerError(
                f"{name}: document id {doc.id!r} appears twice (documents {seen[doc.id] + 1} and "
                f"{position + 1}); ids must be unique."
            )
        seen[doc.id] = position
    return Corpus(documents, name=name)


def parse_txt(text: str, name: str = "corpus", max_documents: int = MAX_DOCUMENTS) -> Corpus:
    """One document per line with a visible character; its id is the line number (1-based), stable under
    edits below it."""
    documents = [
        Document(id=str(number), text=line.strip())
        for number, line in enumerate(text.split("\n"), start=1)
        if not is_blank(line)
    ]
    return _finish(documents, name, max_documents)


def _text_field(value, name: str, line: int, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ExplorerError(f"{name}, line {line}: {key!r} must be a string, not {type(value).__name__}.")
    return "" if is_blank(str(value)) else str(value).strip()


def _json_line(line: str, name: str, number: int):
    """One line's JSON value, or a message naming the line (bad JSON, or nested too deeply to read)."""
    try:
        return json.loads(line)
    except ValueError as error:
        raise ExplorerError(f"{name}, line {number}: not valid JSON ({error.args[0].split(':')[0]}).") from None
    except RecursionError:
        raise ExplorerError(f"{name}, line {number}: the JSON is nested too deeply to read; "
                            "give one flat object per line.") from None


def parse_jsonl(text: str, name: str = "corpus", max_documents: int = MAX_DOCUMENTS) -> Corpus:
    """One JSON object per line: {"id", "text"} and optionally "title"."""
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if is_blank(line):
            continue
        record = _json_line(line, name, number)
        if not isinstance(record, dict):
            raise ExplorerError(f"{name}, line {number}: expected a JSON object with \"id\" and \"text\".")
        body = _text_field(record.get("text"), name, number, "text")
        if not body:
            raise ExplorerError(f"{name}, line {number}: the \"text\" field is missing or empty.")
        doc_id = _text_field(record.get("id", record.get("_id")), name, number, "id") or str(number)
        title = _text_field(record.get("title"), name, number, "title")
        documents.append(Document(id=doc_id, text=body, title=title))
    return _finish(documents, name, max_documents)


def parse_csv(text: str, name: str = "corpus", max_documents: int = MAX_DOCUMENTS) -> Corpus:
    """A header row with `text` (and usually `id`, optionally `title`), then one document per row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as error:
        raise ExplorerError(f"{name}, line {reader.line_num}: malformed CSV ({error}).") from None
    if not rows:
        raise ExplorerError(f"{name} has no documents: give at least one non-empty document.")
    header = [cell.strip().lower() for cell in rows[0]]
    if "text" not in header:
        raise ExplorerError(f"{name}, line 1: the header must name a 'text' column (found: {', '.join(header)}).")
    text_col, id_col = header.index("text"), header.index("id") if "id" in header else None
    title_col = header.index("title") if "title" in header else None
    documents = []
    for number, row in enumerate(rows[1:], start=2):
        if all(is_blank(cell) for cell in row):
            continue
        if len(row) != len(header):
            raise ExplorerError(
                f"{name}, line {number}: expected {len(header)} fields as in the header, found {len(row)}."
            )
        body = "" if is_blank(row[text_col]) else row[text_col].strip()
        if not body:
            raise ExplorerError(f"{name}, line {number}: the text is empty.")
        doc_id = row[id_col].strip() if id_col is not None and not is_blank(row[id_col]) else str(number - 1)
        title = row[title_col].strip() if title_col is not None else ""
        documents.append(Document(id=doc_id, text=body, title=title))
    return _finish(documents, name, max_documents)


_PARSERS = {"txt": parse_txt, "jsonl": parse_jsonl, "csv": parse_csv}


def format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix == "json":
        suffix = "jsonl"
    if suffix not in _PARSERS:
        raise ExplorerError(f"{Path(filename).name}: unsupported file type; use .txt, .jsonl or .csv.")
    return suffix


def read_corpus_bytes(
    data: bytes,
    filename: str,
    max_documents: int = MAX_DOCUMENTS,
    max_bytes: int = MAX_CORPUS_BYTES,
) -> Corpus:
    """Parse an uploaded or read file; the format comes from the file name's extension."""
    name = Path(filename).name or "corpus"
    fmt = format_of(filename)
    _check_size(data, name, max_bytes)
    return _PARSERS[fmt](_decode(data, name), name=name, max_documents=max_documents)


def read_corpus(path: str | os.PathLike, max_documents: int = MAX_DOCUMENTS, max_bytes: int = MAX_CORPUS_BYTES) -> Corpus:
    """Read a corpus file from disk (.txt, .jsonl or .csv)."""
    path = Path(path)
    format_of(path.name)  # fail on the extension before touching the disk
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ExplorerError(
                f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB. Use a smaller corpus."
            )
        data = path.read_bytes()
    except OSError as error:
        raise ExplorerError(f"Cannot read {path}: {error.strerror or error}.") from None
    return read_corpus_bytes(data, path.name, max_documents=max_documents, max_bytes=max_bytes)


def corpus_from_text(text: str, max_documents: int = MAX_DOCUMENTS, max_bytes: int = MAX_CORPUS_BYTES) -> Corpus:
    """A pasted corpus: one document per non-empty line."""
    text = check_encodable(text or "", "pasted corpus")  # a lone surrogate would crash the tokenizer
    data = text.encode("utf-8")
    _check_size(data, "The pasted corpus", max_bytes)
    return parse_txt(text or "", name="the pasted corpus", max_documents=max_documents)


# ---- queries and relevance labels -------------------------------------------------------


@dataclass(frozen=True)
class Query:
    id: str
    text: str


def read_queries(path: str | os.PathLike) -> list[Query]:
    """queries.jsonl (one {"id", "text"} object per line), or the same .txt/.csv forms as a corpus."""
    parsed = read_corpus(path)
    return [Query(doc.id, doc.text) for doc in parsed.documents]


Qrels = dict[str, dict[str, int]]


def _grade(value: str, name: str, number: int) -> int:
    try:
        grade = int(value)
    except (ValueError, TypeError):
        raise ExplorerError(f"{name}, line {number}: the grade {value!r} is not a whole number.") from None
    if not 0 <= grade <= MAX_QREL_GRADE:
        raise ExplorerError(f"{name}, line {number}: the grade {grade} is outside 0..{MAX_QREL_GRADE}.")
    return grade


def parse_qrels(text: str, name: str) -> tuple[Qrels, dict[tuple[str, str], int]]:
    """{query_id: {doc_id: grade}} and the line each label came from."""

    qrels: Qrels = {}
    where: dict[tuple[str, str], int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if is_blank(line):
            continue
        if line.lstrip().startswith("{"):
            record = _json_line(line, name, number)
            try:
                query_id, doc_id, raw = str(record["query_id"]), str(record["doc_id"]), record["relevance"]
            except (KeyError, TypeError):
                raise ExplorerError(f"{name}, line {number}: expected {{\"query_id\", \"doc_id\", \"relevance\"}}.") from None
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            grade = _grade(str(raw).lower() if isinstance(raw, bool) else str(raw), name, number)
        else:
            parts = line.split()
            if number == 1 and [p.lower() for p in parts] == ["query-id", "corpus-id", "score"]:
                continue  # BEIR's header
            if len(parts) == 3:
                query_id, doc_id, grade = parts[0], parts[1], _grade(parts[2], name, number)
            elif len(parts) == 4:
                query_id, doc_id, grade = parts[0], parts[2], _grade(parts[3], name, number)
            else:
                raise ExplorerError(
                    f"{name}, line {number}: expected 'query_id 0 doc_id grade' (TREC) or "
                    f"'query-id corpus-id score' (BEIR tsv), found {len(parts)} fields."
                )
        if (query_id, doc_id) in where:
            raise ExplorerError(
                f"{name}, line {number}: query {query_id!r} and document {doc_id!r} are labelled twice "
                f"(first on line {where[(query_id, doc_id)]})."
            )
        if len(where) >= MAX_QRELS:
            raise ExplorerError(f"{name} has more than {MAX_QRELS:,} labels; the limit is {MAX_QRELS:,}.")
        where[(query_id, doc_id)] = number
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not qrels:
        raise ExplorerError(f"{name} holds no relevance labels.")
    return qrels, where


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Relevance labels as {query_id: {doc_id: grade}}, from TREC lines, jsonl or BEIR's tsv."""
    path = Path(path)
    try:
        text = _decode(path.read_bytes(), path.name)
    except OSError as error:
        raise ExplorerError(f"Cannot read {path}: {error.strerror or error}.") from None
    return parse_qrels(text, path.name)[0]
