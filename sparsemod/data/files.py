"""Datasets read from a folder the user names.

MNIST (IDX files), CIFAR-10 (python batches) and ``.npz`` files.

Nothing is ever downloaded.
"""

import gzip
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from sparsemod.data.splits import Splits, _check_fraction, _check_labels, _from_arrays, _split_off
from sparsemod.errors import DataError

MNIST_URL = "http://yann.lecun.com/exdb/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


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
