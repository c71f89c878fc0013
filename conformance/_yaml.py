"""YAML loading through libyaml when PyYAML has it: the pure-Python loader spent ~0.2 s on the
requirement catalogue and ~0.5 s on the spec at every start (measured with pyinstrument)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load``, fast when libyaml is installed; the same result either way."""
    return yaml.load(text, Loader=_LOADER)
