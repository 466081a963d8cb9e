"""What a comparison returns: plain dataclasses that answer their own questions and turn
into JSON one way (`to_dict`).

A comparison is a first stage (BM25, a bi-encoder, or their hybrid) that ranks the whole
corpus, and zero or more re-rankers (late interaction, the cross-encoder) that each re-order
the first stage's top-k; every stage is kept in `stages`, in the order it ran.

Ties: documents with exactly equal scores are listed in the order of the stage before (a first
stage's ties in corpus order; a re-ranker's in the first stage's order, hence corpus order for
documents the first stage tied too), and every hit says so: `shared_rank` is the best rank among
its equal scores (competition ranking: 1, 1, 3) and `tied` is true. The run files
(`data/trec_runs.py`) carry scores that fall strictly with this order, so trec_eval and the
measures (`pipeline/evaluate.py`) rank exactly as the page; left to its own rule, trec_eval would
order equal scores by document id, descending as strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from explorer.pipeline.agreement import Agreement, pairwise
from explorer.rankers.base import precision_key

# The JSON key each re-ranker kind goes under in `models`, `precision` and the hit lists.
RERANKER_KEYS = {"cross": "cross_encoder", "late": "late_interaction"}

# |Δ| at or below this counts as "no change" wherever improvements and losses are counted.
CHANGE_EPSILON = 1e-9


def tie_marks(scores: Sequence[float]) -> list[tuple[int, bool]]:
    """(shared rank, tied) for each score of a list ordered best first: the 1-based rank of the first
    score equal to it, and whether another score in the list equals it.

    Pass one score more than will be shown, where there is one: the last hit shown then knows
    whether it ties the next document down.
    """
    scores = list(scores)
    marks, first = [], 0
    for place, score in enumerate(scores):
        if place and scores[place - 1] != score:
            first = place
        tied = first < place or (place + 1 < len(scores) and scores[place + 1] == score)
        marks.append((first + 1, tied))
    return marks


@dataclass
class StageHit:
    """One document in one stage's ranking: its id, that stage's score (named by `Stage.score_name`) and 1-based rank."""

    id: str
    score: float
    rank: int  # 1-based, the place shown
    shared_rank: int = 0  # the best rank among equal scores (= rank when not tied); see `tie_marks`
    tied: bool = False


@dataclass
class Stage:
    """One stage's ranking: the first stage's top-k, or one re-ranking of those same k."""

    name: str  # what ran, as shown on screen
    kind: str  # lexical, bi, hybrid, late, cross
    model: str  # model id ("bm25" for BM25)
    score_name: str
    runs_on: str  # precision and device, e.g. "bf16 on cpu"
    ms: float  # this stage's own time (for a first stage: query encoding + search)
    ranking: list[StageHit]
    engine: str = ""  # how the model ran: "packed bf16", "sentence-transformers forward", ...
    prompts: str = ""  # the prompts put before texts, e.g. "query prompt: 'query: '"; "" for none
    probability_name: str = ""  # a cross-encoder's probability column: "sigmoid(logit)", "raw score", ...
    note: str | None = None  # what this stage's ranking means here, e.g. "BM25 matched no query term"
    analyzer: str | None = None  # how a lexical stage splits text into terms (BM25's `SETTINGS`)
    precision: str = ""  # "fp32", "bf16", "int8", "as stored" or "n/a" (BM25): what `runs_on` begins with
    precision_note: str = ""  # why "auto" chose `precision` here (`precision.auto_note`); "" when it was named

    def to_dict(self) -> dict:
        """The stage as JSON: every field, the ranking as a list of {"id", "score", "rank", ...}."""
        data = asdict(self)
        data["ranking"] = [asdict(hit) for hit in self.ranking]
        return data


@dataclass
class FirstStageHit:
    """One document of the first stage's top-k, with its text and first-stage score."""

    id: str
    text: str
    score: float  # the first stage's score (cosine for a bi-encoder, BM25 score for BM25)
    rank: int  # 1-based
    shared_rank: int = 0  # see StageHit
    tied: bool = False


@dataclass
class RerankedHit:
    """One document as the last re-ranker placed it, with where the first stage had it (`move`, `move_kind`)."""

    id: str
    text: str
    score: float  # the re-ranker's score (a cross-encoder's logit, late interaction's MaxSim)
    probability: float | None  # the model's activation of the logit (Stage.probability_name); None for MaxSim
    rank: int  # 1-based, by the re-ranker
    first_rank: int  # 1-based rank of the same document in the first stage (over the whole corpus)
    first_score: float  # its first-stage score
    in_candidates: bool  # was it among the first stage's top-k candidates?
    shared_rank: int = 0  # see StageHit
    tied: bool = False
    label_probabilities: dict[str, float] | None = None  # a pair classifier's softmax over its labels, by name

    @property
    def move(self) -> int:
        """Places gained by re-ranking (positive = moved up)."""
        return self.first_rank - self.rank

    @property
    def move_kind(self) -> str:
        """"new" (outside the first stage's top-k), "up", "down" or "same": what the views colour."""
        if not self.in_candidates:
            return "new"
        return "up" if self.move > 0 else "down" if self.move < 0 else "same"

    def to_dict(self) -> dict:
        """The hit as `compare --json` prints it; `first_stage_*` name the first stage whatever it is
        (bi-encoder, BM25 or hybrid), `move` = first_stage_rank - rank."""
        return {
            "id": self.id, "text": self.text, "score": self.score, "probability": self.probability,
            "rank": self.rank, "first_stage_rank": self.first_rank, "first_stage_score": self.first_score,
            "in_first_stage_top_k": self.in_candidates, "move": self.move,
            "shared_rank": self.shared_rank, "tied": self.tied,
            **({"label_probabilities": self.label_probabilities} if self.label_probabilities else {}),
        }


@dataclass
class Comparison:
    """One query through one pipeline: every stage's ranking, the last re-ranker's hits with rank moves,
    timings in ms (time.perf_counter) and notes; `to_dict` is the JSON of `compare --json` and the API."""

    query: str
    top_k: int
    corpus_name: str
    corpus_size: int
    first_stage_kind: str  # "bi", "lexical" or "hybrid"
    models: dict[str, str]  # "first_stage" and "reranker" (the last re-ranker, absent when none): display names
    runs_on: dict[str, str]  # the same keys: precision and device, "bf16 on cpu", ... (JSON key "precision")
    first_stage: list[FirstStageHit]
    reranked: list[RerankedHit]  # the LAST re-ranker's order of the candidates; empty with no re-ranker
    reranked_full: list[RerankedHit] | None  # the last re-ranker over the whole corpus, when asked
    stages: list[Stage]
    timings_ms: dict[str, float]
    corpus_index_cached: bool
    notes: list[str] = field(default_factory=list)
    # A hybrid first stage's parts, BM25's and the bi-encoder's own top-k: shown beside the
    # fusion so the four ways of matching sit side by side; nothing re-ranks them.
    components: list[Stage] = field(default_factory=list)

    @property
    def first_stage_label(self) -> str:
        """What the first stage is called in sentences: "bi-encoder", "BM25" or "hybrid (BM25 + bi-encoder, RRF)"."""
        return {"lexical": "BM25", "hybrid": "hybrid (BM25 + bi-encoder, RRF)"}.get(self.first_stage_kind, "bi-encoder")

    @property
    def reranker_kind(self) -> str | None:
        """The last re-ranker's kind ("cross", "late"), or None when nothing re-ranked."""
        return self.stages[-1].kind if len(self.stages) > 1 else None

    @property
    def first_score_name(self) -> str:
        """The first stage's score name: "cosine", "BM25 score" or "RRF score"."""
        return self.stages[0].score_name

    def shown_reranked(self) -> list[RerankedHit]:
        """The re-ranker's top-k: over the whole corpus when it was scored, else the re-ranked candidates."""
        if self.reranked_full is not None:
            return self.reranked_full[: self.top_k]
        return self.reranked

    def scored_hits(self) -> list[RerankedHit]:
        """Every document the re-ranker scored."""
        return self.reranked_full if self.reranked_full is not None else self.reranked

    def hit(self, doc_id: str) -> RerankedHit | None:
        """The re-ranker's hit for one document id, if it scored that document."""
        return next((h for h in self.scored_hits() if h.id == doc_id), None)

    def missed_by_first_stage(self) -> list[RerankedHit]:
        """Documents in the re-ranker's whole-corpus top-k that the first stage did not hand it."""
        if self.reranked_full is None:
            return []
        return [h for h in self.reranked_full[: self.top_k] if not h.in_candidates]

    def agreements(self) -> list[Agreement]:
        """How every pair of stages agrees on this query (see `agreement.py`), first stage first.

        Each stage's ranking is the first stage's top-k (or a re-ranking of those same k), so
        the rankings compared are top-k lists; stages are labelled "index:kind".
        """
        return pairwise([(label, f"{stage.name} [{stage.runs_on}]", [hit.id for hit in stage.ranking])
                         for label, stage in self.labelled_columns()])

    def grades_from(self, labels: dict | None) -> dict[str, int] | None:
        """A labelled query's {doc id: relevance grade} when `labels` are for this comparison.

        `labels` is {"query", "corpus_name", "corpus_size", "grades"} (the Evaluate tab's
        click-through); they apply only to the same query (spaces aside) on the same corpus, by
        name and size. Else None: a comparison of anything else shows no grades.
        """
        if not labels:
            return None
        same = (
            (self.query or "").strip() == (labels.get("query") or "").strip()
            and self.corpus_name == labels.get("corpus_name")
            and self.corpus_size == labels.get("corpus_size")
        )
        return dict(labels.get("grades") or {}) if same else None

    def labelled_columns(self) -> list[tuple[str, Stage]]:
        """Every ranking shown side by side with its label: a hybrid's parts ("0a:lexical",
        "0b:bi"), then the stages ("0:hybrid", "1:late", ...)."""
        parts = [(f"0{letter}:{stage.kind}", stage) for letter, stage in zip("ab", self.components)]
        return parts + [(f"{i}:{stage.kind}", stage) for i, stage in enumerate(self.stages)]

    def tie_note(self) -> str | None:
        """The tie rule, said once when a column shows documents with equal scores, else None."""
        tied = [stage.name for _, stage in self.labelled_columns() if any(hit.tied for hit in stage.ranking)]
        if not tied:
            return None
        return (f"Equal scores (marked =, with their shared rank) in: {'; '.join(dict.fromkeys(tied))}. Tied documents "
                "are listed in the order of the stage before (a first stage's in corpus order), the order the run "
                "files and the measures use too.")

    def to_dict(self) -> dict:
        """The JSON of `compare --json` and the API: one shape, stable keys.

        `models` and `precision` name every stage that ran: the first stage under "bi_encoder"
        (or "first_stage" for BM25 and hybrid), each re-ranker under "cross_encoder" or
        "late_interaction". The hit lists with rank moves are the LAST re-ranker's, under its
        key ("cross_encoder" and "cross_encoder_full" for the default pipeline, as always);
        with no re-ranker there are none, and `stages` holds every ranking in any case.
        """
        first_key = "bi_encoder" if self.first_stage_kind == "bi" else "first_stage"
        models = {first_key: self.models["first_stage"]}
        precision = {first_key: self.runs_on["first_stage"]}
        for stage in self.stages[1:]:
            key = RERANKER_KEYS[stage.kind]
            if key in models:  # the same kind again at another precision: "cross_encoder_int8", "..._int8_packed"
                key = f"{key}_{precision_key(stage.precision, stage.engine)}"
            models[key] = stage.name
            precision[key] = stage.runs_on
        data = {
            "query": self.query,
            "top_k": self.top_k,
            "corpus_name": self.corpus_name,
            "corpus_size": self.corpus_size,
            "models": models,
            "precision": precision,
            first_key: [asdict(hit) for hit in self.first_stage],
        }
        if self.reranker_kind is not None:
            key = RERANKER_KEYS[self.reranker_kind]
            data[key] = [hit.to_dict() for hit in self.reranked]
            data[f"{key}_full"] = None if self.reranked_full is None else [h.to_dict() for h in self.reranked_full]
        if self.components:
            data["first_stage_components"] = [stage.to_dict() for stage in self.components]
        return data | {
            "stages": [stage.to_dict() for stage in self.stages],
            "timings_ms": self.timings_ms,
            "corpus_embeddings_cached": self.corpus_index_cached,
            "notes": self.notes,
            # Every pair of stages: overlap@k, Kendall's tau, RBO (p 0.9), largest rank differences.
            "agreement": [a.to_dict() for a in self.agreements()],
        }
