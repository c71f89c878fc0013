#!/usr/bin/env python3
"""Benchmark: how fast the suite reaches a verdict, next to the network limit and schemathesis.

One invocation, one machine, loopback only. Every client runs as a subprocess through its
public command (``creatoraudit-conformance run``, ``schemathesis run``) against a reference
server this script starts and counts requests on (``bench/_servers.py``):

1. raw: a plain httpx loop sending as many simple requests as the smoke run sent, and right
   after each scenarios-only run three sending as many as that run did (the scenario rate is
   compared with their median; the ratio reported is the median of ``--repeat`` such pairs),
   and the pytest floor: plain pytest and plain httpx, as many tests and requests, no suite
   (``bench/_floor.py``);
2. the suite, ``smoke`` and ``full`` profiles (wall, requests, req/s, own CPU vs waiting,
   peak memory), with pytest-xdist (``-n 2``) too, and smoke on the embedded server as a user
   runs it (start-up included);
3. ``schemathesis run`` on the same spec, target and key: default settings, and the smoke
   budget;
4. every reference fault (a fresh server each): which of 2 and 3 notice it, and how fast;
5. scale: a generated spec with 1, 10 and 50 operations of the same shape.

    .venv/bin/python bench/run.py            # everything (~10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # a few faults, small budgets (~2 minutes)

Writes ``reports/bench.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from bench._floor import floor_command, floor_env, write_floor_tests  # noqa: E402
from bench._scale import scale_app, write_generated_spec  # noqa: E402
from bench._servers import CountedServer, counted_reference  # noqa: E402
from bench.request_overhead import measure as measure_loop  # noqa: E402
from conformance._reference import FAULTS  # noqa: E402
from conformance._resources import spec_path  # noqa: E402

RUN_TIMEOUT_S = 300.0
#: examples per operation for the comparable schemathesis run when the suite has no profiles
FALLBACK_SMOKE_EXAMPLES = 10
SCALE_OPERATIONS = (1, 10, 50)
#: the hand-written scenarios alone (no fuzzing, no state machine), for the per-request rate
#: the suite's per-request cost is measured in one stream, as the raw loop is one
SCENARIOS_ONLY = ["-k", "not fuzzing and not ownership_model", "--lanes=1"]
ONE_LANE = ["--lanes=1"]
RAW_LOOPS_PER_PAIR = 3
SCALE_EXAMPLES = 5
QUICK_FAULTS = ("relink-returns-201", "problem-without-code", "weak-etag", "no-www-authenticate")
#: schemathesis checks that fail a correct server on a spec documenting only part of the API
#: (the published spec has only PUT on a path where the server also answers GET and DELETE)
SCHEMATHESIS_PARTIAL_SPEC_CHECKS = ("Allow header mismatch", "Unsupported methods")


# --- running a client as a measured subprocess ------------------------------------------------


@dataclass
class Measured:
    """One subprocess run and what the server saw of it."""

    label: str
    command: str
    exit_code: int
    wall_s: float
    requests: int
    server_busy_s: float
    cpu_s: float
    peak_rss_mb: float
    suite_requests: int = 0
    suite_window_s: float = 0.0
    #: tests pytest ran (passed, failed, skipped, errors), from its summary line
    tests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: the end of the output of a suite run that did not conform on a clean target
    output_tail: str = ""

    @property
    def req_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def waiting_s(self) -> float:
        """Wall time the client spent not computing: waiting on the server and the network."""
        return max(self.wall_s - self.cpu_s, 0.0)

    @property
    def suite_rate(self) -> float:
        """Requests per second while the suite's scenarios ran (start-up excluded)."""
        return self.suite_requests / self.suite_window_s if self.suite_window_s else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            req_per_s=round(self.req_per_s, 1),
            waiting_s=round(self.waiting_s, 3),
            suite_rate=round(self.suite_rate, 1),
        )
        return data


def run_measured(
    label: str,
    command: list[str],
    env: dict[str, str],
    target: CountedServer | None,
    cwd: Path,
    display: list[str] | None = None,
) -> tuple[Measured, str]:
    """Run ``command`` to completion; wall time, the child's own CPU and peak RSS (wait4),
    and the requests the target served meanwhile."""
    if target is not None:
        target.counter.reset()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )
        killer = threading.Timer(RUN_TIMEOUT_S, _kill_group, (process.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    counter = target.counter if target is not None else None
    measured = Measured(
        label=label,
        command=" ".join(display or command),
        exit_code=process.returncode,
        wall_s=round(wall, 3),
        requests=counter.count if counter else 0,
        server_busy_s=round(counter.busy_s, 3) if counter else 0.0,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        suite_requests=counter.tagged if counter else 0,
        suite_window_s=round(counter.tagged_window_s, 3) if counter else 0.0,
        statuses={str(k): v for k, v in sorted(counter.statuses.items())} if counter else {},
    )
    return measured, output


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# --- the clients ---------------------------------------------------------------------------------


def _venv_tool(name: str) -> str:
    """The console script installed next to this interpreter (the project's venv)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"bench: {name} is not installed in this environment")
    return found


def suite_has_profiles() -> bool:
    """Fuzzing and the state machine bring ``--profile``; without them smoke = scenarios."""
    return importlib.util.find_spec("conformance._fuzzing") is not None


def suite_command(
    base_url: str | None, profile: str | None, report_dir: Path, extra: list[str] | None = None
) -> list[str]:
    command = [_venv_tool("creatoraudit-conformance"), "run", "--report-dir", str(report_dir)]
    if base_url:
        command += ["--base-url", base_url]
    if profile and suite_has_profiles():
        command += ["--profile", profile]
    return [*command, "-q", *(extra or [])]


def schemathesis_command(
    spec: Path, base_url: str, key: str, max_examples: int | None, extra: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """The command, and the same with the key masked for the report."""
    tail = [str(spec), "--url", base_url, "--no-color"]
    if max_examples is not None:
        tail += ["--max-examples", str(max_examples)]
    tail += extra or []
    auth = f"Authorization: Bearer {key}"
    tool = _venv_tool("schemathesis")
    return (
        [tool, "run", "-H", auth, *tail],
        [tool, "run", "-H", "Authorization: Bearer $CREATORAUDIT_API_KEY", *tail],
    )


_ST_FAILURE = re.compile(r"^\s*❌\s+(.+?):\s+\d+\s*$")


def is_partial_spec_failure(kind: str) -> bool:
    """One of the checks that fail a correct server on this spec (schemathesis 4 names a
    failure kind with its code first: ``ST205 Allow header mismatch``)."""
    return any(kind.endswith(check) for check in SCHEMATHESIS_PARTIAL_SPEC_CHECKS)


def schemathesis_failures(output: str) -> list[str]:
    """The failure kinds listed in the summary of ``schemathesis run``."""
    kinds: list[str] = []
    in_failures = False
    for line in output.splitlines():
        if line.strip() == "Failures:":
            in_failures = True
            continue
        if in_failures:
            match = _ST_FAILURE.match(line)
            if match:
                kinds.append(match.group(1))
            elif line.strip():
                in_failures = False
    return sorted(set(kinds))


_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR|FLAKY) (\S+)", re.MULTILINE)


_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?)\b")


_PYTEST_SUMMARY = re.compile(r"\d+ \w+.* in [\d.]+s\b")


def ran_test_count(output: str) -> int:
    """The tests pytest's summary line ("115 passed, 2 skipped, 2 deselected in 0.47s")
    counts; deselected ones are not run."""
    summary = [line for line in output.splitlines() if _PYTEST_SUMMARY.search(line)]
    return sum(int(n) for n, _ in _PYTEST_COUNTS.findall(summary[-1])) if summary else 0


def suite_failures(output: str) -> list[str]:
    """The failing tests the suite named (``-ra`` prints one ``FAILED`` line each, the re-run
    plugin one ``FLAKY`` line per check that failed and then passed)."""
    return sorted(set(_PYTEST_FAILED.findall(output)))


def raw_loop(base_url: str, key: str, count: int, repeat: int = 1) -> dict[str, Any]:
    """The network limit: ``count`` sequential keep-alive GETs, nothing else, sent from a
    subprocess like every client measured here (in this process it would share the server
    thread's interpreter lock). The median of ``repeat`` loops."""
    walls = [measure_loop("raw", base_url, key, count) for _ in range(repeat)]
    wall = statistics.median(walls)
    lookup = measure_loop("raw-lookup", base_url, key, count)
    return {"requests": count, "wall_s": round(wall, 3), "req_per_s": round(count / wall, 1),
            "req_per_s_each": [round(count / w, 1) for w in walls],
            "lookup_req_per_s": round(count / lookup, 1)}


def _median_run(runs: list[Measured], by: str = "suite_rate") -> Measured:
    """The run whose ``by`` (scenario rate, wall time) is the median (the lower middle one of
    an even count)."""
    ordered = sorted(runs, key=lambda m: float(getattr(m, by)))
    return ordered[(len(ordered) - 1) // 2]


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Options:
    quick: bool
    faults: list[str]
    cold: bool
    scale: bool
    parallel: bool
    output: Path
    #: pairs of each kind (scenarios/raw, smoke/schemathesis, lanes); targets use their medians
    repeat: int = 5


class Bench:
    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.folders = 0
        self.spec = spec_path()
        self.smoke_examples = _smoke_examples()
        self.results: dict[str, Any] = {
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average_at_start": list(os.getloadavg()),
                "bytecode_cache": not options.cold,
            },
            "suite_has_profiles": suite_has_profiles(),
        }

    def env(self, server: CountedServer | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREATORAUDIT_")}
        env.pop("PYTEST_BASE_URL", None)
        env.pop("PYTEST_ADDOPTS", None)
        if not self.options.cold:
            # a CI runner keeps bytecode; without it every run re-compiles (and pytest
            # re-rewrites) hypothesis and schemathesis, which dominates start-up
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        if server is not None:
            env.update(server.key_env())
        return env

    def cwd(self, name: str) -> Path:
        """A fresh working folder per run, also for runs of the same label: nothing that a tool
        keeps in its working folder (schemathesis: hypothesis' ``.hypothesis``) is shared."""
        self.folders += 1
        folder = self.workdir / f"{self.folders:03d}-{name}"
        folder.mkdir(parents=True)
        return folder

    def suite(
        self, label: str, server: CountedServer | None, profile: str | None,
        extra: list[str] | None = None, cold_cache: bool = False,
    ) -> Measured:
        """``cold_cache``: an empty suite cache folder, as on a CI machine that keeps nothing
        between jobs (the spec is validated again, hypothesis' tables are computed again)."""
        cwd = self.cwd(label)
        base_url = server.base_url if server else None
        command = suite_command(base_url, profile, cwd / "reports", extra)
        env = self.env(server)
        if cold_cache:
            env["CREATORAUDIT_CACHE_DIR"] = str(cwd / "empty-cache")
        measured, output = run_measured(label, command, env, server, cwd)
        measured.failures = suite_failures(output)
        measured.tests = ran_test_count(output)
        if measured.exit_code != 0 and not label.startswith("fault-"):
            measured.output_tail = output[-4000:]
        if measured.exit_code not in (0, 1):
            print(f"bench: {label} could not run (exit {measured.exit_code}):\n{output[-2000:]}")
        return measured

    def floor(self, server: CountedServer, tests: int, requests: int) -> Measured:
        """The pytest floor (``bench/_floor.py``) with the shape of a scenarios-only run."""
        cwd = self.cwd("pytest-floor")
        test_file = write_floor_tests(cwd, tests, requests)
        env = floor_env(self.env(None), server.base_url, server.keys.api_key)
        measured, output = run_measured("pytest-floor", floor_command(test_file), env, server, cwd)
        measured.tests = ran_test_count(output)
        if measured.exit_code != 0:
            measured.output_tail = output[-4000:]
            print(f"bench: the pytest floor failed (exit {measured.exit_code}):\n{output[-2000:]}")
        return measured

    def schemathesis(
        self, label: str, server: CountedServer, max_examples: int | None,
        spec: Path | None = None, extra: list[str] | None = None, warm: bool = False,
    ) -> Measured:
        """``warm``: timed as the second run in its working folder, as on a developer's
        machine (hypothesis' tables and database in ``.hypothesis`` from the first run)."""
        command, shown = schemathesis_command(
            spec or self.spec, server.base_url, server.keys.api_key, max_examples, extra
        )
        cwd = self.cwd(label)
        if warm:
            run_measured(f"{label}-first", command, self.env(server), None, cwd, display=shown)
        measured, output = run_measured(
            label, command, self.env(server), server, cwd, display=shown
        )
        measured.failures = schemathesis_failures(output)
        if measured.exit_code not in (0, 1) and not label.startswith("warm-up"):
            print(f"bench: {label} could not run (exit {measured.exit_code}):\n{output[-2000:]}")
        return measured

    # -- sections ---------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One untimed run of each tool, so the first measured one does not pay for compiling."""
        with counted_reference() as server:
            self.suite("warm-up-suite", server, "smoke")
            self.schemathesis("warm-up-schemathesis", server, 1, extra=["--phases", "examples"])

    def help_time(self) -> dict[str, float]:
        command = [_venv_tool("creatoraudit-conformance"), "--help"]
        best = min(
            run_measured("help", command, self.env(None), None, self.workdir)[0].wall_s
            for _ in range(3)
        )
        return {"wall_s": best, "target_s": 1.0, "met": best < 1.0}

    def clean(self) -> dict[str, Any]:
        section: dict[str, Any] = {}
        with counted_reference() as server:
            pairs = [self.scenario_pair(server) for _ in range(self.options.repeat)]
            scenario_runs = [run for run, _, _ in pairs]
            scenarios = _median_run(scenario_runs)
            cold_pairs = [self.verdict_pair(server, warm=False) for _ in self._repeats()]
            warm_pairs = [self.verdict_pair(server, warm=True) for _ in self._repeats()]
            lane_pairs = [self.lanes_pair(server) for _ in self._repeats()]
            one_lane = _median_run([single for _, single in lane_pairs], by="wall_s")
            smoke_cold = _median_run([run for run, _ in cold_pairs], by="wall_s")
            st_cold = _median_run([st for _, st in cold_pairs], by="wall_s")
            smoke = _median_run([run for run, _ in warm_pairs], by="wall_s")
            st_default = _median_run([st for _, st in warm_pairs], by="wall_s")
            full = self.suite("suite-full", server, "full")
            median_floor = _median_run([run for _, _, run in pairs])
            runs = [scenarios, median_floor, smoke, one_lane, smoke_cold, full, st_default, st_cold]
            if self.options.parallel:
                runs.append(self.suite("suite-smoke-n2", server, "smoke", ["-n", "2"]))
                runs.append(self.suite("suite-full-n2", server, "full", ["-n", "2"]))
            raw = raw_loop(
                server.base_url, server.keys.api_key, max(smoke.requests, 1), self.options.repeat
            )
            st_budget = self.schemathesis("schemathesis-smoke-budget", server, self.smoke_examples)
            runs += [st_budget]
        embedded = self.suite("suite-smoke-embedded", None, "smoke")
        runs.append(embedded)
        if self.options.parallel:
            # as a user runs it here: no --base-url, so each xdist worker has its own embedded
            # server (against the one counted server above, that server is the bottleneck)
            runs.append(self.suite("suite-full-embedded", None, "full"))
            runs.append(self.suite("suite-full-embedded-n2", None, "full", ["-n", "2"]))
        section["raw"] = raw
        section["scenario_rates"] = [round(m.suite_rate, 1) for m in scenario_runs]
        section["scenario_pairs"] = [
            {"scenario_req_per_s": round(run.suite_rate, 1), "raw_req_per_s": round(rate, 1),
             "ratio": _ratio(run.suite_rate, rate),
             "floor_req_per_s": round(floor.suite_rate, 1),
             "floor_ratio": _ratio(floor.suite_rate, rate),
             "scenario_vs_floor": _ratio(run.suite_rate, floor.suite_rate)}
            for run, rate, floor in pairs
        ]
        # targets are judged on the ratios themselves; rounded, 0.4995 read as a met 0.5
        paired_ratio = median_ratio([(run.suite_rate, rate) for run, rate, _ in pairs])
        section["verdict_pairs"] = {
            name: [
                {"suite_smoke_wall_s": run.wall_s, "schemathesis_default_wall_s": st.wall_s,
                 "ratio": _ratio(run.wall_s, st.wall_s)}
                for run, st in pairs
            ]
            for name, pairs in (("cold", cold_pairs), ("warm", warm_pairs))
        }
        cold_ratio, warm_ratio = (
            median_ratio([(run.wall_s, st.wall_s) for run, st in verdicts])
            for verdicts in (cold_pairs, warm_pairs)
        )
        section["lane_pairs"] = [
            {"smoke_wall_s": run.wall_s, "smoke_one_lane_wall_s": single.wall_s,
             "ratio": _ratio(run.wall_s, single.wall_s)}
            for run, single in lane_pairs
        ]
        section["runs"] = {m.label: m.as_json() for m in runs}
        section["suite_failed_on_clean"] = _failed_on_clean(runs)
        section["schemathesis_false_failures_on_clean"] = [
            f for f in st_default.failures if is_partial_spec_failure(f)
        ]
        section["ratios"] = {
            "scenario_rate_vs_raw": round(paired_ratio, 3),
            "pytest_floor_vs_raw": round(
                median_ratio([(floor.suite_rate, rate) for _, rate, floor in pairs]), 3
            ),
            "scenario_rate_vs_pytest_floor": round(
                median_ratio([(run.suite_rate, floor.suite_rate) for run, _, floor in pairs]), 3
            ),
            "smoke_rate_vs_raw": _ratio(smoke.suite_rate, raw["req_per_s"]),
            "smoke_wall_vs_schemathesis_default_cold": round(cold_ratio, 3),
            "smoke_wall_vs_schemathesis_default_warm": round(warm_ratio, 3),
            "smoke_wall_vs_schemathesis_budget": _ratio(smoke.wall_s, st_budget.wall_s),
            "full_wall_vs_schemathesis_default": _ratio(full.wall_s, st_default.wall_s),
            "smoke_wall_vs_one_lane": round(
                statistics.median(p["ratio"] for p in section["lane_pairs"]), 3
            ),
        }
        if self.options.parallel:
            walls = {label: run["wall_s"] for label, run in section["runs"].items()}
            section["ratios"]["speedup_smoke_n2"] = _ratio(smoke.wall_s, walls["suite-smoke-n2"])
            section["ratios"]["speedup_full_n2"] = _ratio(full.wall_s, walls["suite-full-n2"])
            section["ratios"]["speedup_full_embedded_n2"] = _ratio(
                walls["suite-full-embedded"], walls["suite-full-embedded-n2"]
            )
        section["targets"] = {
            "smoke_embedded_under_15s": embedded.wall_s < 15.0 and embedded.exit_code == 0,
            # a CI job on a fresh machine: no suite cache, no .hypothesis (the case)
            "smoke_faster_than_schemathesis_default_cold": cold_ratio < 1.0,
            # a developer's second run: both tools' caches filled
            "smoke_faster_than_schemathesis_default_warm": warm_ratio < 1.0,
            "scenario_rate_at_least_half_raw": paired_ratio >= 0.5,
        }
        return section

    def scenario_pair(self, server: CountedServer) -> tuple[Measured, float, Measured]:
        """A scenarios-only run, then at once raw loops of as many requests and the pytest
        floor of as many tests and requests: the rates are compared at the same moment, so
        that the machine's load falls on all alike. A loop of a few hundred requests lasts a
        fifth of a second, so one descheduling moves its rate by several percent; the median
        of :data:`RAW_LOOPS_PER_PAIR` loops is the pair's raw rate."""
        run = self.suite("suite-scenarios", server, "smoke", SCENARIOS_ONLY)
        count = max(run.suite_requests, 1)
        walls = [
            measure_loop("raw", server.base_url, server.keys.api_key, count)
            for _ in range(RAW_LOOPS_PER_PAIR)
        ]
        return run, count / statistics.median(walls), self.floor(server, run.tests, count)

    def lanes_pair(self, server: CountedServer) -> tuple[Measured, Measured]:
        """A smoke run as ``run`` gives it (its tests shared by two lanes on this 2-CPU
        machine), then at once the same in one process (``--lanes 1``)."""
        return (
            self.suite("suite-smoke", server, "smoke"),
            self.suite("suite-smoke-one-lane", server, "smoke", ONE_LANE),
        )

    def _repeats(self) -> range:
        return range(self.options.repeat)

    def verdict_pair(self, server: CountedServer, warm: bool) -> tuple[Measured, Measured]:
        """A smoke run, then at once ``schemathesis run`` with its defaults: which gives a
        verdict sooner is judged pair by pair, each pair under the same moment's load. Cold:
        as on a fresh CI machine, no suite cache and a fresh folder for schemathesis; warm: as
        on a developer's machine, each tool's second run (the suite's cache folder is warm
        from the warm-up)."""
        if warm:
            return (
                self.suite("suite-smoke", server, "smoke"),
                self.schemathesis("schemathesis-default", server, None, warm=True),
            )
        return (
            self.suite("suite-smoke-cold-cache", server, "smoke", cold_cache=True),
            self.schemathesis("schemathesis-default-cold", server, None),
        )

    def faults(self, clean: dict[str, Any]) -> dict[str, Any]:
        """A fresh faulty server per fault, and both tools cold (no suite cache, a fresh folder
        for schemathesis: a CI job); a client catches the fault when its verdict turns
        (the suite) or it reports a failure kind it does not report on the clean server
        (schemathesis, whose clean run already fails on partial-spec checks)."""
        st_clean = set(clean["runs"]["schemathesis-default"]["failures"])
        st_examples = None if not self.options.quick else self.smoke_examples
        rows: dict[str, Any] = {}
        for fault in self.options.faults:
            with counted_reference({fault}) as server:
                suite = self.suite(f"fault-{fault}-suite", server, "smoke", cold_cache=True)
                st = self.schemathesis(f"fault-{fault}-schemathesis", server, st_examples)
            new_kinds = sorted(set(st.failures) - st_clean)
            rows[fault] = {
                "suite": {
                    "caught": suite.exit_code == 1, "wall_s": suite.wall_s,
                    "requests": suite.requests, "failed": suite.failures,
                },
                "schemathesis": {
                    "caught": bool(new_kinds), "wall_s": st.wall_s,
                    "requests": st.requests, "new_failures": new_kinds,
                },
            }
            print(
                f"  {fault:34} suite {'CAUGHT' if suite.exit_code == 1 else 'missed':6} "
                f"{suite.wall_s:6.1f}s   schemathesis {'CAUGHT' if new_kinds else 'missed':6} "
                f"{st.wall_s:6.1f}s", flush=True,
            )
        return {
            "schemathesis_examples": st_examples or "default",
            "per_fault": rows,
            "caught": {
                "suite": sum(r["suite"]["caught"] for r in rows.values()),
                "schemathesis": sum(r["schemathesis"]["caught"] for r in rows.values()),
                "of": len(rows),
            },
        }

    def scale(self) -> dict[str, Any]:
        """Time against 1, 10, 50 operations of the same shape, fixed examples per operation."""
        published = self.spec
        rows: dict[str, Any] = {}
        suite_runs: list[Measured] = []
        for operations in SCALE_OPERATIONS:
            spec = write_generated_spec(published, operations, self.workdir)
            with counted_reference(wrap=lambda app, n=operations: scale_app(app, n)) as server:
                st = self.schemathesis(
                    f"scale-{operations}-schemathesis", server, SCALE_EXAMPLES, spec=spec,
                    extra=["--phases", "examples,fuzzing"],
                )
                suite = self.suite_fuzzing_at_scale(operations, server, spec)
            suite_runs += [suite] if suite else []
            rows[str(operations)] = {
                "schemathesis": st.as_json(),
                "suite_fuzzing": suite.as_json() if suite else None,
            }
        return {"examples_per_operation": SCALE_EXAMPLES, "by_operations": rows,
                "suite_failed_on_clean": _failed_on_clean(suite_runs),
                "schemathesis": _growth(rows, "schemathesis"),
                "suite_fuzzing": _growth(rows, "suite_fuzzing")}

    def suite_fuzzing_at_scale(
        self, operations: int, server: CountedServer, spec: Path
    ) -> Measured | None:
        """HOOK: the suite's spec-driven fuzzing over the generated spec (``--spec``); None
        while the suite has no fuzzing (then only schemathesis is timed at scale)."""
        if not suite_has_profiles():
            return None
        return self.suite(
            f"scale-{operations}-suite", server, "smoke",
            ["--spec", str(spec), "--max-examples", str(SCALE_EXAMPLES), "-k", "fuzz"],
        )


def _smoke_examples() -> int:
    if not suite_has_profiles():
        return FALLBACK_SMOKE_EXAMPLES
    from conformance._profiles import PROFILE_SETTINGS  # type: ignore[import-not-found]

    return int(PROFILE_SETTINGS["smoke"].fuzz_examples)


def _failed_on_clean(runs: list[Measured]) -> list[str]:
    """The suite's runs that did not conform on a clean target: a timing taken from one of
    them includes re-runs and shrinking, and the failure itself is a defect to look at."""
    return [m.label for m in runs if "suite" in m.label and m.exit_code != 0]


def _ratio(a: float, b: float) -> float:
    """For the report: rounded. Targets use :func:`median_ratio`, unrounded."""
    return round(a / b, 3) if b else 0.0


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    """The median of the pairs' ratios, unrounded (a pair with a zero denominator counts 0)."""
    return statistics.median(a / b if b else 0.0 for a, b in pairs)


def _growth(rows: dict[str, Any], tool: str) -> dict[str, Any] | None:
    """Per-operation cost (slope between the smallest and largest spec) and whether the
    largest spec costs no more than linear growth from the smallest predicts (+20 %)."""
    walls = {int(n): r[tool]["wall_s"] for n, r in rows.items() if r.get(tool)}
    if len(walls) < 2:
        return None
    low, high = min(walls), max(walls)
    per_op = (walls[high] - walls[low]) / (high - low)
    linear_bound = walls[low] * high / low
    return {
        "wall_s": walls,
        "per_operation_s": round(per_op, 3),
        "fixed_cost_s": round(walls[low] - per_op * low, 3),
        "no_worse_than_linear": walls[high] <= 1.2 * linear_bound,
    }


# --- output ----------------------------------------------------------------------------------


def print_table(results: dict[str, Any]) -> None:
    clean = results["clean"]
    raw = clean["raw"]
    print()
    print(f"{'run':30} {'exit':>4} {'wall s':>7} {'reqs':>6} {'req/s':>7} {'scen r/s':>8} "
          f"{'cpu s':>6} {'wait s':>6} {'srv s':>6} {'rss MB':>7}")
    print(f"{'raw httpx loop (GET /health)':30} {'':>4} {raw['wall_s']:7.2f} "
          f"{raw['requests']:6d} {raw['req_per_s']:7.1f}   (authenticated 404 lookup: "
          f"{raw['lookup_req_per_s']} req/s)")
    if len(raw["req_per_s_each"]) > 1:
        print(f"{'':30} (median of raw loops at {raw['req_per_s_each']} req/s)")
    pairs = ", ".join(
        f"{p['scenario_req_per_s']:.0f}/{p['raw_req_per_s']:.0f}/{p['floor_req_per_s']:.0f}"
        for p in clean["scenario_pairs"]
    )
    for name, pairs_of in clean.get("verdict_pairs", {}).items():
        walls = ", ".join(
            f"{p['suite_smoke_wall_s']:.2f}/{p['schemathesis_default_wall_s']:.2f}"
            for p in pairs_of
        )
        print(f"{'':30} {name}: smoke, then schemathesis defaults right after it (s): {walls}")
    print(f"{'':30} scenario runs, each against a raw loop of as many requests and the pytest "
          f"floor right after it (scenarios/raw/floor req/s): {pairs}")
    lanes = ", ".join(
        f"{p['smoke_wall_s']:.2f}/{p['smoke_one_lane_wall_s']:.2f}"
        for p in clean.get("lane_pairs", [])
    )
    print(f"{'':30} smoke, then smoke --lanes 1 right after it (s): {lanes}")
    for m in clean["runs"].values():
        print(f"{m['label']:30} {m['exit_code']:4d} {m['wall_s']:7.2f} {m['requests']:6d} "
              f"{m['req_per_s']:7.1f} {m['suite_rate']:8.1f} {m['cpu_s']:6.2f} "
              f"{m['waiting_s']:6.2f} {m['server_busy_s']:6.2f} {m['peak_rss_mb']:7.1f}")
    print()
    for name, value in clean["ratios"].items():
        print(f"ratio {name:40} {value}")
    for name, value in clean["targets"].items():
        print(f"target {name:39} {'met' if value else 'NOT met'}")
    help_ = results["help"]
    print(f"target {'help_under_1s':39} {'met' if help_['met'] else 'NOT met'} "
          f"({help_['wall_s']:.2f}s)")
    failed = clean.get("suite_failed_on_clean", []) + results.get("scale", {}).get(
        "suite_failed_on_clean", []
    )
    if failed:
        print("WARNING: the suite did not conform on a clean target in: " + ", ".join(failed))
        for name in failed:
            run = clean.get("runs", {}).get(name, {})
            print(f"  {name}: {', '.join(run.get('failures', [])) or 'see output_tail'}")
    if clean["schemathesis_false_failures_on_clean"]:
        print("schemathesis false failures on the clean server (partial spec): "
              + ", ".join(clean["schemathesis_false_failures_on_clean"]))
    faults = results.get("faults")
    if faults:
        caught = faults["caught"]
        print(f"faults caught: suite {caught['suite']}/{caught['of']}, "
              f"schemathesis {caught['schemathesis']}/{caught['of']}")
    scale = results.get("scale")
    if scale:
        for tool in ("schemathesis", "suite_fuzzing"):
            growth = scale[tool]
            if growth is None:
                print(f"scale {tool}: not measured (no fuzzing in this build)")
                continue
            print(f"scale {tool}: wall {growth['wall_s']}, {growth['per_operation_s']}s per "
                  f"operation, linear: {growth['no_worse_than_linear']}")


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only the faults {', '.join(QUICK_FAULTS)}; smoke budget for "
                        "schemathesis on faults; no scale")
    parser.add_argument("--faults", metavar="A,B", help="only these faults ('none' for none)")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale runs")
    parser.add_argument("--no-parallel", action="store_true", help="skip the -n 2 runs")
    parser.add_argument("--cold", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE (every run compiles its imports)")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench.json")
    parser.add_argument("--repeat", type=int, default=5, metavar="N",
                        help="pairs of each kind; the targets use their medians (default 5)")
    args = parser.parse_args(argv)
    if args.faults:
        faults = [] if args.faults == "none" else [f.strip() for f in args.faults.split(",")]
    else:
        faults = list(QUICK_FAULTS) if args.quick else sorted(FAULTS)
    unknown = sorted(set(faults) - FAULTS.keys())
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    return Options(
        quick=args.quick, faults=faults, cold=args.cold,
        scale=not (args.no_scale or args.quick), parallel=not args.no_parallel,
        output=args.output, repeat=max(1, args.repeat),
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    # fuzzers send malformed requests on purpose; uvicorn's warning about each is noise here
    logging.getLogger("uvicorn.error").addFilter(lambda record: record.levelno >= logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="creatoraudit-bench-") as tmp:
        workdir = tmp
        bench = Bench(options, Path(tmp))
        print("bench: warm-up", flush=True)
        bench.warm_up()
        results = bench.results
        results["help"] = bench.help_time()
        print("bench: clean server", flush=True)
        results["clean"] = bench.clean()
        if options.faults:
            print(f"bench: {len(options.faults)} faults", flush=True)
            results["faults"] = bench.faults(results["clean"])
        if options.scale:
            print("bench: scale", flush=True)
            results["scale"] = bench.scale()
    results["command"] = " ".join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    results["total_s"] = round(time.perf_counter() - started, 1)
    print_table(results)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(_portable(json.dumps(results, indent=2), workdir), encoding="utf-8")
    print(f"bench: {results['total_s']}s; written {options.output}")
    return 0


def _portable(text: str, workdir: str) -> str:
    """bench.json without this machine's paths: the project, its venv and the scratch folder
    become ``.``, ``.venv`` and ``$TMP`` (the commands stay readable and comparable)."""
    for path, name in ((workdir, "$TMP"), (str(Path(sys.executable).parent.parent), ".venv"),
                       (str(ROOT), ".")):
        text = text.replace(json.dumps(path)[1:-1], name)
    return text


if __name__ == "__main__":
    sys.exit(main())
