"""Reference vs loaded predictions: figures and a pass/drift verdict. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.matrix_types import Tolerance


@dataclass(frozen=True)
class Comparison:
    """Figures comparing two prediction arrays."""

    status: str  # "pass" | "drift"
    max_abs_diff: float | None
    max_rel_diff: float | None
    max_ulp: int | None
    bit_exact: bool
    argmax_agreement: float | None
    reason: str | None = None  # why drift, in words

    def as_dict(self) -> dict[str, Any]:
        """Fields for a report cell."""
        return {
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "max_ulp": self.max_ulp,
            "bit_exact": self.bit_exact,
            "argmax_agreement": self.argmax_agreement,
        }


# float itemsize -> (same-size signed int view, that int's minimum)
_INT_VIEWS: dict[int, tuple[type[np.signedinteger[Any]], int]] = {
    2: (np.int16, -(2**15)), 4: (np.int32, -(2**31)), 8: (np.int64, -(2**63)),
}


def _ulp_distance(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> int:
    """Largest distance in units of least precision between same-dtype float arrays."""
    if a.dtype.kind != "f" or a.size == 0 or a.dtype.itemsize not in _INT_VIEWS:
        return 0
    int_type, low = _INT_VIEWS[a.dtype.itemsize]
    # Map the sign-magnitude float layout onto a monotonic integer line; the
    # difference is taken in float64 so opposite-sign float64 values cannot overflow.
    ai = a.view(int_type).astype(np.float64)
    bi = b.view(int_type).astype(np.float64)
    ai = np.where(ai < 0, low - ai, ai)
    bi = np.where(bi < 0, low - bi, bi)
    both_nan = np.isnan(a) & np.isnan(b)
    return int(min(np.where(both_nan, 0.0, np.abs(ai - bi)).max(), 2.0**63 - 1))


def _argmax_agreement(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float | None:
    if a.ndim < 2 or a.shape[-1] < 2:
        return None
    return float(np.mean(a.argmax(axis=-1) == b.argmax(axis=-1)))


def compare(reference: npt.NDArray[Any], loaded: npt.NDArray[Any], tol: Tolerance) -> Comparison:
    """Compare loaded predictions with the source's reference; NaN equals NaN."""
    if reference.shape != loaded.shape:
        return Comparison("drift", None, None, None, False, None,
                          reason=f"output shape {loaded.shape} differs from the source's {reference.shape}")
    ref = reference.astype(np.float64)
    got = loaded.astype(np.float64)
    both_nan = np.isnan(ref) & np.isnan(got)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_diff = np.where(both_nan, 0.0, np.abs(ref - got))
        rel_diff = np.where(abs_diff == 0, 0.0, abs_diff / np.abs(ref))
    max_abs = float(np.nanmax(abs_diff, initial=0.0)) if abs_diff.size else 0.0
    max_rel = float(np.nanmax(rel_diff, initial=0.0)) if rel_diff.size else 0.0
    if np.isnan(abs_diff).any():  # NaN on one side only
        max_abs = max_rel = float("nan")
    same_dtype = reference.dtype == loaded.dtype
    bit_exact = bool(same_dtype and np.array_equal(reference, loaded, equal_nan=reference.dtype.kind == "f"))
    ulp = _ulp_distance(reference, loaded) if same_dtype else None
    close = bool(np.allclose(got, ref, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
    reason = None if close else f"max abs diff {max_abs:.3g} beyond atol {tol.atol:g} + rtol {tol.rtol:g}"
    return Comparison("pass" if close else "drift", max_abs, max_rel, ulp, bit_exact,
                      _argmax_agreement(reference, loaded), reason)
