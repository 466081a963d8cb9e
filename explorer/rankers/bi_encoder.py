"""Bi-encoder retrieval: embed texts separately, index them in FAISS, search by the model's similarity.

What an embedding is comes from sentence-transformers: the model loads as a
`SentenceTransformer`, and its modules (Pooling of any mode, Dense, Normalize), its prompts
(query side and document side apart, as `encode_query` / `encode_document` choose them) and
its maximum length decide it. The index holds inner products: for a model compared by cosine
the vectors are L2-normalised first (so inner product *is* cosine), for "dot" they are not.
A corpus is encoded once per (model, precision, content) and reused.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import torch

from explorer import caches
from explorer.engine.loading import load_model
from explorer.engine.model import LoadedModel
from explorer.engine.packed_bert import packed_inputs
from explorer.engine.precision import Precision
from explorer.paths import MAX_EMBEDDING_DISK_BYTES, cache_dir, mark_used, read_checked, trim_to_size, write_checked
from explorer.rankers.base import ProgressCallback, RankerInfo, Retriever

Side = Literal["query", "document"]
# Texts handed to `encode_query` / `encode_document` per call, so progress can be reported between calls.
ENCODE_CHUNK = 512


def after_transformer(model: LoadedModel, token_states: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """The sentence embeddings (sequences, dim) that the model's own modules after its transformer
    (Pooling, Dense, Normalize: the sentence-transformers objects themselves) make of packed
    fp32 token states (total tokens, hidden), one run of `lengths[i]` rows per sequence.

    Pooling takes them in its flattened form (`cu_seq_lens_q`, as for unpadded attention), so
    nothing is padded back.
    """
    bounds = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    bounds[1:] = torch.cumsum(torch.tensor(list(lengths), dtype=torch.int32), 0)
    features = {"token_embeddings": token_states[None], "cu_seq_lens_q": bounds}
    for module in model.st_modules()[1:]:
        features = module(features)
    return features["sentence_embedding"]


class BiEncoder(Retriever):
    """A bi-encoder bound to one precision and engine: encodes texts, indexes and searches a corpus.

    bf16 on a plain BERT encoder runs packed, padding-free chunks (`packed_bert`), followed by
    the model's own Pooling / Dense / Normalize modules; everything else runs
    sentence-transformers' own `encode_query` / `encode_document`. fp32 is exactly those.
    """

    BATCH_SIZE = 32

    def __init__(self, model: LoadedModel, precision: Precision = "auto"):
        self.model = model
        self.engine = model.bind(precision)
        self.precision = self.engine.precision
        self.score_name = "cosine" if model.similarity == "cosine" else "dot product"
        self.info = RankerInfo(model.id, model.name, "bi", self.score_name, self.precision, engine=self.engine.name,
                               prompts=model.prompts_text(), precision_note=self.engine.note)

    @property
    def dimension(self) -> int:
        """Length of one embedding (number of floats), as sentence-transformers reports it for the loaded
        model."""
        return int(self.model.library.get_embedding_dimension())

    def embed(self, texts: Sequence[str], side: Side = "document",
              progress: ProgressCallback | None = None) -> np.ndarray:
        """Sentence embeddings (n, dim) float32, as `SentenceTransformer.encode_query` (side "query")
        or `encode_document` (side "document") computes them."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            if self.engine.packed is not None:
                prompt = model.prompt(side)
                encoded = model.tokenizer([prompt + t for t in texts] if prompt else list(texts),
                                          truncation=True, max_length=model.max_length)
                for chunk, chunk_ids, chunk_types in packed_inputs(encoded, progress):
                    states = self.engine.packed.hidden_states(chunk_ids, chunk_types)
                    output[chunk] = after_transformer(model, states, [len(row) for row in chunk_ids]).float().numpy()
            else:
                library = self.engine.library
                encode = library.encode_query if side == "query" else library.encode_document
                for start in range(0, len(texts), ENCODE_CHUNK):
                    piece = list(texts[start:start + ENCODE_CHUNK])
                    output[start:start + len(piece)] = encode(piece, batch_size=self.BATCH_SIZE, convert_to_numpy=True,
                                                              show_progress_bar=False)
                    if progress:
                        progress(start + len(piece), len(texts))
        return output

    def explain(self, query: str, document: str) -> BiExplanation:
        """The cosine of `query` and `document` (fp32, the model's own modules), and where it comes from:
        for a mean-pooled model its exact split over document tokens, else the token cosine view (`explain_bi`)."""
        return explain_bi(self, query, document)

    def for_index(self, embeddings: np.ndarray) -> np.ndarray:
        """The vectors the inner-product index holds: L2-normalised where the model compares by
        cosine and does not normalise itself; as they are for "dot" (and after a Normalize module)."""
        if self.model.similarity != "cosine" or self.model.normalize or not len(embeddings):
            return embeddings
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        return (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None,
               side: Side = "document") -> np.ndarray:
        """What the index holds for these texts (n, dim) float32: `embed`, then `for_index`."""
        return self.for_index(self.embed(texts, side, progress))

    def index_corpus(self, texts, fingerprint, persist=False, progress=None) -> tuple[CorpusIndex, bool]:
        """Embed `texts` (or load them from the cache by `fingerprint`) into a CorpusIndex of shape
        (len(texts), dimension); returns (index, True when it came from a cache). See `corpus_index`."""
        return corpus_index(self, texts, fingerprint, persist=persist, progress=progress)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """The queries as the index compares them: (len(queries), dimension) float32, from
        `SentenceTransformer.encode_query`, L2-normalised where the model compares by cosine (`for_index`)."""
        return self.encode(queries, side="query")

    def search(self, index: CorpusIndex, encoded_queries: np.ndarray, depth: int):
        """(scores, positions), each (queries, depth): cosine of each query vector with the corpus's, best
        first, by the corpus's FAISS index (exact inner product of L2-normalised vectors, or HNSW)."""
        return search(index.index, encoded_queries, depth)


@dataclass
class TokenShare:
    """One document token in a bi-encoder explanation: its character span in the document (None for a
    special or prompt token) and its value (a share of the cosine, or a token cosine in a view)."""

    token: str
    start: int | None
    end: int | None
    value: float


@dataclass
class BiExplanation:
    """Why a bi-encoder gives (query, document) its cosine.

    kind "split": the document embedding is the mean of its n token states h_i (then normalised), so
    cosine = sum_i q_hat . h_i / (n |mean|), and `tokens[i].value` is that term: the values sum to `cosine`.
    kind "view": the model pools otherwise ([CLS], ...), no exact split exists; each value is the
    cosine of the query embedding with that token's state, a view, not a split."""

    kind: str  # "split" or "view"
    pooling: str
    cosine: float  # fp32, from the model's own modules
    tokens: list[TokenShare]
    tokens_cut: int  # document tokens past the model's maximum length, never read
    max_length: int
    label: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


def _states(encoder: BiEncoder, text: str, side: Side) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """One fp32 pass of sentence-transformers' own model over one text: its features, token states
    (tokens, hidden) and sentence embedding (hidden,)."""
    library = encoder.model.library
    prompt = encoder.model.prompt(side)
    features = library.preprocess([text], prompt=prompt or None, task=side)
    with torch.inference_mode():
        output = library(dict(features), task=side)
    return features, output["token_embeddings"][0].float(), output["sentence_embedding"][0].float()


def _splits_exactly(encoder: BiEncoder) -> bool:
    """Mean pooling, nothing after it but Normalize, every token counted: the cosine is a sum over tokens."""
    from sentence_transformers.base.modules import Normalize

    modules = encoder.model.st_modules()
    pooling = encoder.model._pooling()
    return (encoder.model.pooling == "mean" and len(modules) >= 2 and modules[1] is pooling
            and all(isinstance(m, Normalize) for m in modules[2:])
            and (not encoder.model.prompt("document") or getattr(pooling, "include_prompt", True)))


def explain_bi(encoder: BiEncoder, query: str, document: str) -> BiExplanation:
    """The cosine of one pair and its split over document tokens (mean pooling) or token cosine view."""
    _, _, query_vector = _states(encoder, query, "query")
    features, states, doc_vector = _states(encoder, document, "document")
    unit = torch.nn.functional.normalize
    q_hat = unit(query_vector, dim=0)
    cosine = float(q_hat @ unit(doc_vector, dim=0))
    tokenizer = encoder.model.tokenizer
    ids = features["input_ids"][0].tolist()
    mask = features["attention_mask"][0].bool()
    counted = states[mask]
    names = tokenizer.convert_ids_to_tokens(ids)
    spans = _document_spans(encoder, document, len(ids))
    total = len(tokenizer(document, add_special_tokens=False)["input_ids"])
    kept = sum(1 for span in spans if span[0] is not None)
    if _splits_exactly(encoder):
        mean = counted.mean(dim=0)
        values = (counted @ q_hat) / (len(counted) * torch.linalg.norm(mean))
        kind, label = "split", "share of the cosine (mean pooling: the shares sum to the cosine)"
    else:
        values = unit(counted, dim=1) @ q_hat
        kind, label = "view", (f"cosine of the query embedding with each token's state: a view, not a split "
                               f"({encoder.model.pooling} pooling has no exact split over tokens)")
    tokens = [TokenShare(name, start, end, float(v))
              for name, (start, end), v, keep in zip(names, spans, values.tolist(), mask.tolist()) if keep]
    notes = []
    if total > kept:
        notes.append(f"The bi-encoder reads {encoder.model.max_length} tokens: {total - kept} document tokens "
                     "past that are not in its embedding.")
    return BiExplanation(kind, encoder.model.pooling, cosine, tokens, max(0, total - kept), encoder.model.max_length,
                         label, notes)


def _document_spans(encoder: BiEncoder, document: str, count: int) -> list[tuple[int | None, int | None]]:
    """Each position's character span in `document` (None for special and prompt tokens), `count` positions,
    from the tokenizer's offsets of the same (prompted, cut) text."""
    prompt = encoder.model.prompt("document")
    encoded = encoder.model.tokenizer(prompt + document, truncation=True, max_length=encoder.model.max_length,
                                      return_offsets_mapping=True, return_special_tokens_mask=True)
    spans: list[tuple[int | None, int | None]] = []
    for (start, end), special in zip(encoded["offset_mapping"], encoded["special_tokens_mask"]):
        inside = not special and start >= len(prompt)
        spans.append((start - len(prompt), end - len(prompt)) if inside else (None, None))
    return (spans + [(None, None)] * count)[:count]


def load_bi_encoder(model_id: str, precision: Precision = "auto", allow_local_path: bool = False) -> BiEncoder:
    """A bi-encoder by model id, bound to a precision (the model's weights load once per process)."""
    return BiEncoder(load_model(model_id, "bi", allow_local_path=allow_local_path), precision)


def build_index(embeddings: np.ndarray, kind: str = "exact", hnsw_neighbors: int = 32) -> faiss.Index:
    """An exact inner-product index, or an HNSW one (approximate, faster at large sizes)."""
    dim = embeddings.shape[1]
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_neighbors, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        # Search breadth. On the benchmark's 100k clustered vectors 128 gave recall@10 0.89
        # against exact and 512 gives 0.92, still searching in under 1 ms (encoding the
        # query costs more); near-duplicate clusters are what keep it from 0.99.
        index.hnsw.efSearch = 512
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    return index


def search(index: faiss.Index, query_vectors: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `depth` (scores, positions) for each query row, best first; equal scores in corpus order.

    FAISS returns equal scores in no fixed order (identical documents come back last position
    first), and a tie at the last place may hold documents it left out: the search goes deeper
    until every tie at the cut is closed, and each row is sorted by (score descending, position).
    """
    depth = min(depth, index.ntotal)
    queries = np.ascontiguousarray(query_vectors, dtype=np.float32)
    fetch = depth
    while True:
        scores, positions = index.search(queries, min(fetch + 1, index.ntotal))
        tie_open = depth > 0 and scores.shape[1] > depth and bool((scores[:, depth - 1] == scores[:, -1]).any())
        if not tie_open or scores.shape[1] >= index.ntotal:
            break
        fetch *= 2
    order = [np.lexsort((row_positions, -row_scores))[:depth] for row_scores, row_positions in zip(scores, positions)]
    return (np.stack([row[o] for row, o in zip(scores, order)]) if order else scores[:, :depth],
            np.stack([row[o] for row, o in zip(positions, order)]) if order else positions[:, :depth])


@dataclass
class CorpusIndex:
    """A corpus's embeddings and their FAISS index, for one model and precision."""

    embeddings: np.ndarray
    index: faiss.Index
    cache_note: str | None = None  # said once to the user when a damaged cache file was rebuilt


def _disk_path(encoder: BiEncoder, fingerprint: str) -> Path:
    slug = encoder.model.id.replace("/", "--")
    # The packed and padded engines round differently in bf16; files from one are not reused by the other.
    engine = "-packed" if encoder.engine.packed is not None else ""
    return cache_dir() / "embeddings" / f"{slug}-{encoder.precision}{engine}-{fingerprint[:24]}.npy"


def corpus_index(
    encoder: BiEncoder,
    texts: Sequence[str],
    fingerprint: str,
    persist: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[CorpusIndex, bool]:
    """The corpus's index, and whether it came from a cache (memory or disk) rather than encoding."""
    key = (encoder.model.id, encoder.precision, fingerprint)
    cached = caches.CORPUS_INDEXES.get(key)
    if cached is not None:
        return cached, True
    path = _disk_path(encoder, fingerprint)
    embeddings, note = (_read_checked(path, len(texts)) if persist and path.is_file() else (None, None))
    from_disk = embeddings is not None
    if from_disk:
        mark_used(path)
    else:
        embeddings = encoder.encode(texts, progress=progress)
        if persist:
            _write_checked(path, embeddings)
            trim_to_size(path.parent, MAX_EMBEDDING_DISK_BYTES)  # least recently used files go first
    entry = CorpusIndex(embeddings=embeddings, index=build_index(embeddings), cache_note=note)
    caches.CORPUS_INDEXES.put(key, entry)
    return entry, from_disk


def _write_checked(path: Path, embeddings: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, embeddings)
    write_checked(path, buffer.getvalue())


DAMAGED_NOTE = "A cached embedding file was damaged (its checksum did not match); the corpus was encoded again."


def _read_checked(path: Path, count: int) -> tuple[np.ndarray | None, str | None]:
    """The cached embeddings if their bytes match the recorded SHA-256; else (None, a note saying so)."""
    data = read_checked(path)
    if data is not None:
        try:
            embeddings = np.load(io.BytesIO(data))
            if embeddings.shape[0] == count:
                return embeddings, None
        except ValueError:
            pass
    return None, DAMAGED_NOTE
