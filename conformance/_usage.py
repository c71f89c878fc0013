"""One line for a bad option or value of ``creatoraudit-conformance run``, not pytest's block.

pytest answers an unknown option with a usage block, and a value the suite refuses with its
session header followed by ``ERROR: ...``. The program holds pytest's standard error from the
start until pytest is configured and the suite's configuration has been checked
(:func:`conformance.plugin.validate_suite_session`); then it lets everything held through. A
run that stops before that point gets the one line the program prints for it instead.

pytest's output capture, which starts before that point, takes the holding buffer for the
standard error to put back when it ends: what pytest writes after that (its ``ERROR:`` line
for a usage error found later, such as a bad ``-k`` expression) lands in the buffer too, and
the program shows it, or its one line, once pytest has returned (:meth:`unshown`).
"""

from __future__ import annotations

import io
import re
import sys
from types import TracebackType
from typing import TextIO

import pytest

#: pytest's two ways of saying what was wrong: ``ERROR: <message>`` for a UsageError, and
#: argparse's ``<prog>: error: <message>`` under its ``ERROR: usage: ...`` line
_MESSAGES = (re.compile(r"^ERROR: (?!usage:)(.+)$", re.M), re.compile(r"^\S+: error: (.+)$", re.M))


class HeldStartupErrors:
    """A pytest plugin and a context manager: standard error is held while it is active."""

    def __init__(self) -> None:
        self.held = io.StringIO()
        self.configured = False
        self._real: TextIO = sys.stderr
        self._shown = 0

    def __enter__(self) -> HeldStartupErrors:
        self._real, sys.stderr = sys.stderr, self.held
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        sys.stderr = self._real

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        from conformance.plugin import validate_suite_session

        validate_suite_session(config)  # a bad value stops here, still held
        self.configured = True
        sys.stderr = self._real
        self._real.write(self.unshown())
        self._shown = len(self.held.getvalue())

    def unshown(self) -> str:
        """What was written to the buffer and not yet let through."""
        return self.held.getvalue()[self._shown :]

    def message(self) -> str | None:
        """What pytest said was wrong, when it stopped on a bad option or value."""
        text = self.unshown()
        for pattern in _MESSAGES:
            found = pattern.search(text)
            if found:
                return found.group(1).strip()
        return None
