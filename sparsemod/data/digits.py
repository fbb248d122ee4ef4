"""The embedded dataset: scikit-learn's 8x8 digits.

As images, as row sequences, and as sequences of varying length.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sparsemod.data.splits import Splits, _from_arrays, stratified_split
from sparsemod.errors import DataError


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
