"""Reference vs loaded predictions: figures and a pass/drift verdict. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.matrix import Tolerance


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


# float itemsize -> (signed and unsigned int types of the same width)
_INT_VIEWS: dict[int, tuple[type[np.signedinteger[Any]], type[np.unsignedinteger[Any]]]] = {
    2: (np.int16, np.uint16), 4: (np.int32, np.uint32), 8: (np.int64, np.uint64),
}


def _ordered_bits(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Float bits mapped onto a monotonic integer line (-0.0 and 0.0 both land on 0)."""
    int_type, _ = _INT_VIEWS[a.dtype.itemsize]
    bits = a.view(int_type)
    low = np.iinfo(int_type).min
    return np.where(bits < 0, np.subtract(low, bits, dtype=int_type), bits).astype(int_type)


def _ulp_distance(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> int:
    """Largest distance in units of least precision between same-dtype float arrays."""
    if a.dtype.kind != "f" or a.size == 0 or a.dtype.itemsize not in _INT_VIEWS:
        return 0
    _, uint_type = _INT_VIEWS[a.dtype.itemsize]
    ai, bi = _ordered_bits(a), _ordered_bits(b)
    # Unsigned wrap-around subtraction of the larger minus the smaller is exact.
    au, bu = ai.astype(uint_type), bi.astype(uint_type)
    diff = np.where(ai >= bi, au - bu, bu - au)
    diff = np.where(np.isnan(a) & np.isnan(b), 0, diff)
    return min(int(diff.max()), 2**63 - 1)


def _bit_exact(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """Same dtype and the same bits everywhere (NaN in the same place counts as equal)."""
    if a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f" or a.dtype.itemsize not in _INT_VIEWS:
        return bool(np.array_equal(a, b))
    int_type, _ = _INT_VIEWS[a.dtype.itemsize]
    same = (a.view(int_type) == b.view(int_type)) | (np.isnan(a) & np.isnan(b))
    return bool(same.all())


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
    bit_exact = _bit_exact(reference, loaded)
    ulp = _ulp_distance(reference, loaded) if same_dtype else None
    close = bool(np.allclose(got, ref, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
    reason = None if close else f"max abs diff {max_abs:.3g} beyond atol {tol.atol:g} + rtol {tol.rtol:g}"
    return Comparison("pass" if close else "drift", max_abs, max_rel, ulp, bit_exact,
                      _argmax_agreement(reference, loaded), reason)
