"""Datasets: train/val/test splits of small image and sequence classification data.

Every loader returns a :class:`Splits` of ``TensorDataset(x, y)`` with ``x`` float32 and ``y``
int64, split deterministically for a seed. Nothing is ever downloaded: the digits ship inside
scikit-learn, and MNIST, CIFAR-10 and ``.npz`` files are read from a folder the user names.
"""

from __future__ import annotations

import gzip
import inspect
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sparsemod.errors import ConfigError, DataError

MNIST_URL = "http://yann.lecun.com/exdb/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
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


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    x, y = sklearn_digits(return_X_y=True)
    # Pixels are counts 0..16 of a 4x4 block of the original bitmap.
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def load_digits(seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15) -> Splits:
    """scikit-learn's 1797 8x8 handwritten digits as images of shape ``(1, 8, 8)``.

    Args:
        seed: seed of the stratified split.
        val_fraction: share of the samples used for validation.
        test_fraction: share of the samples used for test.

    Returns:
        The splits, ``x`` in ``[0, 1]``, ten classes.

    Raises:
        ConfigError: a fraction is out of range.
    """
    x, y = _digits_arrays()
    parts = stratified_split(x, y, val_fraction, test_fraction, seed)
    return _from_arrays(*[(px.reshape(-1, 1, 8, 8), py) for px, py in parts], name="digits")


def load_digits_sequences(
    seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Splits:
    """The same digits and split as :func:`load_digits`, each read as a sequence of 8 rows.

    Args:
        seed: seed of the stratified split.
        val_fraction: share of the samples used for validation.
        test_fraction: share of the samples used for test.

    Returns:
        The splits, ``x`` of shape ``(8, 8)`` per sample: ``(seq_len, features)``.

    Raises:
        ConfigError: a fraction is out of range.
    """
    x, y = _digits_arrays()
    parts = stratified_split(x, y, val_fraction, test_fraction, seed)
    return _from_arrays(*[(px.reshape(-1, 8, 8), py) for px, py in parts], name="digits_seq")


class SequenceDataset(Dataset):
    """Samples of different lengths: a list of ``(seq_len_i, features)`` tensors and labels."""

    def __init__(self, sequences: Sequence[torch.Tensor], labels: Sequence[int]) -> None:
        if len(sequences) != len(labels):
            raise DataError(f"{len(sequences)} sequences but {len(labels)} labels")
        self.sequences = list(sequences)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sequences[i], self.labels[i]


def pad_left_collate(batch: Sequence[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
    """Batch sequences of different lengths by padding each with zeros at the front.

    Padding at the front keeps every sequence's real last step at the batch's last step,
    which is where a last-step classifier reads. Returns ``(x, y)`` with ``x`` of shape
    ``(batch, longest, features)``.
    """
    longest = max(x.shape[0] for x, _ in batch)
    xs = [torch.cat([x.new_zeros(longest - x.shape[0], *x.shape[1:]), x]) for x, _ in batch]
    return torch.stack(xs), torch.stack([torch.as_tensor(y) for _, y in batch])


def load_digits_varlen(
    seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> Splits:
    """The digits as sequences of their rows, nearly blank rows at either end cut off.

    A row is nearly blank when it holds less than one full pixel of ink (its values sum
    to at most 1). The sequences then have different lengths (5 to 8 rows), so the splits are
    :class:`SequenceDataset` s to be batched with :func:`pad_left_collate`.
    """
    x, y = _digits_arrays()
    parts = stratified_split(x, y, val_fraction, test_fraction, seed)
    splits = []
    for px, py in parts:
        seqs = []
        for img in torch.as_tensor(px, dtype=torch.float32).reshape(-1, 8, 8):
            rows = torch.nonzero(img.sum(dim=1) > 1.0).flatten()
            first, last = (int(rows[0]), int(rows[-1])) if len(rows) else (0, 7)
            seqs.append(img[first : last + 1].clone())
        splits.append(SequenceDataset(seqs, [int(v) for v in py]))
    return Splits(
        *splits,
        input_shape=(8, 8),
        num_classes=10,
        collate_fn=pad_left_collate,
        name="digits_varlen",
    )


def _read_idx(folder: Path, name: str, magic: int) -> np.ndarray:
    path = folder / name
    if not path.is_file():
        path = folder / f"{name}.gz"
    if not path.is_file():
        raise DataError(
            f"MNIST file {name!r} (or .gz) not found in {folder}; download the four IDX files "
            f"from {MNIST_URL} and put them in that folder"
        )
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"MNIST file {path} cannot be read: {exc}") from exc
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
        raise DataError(
            f"MNIST file {path} is not an IDX file of the expected kind: magic number {found}, "
            f"expected {magic}"
        )
    ndim = raw[3]  # the low byte of the magic number is the number of dimensions
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"MNIST file {path} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"MNIST file {path} holds {len(raw) - header} data bytes, its header {dims} "
            f"says {expected}: the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _mnist_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(folder, f"{prefix}-images-idx3-ubyte", 2051)
    labels = _read_idx(folder, f"{prefix}-labels-idx1-ubyte", 2049)
    labels = _check_labels(labels, len(images), f"MNIST {prefix} labels")
    return (images.astype(np.float32) / 255.0)[:, None, :, :], labels


def load_mnist(folder: str | os.PathLike, seed: int = 0, val_fraction: float = 0.1) -> Splits:
    """MNIST from the four IDX files (plain or ``.gz``) in ``folder``.

    Args:
        folder: folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``.
        seed: seed of the stratified train/validation split.
        val_fraction: share of the training files used for validation.

    Returns:
        The splits, ``x`` in ``[0, 1]`` of shape ``(1, rows, cols)``; test is the t10k files.

    Raises:
        ConfigError: ``val_fraction`` is out of range.
        DataError: a file is missing, truncated or not an IDX file of the right kind.
    """
    _check_fraction("val_fraction", val_fraction)
    folder = Path(folder)
    x, y = _mnist_pair(folder, "train")
    test = _mnist_pair(folder, "t10k")
    x_train, y_train, x_val, y_val = _split_off(x, y, val_fraction, seed, "validation")
    return _from_arrays((x_train, y_train), (x_val, y_val), test, name="mnist")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays, and refuses every other global.

    A pickle can run any code when loaded; the CIFAR batches never need more than this.
    """

    _NUMPY_NAMES = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"})

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in self._NUMPY_NAMES:
            # Batches pickled under numpy 1 name numpy.core, which numpy 2 renamed to _core.
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = "numpy._core" + module[len("numpy.core") :]
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            # Python 3 writes bytes this way in protocol 2 pickles; it only decodes a string.
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


# What a damaged or foreign pickle raises while loading; all of them mean a bad file.
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    OSError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    struct.error,
)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except _UNPICKLE_ERRORS as exc:
        raise DataError(f"CIFAR-10 file {path} is not a readable batch pickle: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"CIFAR-10 file {path} lacks b'data' / b'labels' (found {keys})")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"CIFAR-10 file {path}: data must be uint8 of shape (N, 3072), "
            f"got {data.dtype} {data.shape}"
        )
    labels = _check_labels(np.asarray(batch[b"labels"]), len(data), f"CIFAR-10 file {path}")
    # Each row is the red, then green, then blue 32x32 plane, row-major.
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def load_cifar10(folder: str | os.PathLike, seed: int = 0, val_fraction: float = 0.1) -> Splits:
    """CIFAR-10 from the python-pickle batches in ``folder`` or ``folder/cifar-10-batches-py``.

    Args:
        folder: folder holding ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, directly
            or in its ``cifar-10-batches-py`` subfolder (as the archive unpacks).
        seed: seed of the stratified train/validation split.
        val_fraction: share of the training batches used for validation.

    Returns:
        The splits, ``x`` in ``[0, 1]`` of shape ``(3, 32, 32)``; test is ``test_batch``.

    Raises:
        ConfigError: ``val_fraction`` is out of range.
        DataError: a batch file is missing or corrupt.
    """
    _check_fraction("val_fraction", val_fraction)
    folder = Path(folder)
    sub = folder / "cifar-10-batches-py"
    base = sub if sub.is_dir() and not (folder / "data_batch_1").is_file() else folder
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        if not (base / name).is_file():
            raise DataError(
                f"CIFAR-10 file {name!r} not found in {folder} or {sub}; download the python "
                f"version from {CIFAR10_URL}, unpack it and point to that folder"
            )
    batches = [_read_cifar_batch(base / name) for name in names]
    x = np.concatenate([b[0] for b in batches[:5]])
    y = np.concatenate([b[1] for b in batches[:5]])
    x_train, y_train, x_val, y_val = _split_off(x, y, val_fraction, seed, "validation")
    return _from_arrays((x_train, y_train), (x_val, y_val), batches[5], name="cifar10")


def load_npz(path: str | os.PathLike, seed: int = 0, val_fraction: float = 0.1) -> Splits:
    """A dataset saved with ``numpy.savez``.

    Args:
        path: ``.npz`` file with ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally
            ``x_val``, ``y_val``.
        seed: seed of the stratified train/validation split, when there is no ``x_val``.
        val_fraction: share of the training samples used for validation, when there is no
            ``x_val``.

    Returns:
        The splits, ``x`` in its stored shape as float32, ``y`` as int64.

    Raises:
        ConfigError: ``val_fraction`` is out of range.
        DataError: the file is missing or unreadable, or a key is missing.
    """
    _check_fraction("val_fraction", val_fraction)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz file {path} not found")
    try:
        # allow_pickle=False: object arrays would run code from the file when loaded.
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"npz file {path} cannot be read: {exc}") from exc
    required = ["x_train", "y_train", "x_test", "y_test"]
    if "x_val" in arrays or "y_val" in arrays:
        required += ["x_val", "y_val"]
    for key in required:
        if key not in arrays:
            raise DataError(f"npz file {path} has no {key!r}; keys found: {sorted(arrays)}")

    def pair(split: str) -> tuple[np.ndarray, np.ndarray]:
        x = arrays[f"x_{split}"]
        if x.dtype.kind not in "iufb":
            raise DataError(f"npz file {path}: x_{split} is not numeric (dtype {x.dtype})")
        y = _check_labels(arrays[f"y_{split}"], len(x), f"npz file {path}, y_{split}")
        return x.astype(np.float32), y

    train, test = pair("train"), pair("test")
    if "x_val" in arrays:
        val = pair("val")
    else:
        x_train, y_train, x_val, y_val = _split_off(*train, val_fraction, seed, "validation")
        train, val = (x_train, y_train), (x_val, y_val)
    return _from_arrays(train, val, test, name=path.stem)


_LOADERS: dict[str, Callable[..., Splits]] = {
    "digits": load_digits,
    "digits_seq": load_digits_sequences,
    "digits_varlen": load_digits_varlen,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
    "npz": load_npz,
}


def get_dataset(name: str, **kwargs: Any) -> Splits:
    """Load a dataset by name.

    Args:
        name: one of ``digits``, ``digits_seq``, ``mnist``, ``cifar10``, ``npz``.
        **kwargs: arguments of that loader (``folder`` for mnist and cifar10, ``path`` for npz).

    Returns:
        The splits.

    Raises:
        ConfigError: the name is unknown or the arguments do not fit its loader.
        DataError: the loader could not read the data.
    """
    loader = _LOADERS.get(name)
    if loader is None:
        raise ConfigError(f"unknown dataset {name!r}; known: {sorted(_LOADERS)}")
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as exc:
        params = list(inspect.signature(loader).parameters)
        raise ConfigError(f"dataset {name!r}: {exc}; its arguments are {params}") from exc
    return loader(**kwargs)
