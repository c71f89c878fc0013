"""Lanes: one run's tests shared by forked copies of the collected session.

On a 2-CPU CI machine a smoke run is busy on one CPU nearly all the time: the suite's own
work, not waiting for answers. pytest-xdist spreads tests over fresh interpreters, which each
import pytest, hypothesis and schemathesis again and collect again, so at this size it was
slower than one process. A lane is a ``fork`` of the process after collection: it starts
with everything imported and collected and pays only for its tests.

The parent runs no test. It hands tests out one at a time (those marked ``many_requests``
first, since each is longer than all the scenarios of a lane), and logs each report a lane
sends through its own hooks, as xdist's controller does: the terminal, JUnit and the results
(``conformance._xdist`` rebuilds them) see one run. Each lane is an xdist worker to the rest
of the suite: its own run id, test data and cleanup, embedded server, and masked evidence on
its reports. Lanes are used only when a run can be shared without changing what it does (see
:func:`lane_count`); ``--lanes 1`` turns them off.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import pytest

from conformance import _provisioning

#: the marker of a test that sends many requests (hypothesis-driven); lanes start it first
FIRST_MARKER = "many_requests"
#: most lanes ``--lanes auto`` uses: beyond two, each lane's own test data and start-up
#: would outweigh what it takes off a smoke run, and a shared target sees more at once
AUTO_LANES = 2
_HEADER = struct.Struct("!I")
#: longest wait, once interrupted, for the lanes to delete their test data
WIND_DOWN_WAIT = 60.0


def add_option(group: pytest.OptionGroup) -> None:
    """Added by the plugin with its options (this module's hooks are registered later)."""
    group.addoption(
        "--lanes",
        dest="creatoraudit_lanes",
        default="1",
        metavar="N",
        help="share the tests between N forked copies of the session, 'auto': one per CPU, "
        f"at most {AUTO_LANES} (default 1; `creatoraudit-conformance run`: auto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{FIRST_MARKER}: sends many requests (hypothesis-driven); lanes start it first",
    )


def requested_lanes(config: pytest.Config) -> int | None:
    """The ``--lanes`` value as a number (None: auto); a bad one is a one-line usage error."""
    value = str(config.getoption("creatoraudit_lanes", "1")).strip().lower()
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"--lanes {value!r}: give a positive number or 'auto'")
    return int(value)


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _why_single(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    """Why this run keeps to one process, or None when its tests can be shared. The limits
    are the run's own, as the guard resolved them (options over environment variables)."""
    from conformance import _guard

    option = config.getoption
    if hasattr(config, "workerinput") or option("dist", "no") != "no":
        return "pytest-xdist shares the tests"
    reasons = {
        "--max-requests is a budget of the whole run": _guard.run_limits(config).max_requests
        is not None,
        "--request-log is one file": option("creatoraudit_request_log", None),
        "--enable-disruptive spends the limits other tests rely on": _guard.disruptive_enabled(
            config
        ),
        "a debugger needs the test in this process": option("usepdb", False)
        or option("trace", False),
        "this platform cannot fork": not hasattr(os, "fork"),
        "another thread is running (a fork copies only this one)": threading.active_count() > 1,
        "one test or none": len(items) < 2,
    }
    return next((reason for reason, applies in reasons.items() if applies), None)


def lane_count(config: pytest.Config, items: list[pytest.Item]) -> int:
    """How many lanes run these tests: ``--lanes`` (auto: the usable CPUs, at most
    :data:`AUTO_LANES`), or 1 when sharing would change the run (:func:`_why_single`)."""
    requested = requested_lanes(config)
    wanted = min(_usable_cpus(), AUTO_LANES) if requested is None else requested
    if wanted < 2 or _why_single(config, items) is not None:
        return 1
    return min(wanted, len(items))


def validate(config: pytest.Config) -> None:
    """``--lanes N`` (N > 1) with ``-n``: two ways to share one run; say so before it starts."""
    requested = requested_lanes(config)
    if requested is not None and requested > 1 and config.getoption("dist", "no") != "no":
        raise pytest.UsageError("--lanes and -n (pytest-xdist) both share the tests: give one")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        return None  # pytest's own loop reports the collection errors
    if session.config.option.collectonly:
        return None
    count = lane_count(session.config, session.items)
    if count < 2:
        return None
    Dispatcher(session, count).run()
    return True


# --- the wire: length-prefixed JSON over a socket pair ---------------------------------------


class _Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def receive(self) -> dict[str, Any]:
        """The next message, waiting for it (a lane's side)."""
        while True:
            message = self._take()
            if message is not None:
                return message
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the run's parent went away")
            self.buffer += chunk

    def available(self) -> tuple[list[dict[str, Any]], bool]:
        """The messages that have arrived, and whether the other side closed (the parent's)."""
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        messages = []
        while (message := self._take()) is not None:
            messages.append(message)
        return messages, not chunk

    def _take(self) -> dict[str, Any] | None:
        if len(self.buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buffer)
        end = _HEADER.size + size
        if len(self.buffer) < end:
            return None
        data, self.buffer = self.buffer[_HEADER.size : end], self.buffer[end:]
        parsed: dict[str, Any] = json.loads(data)
        return parsed


# --- the parent ------------------------------------------------------------------------------


@dataclass
class _Lane:
    number: int
    pid: int
    channel: _Channel
    held: list[int] = field(default_factory=list)  # indexes handed out, not yet finished
    started: set[str] = field(default_factory=set)  # node ids begun, not yet finished
    done: bool = False
    run_id: str = ""
    interrupted: bool = False
    reaped: bool = False  # its process is gone, and its pid free for another


class Dispatcher:
    """The parent's side: fork the lanes, hand out tests, log what comes back."""

    def __init__(self, session: pytest.Session, count: int) -> None:
        self.session = session
        self.config = session.config
        self.items = session.items
        self.count = count
        self.queue = dispatch_order(self.items)
        self.lanes: dict[int, _Lane] = {}
        self.stopping = False

    def run(self) -> None:
        from conformance import _xdist
        from conformance.plugin import fuzzing_seed

        seed = fuzzing_seed(self.config)  # drawn here, so that every lane uses the header's
        _xdist.become_controller(self.config, [item.nodeid for item in self.items])
        self._quiet_parent()
        with selectors.DefaultSelector() as selector:
            try:
                for number in range(self.count):
                    lane = self._fork(number, seed)
                    self.lanes[lane.pid] = lane
                    selector.register(lane.channel.sock, selectors.EVENT_READ, lane)
                self._serve(selector)
                interrupted = [lane.number for lane in self.lanes.values() if lane.interrupted]
                if interrupted:  # one lane alone was signalled: its tests did not all run
                    raise KeyboardInterrupt(f"lane {interrupted[0]} was interrupted")
            except KeyboardInterrupt:
                self._wind_down(selector)
                raise

    def _quiet_parent(self) -> None:
        """The parent runs no test: its output capture would only be copied into each lane."""
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.stop_global_capturing()
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            reporter.showfspath = False  # tests finish in no file order
            reporter.write_line(f"creatoraudit: {self.count} lanes (--lanes 1: one process)")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()

    def _fork(self, number: int, seed: int) -> _Lane:
        parent_end, lane_end = socket.socketpair()
        first = [self.queue.pop(0)] if self.queue else []
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            _lane_main(self.session, _Channel(lane_end), number, self.count, seed, first)
        lane_end.close()
        parent_end.setblocking(False)
        return _Lane(number, pid, _Channel(parent_end), held=list(first))

    def _serve(self, selector: selectors.BaseSelector, deadline: float | None = None) -> bool:
        """Log what the lanes send until all have ended; False when ``deadline`` came first."""
        while selector.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            for key, _ in selector.select(left):
                self._read(selector, key.data)
        return True

    def _read(self, selector: selectors.BaseSelector, lane: _Lane) -> None:
        try:
            messages, closed = lane.channel.available()
        except BlockingIOError:
            return
        except OSError:
            messages, closed = [], True
        for message in messages:
            self._handle(lane, message)
        if closed:
            selector.unregister(lane.channel.sock)
            lane.channel.sock.close()
            self._ended(lane)

    def _handle(self, lane: _Lane, message: dict[str, Any]) -> None:
        hook = self.config.hook
        kind = message["kind"]
        if kind == "want":
            index = self._next_index()
            if index is not None:
                lane.held.append(index)
            with contextlib.suppress(OSError):
                lane.channel.send({"index": index})
        elif kind == "start":
            lane.started.add(message["nodeid"])
            hook.pytest_runtest_logstart(nodeid=message["nodeid"], location=message["location"])
        elif kind == "report":
            data = _tuples_restored(message["data"])
            report = hook.pytest_report_from_serializable(config=self.config, data=data)
            hook.pytest_runtest_logreport(report=report)
        elif kind == "finish":
            nodeid = message["nodeid"]
            lane.started.discard(nodeid)
            lane.held = [i for i in lane.held if self.items[i].nodeid != nodeid]
            hook.pytest_runtest_logfinish(nodeid=nodeid, location=message["location"])
        elif kind == "hello":
            lane.run_id = message["run_id"]
            self._adopt_lane_output(lane, {"output": message["output"]})
        elif kind == "interrupted":  # the run has no verdict now: end it soon
            lane.interrupted = self.stopping = True
            self._signal_lanes(signal.SIGTERM)
        elif kind == "warning":
            self._log_warning(message)
        elif kind == "said":  # what a lane's exit says, on the run's standard error
            print(message["text"], file=sys.stderr, flush=True)
        elif kind == "done":
            lane.done = True
            self._adopt_lane_output(lane, message)

    def _next_index(self) -> int | None:
        if self.stopping or self.session.shouldfail or self.session.shouldstop:
            return None
        return self.queue.pop(0) if self.queue else None

    def _log_warning(self, message: dict[str, Any]) -> None:
        recorded = warnings.WarningMessage(
            message=UserWarning(message["text"]), category=UserWarning,
            filename=message["filename"], lineno=message["lineno"],
        )
        self.config.hook.pytest_warning_recorded.call_historic(
            kwargs={"warning_message": recorded, "when": message["when"],
                    "nodeid": message["nodeid"], "location": None}
        )

    def _adopt_lane_output(self, lane: _Lane, message: dict[str, Any]) -> None:
        from conformance import _guard, _xdist

        _xdist.adopt_worker_output(self.config, f"gw{lane.number}", message.get("output"))
        _guard.adopt_lane_summary(self.config, message.get("summary") or {})

    def _ended(self, lane: _Lane) -> None:
        """A lane closed its end: finished, or died. A test it died in fails (the run does not
        conform); the tests it held but had not begun go to the other lanes."""
        _, status = os.waitpid(lane.pid, 0)
        lane.reaped = True
        if lane.done:
            return
        code = os.waitstatus_to_exitcode(status)
        cause = f"signal {-code}" if code < 0 else f"exit code {code}"
        for nodeid in sorted(lane.started):
            self._log_crash(nodeid, f"lane {lane.number} of the run ended ({cause}) in this test")
        target = self._given_target()
        if lane.run_id and target:  # an embedded server went with its lane, data and all
            self._log_warning({
                "text": f"lane {lane.number} ended ({cause}) before deleting its test data: "
                f"`creatoraudit-conformance cleanup --base-url {target} --run-id {lane.run_id}`"
                " removes it",
                "when": "runtest", "nodeid": "", "filename": __file__, "lineno": 0,
            })
        unstarted = [i for i in lane.held if self.items[i].nodeid not in lane.started]
        self.queue[:0] = unstarted
        lane.held = []
        if unstarted and all(other.done or other is lane for other in self.lanes.values()):
            for index in unstarted:  # no lane is left to run them
                self._log_crash(self.items[index].nodeid, f"not run: lane {lane.number} ended")
            self.queue = [i for i in self.queue if i not in unstarted]

    def _given_target(self) -> str:
        from conformance._exchange import mask
        from conformance.plugin import _SUITE_CONFIG

        suite = self.config.stash.get(_SUITE_CONFIG, None)
        if suite is None or not suite.base_url:
            return ""
        return mask(suite.base_url, suite.credentials.secrets())

    def _log_crash(self, nodeid: str, text: str) -> None:
        item = next(i for i in self.items if i.nodeid == nodeid)
        report = pytest.TestReport(
            nodeid, item.location, {}, "failed", text, "call", [], user_properties=[]
        )
        self.config.hook.pytest_runtest_logreport(report=report)
        self.config.hook.pytest_runtest_logfinish(nodeid=nodeid, location=item.location)

    def _wind_down(self, selector: selectors.BaseSelector) -> None:
        """Interrupted: hand out nothing more, pass the interrupt on to the lanes as a SIGTERM
        (one a terminal's Ctrl-C reached already ignores it), and wait while they delete
        their test data, at most :data:`WIND_DOWN_WAIT`. A second interrupt, or a lane still
        busy then, stops the lanes at once; a stopped lane's data is named for ``cleanup``."""
        self.stopping = True
        self._signal_lanes(signal.SIGTERM)
        try:
            if self._serve(selector, time.monotonic() + WIND_DOWN_WAIT):
                return
        except KeyboardInterrupt:
            pass
        self._signal_lanes(signal.SIGKILL)
        for key in list(selector.get_map().values()):
            selector.unregister(key.fileobj)
            key.data.channel.sock.close()
            self._ended(key.data)

    def _signal_lanes(self, signum: int) -> None:
        for lane in self.lanes.values():
            if not (lane.done or lane.reaped):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(lane.pid, signum)


def _tuples_restored(data: dict[str, Any]) -> dict[str, Any]:
    """JSON turned the report's tuples into lists; pytest's readers check for tuples (a skip's
    ``longrepr`` is ``(path, line, reason)``)."""
    for key in ("location", "longrepr"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return data


def dispatch_order(items: list[pytest.Item]) -> list[int]:
    """Indexes of the tests in the order they are handed out: the long ones first (so that no
    lane gets one when the others are nearly done), then the collection's order."""
    first = [i for i, item in enumerate(items) if item.get_closest_marker(FIRST_MARKER)]
    chosen = set(first)
    return first + [i for i in range(len(items)) if i not in chosen]


# --- a lane ----------------------------------------------------------------------------------


class _LaneReporter:
    """Registered in a lane: sends the parent what it logs of each test."""

    def __init__(self, config: pytest.Config, channel: _Channel) -> None:
        self.config = config
        self.channel = channel

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.channel.send({"kind": "start", "nodeid": nodeid, "location": location})

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.channel.send({"kind": "report", "data": data})

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.channel.send({"kind": "finish", "nodeid": nodeid, "location": location})

    def pytest_warning_recorded(
        self, warning_message: warnings.WarningMessage, when: str, nodeid: str, location: Any
    ) -> None:
        self.send_warning(warning_message, when, nodeid)

    def send_warning(self, warning: warnings.WarningMessage, when: str, nodeid: str) -> None:
        self.channel.send(
            {"kind": "warning", "text": str(warning.message), "when": when, "nodeid": nodeid,
             "filename": str(warning.filename), "lineno": int(warning.lineno or 0)}
        )


def _lane_main(
    session: pytest.Session, channel: _Channel, number: int, count: int, seed: int,
    first: list[int],
) -> NoReturn:
    """A lane's whole life; it never returns into the parent's code."""
    code = 0
    try:
        _become_lane(session.config, number, count, seed)
        reporter = _LaneReporter(session.config, channel)
        session.config.pluginmanager.register(reporter, "creatoraudit-lane")
        channel.send({"kind": "hello", **_lane_hello(session.config)})
        _run_tests(session, channel, reporter, first)
        channel.send({"kind": "done", **_lane_output(session.config)})
    except BaseException:  # whatever ends a lane, the parent must hear of it
        traceback.print_exc()
        code = 1
        with contextlib.suppress(BaseException):
            _tear_down_session(session)
    finally:
        with contextlib.suppress(BaseException):  # os._exit runs no exit handler: do its work
            for text in _provisioning.run_exit_nets():
                channel.send({"kind": "said", "text": text})
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code)


def _become_lane(config: pytest.Config, number: int, count: int, seed: int) -> None:
    """Turn the forked copy into an xdist-like worker: its own run id (so its request ids and
    test data are its own), the parent's seed, and its own output capture; what it would print
    goes nowhere (the parent prints the run)."""
    from conformance._config import new_run_id
    from conformance._xdist import SEED_INPUT
    from conformance.plugin import _SUITE_CONFIG

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by the run: by its lanes too
            signal.signal(signum, _interrupt_once)
    config.workerinput = {  # type: ignore[attr-defined]
        "workerid": f"gw{number}", "workercount": count, SEED_INPUT: seed,
    }
    config.workeroutput = {}  # type: ignore[attr-defined]
    os.environ["PYTEST_XDIST_WORKER"] = f"gw{number}"  # as xdist's workers have them
    os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(count)
    suite = config.stash.get(_SUITE_CONFIG, None)
    if suite is not None:
        config.stash[_SUITE_CONFIG] = replace(suite, run_id=new_run_id())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.start_global_capturing()
        capture.suspend_global_capture()


def _interrupt_once(signum: int, frame: object) -> None:
    """A lane's first Ctrl-C or SIGTERM unwinds it like pytest's own interrupt; the next ones
    (the parent passes a SIGTERM on, a terminal sends Ctrl-C to every process) are taken and
    dropped, so that they cannot cut short the cleanup the first one started. (Not SIG_IGN:
    a signal already pending when the handler changes would then raise OSError "ignored due
    to race condition" in the middle of the cleanup.)"""
    for held in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(held) is not signal.SIG_IGN:
            signal.signal(held, _dropped)
    raise KeyboardInterrupt(f"signal {signum}")


def _dropped(signum: int, frame: object) -> None:
    """A lane's interrupt after the first: the cleanup it started goes on."""


def _run_tests(
    session: pytest.Session, channel: _Channel, reporter: _LaneReporter, first: list[int]
) -> None:
    """Run the tests the parent hands out. Each test is run knowing the next one (pytest
    tears down only the fixtures the next does not share), so the lane asks for the next one
    before it runs the current; after the last, the session's fixtures are torn down, which
    deletes the lane's test data."""
    items = session.items
    pending = list(first)
    exhausted = not pending
    try:
        while pending:
            if not exhausted:
                channel.send({"kind": "want"})
                index = channel.receive()["index"]
                exhausted = index is None
                if index is not None:
                    pending.append(index)
            item = items[pending.pop(0)]
            nextitem = items[pending[0]] if pending else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
    except KeyboardInterrupt:
        session.exitstatus = pytest.ExitCode.INTERRUPTED
        with contextlib.suppress(OSError):
            channel.send({"kind": "interrupted"})  # no more tests: the run has no verdict
        with _warnings_sent(reporter):
            _tear_down_session(session)
        return


def _tear_down_session(session: pytest.Session) -> None:
    """What pytest does at a session's end (``runner.pytest_sessionfinish``): tear down the
    fixtures still set up, the session's last (which deletes the test data). A no-op when
    the last test's teardown did it already."""
    session._setupstate.teardown_exact(None)


@contextlib.contextmanager
def _warnings_sent(reporter: _LaneReporter) -> Iterator[None]:
    """Warnings raised outside a test (the interrupted cleanup's "could not delete") reach
    the parent's summary too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                reporter.send_warning(warning, "runtest", "")


def _lane_hello(config: pytest.Config) -> dict[str, Any]:
    """The lane's run id and (a given URL; an embedded server has none yet) target, so that
    the reports list a lane that dies before its end too."""
    from conformance._exchange import mask
    from conformance.plugin import _SUITE_CONFIG

    suite = config.stash.get(_SUITE_CONFIG, None)
    if suite is None:
        return {"run_id": "", "output": None}
    target = mask(suite.base_url or "", suite.credentials.secrets())
    return {"run_id": suite.run_id, "output": {"run_id": suite.run_id, "base_url": target}}


def _lane_output(config: pytest.Config) -> dict[str, Any]:
    from conformance import _guard, _xdist

    return {"output": _xdist.worker_output(config), "summary": _guard.lane_summary(config)}
