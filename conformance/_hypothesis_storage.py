"""Where hypothesis keeps what it computes, and one table it need not compute at all.

Hypothesis caches derived data (Unicode tables, constants mined from source) in a storage
folder, by default ``.hypothesis`` in the working directory. A suite run keeps that folder in
the suite's cache folder instead (:func:`keep_storage_in_cache_dir`): computed once per machine
rather than once per working directory, and nothing is left in the user's checkout.

Schemathesis' coverage phase asks hypothesis for text that UTF-8 can encode. Hypothesis answers
by encoding every one of the 1.1 million code points, once per storage folder (``.hypothesis``
in the working directory), and keeps the result there. Profiled, that was about 3 s of every
smoke run started in a fresh folder, which is how a CI job starts: a fresh clone. The answer
for UTF-8 is known without computing it: every code point except the surrogates, and each one
decodes back to itself. Writing that answer where hypothesis looks for it saves the 3 s.

The file name is hypothesis' own and carries its format version (``codec-v2``); a release
that changes the format changes the name, and this file is then simply not read.
``tests/test_hypothesis_storage.py`` compares what is written here with what hypothesis computes.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

from conformance._speccache import cache_dir

STORAGE_ENV_VAR = "HYPOTHESIS_STORAGE_DIRECTORY"

#: hypothesis' cache file for a codec, without the folder and suffix it adds
CODEC_TABLE_NAME = "codec-v2-utf-8"
SURROGATES = (0xD800, 0xDFFF)
#: [encodable intervals, intervals that do not decode back to the same character]
UTF8_TABLE: list[list[list[int]]] = [
    [[0, SURROGATES[0] - 1], [SURROGATES[1] + 1, sys.maxunicode]],
    [],
]


def keep_storage_in_cache_dir() -> None:
    """Point hypothesis at ``<cache dir>/hypothesis`` unless the user chose a folder.

    Through hypothesis' own environment variable, read when it first needs the folder, so that
    pytest-xdist workers inherit it. The examples database is off for the suite's fuzzing and
    state machine, so no earlier run's failures are replayed from there.
    """
    if os.environ.get(STORAGE_ENV_VAR):
        return
    folder = cache_dir() / "hypothesis"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # an unwritable home: hypothesis keeps its default folder
    os.environ[STORAGE_ENV_VAR] = str(folder)


def utf8_table_path() -> Path | None:
    """Where the running hypothesis looks for the table; None if that is no longer knowable."""
    try:
        from hypothesis.internal.charmap import charmap_file
    except ImportError:
        return None
    return Path(charmap_file(CODEC_TABLE_NAME))


def seed_utf8_table() -> bool:
    """Write the UTF-8 table if hypothesis has none yet; True if it was written.

    Best effort, like hypothesis' own cache: an unwritable folder only means hypothesis
    computes the table itself. The write is atomic (a temporary file renamed into place), so a
    parallel worker never reads half a file.
    """
    path = utf8_table_path()
    if path is None or path.exists():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".seed-")
        with os.fdopen(descriptor, "wb") as raw:
            raw.write(gzip.compress(json.dumps(UTF8_TABLE).encode(), mtime=1))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
        return False
    return True
