"""Where one document stands in every stage of a pipeline, top-k or not, and which stage lost it.

The first stage ranks the whole corpus (its full ranking is cheap); every re-ranker scores the
document on demand, with the first stage's top-k candidates, so the rank its score would have
given it among them is exact. For a document the first stage ranked r-th, past top-k, the
documents ranked between top-k and r are scored too (at most MAX_WHY_EXTRA_CANDIDATES), which
gives the rank each re-ranker would have given it had top-k been r: what running the pipeline
with top-k r gives (ties keep the first stage's order, as `run_pipeline` re-orders).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from explorer.budgets import MAX_WHY_EXTRA_CANDIDATES, MAX_WHY_FINDER_HITS
from explorer.data.corpus import Corpus
from explorer.errors import ExplorerError
from explorer.pipeline.stages import Pipeline, score_pairs_once
from explorer.rankers.hybrid import Hybrid


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 13 -> "13th", 37 -> "37th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


@dataclass
class StageStanding:
    """The document in one stage: its score, and its rank.

    First stage: `rank` in its full ranking of the corpus (equal scores in corpus order).
    Re-ranker: `rank` among the top-k candidates by this re-ranker's score, the document counted
    in (as the last of equals when it was not a candidate); `would_rank`, for a document past
    top-k, its rank had top-k been its first-stage rank (None when that was over the budget)."""

    name: str
    kind: str
    score_name: str
    score: float
    rank: int
    out_of: int  # documents ranked: the corpus (first stage) or the candidates (with the document)
    candidate: bool = True
    would_rank: int | None = None
    parts: list[dict] = field(default_factory=list)  # a hybrid's sources: name, rank (None: not held), score, share


@dataclass
class Standing:
    """Where one document stands in every stage, and the verdict in words."""

    query: str
    doc_id: str
    corpus_name: str
    corpus_size: int
    top_k: int
    pipeline: str
    first_stage: StageStanding
    rerankers: list[StageStanding]
    lost_at: str  # "first stage", a re-ranker's name, or "" when it is shown
    verdict: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


@dataclass
class StandingContext:
    """What the explanations reuse from the standing: the first stage's index and each re-ranker's score."""

    index: Any
    position: int
    first_explanation: Any  # a hybrid's own explanation (its parts), else None
    reranker_scores: list[float]
    reranker_probabilities: list[float | None]


def find_documents(corpus: Corpus, text: str, limit: int = MAX_WHY_FINDER_HITS) -> list[tuple[str, str]]:
    """(id, opening of the text) of documents matching what was typed: the id itself first, then
    documents holding every typed word (case-insensitive), in corpus order; at most `limit`."""
    wanted = (text or "").strip()
    if not wanted:
        return []
    found: list[tuple[str, str]] = []
    by_id = corpus.by_id()
    if wanted in by_id:
        found.append((wanted, by_id[wanted].text[:100]))
    words = wanted.lower().split()
    for doc in corpus.documents:
        if len(found) >= limit:
            break
        lowered = doc.text.lower()
        if doc.id != wanted and all(word in lowered for word in words):
            found.append((doc.id, doc.text[:100]))
    return found


def document_position(corpus: Corpus, doc_id: str) -> int:
    """The corpus position of `doc_id`; ExplorerError when the corpus has no such document."""
    for position, doc in enumerate(corpus.documents):
        if doc.id == doc_id:
            return position
    raise ExplorerError(f"The corpus {corpus.name!r} has no document with id {doc_id!r}: pick one from the list, "
                        "or type words of its text into the finder.")


def where_it_stands(pipeline: Pipeline, corpus: Corpus, query: str, position: int, top_k: int,
                    persist: bool = False, would_rank: bool = True) -> tuple[Standing, StandingContext]:
    """The document at corpus `position` in every stage of `pipeline` for `query` with `top_k` candidates
    (`persist`: keep the corpus's embeddings on disk, as `compare` does from the command line). Without
    `would_rank` the documents between top-k and it are not scored (the page's quick first answer)."""
    first = pipeline.first_stage
    texts = corpus.texts
    index, _ = first.index_corpus(texts, corpus.fingerprint, persist=persist)
    encoded = first.encode_queries([query])
    scores, positions = first.search(index, encoded, len(texts))
    order = [int(p) for p in positions[0]]
    first_rank = order.index(position) + 1
    first_standing = StageStanding(first.info.name, first.info.kind, first.info.score_name,
                                   float(scores[0][first_rank - 1]), first_rank, len(texts), first_rank <= top_k)
    first_explanation = first.explain(index, query, position, encoded) if isinstance(first, Hybrid) else None
    if first_explanation is not None:
        first_standing.parts = [asdict(source) for source in first_explanation.sources]
    candidates = order[:top_k]
    notes: list[str] = []
    between = order[top_k:first_rank - 1] if first_rank > top_k else []
    if not would_rank:
        between = []
    elif len(between) > MAX_WHY_EXTRA_CANDIDATES:
        notes.append(f"The first stage ranks it {ordinal(first_rank)}: scoring the {len(between):,} documents between "
                     f"top-k and it is over the budget of {MAX_WHY_EXTRA_CANDIDATES}, so what top-k "
                     f"{first_rank:,} would give is not computed; its rank among today's candidates is.")
        between = []
    asked = candidates + between + ([] if first_rank <= top_k else [position])
    standings, raw_scores, probabilities = [], [], []
    for reranker in pipeline.rerankers:
        values, kept_probabilities = score_pairs_once(reranker, query, [texts[p] for p in asked])
        mine = values[asked.index(position)]
        raw_scores.append(float(mine))
        probabilities.append(kept_probabilities[asked.index(position)])
        # Stable re-ordering as `run_pipeline`: a document is beaten by a higher score, and by an equal one
        # the first stage put earlier.
        own = candidates.index(position) if position in candidates else len(candidates)
        top = values[:len(candidates)]
        rank = 1 + int((top[:own] >= mine).sum() + (top[own + 1:] > mine).sum()) if position in candidates \
            else 1 + int((top >= mine).sum())
        standing = StageStanding(reranker.info.name, reranker.info.kind, reranker.info.score_name, float(mine), rank,
                                 len(candidates) + (position not in candidates), position in candidates)
        if first_rank > top_k and (between or (would_rank and first_rank == top_k + 1)):
            standing.would_rank = 1 + int((values[:first_rank - 1] >= mine).sum())
        standings.append(standing)
    lost_at, verdict = _verdict(first_standing, standings, top_k, len(texts))
    standing = Standing(query, corpus.documents[position].id, corpus.name, len(texts), top_k, pipeline.name,
                        first_standing, standings, lost_at, verdict, notes)
    return standing, StandingContext(index, position, first_explanation, raw_scores, probabilities)


def _verdict(first: StageStanding, rerankers: list[StageStanding], top_k: int, size: int) -> tuple[str, str]:
    """Which stage lost the document, and what would have found it, in one or two sentences."""
    parts = "".join(f"; {p['name']}: {ordinal(p['rank']) if p['rank'] else 'not held (no query term)'}"
                    for p in first.parts)
    where = f"The first stage ({first.name}) ranks it {ordinal(first.rank)} of {size:,}{parts}"
    if first.kind == "lexical" and first.score == 0:
        where += " (it holds none of the query's terms: BM25 score 0, tied with every unmatched document)"
    if not rerankers:
        if first.rank <= top_k:
            return "", f"{where}: within the top {top_k} shown."
        return "first stage", f"{where}: past the top {top_k} shown."
    last = rerankers[-1]
    if first.rank <= top_k:
        moved = f"the {last.name} ranks it {ordinal(last.rank)} of the {top_k} candidates"
        return "", f"{where}, within top-k {top_k}: it was a candidate, and {moved}."
    found = [f"the {r.name}, which would rank it {ordinal(r.would_rank)}" for r in rerankers if r.would_rank is not None]
    if found:
        would = f" top-k {first.rank:,} would have sent it to " + " and to ".join(found) + "."
    else:
        would = (f" Among today's {top_k} candidates the {last.name} would rank it {ordinal(last.rank)} "
                 f"of {last.out_of}.")
    return "first stage", f"{where}, past top-k {top_k}: the first stage lost it, it never reached the re-rankers;" + would


def unshown_relevant(first, corpus: Corpus, query: str, top_k: int, labels: dict | None,
                     shown: set[str]) -> list[tuple[str, str]]:
    """(id, opening of the text) of the documents judged relevant (grade > 0) for this query that no column
    shows: neither in the first stage's top-k (`first`, a bound retriever) nor among `shown` (the re-ranked
    lists'). `labels` are the Evaluate tab's {"query", "corpus_name", "corpus_size", "grades"}; labels of
    another query or corpus give none."""
    if not labels or (labels.get("query") or "").strip() != query.strip() or labels.get("corpus_name") != corpus.name \
            or labels.get("corpus_size") != len(corpus):
        return []
    index, _ = first.index_corpus(corpus.texts, corpus.fingerprint)
    _, positions = first.search(index, first.encode_queries([query]), min(top_k, len(corpus)))
    visible = {corpus.documents[int(p)].id for p in positions[0]} | set(shown)
    by_id = corpus.by_id()
    return [(doc_id, by_id[doc_id].text[:100]) for doc_id, grade in (labels.get("grades") or {}).items()
            if grade > 0 and doc_id in by_id and doc_id not in visible]
