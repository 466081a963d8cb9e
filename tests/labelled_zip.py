"""A small labelled set in the BEIR layout, built in the test: passages where the ways of
ranking disagree (a word shared without the meaning, an answer in other words)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

DOCUMENTS = {
    "snake": "The python is a large constrictor snake of Africa and Asia; it kills prey by squeezing.",
    "language": "Python is a programming language created by Guido van Rossum in 1991.",
    "monty": "Monty Python was a British comedy group whose sketches mentioned a python snake only in jest.",
    "paris": "Paris is the capital and largest city of France, on the Seine.",
    "lyon": "Lyon is a large city in France known for its food; it is not the capital.",
    "france-capital-trap": "Which city is the capital of France? Many quizzes ask the capital of France question.",
    "banana": "Bananas are rich in potassium, which helps muscles and nerves work.",
    "potassium-trap": "Potassium is a chemical element with symbol K and atomic number 19.",
    "boil": "At sea level water turns to steam at 100 degrees Celsius.",
    "boil-trap": "How hot does water boil? Boiling water questions are common in kitchens.",
    "moon": "Neil Armstrong was the first person to walk on the Moon, in July 1969.",
    "moon-trap": "The Moon landing is a famous event; many people ask who first walked on the Moon.",
}
QUERIES = {
    "q-snake": "python snake",
    "q-capital": "capital of France",
    "q-potassium": "fruit rich in potassium",
    "q-boil": "temperature at which water boils",
    "q-moon": "who first walked on the moon",
}
QRELS = {
    "q-snake": {"snake": 2, "monty": 0, "language": 0},
    "q-capital": {"paris": 2, "lyon": 0, "france-capital-trap": 0},
    "q-potassium": {"banana": 2, "potassium-trap": 1},
    "q-boil": {"boil": 2, "boil-trap": 0},
    "q-moon": {"moon": 2, "moon-trap": 0},
}


def write_labelled_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("myset/corpus.jsonl", "\n".join(
            json.dumps({"_id": doc_id, "title": "", "text": text}) for doc_id, text in DOCUMENTS.items()) + "\n")
        archive.writestr("myset/queries.jsonl", "\n".join(
            json.dumps({"_id": qid, "text": text}) for qid, text in QUERIES.items()) + "\n")
        archive.writestr("myset/qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
            f"{qid}\t{doc}\t{grade}\n" for qid, labels in QRELS.items() for doc, grade in labels.items()))
    return path
