"""Pareto sets and hypervolume: the maths the search loop, the service and the files share.

All objectives are minimised. Up to three objectives the exact hypervolume is a sweep in
numpy; from four on, the region no point dominates is kept as disjoint boxes and each front
point splits off what it dominates (:class:`FreeCells`; 0.9 s for every prefix of a 300-point
4-D front, where BoTorch's exact hypervolume took 56 s for the whole front once). No torch
and no SQL here.
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
    # A row's dominators have a smaller (or, rounded, equal) sum: in order of the sums, each
    # row is compared with the front so far only, O(n x front) instead of O(n^2). A row that
    # enters the front drops the members it dominates (an equal sum after rounding).
    front: list[int] = []
    rows = np.empty((0, pts.shape[1]))
    for i in np.argsort(pts.sum(axis=1), kind="stable"):
        row = pts[i]
        if ((rows <= row).all(axis=1) & (rows < row).any(axis=1)).any():
            continue
        beaten = (row <= rows).all(axis=1) & (row < rows).any(axis=1)
        front = [f for f, b in zip(front, beaten) if not b] + [int(i)]
        rows = pts[front]
    keep = np.zeros(len(pts), dtype=bool)
    keep[front] = True
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
    return _exact(np.unique(norm[pareto_mask(norm)], axis=0))


def _exact(front: np.ndarray) -> float:
    """The volume that the normalised points ``front`` (all inside the unit reference)
    dominate below the all-ones reference."""
    m = front.shape[1]
    if m == 1:
        return max(0.0, 1.0 - float(front.min()))
    if m == 2:
        return _sweep2(front)
    if m == 3:
        # Slabs along the third objective: each is the 2-D area of the points at or below it.
        front = front[np.argsort(front[:, 2], kind="stable")]
        depths = np.diff(np.append(front[:, 2], 1.0))
        return float(sum(_sweep2(front[: k + 1, :2]) * d for k, d in enumerate(depths) if d > 0))
    cells = FreeCells(m)
    current = 0.0
    for row in front[np.argsort(front[:, 0], kind="stable")]:
        current = cells.add(row)
    return current


def _sweep2(points: np.ndarray) -> float:
    # Along the first objective, each strip is dominated from the lowest second objective
    # seen so far up to the reference.
    order = np.argsort(points[:, 0], kind="stable")
    x = points[order, 0]
    y = np.minimum.accumulate(points[order, 1])
    return float(np.sum(np.diff(np.append(x, 1.0)) * (1.0 - y)))


class HypervolumeTrace:
    """The hypervolume after each row, for rows that come a few at a time (a running
    search): the front is kept, so a row that changes it costs one exact hypervolume of the
    front alone, and a row that does not costs a comparison.

    Args:
        ref_point: as for :func:`hypervolume`.
        m: the number of objectives, checked against ``ref_point`` when given.
    """

    def __init__(self, ref_point: Sequence[float], m: int | None = None) -> None:
        self.ref = _check_ref(ref_point, m)
        self.front = np.zeros((0, len(self.ref)))
        self.values: list[float] = []
        # from four objectives on: the free region as cells, each new front point split off
        self._cells = FreeCells(len(self.ref)) if len(self.ref) >= 4 else None

    def extend(self, values: np.ndarray) -> list[float]:
        """Add rows (shape ``(k, m)``, in order); returns the hypervolume after each."""
        norm = _as_matrix(values, len(self.ref)) / self.ref
        current = self.values[-1] if self.values else 0.0
        added: list[float] = []
        for row, ok in zip(norm, _inside(norm)):
            # A row outside the reference, or weakly dominated by the front, adds nothing.
            if ok and not (self.front <= row).all(axis=1).any():
                self.front = np.vstack([self.front[~(row <= self.front).all(axis=1)], row])
                if self._cells is None:
                    current = _exact(self.front)
                else:
                    current = self._cells.add(row)
            added.append(current)
        self.values.extend(added)
        return added


class FreeCells:
    """The part of the unit box no point dominates, as disjoint boxes ``[lo, hi]``
    (normalised, minimised): adding a point splits off what it dominates, so the exact
    hypervolume of a growing front costs one pass over the boxes a point.

    Args:
        m: the number of objectives.
    """

    def __init__(self, m: int) -> None:
        self.lo = np.zeros((1, m))
        self.hi = np.ones((1, m))

    def add(self, p: np.ndarray) -> float:
        """Add the point ``p``; returns the hypervolume of every point added so far."""
        self.lo, self.hi = split_cells(self.lo, self.hi, np.asarray(p, dtype=float))
        return 1.0 - float(np.prod(self.hi - self.lo, axis=1).sum())


def split_cells(lo: np.ndarray, hi: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boxes ``[lo, hi]`` (rows) less the region the point ``p`` dominates (``y >= p``,
    all objectives minimised).

    A box that region cuts splits into at most one box per objective, disjoint: the part
    below ``p`` in objective ``d`` and at or above it in every objective before ``d``.
    """
    cut = (hi > p).all(axis=1)
    if not cut.any():
        return lo, hi
    keep_lo, keep_hi = [lo[~cut]], [hi[~cut]]
    c_lo, c_hi = lo[cut], hi[cut]
    for d in range(lo.shape[1]):
        piece_lo, piece_hi = c_lo.copy(), c_hi.copy()
        piece_hi[:, d] = np.minimum(piece_hi[:, d], p[d])
        piece_lo[:, :d] = np.maximum(piece_lo[:, :d], p[:d])
        ok = piece_lo[:, d] < piece_hi[:, d]
        keep_lo.append(piece_lo[ok])
        keep_hi.append(piece_hi[ok])
    return np.concatenate(keep_lo), np.concatenate(keep_hi)


def hypervolume_trace(values: np.ndarray, ref_point: Sequence[float]) -> list[float]:
    """The hypervolume of each prefix ``values[:i + 1]``, for progress plots.

    Args:
        values: shape ``(n, m)``, in trial order.
        ref_point: as for :func:`hypervolume`.

    Returns:
        ``n`` non-decreasing values.
    """
    return HypervolumeTrace(ref_point).extend(values)
