"""A large corpus of real text that every machine already has: the installed Python's docs.

Passages come from the docstrings of a fixed list of standard-library modules (the
modules, their public functions and classes, and the classes' public methods) and from
the language reference topics that `pydoc` carries (`pydoc_data.topics`). Each text is
split at blank lines into passages of up to about PASSAGE_CHARS characters.

Ids are `<qualified name>#<passage number>` (e.g. `json.dumps#0`) and
`reference:<topic>#<n>`, so they do not depend on where a module sits on disk; the
first passage of a documented name exists on every Python from 3.10 to 3.13. The text
does change between Python versions, so the built file is cached per version under
`cache_dir()/corpora`, written atomically.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import warnings
from pathlib import Path

from explorer.data.corpus import Corpus, Document
from explorer.paths import cache_dir, read_checked, write_checked

BUILD_VERSION = 1  # bump when the passages change shape, so old caches are not reused
PASSAGE_CHARS = 450
MIN_DOC_CHARS = 30

# Present and importable on Linux, macOS and Windows from Python 3.10 to 3.13 (modules
# removed in 3.12/3.13 and platform-only ones are left out on purpose).
MODULES = """
abc argparse array ast asyncio base64 bisect builtins bz2 calendar cmath cmd code codecs
codeop collections collections.abc colorsys compileall concurrent.futures configparser
contextlib contextvars copy copyreg csv ctypes dataclasses datetime decimal difflib dis
doctest email email.message email.mime.text email.parser email.policy email.utils enum
errno faulthandler filecmp fileinput fnmatch fractions ftplib functools gc getopt getpass
gettext glob graphlib gzip hashlib heapq hmac html html.parser http http.client
http.cookiejar http.cookies http.server imaplib importlib importlib.abc importlib.machinery
importlib.metadata importlib.resources importlib.util inspect io ipaddress itertools json
keyword linecache locale logging logging.config logging.handlers lzma mailbox marshal
math mimetypes mmap modulefinder multiprocessing multiprocessing.pool
multiprocessing.shared_memory netrc numbers operator optparse os os.path pathlib pdb pickle
pickletools pkgutil platform plistlib poplib pprint profile pstats py_compile pyclbr
queue quopri random re reprlib rlcompleter runpy sched secrets select selectors shelve
shlex shutil signal site smtplib socket socketserver sqlite3 ssl stat statistics string
stringprep struct subprocess symtable sys sysconfig tabnanny tarfile tempfile textwrap
threading time timeit token tokenize trace traceback tracemalloc types typing
unicodedata unittest unittest.mock urllib.error urllib.parse urllib.request
urllib.robotparser uuid warnings wave weakref webbrowser wsgiref.simple_server
wsgiref.util xml.dom.minidom xml.etree.ElementTree xml.sax xml.sax.handler xmlrpc.client
xmlrpc.server zipapp zipfile zipimport zlib zoneinfo
""".split()


def _paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def split_passages(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Pack paragraphs into passages of at most about `limit` characters.

    A paragraph longer than the limit is cut at sentence ends (or, failing that, spaces).
    """
    pieces: list[str] = []
    for paragraph in _paragraphs(text):
        while len(paragraph) > limit:
            cut = paragraph.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 3 else paragraph.rfind(" ", 0, limit)
            if cut <= 0:
                cut = limit
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    passages: list[str] = []
    for piece in pieces:
        if passages and len(passages[-1]) + 1 + len(piece) <= limit:
            passages[-1] += " " + piece
        else:
            passages.append(piece)
    return passages


def _own_doc(obj) -> str:
    # obj.__doc__, not inspect.getdoc: getdoc copies a base class's docstring onto every
    # subclass method, which would fill the corpus with duplicates.
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or len(doc.strip()) < MIN_DOC_CHARS:
        return ""
    return inspect.cleandoc(doc)


def _public_members(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if not isinstance(names, (list, tuple)):
        names = [name for name in vars(module) if not name.startswith("_")]
    members = []
    for name in sorted(set(names)):
        obj = getattr(module, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        home = getattr(obj, "__module__", None)
        # Keep names defined here (or in this module's C accelerator, e.g. _json for json).
        if home is not None and home not in (module.__name__, "_" + module.__name__.split(".")[-1]):
            if module.__name__ != "builtins":
                continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            members.append((name, obj))
    return members


def _documented_names(module_name: str) -> list[tuple[str, str]]:
    """(qualified name, docstring) for a module, its public functions/classes and methods."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(module_name)
    except Exception:  # a build without e.g. sqlite3 or ssl: that module is simply absent
        return []
    found = [(module_name, _own_doc(module))]
    for name, obj in _public_members(module):
        qualified = f"{module_name}.{name}"
        found.append((qualified, _own_doc(obj)))
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isroutine(member) or isinstance(member, property):
                    found.append((f"{qualified}.{attr}", _own_doc(member)))
    return [(name, doc) for name, doc in found if doc]


def _reference_topics() -> list[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []
    return [(f"reference:{name}", text) for name, text in sorted(topics.items())]


def build_documents() -> list[Document]:
    """Every passage, in a fixed order (modules as listed, names sorted)."""
    documents: list[Document] = []
    seen: set[str] = set()
    sources = [item for module in MODULES for item in _documented_names(module)] + _reference_topics()
    for name, text in sources:
        if name in seen:  # a name listed twice (e.g. reached through two modules)
            continue
        seen.add(name)
        label = name.removeprefix("reference:")
        for number, passage in enumerate(split_passages(text)):
            documents.append(Document(id=f"{name}#{number}", text=f"{label}: {passage}", title=label))
    return documents


def corpus_path() -> Path:
    """Where the generated python_docs corpus of this Python version and build version is cached (JSONL under
    the cache folder)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return cache_dir() / "corpora" / f"python_docs-py{version}-v{BUILD_VERSION}.jsonl"


def ensure_corpus_file() -> Path:
    """The corpus as `corpus.jsonl` lines, built at first use and cached (atomic write)."""
    path = corpus_path()
    if read_checked(path) is not None:  # a damaged or unchecked file is rebuilt
        return path
    lines = [json.dumps({"id": doc.id, "title": doc.title, "text": doc.text}, ensure_ascii=False) + "\n"
             for doc in build_documents()]
    write_checked(path, "".join(lines).encode("utf-8"))
    return path


def load_python_docs() -> Corpus:
    """The python_docs corpus (this interpreter's documentation, built on first use): at most 100,000
    documents and 200 MB; raises ExplorerError if it cannot be built or read."""
    from explorer.data.corpus import read_corpus

    corpus = read_corpus(ensure_corpus_file(), max_documents=100_000, max_bytes=200 * 1024 * 1024)
    corpus.name = f"python_docs (Python {sys.version_info.major}.{sys.version_info.minor} documentation)"
    return corpus
