"""The shipped sets' (query, document) pairs the int8 engine is checked on, grouped by query."""

from __future__ import annotations

import random

from explorer.data.builtin_corpora import list_sets, load_set

# python_docs is large: each of its queries gets its judged passages and this many others drawn with a
# fixed seed; every other set is small enough to take every query against every document.
PYTHON_DOCS_OTHERS = 6


def shipped_pairs() -> list[tuple[str, str, list[str]]]:
    """(set name, query text, its documents' texts) for every query of every shipped set."""
    groups = []
    for info in list_sets():
        labelled = load_set(info.name)
        texts = {d.id: d.text for d in labelled.corpus.documents}
        for query in labelled.queries:
            if info.name == "python_docs":
                judged = [texts[i] for i in labelled.qrels.get(query.id, {}) if i in texts]
                others = random.Random(query.id).sample(sorted(texts), PYTHON_DOCS_OTHERS)
                documents = judged + [texts[i] for i in others if texts[i] not in judged]
            else:
                documents = list(texts.values())
            groups.append((info.name, query.text, documents))
    return groups
