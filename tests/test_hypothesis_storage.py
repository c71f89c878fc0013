"""The UTF-8 table written for hypothesis is the one hypothesis computes, and runs keep
hypothesis' storage in the suite's cache folder unless the user chose one."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance._hypothesis_storage import (
    CODEC_TABLE_NAME,
    STORAGE_ENV_VAR,
    UTF8_TABLE,
    keep_storage_in_cache_dir,
)

#: run in a child process: hypothesis resolves and remembers its storage folder once per process
COMPUTE = """
import gzip, json, sys
from hypothesis.internal.charmap import charmap_file, intervals_from_codec
{seed}
encodable, non_roundtrip = intervals_from_codec("utf-8")
with gzip.open(charmap_file(sys.argv[1])) as stored:
    print(json.dumps({{"file": json.load(stored),
                      "computed": [list(map(list, encodable.intervals)),
                                   list(map(list, non_roundtrip.intervals))]}}))
"""


def hypothesis_table(storage: Path, *, seeded: bool) -> dict[str, list[list[list[int]]]]:
    seed = "from conformance._hypothesis_storage import seed_utf8_table; seed_utf8_table()"
    result = subprocess.run(
        [sys.executable, "-c", COMPUTE.format(seed=seed if seeded else ""), CODEC_TABLE_NAME],
        env={**os.environ, STORAGE_ENV_VAR: str(storage)},
        capture_output=True, text=True, timeout=120, check=True,
    )
    loaded: dict[str, list[list[list[int]]]] = json.loads(result.stdout)
    return loaded


def test_written_table_is_the_one_hypothesis_computes(tmp_path: Path) -> None:
    """Hypothesis' own slow path (every code point encoded) against the table written for it;
    a hypothesis release that changed the file's format under the same name fails here."""
    computed = hypothesis_table(tmp_path / "computed", seeded=False)
    assert computed["file"] == UTF8_TABLE
    assert computed["computed"] == UTF8_TABLE
    seeded = hypothesis_table(tmp_path / "seeded", seeded=True)
    assert seeded == computed


def seed(storage: Path) -> bool:
    code = "from conformance._hypothesis_storage import seed_utf8_table; print(seed_utf8_table())"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, STORAGE_ENV_VAR: str(storage)},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return {"True": True, "False": False}[result.stdout.strip()]


def test_the_table_is_written_once_and_then_left_alone(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    assert seed(storage) is True
    (table,) = storage.rglob(f"{CODEC_TABLE_NAME}.json.gz")
    before = table.read_bytes()
    assert json.loads(gzip.decompress(before)) == UTF8_TABLE
    assert seed(storage) is False
    assert table.read_bytes() == before
    assert [p.name for p in table.parent.iterdir()] == [table.name]  # no temporary file left


def test_storage_goes_to_the_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    keep_storage_in_cache_dir()
    assert os.environ[STORAGE_ENV_VAR] == str(tmp_path / "cache" / "hypothesis")
    assert (tmp_path / "cache" / "hypothesis").is_dir()


def test_a_folder_the_user_chose_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(STORAGE_ENV_VAR, str(tmp_path / "mine"))
    keep_storage_in_cache_dir()
    assert os.environ[STORAGE_ENV_VAR] == str(tmp_path / "mine")
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_folder_leaves_hypothesis_default(
    unusable_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    keep_storage_in_cache_dir()
    assert STORAGE_ENV_VAR not in os.environ
