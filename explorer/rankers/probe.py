"""A sanity probe run once when a ranker is bound: does it score obvious answers above off-topic text?

Ten (query, relevant passage, irrelevant passage) triples whose answer is plain and whose
distractor is off topic, so any working reranker or embedding model orders them right. Each
triple gives a difference d = score(relevant) - score(irrelevant): for a `PairScorer` its own
score of the pair, for a bi-encoder the cosine of query and passage embeddings.

The margin is relative, so logits, cosines and MaxSim sums are judged alike:
margin = 5% of the spread (max - min) of all twenty scores. Verdict:

* "ok": at least 8 of the 10 triples have d > margin;
* "inverted": at least 6 of the 10 have d < -margin (irrelevant text scores higher);
* "flat": anything else, including a model whose scores barely move (a random relevance head,
  say a bi-encoder's weights loaded as a cross-encoder).

A ranker without a model (BM25) is not probed; a hybrid is probed through its bi-encoder.
Results are cached per bound ranker (model id, kind, precision, engine) for the process.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from explorer.rankers.base import PairScorer

TRIPLES = (
    ("what is the capital of France?", "Paris is the capital and largest city of France.",
     "Photosynthesis turns sunlight, water and carbon dioxide into sugar in plants."),
    ("how many legs does a spider have", "Spiders have eight legs, unlike insects, which have six.",
     "The stock market closed higher on Friday after the interest rate decision."),
    ("who wrote Romeo and Juliet", "Romeo and Juliet is a tragedy written by William Shakespeare.",
     "To reset the router, hold the button on its back for ten seconds."),
    ("boiling point of water", "At sea level, water boils at 100 degrees Celsius.",
     "The Great Wall of China was built over many centuries by several dynasties."),
    ("how to reverse a list in python", "In Python, list.reverse() reverses a list in place; reversed() returns an iterator.",
     "Whales are mammals that breathe air through a blowhole."),
    ("what do pandas eat", "Giant pandas eat almost nothing but bamboo, up to 38 kg a day.",
     "The French Revolution began in 1789 with the storming of the Bastille."),
    ("symptoms of the flu", "Flu symptoms include fever, cough, sore throat, muscle aches and tiredness.",
     "A sonnet is a poem of fourteen lines with a fixed rhyme scheme."),
    ("tallest mountain in the world", "Mount Everest, at 8,849 metres, is the highest mountain above sea level.",
     "Bake the bread at 220 degrees for thirty minutes until golden."),
    ("how does a vaccine work", "A vaccine trains the immune system to recognise a pathogen so it can fight it later.",
     "The offside rule in football concerns the position of attackers when the ball is played."),
    ("when did the Berlin Wall fall", "The Berlin Wall fell on 9 November 1989.",
     "Cats groom themselves with their rough tongues."),
)
OK_AT_LEAST, INVERTED_AT_LEAST, MARGIN_OF_SPREAD = 8, 6, 0.05


@dataclass
class ProbeResult:
    ranker: str  # the ranker's display name
    verdict: str  # "ok", "flat" or "inverted"
    relevant: list[float]  # score of each triple's relevant passage
    irrelevant: list[float]
    margin: float
    above: int  # triples with d > margin
    below: int  # triples with d < -margin
    triples: int

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def note(self) -> str:
        """A plain sentence for the notes."""
        gap = float(np.mean(self.relevant) - np.mean(self.irrelevant))
        what = ("scores off-topic passages above obvious answers" if self.verdict == "inverted"
                else "barely tells obvious answers from off-topic passages")
        return (f"Sanity probe: {self.ranker} {what} ({self.verdict}: relevant above irrelevant by more than "
                f"{self.margin:.3g} on {self.above} of {self.triples} test pairs, below on {self.below}; mean gap "
                f"{gap:.3g}). Its ranking may be meaningless: is this the right model, loaded as the right kind?")

    def to_dict(self) -> dict:
        return asdict(self)


def verdict_of(relevant, irrelevant, name: str = "") -> ProbeResult:
    """The verdict for paired scores (see the module's docstring)."""
    rel, irr = np.asarray(relevant, dtype=np.float64), np.asarray(irrelevant, dtype=np.float64)
    everything = np.concatenate([rel, irr])
    margin = MARGIN_OF_SPREAD * float(everything.max() - everything.min())
    diff = rel - irr
    above, below = int((diff > margin).sum()), int((diff < -margin).sum())
    scale = len(diff) / len(TRIPLES)
    if above >= OK_AT_LEAST * scale and margin > 0:
        verdict = "ok"
    elif below >= INVERTED_AT_LEAST * scale and margin > 0:
        verdict = "inverted"
    else:
        verdict = "flat"
    return ProbeResult(name, verdict, rel.tolist(), irr.tolist(), margin, above, below, len(diff))


def run_probe(ranker) -> ProbeResult | None:
    """Probe one bound ranker: a PairScorer, a bi-encoder (has `encode`), or a hybrid (its `dense`)."""
    queries = [t[0] for t in TRIPLES]
    relevant_docs, irrelevant_docs = [t[1] for t in TRIPLES], [t[2] for t in TRIPLES]
    name = ranker.info.name
    if isinstance(ranker, PairScorer):
        scores = ranker.score(queries + queries, relevant_docs + irrelevant_docs).scores
        return verdict_of(scores[: len(queries)], scores[len(queries):], name)
    encoder = ranker if hasattr(ranker, "encode") else getattr(ranker, "dense", None)
    if encoder is None or not hasattr(encoder, "encode"):
        return None  # nothing learned to probe (BM25)
    q = encoder.encode(queries, side="query")
    rel, irr = encoder.encode(relevant_docs), encoder.encode(irrelevant_docs)

    def cosine(x, y):
        return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)

    return verdict_of(cosine(q, rel), cosine(q, irr), encoder.info.name)


_cache: dict[tuple, ProbeResult | None] = {}
_lock = threading.Lock()


def probe(ranker) -> ProbeResult | None:
    """`run_probe`, once per bound ranker (model id, kind, precision, engine) per process."""
    info = ranker.info
    key = (type(ranker).__name__, info.model_id, info.kind, info.precision, info.engine, info.name)
    with _lock:
        if key in _cache:
            return _cache[key]
    result = run_probe(ranker)
    with _lock:
        _cache[key] = result
    return result
