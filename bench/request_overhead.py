#!/usr/bin/env python3
"""Per-request cost of the suite's client next to a plain httpx loop, side by side.

One reference server on loopback (a thread of this process); each client loop runs in its own
subprocess, so client and server never share an interpreter lock, and the variants alternate
round by round so that machine load falls on all of them alike. Every loop sends the same
``GET /health`` with the same key over one kept-alive connection.

    .venv/bin/python bench/request_overhead.py              # 5 rounds of 500 requests
    .venv/bin/python bench/request_overhead.py --rounds 9 --requests 1000

Variants: ``raw`` (httpx.Client.get), ``client`` (``ApiClient.get``, no observer) and
``judged`` (``ApiClient.get`` with the rules applied to every exchange, as in a suite run).
Prints the median microseconds per request of each and its ratio to ``raw``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/request_overhead.py` puts bench/ on the path
    sys.path.insert(0, str(ROOT))

VARIANTS = ("raw", "client", "judged")
#: plain httpx loops and the path each sends; ``raw-lookup`` is an authenticated read of an
#: unknown creator (404): the server checks the key, the rate limit and its database
RAW_PATHS = {"raw": "/health", "raw-lookup": "/creators/00000000-0000-4000-8000-000000000000"}


def loop(variant: str, base_url: str, key: str, count: int) -> float:
    """Seconds for ``count`` sequential requests after one untimed request (the connect)."""
    if variant in RAW_PATHS:
        import httpx

        with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as http:
            url = base_url.rstrip("/") + RAW_PATHS[variant]
            http.get(url)
            start = time.perf_counter()
            for _ in range(count):
                http.get(url, headers={"X-Request-ID": "bench-raw"})
            return time.perf_counter() - start
    from conformance._client import ApiClient
    from conformance._config import Credentials
    from conformance._rules import judge

    client = ApiClient(base_url, Credentials(api_key=key), run_id="bench")
    if variant == "judged":
        client.observe(judge)
    try:
        client.get("/health")
        start = time.perf_counter()
        for _ in range(count):
            client.get("/health")
        return time.perf_counter() - start
    finally:
        client.close()


def measure(variant: str, base_url: str, key: str, count: int) -> float:
    command = [sys.executable, __file__, "--worker", variant, base_url, key, str(count)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    return float(json.loads(result.stdout)["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--worker", nargs=4, metavar=("VARIANT", "URL", "KEY", "N"))
    options = parser.parse_args()
    if options.worker:
        variant, url, key, count = options.worker
        print(json.dumps({"seconds": loop(variant, url, key, int(count))}))
        return 0

    from bench._servers import counted_reference

    timings: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with counted_reference() as server:
        for _ in range(options.rounds):
            for variant in VARIANTS:
                seconds = measure(variant, server.base_url, server.keys.api_key, options.requests)
                timings[variant].append(seconds / options.requests * 1e6)
    raw = statistics.median(timings["raw"])
    print(f"{'variant':8} {'us/request':>10} {'req/s':>8} {'vs raw':>7}   (median of "
          f"{options.rounds} rounds x {options.requests} requests)")
    for variant in VARIANTS:
        micros = statistics.median(timings[variant])
        print(f"{variant:8} {micros:10.0f} {1e6 / micros:8.0f} {raw / micros:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
