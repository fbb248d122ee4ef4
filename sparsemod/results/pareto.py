"""Pareto sets and hypervolume: the maths the search loop, the service and the files share.

All objectives are minimised. Nothing here imports torch until an exact hypervolume of two
or more objectives is computed (BoTorch does that), nor any SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparsemod.errors import ConfigError


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (all objectives minimised).

    Row ``a`` dominates row ``b`` when ``a <= b`` in every objective and ``a < b`` in one.
    Exact duplicates of a non-dominated row are all kept; a row with a NaN is never Pareto.

    Args:
        values: shape ``(n, m)``.

    Returns:
        A boolean array of shape ``(n,)``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.zeros(len(values), dtype=bool)
    if values.ndim == 1:
        values = values[:, None]
    valid = ~np.isnan(values).any(axis=1)
    pts = values[valid]
    keep = np.ones(len(pts), dtype=bool)
    # One row at a time keeps memory at O(n m) where broadcasting all pairs is O(n^2 m).
    for i, row in enumerate(pts):
        dominators = (pts <= row).all(axis=1) & (pts < row).any(axis=1)
        keep[i] = not dominators.any()
    mask = np.zeros(len(values), dtype=bool)
    mask[valid] = keep
    return mask


def _check_ref(ref_point: Sequence[float], m: int | None) -> np.ndarray:
    ref = np.asarray(ref_point, dtype=float).reshape(-1)
    if m is not None and len(ref) != m:
        raise ConfigError(f"ref_point: {list(ref_point)!r} has {len(ref)} values, expected {m}")
    if len(ref) == 0 or not np.all(np.isfinite(ref)) or np.any(ref <= 0):
        raise ConfigError(
            f"ref_point: {list(ref_point)!r} must be finite values > 0, one per objective"
        )
    return ref


def _as_matrix(values: np.ndarray, m: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values.reshape(0, m)
    if values.ndim == 1 and m == 1:
        return values[:, None]
    if values.ndim != 2 or values.shape[1] != m:
        raise ConfigError(
            f"ref_point: has {m} values but the values have shape {values.shape} "
            "(one reference value per objective)"
        )
    return values


def _inside(norm: np.ndarray) -> np.ndarray:
    """Rows with no NaN that strictly dominate the normalised reference (all ones)."""
    return np.isfinite(norm).all(axis=1) & (norm < 1.0).all(axis=1)


def hypervolume(values: np.ndarray, ref_point: Sequence[float]) -> float:
    """The hypervolume dominated by ``values`` and bounded by ``ref_point``.

    Each objective is divided by its reference value first, so the reference becomes the
    all-ones point and (for non-negative objectives) the result lies in ``[0, 1]``: a share of
    the box between the origin and the reference, comparable across objectives of very
    different units (bytes against seconds).

    Args:
        values: shape ``(n, m)``, all minimised. Rows with a NaN, and rows that do not strictly
            dominate the reference, are ignored.
        ref_point: ``m`` values > 0.

    Returns:
        The normalised hypervolume, 0.0 when no row is left.

    Raises:
        ConfigError: ``ref_point`` has the wrong length or a value <= 0.
    """
    ref = _check_ref(ref_point, None)
    norm = _as_matrix(values, len(ref)) / ref
    norm = norm[_inside(norm)]
    if len(norm) == 0:
        return 0.0
    if norm.shape[1] == 1:
        return max(0.0, 1.0 - float(norm.min()))
    # Lazy: BoTorch (and torch) take seconds to import and most callers only write files.
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    front = np.unique(norm[pareto_mask(norm)], axis=0)
    # BoTorch maximises, hence the negation of both the points and the reference.
    hv = Hypervolume(ref_point=-torch.ones(norm.shape[1], dtype=torch.double))
    return float(hv.compute(-torch.as_tensor(front, dtype=torch.double)))


def hypervolume_trace(values: np.ndarray, ref_point: Sequence[float]) -> list[float]:
    """The hypervolume of each prefix ``values[:i + 1]``, for progress plots.

    Args:
        values: shape ``(n, m)``, in trial order.
        ref_point: as for :func:`hypervolume`.

    Returns:
        ``n`` non-decreasing values.
    """
    ref = _check_ref(ref_point, None)
    values = _as_matrix(values, len(ref))
    norm = values / ref
    inside = _inside(norm)
    trace: list[float] = []
    current = 0.0
    for i in range(len(values)):
        row = norm[i]
        seen = norm[:i][inside[:i]]
        # A row outside the reference, or weakly dominated by an earlier one, adds nothing;
        # skipping it saves an exact HV computation per trial.
        if inside[i] and not (seen <= row).all(axis=1).any():
            current = hypervolume(values[: i + 1], ref)
        trace.append(current)
    return trace
