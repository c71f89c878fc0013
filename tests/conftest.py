"""Shared helpers for the suite's own tests."""

from __future__ import annotations

import signal
from pathlib import Path

# httpx imports httpcore lazily. Pytester's in-process runs drop modules first imported during
# a run, so a later run would meet a second copy of httpcore whose exceptions httpx no longer
# maps (a ReadTimeout would escape as httpcore's). Importing it here keeps one copy.
import httpcore  # noqa: F401
import pytest

pytest_plugins = ["pytester"]

# A job started in the background of a script inherits Ctrl-C ignored, and so does every run
# the tests start: the tests of what an interrupt does would then see no interrupt at all (seen:
# six of them failed in a CI run started with `&`). Python's own handler makes it deliverable
# here, and a child process starts with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def unusable_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CREATORAUDIT_CACHE_DIR pointing below a plain file: nothing can be read or written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("CREATORAUDIT_CACHE_DIR", str(blocker / "cache"))
    return blocker / "cache"
