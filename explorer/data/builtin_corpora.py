"""The labelled corpora shipped in `corpora/`: list them, and load one with its labels.

`corpora/index.json` names each set, says in a sentence or two what it teaches, and
gives its files. The `python_docs` set has no corpus file in the repository: its
passages are built from the installed Python at first use (see `stdlib_corpus.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from explorer.data.corpus import Corpus, Query, corpus_from_text, read_corpus, read_qrels, read_queries
from explorer.errors import ExplorerError
from explorer.paths import REPO_ROOT

CORPORA_DIR = REPO_ROOT / "corpora"
GENERATED = "generated"  # the corpus entry of a set whose passages are built, not stored


@dataclass(frozen=True)
class BuiltinSet:
    name: str
    title: str
    teaches: str
    corpus: str  # file name inside the set's folder, or GENERATED
    queries: str
    qrels: str
    default_top_k: int

    @property
    def folder(self) -> Path:
        return CORPORA_DIR / self.name

    @property
    def generated(self) -> bool:
        return self.corpus == GENERATED

    def corpus_path(self) -> Path:
        """The corpus file; for a generated set this builds it on first use."""
        if self.generated:
            from explorer.data.python_docs import ensure_corpus_file

            return ensure_corpus_file()
        return self.folder / self.corpus

    @property
    def queries_path(self) -> Path:
        return self.folder / self.queries

    @property
    def qrels_path(self) -> Path:
        return self.folder / self.qrels


@dataclass
class LabelledSet:
    info: BuiltinSet
    corpus: Corpus
    queries: list[Query]
    qrels: dict[str, dict[str, int]]


@lru_cache(maxsize=1)
def list_sets() -> tuple[BuiltinSet, ...]:
    """Every shipped set, in the order of corpora/index.json."""
    entries = json.loads((CORPORA_DIR / "index.json").read_text(encoding="utf-8"))
    return tuple(BuiltinSet(**entry) for entry in entries["sets"])


def get_set(name: str) -> BuiltinSet:
    for info in list_sets():
        if info.name == name:
            return info
    known = ", ".join(info.name for info in list_sets())
    # Only names from the list ever reach the disk: a "name" is never a path.
    raise ExplorerError(f"Unknown corpus {name!r}; choose one of the built-in corpora: {known}.")


@lru_cache(maxsize=16)
def load_set(name: str) -> LabelledSet:
    """Corpus, queries and relevance labels of one shipped set, read once per process.

    Callers share the returned objects and must not change them.
    """
    info = get_set(name)
    if info.generated:
        from explorer.data.python_docs import load_python_docs

        corpus = load_python_docs()
    else:
        corpus = read_corpus(info.corpus_path())
        corpus.name = info.name
    return LabelledSet(info, corpus, read_queries(info.queries_path), read_qrels(info.qrels_path))


BUILTIN_PREFIX = "builtin:"


def read_corpus_argument(argument: str) -> Corpus:
    """The command line's --corpus: a corpus file, or `builtin:<name>` for a shipped set
    (python_docs is built on first use)."""
    if argument.startswith(BUILTIN_PREFIX):
        return load_set(argument[len(BUILTIN_PREFIX) :]).corpus
    return read_corpus(argument)


SOURCES = ("Paste", "Upload", "Built-in")  # where a corpus comes from on the page
INDEX_CHOICE = "prebuilt-index"  # the Built-in picker's value for the configured prebuilt index


def corpus_from_source(source: str, text: str, upload: str | None, builtin: str | None,
                       prebuilt: Corpus | None = None) -> Corpus:
    """The corpus a visitor meant: pasted lines, an uploaded file, a shipped set by name, or
    (`builtin` == INDEX_CHOICE) the configured prebuilt index's corpus, `prebuilt`.

    Raises ExplorerError for a missing upload, an unknown set or an empty paste.
    """
    if source == "Upload":
        if not upload:
            raise ExplorerError("No file uploaded: choose a .txt, .jsonl or .csv file, or paste documents instead.")
        return read_corpus(upload)  # checks the size before reading
    if source == "Built-in" and builtin == INDEX_CHOICE and prebuilt is not None:
        return prebuilt
    if source == "Built-in":
        return load_set(builtin or "").corpus
    if not (text or "").strip():
        raise ExplorerError("The corpus is empty: paste one document per line, upload a file or pick a built-in corpus.")
    return corpus_from_text(text)
