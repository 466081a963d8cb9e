"""Clickable examples for the Compare tab, and the short explanation shown beside them.

Each example is a query and a small pasted corpus (one document per line) chosen so the
two models disagree in a way worth talking about.
"""

from __future__ import annotations

EXPLANATION = """
**Bi-encoder** (retrieve): the query and each document are turned into vectors *separately*;
documents are ranked by cosine similarity. Documents are encoded once and indexed, so a
query costs one encoding and a fast vector search, even over millions of documents.

**Cross-encoder** (re-rank): the query and one document are read *together* by one
transformer, which outputs a relevance score (a logit; sigmoid turns it into a
probability). Every word of the query can attend to every word of the document, so it is
usually more accurate, but each (query, document) pair costs a full model pass.

So the usual recipe is **retrieve and re-rank**: the bi-encoder picks the top-k, the
cross-encoder re-orders them. Arrows show how far each document moved
(<span class='move move-up'>▲ up</span> <span class='move move-down'>▼ down</span>
<span class='move move-new'>NEW</span> = found only when the cross-encoder scores the whole corpus).
"""

PYTHON_SNAKE = "\n".join(
    [
        "Python is a programming language that lets you work quickly and integrate systems effectively.",
        "The reticulated python is the world's longest snake, reaching more than six metres.",
        "Install packages for your Python project with pip and a virtual environment.",
        "Ball pythons are constrictors: they coil around their prey and squeeze.",
        "Pandas is a Python library for data analysis and manipulation.",
        "Burmese pythons have become an invasive species in the Florida Everglades.",
        "A snake sheds its skin several times a year as it grows.",
        "Monty Python's Flying Circus was a British comedy series.",
        "Anacondas and pythons are both large non-venomous snakes.",
        "The snake_case naming style is recommended for Python function names.",
    ]
)

FEW_SHARED_WORDS = "\n".join(
    [
        "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to produce glucose.",
        "Power plants make electricity by burning coal or gas.",
        "Food plants such as wheat and rice feed most of the world's people.",
        "Many restaurants grow their own herbs to make fresh food for customers.",
        "Leaves contain chlorophyll, which captures light energy to turn carbon dioxide and water into sugar.",
    ]
)

# The quiz line repeats the query word for word; the answer says "eight jointed limbs".
LEXICAL_TRAP = "\n".join(
    [
        "Spiders are arachnids, with eight jointed limbs and two body segments.",
        "How many legs does a spider have? Count them in this fun quiz!",
        "Insects such as ants and beetles walk on six legs.",
        "The spider legs pasta shape is popular in Italian cooking.",
        "A spider has many eyes, most often eight, arranged in rows.",
    ]
)

# (query, pasted corpus, top-k); the UI adds the other inputs' defaults.
EXAMPLES = [
    ("python snake", PYTHON_SNAKE, 5),
    ("how do plants make their food?", FEW_SHARED_WORDS, 4),
    ("how many legs does a spider have?", LEXICAL_TRAP, 3),
]

# The pair the Inspect tab opens with: the trap's real answer, which shares no content word with the query
# ("legs" / "limbs"), so the heatmap shows the cross-encoder matching meaning rather than spelling.
INSPECT_EXAMPLE = (EXAMPLES[2][0], LEXICAL_TRAP.splitlines()[0])

# What each example shows, as the button a teacher clicks.
EXAMPLE_LABELS = [
    "Ambiguous query: “python snake”",
    "Answer shares few words with the question",
    "Lexical-overlap trap: the quiz repeats the question",
]
