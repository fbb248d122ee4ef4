"""Train / validation / test splits.

The :class:`Splits` every loader returns, and how they are cut.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sparsemod.errors import ConfigError, DataError

_SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Splits:
    """The three datasets of a problem and what a model needs to know about them.

    Args:
        train: data the weights are fitted on.
        val: data the search scores candidates on.
        test: data held out for the final report.
        input_shape: shape of one sample ``x``, without the batch dimension.
        num_classes: number of labels; labels are ``0 .. num_classes - 1``.
        collate_fn: passed to the ``DataLoader`` when samples need custom batching.
        name: short name of the dataset, for logs and reports.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    collate_fn: Callable | None = None
    name: str = ""


def tensors_of(dataset: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The whole dataset as two tensors, when it is held in memory as such.

    Args:
        dataset: any dataset.

    Returns:
        ``(x, y)`` for a two-tensor ``TensorDataset`` or a (possibly nested) ``Subset`` of one,
        ``None`` for anything else.
    """
    if isinstance(dataset, TensorDataset):
        return (dataset.tensors[0], dataset.tensors[1]) if len(dataset.tensors) == 2 else None
    if isinstance(dataset, Subset):
        inner = tensors_of(dataset.dataset)
        if inner is None:
            return None
        index = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return inner[0][index], inner[1][index]
    return None


def _labels_max(dataset: Any, split: str) -> int:
    tensors = tensors_of(dataset)
    labels: Any = (
        tensors[1] if tensors is not None else [dataset[i][1] for i in range(len(dataset))]
    )
    try:
        y = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{split} labels are not numbers ({exc}); pass num_classes explicitly"
        ) from exc
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool or y.dim() > 1:
        raise DataError(
            f"{split} labels must be integer class indices, got dtype {y.dtype} and shape "
            f"{tuple(y.shape)}; pass num_classes explicitly if this is intended"
        )
    if int(y.min()) < 0:
        raise DataError(f"{split} labels contain a negative class index {int(y.min())}")
    return int(y.max())


def as_splits(
    data: Sequence[Any] | Splits,
    collate_fn: Callable | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    name: str = "",
) -> Splits:
    """Turn ``[train, val, test]`` datasets (or a ``Splits``) into a ``Splits``.

    Args:
        data: a list or tuple of exactly three datasets, or a ``Splits`` (returned as is,
            with any of the other arguments that are given replacing its fields).
        collate_fn: batching function for the ``DataLoader``, if samples need one.
        input_shape: shape of one sample; inferred from ``train[0][0].shape`` when omitted.
        num_classes: number of labels; inferred as the largest label over all splits plus one.
        name: short name of the dataset.

    Returns:
        The splits.

    Raises:
        DataError: ``data`` is not three datasets, a split is empty, or the shape or the number
            of classes cannot be inferred.
        ConfigError: ``input_shape`` or ``num_classes`` is given but not valid.
    """
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
            raise ConfigError(f"input_shape must be positive integers, got {input_shape!r}")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")

    if isinstance(data, Splits):
        overrides = {
            "collate_fn": collate_fn,
            "input_shape": input_shape,
            "num_classes": num_classes,
            "name": name or None,
        }
        return replace(data, **{k: v for k, v in overrides.items() if v is not None})

    if not isinstance(data, (list, tuple)) or len(data) != 3:
        got = f"{len(data)} items" if isinstance(data, (list, tuple)) else type(data).__name__
        raise DataError(f"expected [train, val, test] datasets, got {got}")
    for split, dataset in zip(_SPLIT_NAMES, data):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise DataError(f"{split} split is a {type(dataset).__name__}, not a dataset")
        if len(dataset) == 0:
            raise DataError(f"{split} split is empty")
    train, val, test = data

    if input_shape is None:
        sample = train[0][0]
        try:
            input_shape = tuple(int(d) for d in np.shape(sample))
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"cannot infer input_shape from the first train sample ({exc}); pass input_shape"
            ) from exc
    if num_classes is None:
        num_classes = 1 + max(_labels_max(d, s) for s, d in zip(_SPLIT_NAMES, data))
    return Splits(train, val, test, input_shape, num_classes, collate_fn, name)


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


def _split_off(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Imported here: scikit-learn takes a noticeable time to import and most callers never split.
    from sklearn.model_selection import train_test_split

    try:
        x_keep, x_out, y_keep, y_out = train_test_split(
            x, y, test_size=fraction, random_state=seed, shuffle=True, stratify=y
        )
    except ValueError as exc:
        # Typically too few samples of some class to put one on each side.
        raise DataError(f"cannot split off a stratified {what} set: {exc}") from exc
    return x_keep, y_keep, x_out, y_out


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Split arrays into train, val and test, keeping the class proportions in each.

    Args:
        x: samples, first axis the sample index.
        y: integer labels, one per sample.
        val_fraction: share of all samples that goes to validation.
        test_fraction: share of all samples that goes to test.
        seed: random seed; the same seed gives the same split.

    Returns:
        ``((x_train, y_train), (x_val, y_val), (x_test, y_test))``.

    Raises:
        ConfigError: a fraction is not in (0, 1) or they add up to 1 or more.
        DataError: ``x`` and ``y`` differ in length, or a class is too rare to stratify.
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}"
        )
    if len(x) != len(y):
        raise DataError(f"{len(x)} samples but {len(y)} labels")
    x_rest, y_rest, x_test, y_test = _split_off(x, y, test_fraction, seed, "test")
    # The val share is of the whole set, so rescale it to what is left after the test split.
    x_train, y_train, x_val, y_val = _split_off(
        x_rest, y_rest, val_fraction / (1 - test_fraction), seed, "validation"
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def _dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    return TensorDataset(x_t, y_t)


def _check_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: expected {n} labels in one dimension, got shape {y.shape}")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise DataError(f"{what}: labels must be integer class indices, got dtype {y.dtype}")
    if n and y.min() < 0:
        raise DataError(f"{what}: labels contain a negative class index {int(y.min())}")
    return y.astype(np.int64)


def _from_arrays(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    name: str,
) -> Splits:
    return as_splits([_dataset(*train), _dataset(*val), _dataset(*test)], name=name)
