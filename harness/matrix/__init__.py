"""Matrix files: read, validate and expand one into the frozen `Matrix` every later step uses.

model: the frozen types; source: reading the file and the YAML guard; problems: problem-message
helpers; environments: environment keys and matrix expansion; expect: the `expect:` entries;
user_models: users' own models; parse: load_matrix and parse_matrix tying them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.agent.protocol import Tolerance
from harness.errors import MatrixError
from harness.matrix.model import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_TF_PACKAGE,
    TF_PACKAGES,
    Environment,
    EnvSelector,
    Expectation,
    Matrix,
    PipSettings,
    matrix_from_dict,
    matrix_to_dict,
)

if TYPE_CHECKING:
    from harness.matrix.parse import load_matrix, parse_matrix

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_TF_PACKAGE",
    "TF_PACKAGES",
    "EnvSelector",
    "Environment",
    "Expectation",
    "Matrix",
    "MatrixError",
    "PipSettings",
    "Tolerance",
    "load_matrix",
    "matrix_from_dict",
    "matrix_to_dict",
    "parse_matrix",
]


def __getattr__(name: str) -> object:
    """load_matrix and parse_matrix, imported on first use: they need yaml and packaging, a CLI start does not."""
    if name in ("load_matrix", "parse_matrix"):
        from harness.matrix import parse

        return getattr(parse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
