"""A bounded load test: many gradio_client users call the app's endpoints at once.

Each client's requests rotate through a mix: comparisons, an Inspect of one pair, and a
comparison over a document far past the model's 512 tokens (cut, and noted).

It only ever targets this machine (loopback), stops after a fixed number of requests or a
time limit, whichever comes first, and samples the server process's resident memory
throughout, so growth between the first and the last quarter of the run can be judged.

`run_soak` is the long form: rounds of mixed requests (pasted, built-in and hybrid + late +
cross comparisons, an Inspect of a ~400-word document, pipelines evaluated on a shipped set and
on an uploaded zip), and after each round the server's RSS and the per-request files on disk.
"""

from __future__ import annotations

import ipaddress
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from explorer.errors import ExplorerError

# A small pasted corpus and a few queries: each request re-ranks, the corpus stays cached.
LOAD_CORPUS = "\n".join(
    [
        "Ball pythons are among the most popular pet snakes: they stay small and are calm when handled.",
        "Python is a programming language; this tutorial writes a first script with loops and functions.",
        "The jaguar is the largest cat in the Americas and hunts in rainforests and wetlands.",
        "Jaguar Land Rover builds luxury cars and sport utility vehicles in the United Kingdom.",
        "Apple trees need cross-pollination from another variety to set a good crop of fruit.",
        "Apple Inc. designs the iPhone, the Mac and the iPad in Cupertino, California.",
        "The Berlin Wall fell on 9 November 1989 when the border crossings were opened.",
        "Vaccines train the immune system with a harmless piece of a pathogen.",
        "Rayleigh scattering of sunlight by air molecules makes the sky look blue.",
        "Use list.reverse() or the slice my_list[::-1] to reverse a list in Python.",
        "The Amazon river carries more water than any other river in the world.",
        "Amazon sells books, electronics and groceries online and runs a cloud computing business.",
    ]
)
LOAD_QUERIES = ["python snake", "jaguar speed", "apple harvest", "when did the Berlin Wall fall", "why is the sky blue"]
# ~6,000 words: the cross-encoder reads its first 512 tokens, the bi-encoder its first 256.
LONG_DOCUMENT = "The Berlin Wall fell on 9 November 1989 when the border crossings were opened. " * 400
# What request number i of a client sends: three comparisons, one inspection, one long document.
MIX = ("compare", "compare", "inspect", "compare", "long_document")


def send(client, kind: str, query: str) -> None:
    """One request of the given kind through gradio_client."""
    if kind == "compare":
        client.predict(query=query, corpus_source="Paste", corpus_text=LOAD_CORPUS, top_k=5, api_name="/compare")
    elif kind == "inspect":
        client.predict(query=query, document=LOAD_CORPUS.split("\n")[0], api_name="/inspect")
    else:
        client.predict(query=query, corpus_source="Paste", corpus_text=LOAD_CORPUS + "\n" + LONG_DOCUMENT, top_k=5,
                       api_name="/compare")


def check_loopback(url: str) -> str:
    """Refuse any target that is not this machine."""
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback or urlparse(url).scheme not in ("http", "https"):
        raise ExplorerError(f"The load test only targets this machine: give http://127.0.0.1:PORT, not {url!r}.")
    return url


def server_process(url: str, pid: int | None = None):
    """The psutil.Process serving `url` (the one listening on its port), or None if not visible."""
    import psutil

    if pid:
        return psutil.Process(pid)
    port = urlparse(url).port or 80
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return psutil.Process(connection.pid)
    except (psutil.AccessDenied, PermissionError):
        pass
    return None


@dataclass
class LoadReport:
    """One load test: clients x requests sent, completed and failed, latency percentiles in ms over the
    completed requests, wall time in s, and the server's resident memory (MB) sampled while it ran."""
    url: str
    clients: int
    requests_per_client: int
    completed: int
    errors: int
    error_messages: list[str]
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    wall_s: float
    stopped_by_time_limit: bool
    server_rss_mb_start: float | None
    server_rss_mb_end: float | None
    rss_mb_first_quarter: float | None  # median of samples while the first 25% of requests ran
    rss_mb_last_quarter: float | None
    rss_growth_percent: float | None
    rss_samples_mb: list[float] = field(default_factory=list, repr=False)
    per_kind_ms: dict[str, dict] = field(default_factory=dict)  # kind -> count, p50, p95 (ms)

    def to_dict(self) -> dict:
        """Every field as JSON-ready values, without the raw memory samples."""
        data = asdict(self)
        data.pop("rss_samples_mb")
        return data


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def _rss_mb(process) -> float | None:
    """The server's resident memory in MiB (psutil), or None when it cannot be read."""
    try:
        return process.memory_info().rss / 2**20 if process else None
    except Exception:  # the process ended, or belongs to another user
        return None


def run_load(
    url: str, clients: int = 20, requests_per_client: int = 10, timeout_s: float = 600.0, pid: int | None = None,
    mixed: bool = False,
) -> LoadReport:
    """Run the load; returns latencies (ms), errors and the server's memory (MB)."""
    from gradio_client import Client

    check_loopback(url)
    if not (1 <= clients <= 200 and 1 <= requests_per_client <= 1000):
        raise ExplorerError("Use 1–200 clients and 1–1000 requests per client.")
    process = server_process(url, pid)
    samples: list[tuple[int, float]] = []  # (requests finished so far, rss MB)
    finished = 0
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + timeout_s

    def rss_mb() -> float | None:
        return _rss_mb(process)

    def sample() -> None:
        while not stop.wait(0.25):
            value = rss_mb()
            if value is not None:
                with lock:
                    samples.append((finished, value))

    start_rss = rss_mb()
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}  # latencies per kind of request
    errors: list[str] = []

    def one_client(number: int) -> None:
        nonlocal finished
        try:
            client = Client(url, verbose=False)
        except Exception as error:  # the server is down or refuses: count every request as failed
            with lock:
                errors.extend([f"client {number}: {type(error).__name__}: {error}"] * requests_per_client)
            return
        for index in range(requests_per_client):
            if time.monotonic() > deadline:
                return
            query = LOAD_QUERIES[(number + index) % len(LOAD_QUERIES)]
            kind = MIX[(number + index) % len(MIX)] if mixed else "compare"
            began = time.perf_counter()
            try:
                send(client, kind, query)
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000)
                    by_kind.setdefault(kind, []).append(latencies[-1])
            except Exception as error:
                with lock:
                    errors.append(f"client {number}: {type(error).__name__}: {str(error)[:200]}")
            with lock:
                finished += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one_client, range(clients)))
    wall = time.perf_counter() - began
    stop.set()
    sampler.join()
    end_rss = rss_mb()

    total = clients * requests_per_client
    first = [mb for done, mb in samples if done < total * 0.25]
    last = [mb for done, mb in samples if done >= total * 0.75]
    first_q = statistics.median(first) if first else None
    last_q = statistics.median(last) if last else None
    growth = (last_q - first_q) / first_q * 100 if first_q and last_q else None
    return LoadReport(
        url=url,
        clients=clients,
        requests_per_client=requests_per_client,
        completed=len(latencies),
        errors=len(errors),
        error_messages=errors[:10],
        p50_ms=round(_percentile(latencies, 0.5), 1) if latencies else None,
        p95_ms=round(_percentile(latencies, 0.95), 1) if latencies else None,
        max_ms=round(max(latencies), 1) if latencies else None,
        wall_s=round(wall, 2),
        stopped_by_time_limit=len(latencies) + len(errors) < total,
        server_rss_mb_start=round(start_rss, 1) if start_rss else None,
        server_rss_mb_end=round(end_rss, 1) if end_rss else None,
        rss_mb_first_quarter=round(first_q, 1) if first_q else None,
        rss_mb_last_quarter=round(last_q, 1) if last_q else None,
        rss_growth_percent=round(growth, 2) if growth is not None else None,
        rss_samples_mb=[mb for _, mb in samples],
        per_kind_ms={
            kind: {"count": len(values), "p50": round(_percentile(values, 0.5), 1), "p95": round(_percentile(values, 0.95), 1)}
            for kind, values in sorted(by_kind.items())
        },
    )


def format_load_report(report: LoadReport) -> str:
    """What `python -m explorer loadtest` prints without --json."""
    lines = [
        f"Load test of {report.url}: {report.clients} clients x {report.requests_per_client} requests",
        f"  completed {report.completed}, errors {report.errors}, wall {report.wall_s} s"
        + (" (stopped by the time limit)" if report.stopped_by_time_limit else ""),
        f"  latency p50 {report.p50_ms} ms, p95 {report.p95_ms} ms, max {report.max_ms} ms",
        f"  server memory: start {report.server_rss_mb_start} MB, end {report.server_rss_mb_end} MB; "
        f"first quarter {report.rss_mb_first_quarter} MB, last quarter {report.rss_mb_last_quarter} MB "
        f"({report.rss_growth_percent}% growth)",
    ]
    lines.extend(
        f"  {kind}: {values['count']} requests, p50 {values['p50']} ms, p95 {values['p95']} ms"
        for kind, values in report.per_kind_ms.items()
    )
    lines.extend(f"  error: {message}" for message in report.error_messages)
    return "\n".join(lines)


# ---- soak: rounds of mixed requests, memory and per-request files after each ----------------------

# What a soak round sends, in turn (the contrast panel's events are private to the page, not API
# endpoints, so its edit-and-rescore is not among them).
SOAK_MIX = ("compare_paste", "compare_builtin", "compare_pipeline", "inspect_long", "evaluate_shipped",
            "evaluate_zip")
# ~400 words: the cross-encoder reads its first 512 tokens of the pair.
INSPECT_DOCUMENT = " ".join(
    ["The Berlin Wall fell on 9 November 1989 when the border crossings were opened after weeks of protest."] * 22
)
SOAK_SET = "negation"  # a shipped labelled set, evaluated as shipped and as an uploaded BEIR zip


def write_soak_zip(folder) -> str:
    """The shipped SOAK_SET as a BEIR zip (corpus.jsonl, queries.jsonl, qrels/test.tsv) in `folder`."""
    import json
    import zipfile
    from pathlib import Path

    from explorer.data.builtin_corpora import load_set

    labelled = load_set(SOAK_SET)
    path = Path(folder) / f"{SOAK_SET}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus.jsonl", "".join(
            json.dumps({"_id": d.id, "title": d.title or "", "text": d.text}) + "\n" for d in labelled.corpus.documents))
        archive.writestr("queries.jsonl", "".join(json.dumps({"_id": q.id, "text": q.text}) + "\n" for q in labelled.queries))
        archive.writestr("qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
            f"{qid}\t{did}\t{grade}\n" for qid, grades in labelled.qrels.items() for did, grade in grades.items()))
    return str(path)


def send_soak(client, kind: str, query: str, labels_zip: str) -> None:
    """One soak request of `kind` through gradio_client (files it returns are downloaded, as a visitor's are)."""
    from gradio_client import handle_file

    if kind == "compare_paste":
        client.predict(query=query, corpus_source="Paste", corpus_text=LOAD_CORPUS, top_k=5, api_name="/compare")
    elif kind == "compare_builtin":
        client.predict(query="how do I reverse a list", corpus_source="Built-in", builtin_corpus="python_docs",
                       top_k=10, api_name="/compare")
    elif kind == "compare_pipeline":
        client.predict(query=query, corpus_source="Paste", corpus_text=LOAD_CORPUS, top_k=5, first_stage="hybrid",
                       rerankers=["late", "cross"], api_name="/compare")
    elif kind == "inspect_long":
        client.predict(query="when did the Berlin Wall fall", document=INSPECT_DOCUMENT, api_name="/inspect")
    elif kind == "evaluate_shipped":
        client.predict(label_source="Built-in set", builtin_corpus=SOAK_SET, pipelines=["bm25", "bi", "bi+cross"],
                       baseline="bi", top_k=5, api_name="/evaluate_pipelines")
    elif kind == "evaluate_zip":
        client.predict(label_source="Upload", labels_zip=handle_file(labels_zip), pipelines=["bm25", "bi+cross"],
                       baseline="bm25", top_k=5, api_name="/evaluate_pipelines")
    else:
        raise ValueError(f"unknown soak request {kind!r}")


@dataclass
class SoakRound:
    """One round of a soak test: requests sent and failed, its wall time in s, and after it the server's
    resident memory (MB) and the per-request files on disk (served_files.count_files)."""
    round: int
    requests: int
    errors: int
    wall_s: float
    server_rss_mb: float | None  # after the round
    files: dict[str, int]  # per-request files on disk after the round (served_files.count_files)


@dataclass
class SoakReport:
    """A soak test: every round, the error messages, whether the time limit stopped it, the server's RSS (MB)
    at the start, and the last round's RSS against the fourth's in percent (the growth a leak shows)."""
    url: str
    rounds: list[SoakRound]
    error_messages: list[str]
    stopped_by_time_limit: bool
    server_rss_mb_start: float | None
    # The last round's RSS against the fourth's (or the last one before it), in percent.
    rss_last_vs_fourth_percent: float | None

    def to_dict(self) -> dict:
        """Every field (rounds as dicts), as JSON-ready values."""
        return asdict(self)


def run_soak(url: str, rounds: int = 8, requests_per_round: int = 50, clients: int = 4, timeout_s: float = 3600.0,
             pid: int | None = None, files_dir: str | None = None) -> SoakReport:
    """Rounds of `requests_per_round` mixed requests (SOAK_MIX, in turn) from `clients` gradio_client
    users against the app on loopback; after each round the server's RSS and the per-request files
    on disk in its gradio cache folder (`files_dir`, else this process's GRADIO_TEMP_DIR or the
    system temporary folder + /gradio). Stops by itself after `timeout_s` (the rest is not sent)."""
    import tempfile

    from gradio_client import Client

    from explorer.ui import served_files

    check_loopback(url)
    if not (1 <= rounds <= 100 and 1 <= requests_per_round <= 1000 and 1 <= clients <= 50):
        raise ExplorerError("Use 1–100 rounds of 1–1000 requests from 1–50 clients.")
    process = server_process(url, pid)

    def rss_mb() -> float | None:
        value = _rss_mb(process)
        return None if value is None else round(value, 1)

    deadline = time.monotonic() + timeout_s
    errors: list[str] = []
    reports: list[SoakRound] = []
    start_rss = rss_mb()
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        labels_zip = write_soak_zip(folder)
        users = [Client(url, verbose=False) for _ in range(clients)]
        sent = 0
        for number in range(1, rounds + 1):
            if time.monotonic() > deadline:
                break
            began, failed = time.perf_counter(), 0
            kinds = [SOAK_MIX[(sent + i) % len(SOAK_MIX)] for i in range(requests_per_round)]
            sent += requests_per_round

            def user(index: int) -> None:
                nonlocal failed
                for position in range(index, len(kinds), clients):
                    if time.monotonic() > deadline:
                        return
                    try:
                        send_soak(users[index], kinds[position], LOAD_QUERIES[position % len(LOAD_QUERIES)], labels_zip)
                    except Exception as error:
                        with lock:
                            failed += 1
                            errors.append(f"round {number} {kinds[position]}: {type(error).__name__}: {str(error)[:200]}")

            with ThreadPoolExecutor(max_workers=clients) as pool:
                list(pool.map(user, range(clients)))
            reports.append(SoakRound(number, len(kinds), failed, round(time.perf_counter() - began, 1), rss_mb(),
                                     served_files.count_files(files_dir)))
            print(format_soak_round(reports[-1]), flush=True)
    fourth = reports[min(3, len(reports) - 1)].server_rss_mb if reports else None
    last = reports[-1].server_rss_mb if reports else None
    return SoakReport(
        url=url, rounds=reports, error_messages=errors[:10],
        stopped_by_time_limit=len(reports) < rounds or time.monotonic() > deadline,
        server_rss_mb_start=start_rss,
        rss_last_vs_fourth_percent=round((last - fourth) / fourth * 100, 2) if fourth and last else None,
    )


def format_soak_round(found: SoakRound) -> str:
    """One line for a finished round: requests, errors, wall s, server RSS in MB, and the per-request files
    and folders on disk."""
    files = found.files
    return (f"round {found.round}: {found.requests} requests, {found.errors} errors, {found.wall_s} s; "
            f"server RSS {found.server_rss_mb} MB; per-request files on disk: {files['request_files']} in "
            f"{files['request_folders']} request folders, {files['gradio_cache_files']} more in gradio's cache, "
            f"{files['temp_folders']} old-style temporary folders")


def format_soak_report(report: SoakReport) -> str:
    """What `python -m explorer loadtest --soak` prints at the end (each round was printed as it ended)."""
    lines = [f"Soak of {report.url}: {len(report.rounds)} rounds" +
             (" (stopped by the time limit)" if report.stopped_by_time_limit else ""),
             f"  server RSS at the start {report.server_rss_mb_start} MB; by round: "
             + ", ".join(str(r.server_rss_mb) for r in report.rounds) + " MB",
             f"  last round against the fourth: {report.rss_last_vs_fourth_percent}%"]
    lines += [f"  {format_soak_round(r)}" for r in report.rounds]
    lines += [f"  error: {message}" for message in report.error_messages]
    return "\n".join(lines)
