"""A case as a zip, out and in: what leaves the server (a Space's disk is ephemeral) and comes back exactly.

The zip holds
- ``manifest.json``: the format and schema version, the case's name, corpus source, settings, queries (with the
  ids the other files use), every judgment with its reason, every snapshot (rankings and the scores shown) and
  which run file holds each of its columns;
- ``corpus.jsonl``: the documents, one ``{"id", "text"[, "title"]}`` per line (as `labels.write_corpus_jsonl`);
- ``queries.jsonl``: ``{"id": "q1", "text": ...}`` per line;
- ``qrels.txt``: the judgments as TREC qrels, ``qid 0 docid grade``;
- ``runs/SNAPSHOT__COLUMN.txt``: each snapshot column as a TREC run (`data/trec_runs.py:format_run`).

So `python -m explorer eval --corpus corpus.jsonl --queries queries.jsonl --qrels qrels.txt` and trec_eval read it
as it is. A document id with white space (or NUL) cannot be written in a TREC line: such lines are left out of qrels.txt
and the runs (the manifest says so in its notes) and kept in the manifest.

`import_case` checks everything before it writes anything (sizes unpacked, every field's type, the corpus
against its fingerprint, qrels.txt and the runs against the manifest); any problem is one ExplorerError naming
the member. The case comes back with new links.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from explorer import budgets
from explorer.data.corpus import Corpus, Document, parse_qrels
from explorer.data.trec_runs import format_run, parse_run, run_rankings
from explorer.errors import ExplorerError
from explorer.store.cases import CaseAccess, CaseLinks, CaseStore, Judgment, Snapshot, check_grade, check_snapshot
from explorer.store.database import SCHEMA_VERSION
from explorer.store.labelled import query_ids as case_query_ids

FORMAT = "cross-encoder-explorer case"
ZIP_VERSION = 1
MANIFEST, CORPUS, QUERIES, QRELS = "manifest.json", "corpus.jsonl", "queries.jsonl", "qrels.txt"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def _slug(name: str) -> str:
    """A name as a TREC tag and file name: runs of other characters become '-'."""
    return _UNSAFE.sub("-", name).strip("-.")[:60] or "run"


def _trec_safe(*ids: str) -> bool:
    return all(i and "\x00" not in i and not any(ch.isspace() for ch in i) for i in ids)


def export_case(store: CaseStore, access: CaseAccess, path: str | os.PathLike) -> Path:
    """Write the case `access` opens (a read-only link may export) as a zip at `path`; returns the path.
    Raises ExplorerError for a stale access, or when the file cannot be written."""
    case = store.case(access)
    corpus = store.corpus(access)
    snapshots = [store.snapshot(access, name) for name in case.snapshot_names]
    query_ids = case_query_ids(case, [q for s in snapshots for q in s.rankings])
    notes, files = [], {}
    qrels_lines = [f"{query_ids[j.query]} 0 {j.doc_id} {j.grade}" for by_doc in case.judgments.values()
                   for j in by_doc.values() if _trec_safe(j.doc_id)]
    judgments = [j for by_doc in case.judgments.values() for j in by_doc.values()]
    if len(qrels_lines) < len(judgments):
        notes.append(f"{len(judgments) - len(qrels_lines)} judgment(s) name a document id with white space; "
                     "TREC lines cannot hold it, so they are in this manifest only, not in qrels.txt.")
    manifest_snapshots, used = [], set()
    for snapshot in snapshots:
        runs = {}
        for column in sorted({c for columns in snapshot.rankings.values() for c in columns}):
            stem = base = f"{_slug(snapshot.name)}__{_slug(column)}"
            while stem.lower() in used:
                stem = f"{base}-{len(used)}"
            used.add(stem.lower())
            rankings = {query_ids[q]: [d for d in columns[column] if _trec_safe(d)]
                        for q, columns in snapshot.rankings.items() if column in columns}
            runs[column] = f"runs/{stem}.txt"
            files[runs[column]] = format_run(rankings, stem)
        manifest_snapshots.append({"name": snapshot.name, "created": snapshot.created, "rankings": snapshot.rankings,
                                   "scores": snapshot.scores, "runs": runs})
    manifest = {
        "format": FORMAT, "zip_version": ZIP_VERSION, "schema_version": SCHEMA_VERSION,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": case.name, "corpus": dict(case.corpus_source, file=CORPUS, documents=len(corpus)),
        "settings": case.settings,
        "queries": [{"id": query_ids[q], "text": q} for q in case.queries],
        "judgments": [{"query_id": query_ids[j.query], "doc_id": j.doc_id, "grade": j.grade, "reason": j.reason}
                      for j in judgments],
        "snapshots": manifest_snapshots,
        "query_ids": query_ids,
        "notes": notes,
    }
    corpus_lines = [json.dumps({"id": d.id, "text": d.text, **({"title": d.title} if d.title else {})},
                               ensure_ascii=False) for d in corpus.documents]
    path = Path(path)
    try:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
            archive.writestr(CORPUS, "\n".join(corpus_lines) + "\n")
            archive.writestr(QUERIES, "".join(json.dumps({"id": query_ids[q], "text": q}, ensure_ascii=False) + "\n"
                                              for q in case.queries))
            archive.writestr(QRELS, "".join(line + "\n" for line in qrels_lines))
            for name, text in files.items():
                archive.writestr(name, text)
    except OSError as error:
        raise ExplorerError(f"Cannot write the case to {path}: {error.strerror or error}.") from None
    return path


# ---- reading a zip back -------------------------------------------------------------------------------


def _read_members(path: Path) -> dict[str, bytes]:
    """Every member's bytes, each and all together within the caps; a clear error for anything else."""
    try:
        size = path.stat().st_size
        if size > budgets.MAX_CASE_ZIP_BYTES:
            raise ExplorerError(f"{path.name} is {size / 2**20:.1f} MB; a case zip may be at most "
                                f"{budgets.MAX_CASE_ZIP_BYTES / 2**20:.0f} MB (EXPLORER_MAX_CASE_ZIP_BYTES).")
        data = path.read_bytes()
    except OSError as error:
        raise ExplorerError(f"Cannot read {path}: {error.strerror or error}.") from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise ExplorerError(f"{path.name} is not a readable zip file ({error}).") from None
    if len(infos) > budgets.MAX_CASE_ZIP_MEMBERS:
        raise ExplorerError(f"{path.name} holds {len(infos):,} files; a case zip holds at most {budgets.MAX_CASE_ZIP_MEMBERS:,}.")
    members: dict[str, bytes] = {}
    left = budgets.MAX_CASE_ZIP_UNPACKED_BYTES
    for info in infos:
        name = info.filename
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name or name in members:
            raise ExplorerError(f"{path.name} holds a file named {name!r}; a case zip holds only plain relative names, once each.")
        try:
            with archive.open(info) as handle:
                content = handle.read(left + 1)  # the header's size may lie: read no more than is left
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
            raise ExplorerError(f"{path.name}:{name} cannot be unpacked ({error}); the zip is damaged.") from None
        left -= len(content)
        if left < 0:
            raise ExplorerError(f"{path.name} unpacks to more than {budgets.MAX_CASE_ZIP_UNPACKED_BYTES / 2**20:.0f} MB "
                                "(EXPLORER_MAX_CASE_ZIP_UNPACKED_BYTES); it is not a case this server can take.")
        members[name] = content
    return members


def _text(members: dict[str, bytes], name: str, where: str) -> str:
    if name not in members:
        raise ExplorerError(f"{where} lacks {name}: export the case again with `python -m explorer case export`.")
    try:
        return members[name].decode("utf-8")
    except UnicodeDecodeError:
        raise ExplorerError(f"{where}:{name} is not UTF-8 text.") from None


def _json(text: str, where: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise ExplorerError(f"{where} is not valid JSON ({error}).") from None
    except RecursionError:
        raise ExplorerError(f"{where}: the JSON is nested too deeply to read.") from None


def _need(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise ExplorerError(f"{where}: {what}")


def _strings(value, where: str, what: str) -> None:
    _need(isinstance(value, str), where, f"{what} must be text.")


def _read_corpus(text: str, where: str, source: dict) -> Corpus:
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        record = _json(line, f"{where}, line {number}")
        _need(isinstance(record, dict) and set(record) <= {"id", "text", "title"}, f"{where}, line {number}",
              'expected {"id", "text"[, "title"]}.')
        for key in ("id", "text"):
            _strings(record.get(key), f"{where}, line {number}", f'"{key}"')
        _strings(record.get("title", ""), f"{where}, line {number}", '"title"')
        documents.append(Document(record["id"], record["text"], record.get("title", "")))
    _need(0 < len(documents) <= budgets.MAX_DOCUMENTS, where, f"a case's corpus holds 1 to {budgets.MAX_DOCUMENTS:,} documents.")
    _need(len({d.id for d in documents}) == len(documents), where, "a document id appears twice.")
    corpus = Corpus(documents, name=source.get("name", "corpus"))
    _need(corpus.fingerprint == source.get("fingerprint"), where,
          "the documents do not match the fingerprint in manifest.json (the zip was edited or damaged).")
    return corpus


def _read_manifest(members: dict[str, bytes], where: str) -> dict:
    manifest = _json(_text(members, MANIFEST, where), f"{where}:{MANIFEST}")
    here = f"{where}:{MANIFEST}"
    _need(isinstance(manifest, dict) and manifest.get("format") == FORMAT, here, "this is not a case exported by "
          "Cross-Encoder Explorer (no case manifest).")
    _need(manifest.get("zip_version") == ZIP_VERSION, here, f"case zip version {manifest.get('zip_version')!r}; "
          f"this app reads version {ZIP_VERSION}. Update the app.")
    _strings(manifest.get("name"), here, '"name"')
    corpus = manifest.get("corpus")
    _need(isinstance(corpus, dict) and corpus.get("kind") in ("stored", "builtin", "index"), here, '"corpus" must name its kind.')
    for key in ("name", "fingerprint"):
        _strings(corpus.get(key), here, f'"corpus.{key}"')
    _need(isinstance(manifest.get("settings"), dict), here, '"settings" must be an object.')
    for key in ("queries", "judgments", "snapshots"):
        _need(isinstance(manifest.get(key), list), here, f'"{key}" must be a list.')
    _need(isinstance(manifest.get("query_ids"), dict) and all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in manifest["query_ids"].items()),
          here, '"query_ids" must map query texts to ids.')
    for query in manifest["queries"]:
        _need(isinstance(query, dict) and isinstance(query.get("id"), str) and isinstance(query.get("text"), str)
              and manifest["query_ids"].get(query["text"]) == query["id"], here, "each query is {\"id\", \"text\"} as in query_ids.")
    for judgment in manifest["judgments"]:
        _need(isinstance(judgment, dict) and all(isinstance(judgment.get(k), str) for k in ("query_id", "doc_id", "reason"))
              and isinstance(judgment.get("grade"), int) and not isinstance(judgment.get("grade"), bool), here,
              'each judgment is {"query_id", "doc_id", "grade", "reason"}.')
    budgets.check_case_snapshots(len(manifest["snapshots"]))
    for snapshot in manifest["snapshots"]:
        _need(isinstance(snapshot, dict) and isinstance(snapshot.get("name"), str) and isinstance(snapshot.get("created"), str)
              and isinstance(snapshot.get("runs"), dict), here, 'each snapshot is {"name", "created", "rankings", "scores", "runs"}.')
    return manifest


def _check_trec_files(members: dict[str, bytes], manifest: dict, judgments: list[Judgment], where: str) -> None:
    """qrels.txt and every run must say what the manifest says (they are what other tools read)."""
    ids = manifest["query_ids"]
    expected = {}
    for j in judgments:
        if _trec_safe(j.doc_id):
            expected.setdefault(ids[j.query], {})[j.doc_id] = j.grade
    text = _text(members, QRELS, where)
    found = parse_qrels(text, f"{where}:{QRELS}")[0] if text.strip() else {}
    _need(found == expected, f"{where}:{QRELS}", "the judgments differ from manifest.json's (the zip was edited).")
    for snapshot in manifest["snapshots"]:
        for column, name in snapshot["runs"].items():
            _strings(name, f"{where}:{MANIFEST}", "a run's file name")
            rankings = {ids[q]: [d for d in columns[column] if _trec_safe(d)]
                        for q, columns in snapshot["rankings"].items() if column in columns}
            run_text = _text(members, name, where)
            found_run = run_rankings(parse_run(run_text, f"{where}:{name}")) if run_text.strip() else {}
            _need(found_run == {q: docs for q, docs in rankings.items() if docs}, f"{where}:{name}",
                  f"the run differs from snapshot {snapshot['name']!r} in manifest.json (the zip was edited).")


def _referenced(source: dict, corpus: Corpus) -> tuple[str, Corpus]:
    """("builtin" or "index", this server's corpus) when the zip's corpus is a built-in set or the prebuilt index
    this server offers with the same fingerprint; else ("stored", the zip's corpus)."""
    if source["kind"] == "builtin":
        from explorer.data.builtin_corpora import list_sets, load_set

        if source["name"] in {s.name for s in list_sets()}:
            shipped = load_set(source["name"]).corpus
            if shipped.fingerprint == corpus.fingerprint:
                return "builtin", shipped
    elif source["kind"] == "index":
        from explorer.indexing.prebuilt import configured_index

        index = configured_index()
        if index is not None and index.fingerprint == corpus.fingerprint:
            return "index", index.corpus
    return "stored", corpus


def import_case(store: CaseStore, path: str | os.PathLike) -> CaseLinks:
    """The case in a zip made by `export_case`, saved as a new case with new links; nothing is written unless all
    of it reads and checks. A built-in corpus is referenced again when this server's set has the same fingerprint
    (else it is stored, as any corpus). Raises ExplorerError naming the member for anything malformed or too large."""
    path = Path(path)
    where = path.name
    members = _read_members(path)
    manifest = _read_manifest(members, where)
    source = manifest["corpus"]
    corpus = _read_corpus(_text(members, CORPUS, where), f"{where}:{CORPUS}", source)
    by_id = {q["id"]: q["text"] for q in manifest["queries"]}
    known = {v: k for k, v in manifest["query_ids"].items()}
    judgments = []
    for judgment in manifest["judgments"]:
        query = by_id.get(judgment["query_id"]) or known.get(judgment["query_id"])
        _need(query is not None, f"{where}:{MANIFEST}", f"a judgment names query id {judgment['query_id']!r}, which it lacks.")
        judgments.append(Judgment(query, judgment["doc_id"], check_grade(judgment["grade"]), judgment["reason"]))
    snapshots = [Snapshot(s["name"], s["created"], s.get("rankings"), s.get("scores")) for s in manifest["snapshots"]]
    _need(len({s.name for s in snapshots}) == len(snapshots), f"{where}:{MANIFEST}", "two snapshots share a name.")
    for snapshot, entry in zip(snapshots, manifest["snapshots"]):
        check_snapshot(snapshot)
        _need(all(q in manifest["query_ids"] for q in snapshot.rankings), f"{where}:{MANIFEST}",
              f"snapshot {snapshot.name!r} ranks a query without an id.")
        _need(set(entry["runs"]) == {c for columns in snapshot.rankings.values() for c in columns},
              f"{where}:{MANIFEST}", f"snapshot {snapshot.name!r} names other run files than columns.")
    _check_trec_files(members, manifest, judgments, where)
    kind, corpus = _referenced(source, corpus)
    links = store.create_case(manifest["name"], corpus, {"kind": kind, "name": source["name"]}, manifest["settings"],
                              [q["text"] for q in manifest["queries"]], judgments)
    access = store.open(links.edit_token)
    for snapshot in snapshots:
        store.save_snapshot(access, snapshot)
    return links
