"""Open an index folder built by `build.py` as rankers the one pipeline runs on unchanged.

`PrebuiltIndex` reads the manifest and the stored documents (their fingerprint must equal the
manifest's, so an edited documents file is refused), and hands out `Retriever`s: a bi-encoder
whose corpus index is the stored embeddings and FAISS index (the model still encodes each
query), BM25 from bm25s's saved index, or the hybrid of both. Nothing in the corpus is encoded
again. A request the index cannot answer as built (a model it does not hold, another precision
or engine, another corpus) is refused with an `ExplorerError` that names what differs.
"""

from __future__ import annotations

import io
import json
import os
import threading
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np

from explorer.data.corpus import Corpus, Document
from explorer.engine.loading import load_model
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.indexing.build import FORMAT, sha256_of
from explorer.paths import read_checked
from explorer.rankers.base import Retriever
from explorer.rankers.bi_encoder import BiEncoder, CorpusIndex
from explorer.rankers.bm25 import BM25, BM25Index
from explorer.rankers.bm25 import SETTINGS as BM25_SETTINGS
from explorer.rankers.hybrid import Hybrid
from explorer.rankers.late_interaction import LateInteraction


class PrebuiltIndex:
    """An index folder: its manifest, its documents, and retrievers over them."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        data = read_checked(self.folder / "manifest.json")
        if data is None:
            raise ExplorerError(
                f"{self.folder} is not a finished index: manifest.json is missing or damaged "
                "(build it with `python -m explorer index --corpus PATH --out DIR`)."
            )
        self.manifest = json.loads(data)
        if self.manifest.get("format") != FORMAT:
            raise ExplorerError(f"{self.folder} was built by another version (format {self.manifest.get('format')!r}, "
                                f"this one reads {FORMAT}); build it again.")
        self.corpus = self._read_documents()
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        return self.manifest["corpus"]["fingerprint"]

    def _read_documents(self) -> Corpus:
        path = self.folder / self.manifest["corpus"]["file"]
        data = read_checked(path)
        if data is None:
            raise ExplorerError(f"{path} is missing or does not match its checksum: the index's documents were "
                                "edited or damaged. Build the index again.")
        documents = [Document(**json.loads(line)) for line in data.decode("utf-8").splitlines() if line.strip()]
        corpus = Corpus(documents, name=self.manifest["corpus"]["name"])
        self.check_fingerprint(corpus.fingerprint, f"its documents file {path.name}")
        return corpus

    def check_fingerprint(self, fingerprint: str, what: str = "this corpus") -> None:
        """Refuse a corpus other than the one the index was built from."""
        if fingerprint != self.fingerprint:
            raise ExplorerError(
                f"The index {self.folder} was built from corpus {self.manifest['corpus']['name']!r} "
                f"(fingerprint {self.fingerprint[:12]}…), not from {what} (fingerprint {fingerprint[:12]}…); "
                "it is never used for another corpus. Build an index of this corpus."
            )

    def check_corpus(self, corpus: Corpus) -> None:
        self.check_fingerprint(corpus.fingerprint, f"{corpus.name!r}")

    def _entry(self, model_id: str) -> dict:
        for entry in self.manifest["bi_encoders"]:
            if entry["model_id"] == model_id:
                return entry
        held = ", ".join(e["model_id"] for e in self.manifest["bi_encoders"]) or "none"
        raise ExplorerError(f"The index {self.folder} holds no embeddings of bi-encoder {model_id!r} "
                            f"(it holds: {held}). Name one of those, or build the index with --bi-encoder {model_id}.")

    def _once(self, key: str, load):
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load()
            return self._loaded[key]

    def dense_index(self, entry: dict) -> CorpusIndex:
        """The stored embeddings and FAISS index of one bi-encoder (read once, checksums checked)."""
        def load() -> CorpusIndex:
            raw = {name: read_checked(self.folder / entry[name]) for name in ("embeddings", "faiss")}
            damaged = [entry[name] for name, data in raw.items() if data is None]
            if damaged:
                raise ExplorerError(f"{', '.join(damaged)} in {self.folder} is missing or damaged; build the index again.")
            embeddings = np.load(io.BytesIO(raw["embeddings"]))
            index = faiss.deserialize_index(np.frombuffer(raw["faiss"], dtype=np.uint8))
            return CorpusIndex(embeddings=embeddings, index=index)
        return self._once(entry["embeddings"], load)

    def lexical_index(self) -> BM25Index:
        info = self.manifest.get("bm25")
        if not info:
            raise ExplorerError(f"The index {self.folder} holds no BM25 index; build it with --bm25.")

        if info.get("settings") != BM25_SETTINGS:  # queries must be split as the documents were
            raise ExplorerError(f"The BM25 index in {self.folder} was built with other settings "
                                f"({info.get('settings')}); build it again with --bm25 to use today's ({BM25_SETTINGS}).")

        def load() -> BM25Index:
            changed = [name for name, digest in info["files"].items()
                       if not (self.folder / name).is_file() or sha256_of(self.folder / name) != digest]
            if changed:
                raise ExplorerError(f"The BM25 files {', '.join(changed)} in {self.folder} are missing or damaged; "
                                    "build the index again.")
            import bm25s  # as in rankers/bm25.py: loaded on first use only

            return BM25Index(bm25s.BM25.load(str(self.folder / info["folder"])), len(self.corpus))
        return self._once("bm25", load)

    def bi_encoder(self, model_id: str, precision: Precision, allow_local_path: bool = False) -> PrebuiltBiEncoder:
        entry = self._entry(model_id)
        if precision == "auto":  # "whatever suits": the precision the index was built at
            precision = entry["precision"]
        ranker = PrebuiltBiEncoder(load_model(model_id, "bi", allow_local_path=allow_local_path), precision, self, entry)
        if (ranker.precision, ranker.info.engine) != (entry["precision"], entry["engine"]):
            raise ExplorerError(
                f"The index's {model_id} embeddings were computed in {entry['precision']} ({entry['engine']}); "
                f"this request runs {ranker.precision} ({ranker.info.engine}). Ask for --precision "
                f"{entry['precision']}, or build the index at this precision."
            )
        return ranker

    def stored_reranker(self, entry: str, precision: Precision) -> PrebuiltLateInteraction | None:
        """Late interaction over the stored token vectors, where the index holds them for this request
        ("late", at the precision they were computed at); else None, and the re-ranker encodes as usual."""
        kind, _, named = entry.partition("@")
        info = self.manifest.get("late")
        if kind != "late" or not info:
            return None
        wanted = named or (info["precision"] if precision == "auto" else precision)
        ranker = PrebuiltLateInteraction(load_model(info["model_id"], "late"), wanted, self, info)
        return ranker if (ranker.precision, ranker.info.engine) == (info["precision"], info["engine"]) else None

    def late_vectors(self, info: dict) -> dict[str, np.ndarray]:
        """Each stored document's token vectors by its text (read once, checksum checked)."""
        def load() -> dict[str, np.ndarray]:
            data = read_checked(self.folder / info["file"])
            if data is None:
                raise ExplorerError(f"{info['file']} in {self.folder} is missing or damaged; build the index again.")
            with np.load(io.BytesIO(data)) as stored:
                vectors, lengths = stored["vectors"], stored["lengths"]
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            return {doc.text: vectors[a:b] for doc, a, b in zip(self.corpus.documents, bounds[:-1], bounds[1:])}
        return self._once(info["file"], load)

    def first_stage(self, first_stage: str, bi_encoder: str, precision: Precision,
                    allow_local_models: bool = False) -> Retriever:
        """The retriever `compare` asks for ("bi", "bm25", "hybrid"), over this index."""
        if first_stage == "bi":
            return self.bi_encoder(bi_encoder, precision, allow_local_models)
        if first_stage == "bm25":
            return PrebuiltBM25(self)
        if first_stage == "hybrid":
            return Hybrid(PrebuiltBM25(self), self.bi_encoder(bi_encoder, precision, allow_local_models))
        raise ExplorerError(f"Unknown first stage {first_stage!r}: use one of bi, bm25, hybrid.")


class PrebuiltBiEncoder(BiEncoder):
    """A bi-encoder whose corpus index is the stored one: queries are encoded, documents never are."""

    def __init__(self, model, precision: Precision, index: PrebuiltIndex, entry: dict):
        super().__init__(model, precision)
        self.prebuilt, self.entry = index, entry

    def index_corpus(self, texts, fingerprint, persist=False, progress=None) -> tuple[CorpusIndex, bool]:
        self.prebuilt.check_fingerprint(fingerprint)
        return self.prebuilt.dense_index(self.entry), True


class PrebuiltBM25(BM25):
    """BM25 over the stored bm25s index (same settings as `BM25`)."""

    def __init__(self, index: PrebuiltIndex):
        super().__init__()
        self.prebuilt = index

    def index_corpus(self, texts, fingerprint, persist=False, progress=None) -> tuple[BM25Index, bool]:
        self.prebuilt.check_fingerprint(fingerprint)
        return self.prebuilt.lexical_index(), True


class PrebuiltLateInteraction(LateInteraction):
    """Late interaction whose documents' token vectors are the stored ones; queries (and any text the
    index does not hold) are encoded as `LateInteraction` encodes them."""

    def __init__(self, model, precision: Precision, index: PrebuiltIndex, info: dict):
        super().__init__(model, precision)
        self.prebuilt, self.stored = index, info

    def token_vectors(self, texts, progress=None):
        stored = self.prebuilt.late_vectors(self.stored)
        missing = [text for text in dict.fromkeys(texts) if text not in stored]
        encoded, _ = super().token_vectors(missing) if missing else ([], 0)
        found = {**stored, **dict(zip(missing, encoded))}
        vectors = [found[text] for text in texts]
        # A text was cut where its tokens, with [CLS] and [SEP], fill the model's limit (as `LateInteraction` counts).
        truncated = sum(len(v) + 2 >= self.max_length for v in vectors)
        if progress:
            progress(len(texts), len(texts))
        return vectors, truncated


@lru_cache(maxsize=1)
def configured_index() -> PrebuiltIndex | None:
    """The prebuilt index named by EXPLORER_INDEX (`python app.py --index DIR` sets it), opened once."""
    folder = os.environ.get("EXPLORER_INDEX")
    return PrebuiltIndex(folder) if folder else None
