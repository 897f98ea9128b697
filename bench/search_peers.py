#!/usr/bin/env python3
"""Exact top-10 search latency: `clip bench --only search` beside FAISS's IndexFlatIP.

Usage (from anywhere; paths default to this repository):

    python3 bench/search_peers.py --threads 2
    python3 bench/search_peers.py --sizes 100000,1000000 --repeats 21 --venv /path/to/venv

Both sides search random 512-d unit vectors (float32) for the 10 best inner products of a
random unit query, one query at a time, after one warm-up query, --repeats timed queries,
reported as median / min / max milliseconds. FAISS runs `IndexFlatIP.search` (exact, brute
force; its BLAS path starts at 20 queries, so a single query runs its SIMD scan) with
`faiss.omp_set_num_threads(--threads)` and with one thread (one query is often faster on one
thread), and the faster is the ratio's reference; ours runs `clip bench --only search` with
--threads.

The Python side runs in its own virtual environment, by default ~/.cache/clip-bench/faiss-venv
(--venv PATH), created on first use with the Python that runs the script, with the versions
pinned in PINS installed from PyPI. Never run by CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path.home() / ".cache" / "clip-bench" / "faiss-venv"
PINS = ["faiss-cpu==1.15.1", "numpy==2.4.6"]
DIM = 512


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_venv(path: Path) -> None:
    """Re-executes the script inside the environment (creating it first if needed)."""
    if Path(sys.prefix).resolve() == path.resolve():
        return
    python = path / "bin" / "python"
    if not python.exists():
        log(f"creating {path}")
        venv.create(path, with_pip=True)
    check = subprocess.run([str(python), "-c", "import faiss, numpy"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
    os.execv(str(python), [str(python), *sys.argv])


def faiss_rows(sizes: list[int], repeats: int, thread_counts: list[int]) -> dict[tuple[int, int], list[float]]:
    """Latencies by (vectors, threads)."""
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        log(f"faiss: {n} vectors")
        data = rng.random((n, DIM), dtype=np.float32) - 0.5
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(DIM)
        index.add(data)
        del data

        def query():
            q = rng.random((1, DIM), dtype=np.float32) - 0.5
            return q / np.linalg.norm(q)

        for threads in thread_counts:
            faiss.omp_set_num_threads(threads)
            index.search(query(), 10)  # warm-up
            times = []
            for _ in range(repeats):
                q = query()
                start = time.perf_counter()
                _, ids = index.search(q, 10)
                times.append((time.perf_counter() - start) * 1e3)
                assert ids.shape == (1, 10)
            out[(n, threads)] = times
        del index
    return out


def clip_rows(args) -> dict[int, tuple[float, float, float]]:
    binary = args.clip_bin
    if not binary.exists():
        log("building clip (cargo build --release --locked -p clip-cli)")
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "clip-cli"], cwd=REPO, check=True)
    cmd = [str(binary), "bench", "--only", "search", "--search-sizes", ",".join(map(str, args.sizes)),
           "--repeats", str(args.repeats), "--threads", str(args.threads), "--json"]
    log(" ".join(cmd))
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {r["items"]: (r["median"], r["min"], r["max"]) for r in result["results"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000", help="numbers of vectors, comma-separated")
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--clip-bin", type=Path, default=REPO / "target" / "release" / "clip")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    ensure_venv(args.venv)
    ours = clip_rows(args)
    # FAISS splits one query's scan poorly: it is also timed on one thread, and the faster
    # of the two is the ratio's reference.
    counts = sorted({args.threads, 1})
    theirs = faiss_rows(args.sizes, args.repeats, counts)
    print(f"Exact top-10 of 512-d vectors, 1 query, milliseconds (median, min-max over {args.repeats}); "
          f"clip on {args.threads} threads\n")
    heads = " | ".join(f"FAISS IndexFlatIP, {t} thread{'s' if t > 1 else ''}" for t in counts)
    print(f"| vectors | {heads} | clip | best FAISS / clip |")
    print("|---:|" + "---:|" * (len(counts) + 2))
    for n in args.sizes:
        cells, best = [], float("inf")
        for t in counts:
            ts = theirs[(n, t)]
            m = statistics.median(ts)
            best = min(best, m)
            cells.append(f"{m:.1f} ({min(ts):.1f}-{max(ts):.1f})")
        om, omin, omax = ours[n]
        print(f"| {n:,} | {' | '.join(cells)} | {om:.1f} ({omin:.1f}-{omax:.1f}) | {best / om:.2f}x |")


if __name__ == "__main__":
    main()
