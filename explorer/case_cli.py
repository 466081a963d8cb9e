"""`python -m explorer case {new,show,judge,snapshot,export,import}`: the workbench's cases from the command line.

The cases live in the same database the app uses (`paths.data_dir()/workbench.sqlite3`; EXPLORER_DATA moves it),
so a case made here opens in the app by its link (`http://HOST:PORT/?case=TOKEN`) and the other way round.
`eval --case TOKEN` (in cli.py) evaluates on a case's judgments.
"""

from __future__ import annotations

import argparse
import dataclasses

from explorer.errors import ExplorerError


def add_case_commands(commands, add_model_flags) -> None:
    """Register `case` and its sub-commands on the sub-parsers `commands` of `python -m explorer`."""
    case = commands.add_parser("case", help="workbench cases: a corpus, queries, judgments and snapshots behind a link")
    actions = case.add_subparsers(dest="action", required=True)

    new = actions.add_parser("new", help="save a new case; prints its edit and read-only tokens (shown only once)")
    new.add_argument("--name", required=True)
    new.add_argument("--corpus", required=True, help=".txt, .jsonl or .csv file (stored in the database), or "
                                                     "builtin:NAME for a shipped set (referenced by name and fingerprint)")
    new.add_argument("--query", action="append", required=True, help="a query of the case (repeatable, in order)")
    new.add_argument("--first-stage", choices=("bi", "bm25", "hybrid"), default="bi")
    new.add_argument("--rerankers", default="cross", help="as compare's --rerankers, e.g. late,cross@int8, or none")
    new.add_argument("--top-k", type=int, default=10)
    new.add_argument("--all", action="store_true", help="the last re-ranker also scores the whole corpus")
    new.add_argument("--json", action="store_true")
    add_model_flags(new)

    show = actions.add_parser("show", help="a case's corpus, pipeline, queries, judgments and snapshots")
    show.add_argument("token", help="the edit or read-only token of the case's link")
    show.add_argument("--json", action="store_true")

    judge = actions.add_parser("judge", help="grade one document for one query (with the edit token)")
    judge.add_argument("token")
    judge.add_argument("--query", required=True)
    judge.add_argument("--doc", required=True, help="the document's id")
    judge.add_argument("--grade", required=True, choices=("0", "1", "2", "3", "none"),
                       help="0 not relevant .. 3 perfectly relevant; none removes the grade")
    judge.add_argument("--reason", default="")
    judge.add_argument("--json", action="store_true")

    snapshot = actions.add_parser("snapshot", help="run the case's pipeline on every query and save the rankings")
    snapshot.add_argument("token")
    snapshot.add_argument("--name", required=True)
    snapshot.add_argument("--json", action="store_true")

    export = actions.add_parser("export", help="the case as a zip: corpus, queries, TREC qrels and runs, manifest")
    export.add_argument("token")
    export.add_argument("--out", required=True, metavar="ZIP")
    export.add_argument("--json", action="store_true")

    load = actions.add_parser("import", help="a case zip saved as a new case; prints its new tokens")
    load.add_argument("zip")
    load.add_argument("--json", action="store_true")


def _links(links, store) -> tuple[dict, str]:
    data = {"case_id": links.case_id, "edit_token": links.edit_token, "read_token": links.read_token,
            "database": str(store.path)}
    text = "\n".join([
        f"Case {links.case_id} saved in {store.path}",
        f"Edit token:      {links.edit_token}",
        f"Read-only token: {links.read_token}",
        "Open http://HOST:PORT/?case=TOKEN in the app. The tokens are shown only now: keep them.",
    ])
    return data, text


def _settings(args) -> dict:
    from explorer.pipeline.compare import parse_rerankers

    return {"first_stage": args.first_stage, "rerankers": list(parse_rerankers(args.rerankers)),
            "bi_encoder": args.bi_encoder, "cross_encoder": args.cross_encoder, "precision": args.precision,
            "top_k": args.top_k, "cross_label": args.label, "score_all": args.all, "query": args.query[0]}


def _new(args, store) -> tuple[dict, str]:
    from explorer.data.builtin_corpora import BUILTIN_PREFIX, read_corpus_argument

    corpus = read_corpus_argument(args.corpus)
    source = ({"kind": "builtin", "name": args.corpus[len(BUILTIN_PREFIX):]} if args.corpus.startswith(BUILTIN_PREFIX)
              else {"kind": "stored", "name": corpus.name})
    return _links(store.create_case(args.name, corpus, source, _settings(args), args.query), store)


def _show(args, store) -> tuple[dict, str]:
    access = store.open(args.token)
    case = store.case(access)
    data = dataclasses.asdict(case)
    data["can_edit"] = access.can_edit
    data["judgments"] = {q: list(by_doc.values()) for q, by_doc in data["judgments"].items()}
    judged = sum(1 for q in case.queries if case.judgments.get(q))
    data["progress"] = {"judged_queries": judged, "queries": len(case.queries)}
    source, settings = case.corpus_source, case.settings
    lines = [f"Case {case.name!r} ({'edit' if access.can_edit else 'read-only'} link), id {case.case_id}",
             f"Corpus: {source['kind']} {source['name']!r}, fingerprint {source['fingerprint'][:12]}…",
             "Pipeline: " + ", ".join(f"{key} {value}" for key, value in settings.items()
                                      if key != "query" and value not in (None, "", [])),
             f"Queries (judged {judged} of {len(case.queries)}):"]
    for number, query in enumerate(case.queries, start=1):
        grades = case.grades(query)
        counts = ", ".join(f"{n} graded {grade}" for grade in (3, 2, 1, 0)
                           if (n := sum(1 for g in grades.values() if g == grade)))
        lines.append(f"  {number}. {query!r}: {len(grades)} judgment(s)" + (f" ({counts})" if grades else ""))
    lines.append("Snapshots: " + (", ".join(repr(n) for n in case.snapshot_names) or "none"))
    return data, "\n".join(lines)


def _judge(args, store) -> tuple[dict, str]:
    grade = None if args.grade == "none" else int(args.grade)
    store.judge(store.open(args.token), args.query, args.doc, grade, args.reason)
    what = "removed the grade of" if grade is None else f"graded {grade}:"
    return {"query": args.query, "doc_id": args.doc, "grade": grade}, f"Saved: {what} {args.doc!r} for {args.query!r}"


def _snapshot(args, store) -> tuple[dict, str]:
    from explorer.indexing.prebuilt import configured_index
    from explorer.pipeline.snapshots import snapshot_rankings

    access = store.open(args.token)
    case = store.case(access)
    index = configured_index() if case.corpus_source["kind"] == "index" else None
    snapshot = snapshot_rankings(store.corpus(access), case.queries, case.settings, name=args.name, index=index,
                                 allow_local_models=True)
    store.save_snapshot(access, snapshot)
    columns = sorted({c for columns in snapshot.rankings.values() for c in columns})
    return ({"name": snapshot.name, "queries": len(snapshot.rankings), "columns": columns},
            f"Saved snapshot {snapshot.name!r}: {len(snapshot.rankings)} queries, columns {', '.join(columns)}")


def _export(args, store) -> tuple[dict, str]:
    from explorer.store.case_zip import export_case

    path = export_case(store, store.open(args.token), args.out)
    return {"zip": str(path)}, f"Wrote {path}"


def _import(args, store) -> tuple[dict, str]:
    from explorer.store.case_zip import import_case

    return _links(import_case(store, args.zip), store)


ACTIONS = {"new": _new, "show": _show, "judge": _judge, "snapshot": _snapshot, "export": _export, "import": _import}


def run_case(args: argparse.Namespace, emit) -> int:
    """`case ACTION ...` on the database under data_dir() (opened for this command, closed after);
    `emit(args, data, text)` prints JSON with --json, else the text. Returns 0; raises ExplorerError for a bad
    token, bad input, a damaged database or a cap."""
    from explorer.store.cases import CaseStore

    store = CaseStore()
    try:
        data, text = ACTIONS[args.action](args, store)
    finally:
        store.close()
    emit(args, data, lambda: text)
    return 0


def case_labels_from(token: str):
    """`eval --case TOKEN`: (LabelledData of the case's judged queries, every query of the case), as
    `store/labelled.py:case_labels` gives them."""
    from explorer.store.cases import CaseStore
    from explorer.store.labelled import case_labels

    if not token:
        raise ExplorerError("--case needs the token of a case link.")
    store = CaseStore()
    try:
        return case_labels(store, store.open(token))
    finally:
        store.close()
