"""A bounded load test: many gradio_client users call the app's endpoints at once.

Each client's requests rotate through a mix: comparisons, an Inspect of one pair, and a
comparison over a document far past the model's 512 tokens (cut, and noted).

It only ever targets this machine (loopback), stops after a fixed number of requests or a
time limit, whichever comes first, and samples the server process's resident memory
throughout, so growth between the first and the last quarter of the run can be judged.
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
        try:
            return process.memory_info().rss / 2**20 if process else None
        except Exception:
            return None

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
