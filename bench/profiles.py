"""Measure each profile on the embedded reference server: wall time and requests sent.

    .venv/bin/python bench/profiles.py                 # smoke and full, seed 1
    .venv/bin/python bench/profiles.py --profile smoke --seed 7

Runs `creatoraudit-conformance run --profile P --seed S` in a fresh process (start-up
included) and counts the requests the embedded server received, with a tiny pytest plugin
that wraps the reference app. Prints one Markdown table row per profile. CPU time (user +
system of the run) varies less than wall time on a busy machine, so both are shown, with the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNTER_PLUGIN = """
import json, os
import conformance._reference._app as app_module

_count = {"requests": 0}
_create = app_module.create_app


def counting_create_app(settings):
    app = _create(settings)

    async def counted(scope, receive, send):
        if scope["type"] == "http":
            _count["requests"] += 1
        await app(scope, receive, send)

    counted.state = app.state
    return counted


app_module.create_app = counting_create_app
import conformance._reference._server as server_module
server_module.create_app = counting_create_app


def pytest_unconfigure(config):
    with open(os.environ["BENCH_COUNT_FILE"], "w") as out:
        json.dump(_count, out)
"""


def measure(profile: str, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        plugin_dir = Path(folder)
        (plugin_dir / "bench_counter.py").write_text(COUNTER_PLUGIN, encoding="utf-8")
        count_file = plugin_dir / "count.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]),
            "BENCH_COUNT_FILE": str(count_file),
        }
        command = [
            sys.executable, "-m", "conformance.cli", "run", "--report-dir", folder,
            "-p", "bench_counter", "-q", "--profile", profile, "--seed", str(seed),
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        requests = json.loads(count_file.read_text())["requests"] if count_file.exists() else None
    summary = result.stdout.strip().splitlines()[-2:] if result.stdout else []
    return {
        "profile": profile,
        "seed": seed,
        "exit": result.returncode,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "requests": requests,
        "summary": " / ".join(summary),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=("smoke", "full"), action="append")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    print("| profile | wall time (s) | CPU time (s) | requests | exit | load (1 min) |")
    print("| ------- | ------------- | ------------ | -------- | ---- | ------------ |")
    for profile in arguments.profile or ["smoke", "full"]:
        row = measure(profile, arguments.seed)
        load = os.getloadavg()[0]
        print(
            f"| {row['profile']} | {row['wall_s']} | {row['cpu_s']} | {row['requests']} "
            f"| {row['exit']} | {load:.1f} |"
        )
        print(f"<!-- {row['summary']} -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
