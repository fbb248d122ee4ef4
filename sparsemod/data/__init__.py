"""Datasets: train/val/test splits of small image and sequence classification data.

Every loader returns a :class:`Splits` of ``TensorDataset(x, y)`` with ``x`` float32 and ``y``
int64, split deterministically for a seed. Nothing is ever downloaded: the digits ship inside
scikit-learn, and MNIST, CIFAR-10 and ``.npz`` files are read from a folder the user names.

* :mod:`~sparsemod.data.splits`: :class:`Splits` and how data is cut into them;
* :mod:`~sparsemod.data.digits`: the embedded digits (images, sequences, varying lengths);
* :mod:`~sparsemod.data.files`: MNIST, CIFAR-10 and ``.npz`` from a folder.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from sparsemod.data.digits import (
    SequenceDataset,
    load_digits,
    load_digits_sequences,
    load_digits_varlen,
    pad_left_collate,
)
from sparsemod.data.files import CIFAR10_URL, MNIST_URL, load_cifar10, load_mnist, load_npz
from sparsemod.data.splits import Splits, as_splits, stratified_split, tensors_of
from sparsemod.errors import ConfigError

__all__ = [
    "CIFAR10_URL",
    "MNIST_URL",
    "SequenceDataset",
    "Splits",
    "as_splits",
    "get_dataset",
    "load_cifar10",
    "load_digits",
    "load_digits_sequences",
    "load_digits_varlen",
    "load_mnist",
    "load_npz",
    "pad_left_collate",
    "stratified_split",
    "tensors_of",
]

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
