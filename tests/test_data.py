"""Tests of sparsemod.data: splits, tensor access and the file loaders on tiny files."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sparsemod.data import (
    Splits,
    as_splits,
    get_dataset,
    load_cifar10,
    load_digits,
    load_digits_sequences,
    load_mnist,
    load_npz,
    stratified_split,
    tensors_of,
)
from sparsemod.errors import ConfigError, DataError


def _labels(ds: TensorDataset) -> np.ndarray:
    return ds.tensors[1].numpy()


# --- digits ------------------------------------------------------------------------------


def test_digits_sizes_shapes_and_values() -> None:
    s = load_digits(seed=0, val_fraction=0.15, test_fraction=0.15)
    # sklearn rounds the held-out part up: ceil(0.15 * 1797) = 270, then
    # ceil(0.15 / 0.85 * 1527) = 270 of what is left.
    assert (len(s.train), len(s.val), len(s.test)) == (1257, 270, 270)
    assert len(s.train) + len(s.val) + len(s.test) == 1797
    assert s.input_shape == (1, 8, 8)
    assert s.num_classes == 10
    assert s.name == "digits"
    assert s.collate_fn is None
    for ds in (s.train, s.val, s.test):
        assert isinstance(ds, TensorDataset)
        x, y = ds.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # The digits use the full 0..16 range, so the scaled data must reach both ends.
    all_x = torch.cat([ds.tensors[0] for ds in (s.train, s.val, s.test)])
    assert float(all_x.min()) == 0.0 and float(all_x.max()) == 1.0
    # Every value is a multiple of 1/16.
    assert torch.allclose(all_x * 16, torch.round(all_x * 16))


def test_digits_stratified() -> None:
    s = load_digits(seed=3)
    y_all = np.concatenate([_labels(d) for d in (s.train, s.val, s.test)])
    overall = np.bincount(y_all, minlength=10) / len(y_all)
    for ds in (s.train, s.val, s.test):
        counts = np.bincount(_labels(ds), minlength=10)
        assert (counts > 0).all()
        # Two successive stratified splits each round a class count by less than one sample,
        # so a class is off its ideal count by under two samples.
        tolerance = 2 / len(ds)
        assert np.abs(counts / len(ds) - overall).max() < tolerance


def test_digits_deterministic_per_seed() -> None:
    a, b, c = load_digits(seed=7), load_digits(seed=7), load_digits(seed=8)
    for split in ("train", "val", "test"):
        ta, tb = getattr(a, split).tensors, getattr(b, split).tensors
        assert torch.equal(ta[0], tb[0]) and torch.equal(ta[1], tb[1])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_digits_sequences_same_split() -> None:
    img, seq = load_digits(seed=1), load_digits_sequences(seed=1)
    assert seq.input_shape == (8, 8)
    assert seq.name == "digits_seq"
    assert seq.num_classes == 10
    assert seq.train.tensors[0].shape == (1257, 8, 8)
    # Row r of the sequence is row r of the image.
    assert torch.equal(seq.val.tensors[0], img.val.tensors[0][:, 0])
    assert torch.equal(seq.val.tensors[1], img.val.tensors[1])


def test_stratified_split_arrays_and_bad_fractions() -> None:
    x = np.arange(100).reshape(100, 1)
    y = np.repeat([0, 1, 2, 3], 25)
    (xtr, ytr), (xva, yva), (xte, yte) = stratified_split(x, y, 0.2, 0.2, seed=0)
    assert (len(xtr), len(xva), len(xte)) == (60, 20, 20)
    # A partition: every sample exactly once.
    assert sorted(np.concatenate([xtr, xva, xte]).ravel().tolist()) == list(range(100))
    assert np.bincount(yva).tolist() == [5, 5, 5, 5]
    assert np.bincount(yte).tolist() == [5, 5, 5, 5]
    # Labels travel with their samples.
    assert (ytr == xtr.ravel() // 25).all()
    with pytest.raises(ConfigError):
        stratified_split(x, y, 0.6, 0.4, seed=0)
    with pytest.raises(ConfigError):
        stratified_split(x, y, 0.0, 0.2, seed=0)
    with pytest.raises(DataError):
        stratified_split(x, y[:50], 0.2, 0.2, seed=0)


# --- tensors_of and as_splits ------------------------------------------------------------


def test_tensors_of() -> None:
    x = torch.arange(10, dtype=torch.float32).reshape(10, 1)
    y = torch.arange(10) % 3
    ds = TensorDataset(x, y)
    got = tensors_of(ds)
    assert got is not None and got[0] is x and got[1] is y
    sub = Subset(ds, [7, 2, 5])
    sx, sy = tensors_of(sub)
    assert sx.ravel().tolist() == [7.0, 2.0, 5.0]
    assert sy.tolist() == [1, 2, 2]
    nested = Subset(sub, [2, 0])
    assert tensors_of(nested)[0].ravel().tolist() == [5.0, 7.0]
    assert tensors_of(TensorDataset(x)) is None
    assert tensors_of(TensorDataset(x, y, y)) is None
    assert tensors_of(_ListDataset([(torch.zeros(2), 0)])) is None


class _ListDataset(Dataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def test_as_splits_infers_shape_and_classes() -> None:
    def make(n: int, top: int) -> TensorDataset:
        return TensorDataset(torch.zeros(n, 3, 4), torch.arange(n) % top)

    # The largest label (5) occurs only in the test split.
    s = as_splits([make(6, 2), make(3, 3), make(6, 6)], name="toy")
    assert s.input_shape == (3, 4)
    assert s.num_classes == 6
    assert s.name == "toy" and s.collate_fn is None

    def collate(batch: list) -> list:
        return batch

    s2 = as_splits((make(4, 2), make(2, 2), make(2, 2)), collate, input_shape=(12,), num_classes=9)
    assert s2.input_shape == (12,) and s2.num_classes == 9 and s2.collate_fn is collate
    # A Splits passes through, with given fields replacing its own.
    assert as_splits(s) == s
    assert as_splits(s, num_classes=8).num_classes == 8
    assert as_splits(s, num_classes=8).train is s.train


def test_as_splits_on_plain_datasets() -> None:
    items = [(torch.zeros(5), label) for label in (0, 4, 1)]
    s = as_splits([_ListDataset(items), _ListDataset(items[:1]), Subset(_ListDataset(items), [2])])
    assert s.input_shape == (5,)
    assert s.num_classes == 5


def test_as_splits_errors() -> None:
    ds = TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    empty = TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="2 items"):
        as_splits([ds, ds])
    with pytest.raises(DataError, match="4 items"):
        as_splits([ds, ds, ds, ds])
    with pytest.raises(DataError, match="val split is empty"):
        as_splits([ds, empty, ds])
    with pytest.raises(DataError, match="not a dataset"):
        as_splits([ds, ds, 3])
    with pytest.raises(DataError, match="integer class indices"):
        as_splits([ds, ds, TensorDataset(torch.zeros(4, 2), torch.zeros(4))])
    with pytest.raises(DataError, match="negative"):
        as_splits([ds, ds, TensorDataset(torch.zeros(1, 2), torch.tensor([-1]))])
    with pytest.raises(ConfigError):
        as_splits([ds, ds, ds], num_classes=0)
    with pytest.raises(ConfigError):
        as_splits([ds, ds, ds], input_shape=(0, 2))


# --- MNIST -------------------------------------------------------------------------------


def _idx_images(n: int, rows: int, cols: int, start: int) -> np.ndarray:
    # Pixel (0, 0) holds the sample number so tests can find each image after the shuffle.
    images = (np.arange(n * rows * cols).reshape(n, rows, cols) * 7 % 256).astype(np.uint8)
    images[:, 0, 0] = np.arange(start, start + n)
    return images


def _write_idx(path: Path, array: np.ndarray, magic: int, gz: bool) -> None:
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def _write_mnist(folder: Path, gz_train: bool, gz_test: bool) -> tuple[np.ndarray, ...]:
    # Non-square 4x6 images check that the loader reads the size from the file.
    xtr, ytr = _idx_images(20, 4, 6, start=0), (np.arange(20) % 3).astype(np.uint8)
    xte, yte = _idx_images(10, 4, 6, start=100), (np.arange(10) % 3).astype(np.uint8)
    _write_idx(folder / "train-images-idx3-ubyte", xtr, 2051, gz_train)
    _write_idx(folder / "train-labels-idx1-ubyte", ytr, 2049, gz_train)
    _write_idx(folder / "t10k-images-idx3-ubyte", xte, 2051, gz_test)
    _write_idx(folder / "t10k-labels-idx1-ubyte", yte, 2049, gz_test)
    return xtr, ytr, xte, yte


@pytest.mark.parametrize("gz_train,gz_test", [(False, False), (True, True), (True, False)])
def test_mnist_loads_tiny_files(tmp_path: Path, gz_train: bool, gz_test: bool) -> None:
    xtr, ytr, xte, yte = _write_mnist(tmp_path, gz_train, gz_test)
    s = load_mnist(tmp_path, seed=0, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (15, 5, 10)
    assert s.input_shape == (1, 4, 6)
    assert s.num_classes == 3
    assert s.name == "mnist"
    # Test keeps the file order.
    assert torch.equal(s.test.tensors[0], torch.from_numpy(xte[:, None] / np.float32(255)))
    assert s.test.tensors[1].tolist() == yte.tolist()
    # Train and val together are exactly the training file, each image with its own label.
    seen = []
    for ds in (s.train, s.val):
        x, y = ds.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        for xi, yi in zip(x, y):
            k = round(float(xi[0, 0, 0]) * 255)
            seen.append(k)
            assert int(yi) == ytr[k]
            assert torch.equal(xi[0], torch.from_numpy(xtr[k] / np.float32(255)))
    assert sorted(seen) == list(range(20))
    assert sorted(_labels(s.val).tolist()) == [0, 0, 1, 1, 2]


def test_mnist_missing_file_names_it(tmp_path: Path) -> None:
    _write_mnist(tmp_path, False, False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path) in message
    assert "yann.lecun.com" in message


def test_mnist_corrupt_files(tmp_path: Path) -> None:
    _write_mnist(tmp_path, False, False)
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(struct.pack(">I", 2049) + good[4:])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*magic number 2049"):
        load_mnist(tmp_path)
    images.write_bytes(good[:-7])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_mnist(tmp_path)
    images.write_bytes(good)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19), 2049, gz=False)
    with pytest.raises(DataError, match="20 labels"):
        load_mnist(tmp_path)


# --- CIFAR-10 ----------------------------------------------------------------------------


def _cifar_batch(start: int, n: int) -> dict:
    data = np.zeros((n, 3072), dtype=np.uint8)
    data[:, 0] = np.arange(start, start + n)  # red (0, 0): the sample number
    data[:, 1024 + 32 + 1] = 200  # green (1, 1)
    data[:, 2048 + 1023] = 255  # blue (31, 31)
    return {
        b"batch_label": b"x",
        b"data": data,
        b"labels": [i % 4 for i in range(start, start + n)],
    }


def _write_cifar(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(5):
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(_cifar_batch(4 * b, 4)))
    (folder / "test_batch").write_bytes(pickle.dumps(_cifar_batch(100, 4)))


@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"])
def test_cifar10_loads_tiny_batches(tmp_path: Path, sub: str) -> None:
    _write_cifar(tmp_path / sub if sub else tmp_path)
    s = load_cifar10(tmp_path, seed=0, val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (16, 4, 4)
    assert s.input_shape == (3, 32, 32) and s.num_classes == 4 and s.name == "cifar10"
    x, y = s.test.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert (x[:, 0, 0, 0] * 255).round().tolist() == [100, 101, 102, 103]
    assert y.tolist() == [0, 1, 2, 3]
    assert torch.allclose(x[:, 1, 1, 1], torch.full((4,), 200 / 255))
    assert x[:, 2, 31, 31].tolist() == [1.0] * 4
    assert float(x.sum()) == pytest.approx(float((x[:, 0, 0, 0] + 200 / 255 + 1).sum()))
    seen = {}
    for ds in (s.train, s.val):
        for xi, yi in zip(*ds.tensors):
            seen[round(float(xi[0, 0, 0]) * 255)] = int(yi)
    assert seen == {k: k % 4 for k in range(20)}
    assert sorted(_labels(s.val).tolist()) == [0, 1, 2, 3]


def test_cifar10_reads_numpy1_protocol2_pickles(tmp_path: Path) -> None:
    # The published batches were written by numpy 1 (numpy.core) with pickle protocol 2.
    _write_cifar(tmp_path)
    raw = pickle.dumps(_cifar_batch(0, 4), protocol=2).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "data_batch_1").write_bytes(raw)
    s = load_cifar10(tmp_path, val_fraction=0.2)
    x = torch.cat([s.train.tensors[0], s.val.tensors[0]])
    assert sorted((x[:, 0, 0, 0] * 255).round().int().tolist()) == list(range(20))


def test_cifar10_missing_and_corrupt(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3") as err:
        load_cifar10(tmp_path)
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in str(err.value)

    _write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="test_batch"):
        load_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(DataError, match="test_batch.*b'data'"):
        load_cifar10(tmp_path)
    # A pickle that would call a function on load is refused, not run.
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": print, b"labels": []}))
    with pytest.raises(DataError, match="refusing to load global builtins.print"):
        load_cifar10(tmp_path)


# --- npz and get_dataset -----------------------------------------------------------------


def test_npz_with_and_without_val(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 9, size=(30, 2, 5)).astype(np.int16)
    y_train = np.arange(30) % 3
    x_test, y_test = rng.normal(size=(6, 2, 5)), np.array([0, 1, 2, 0, 1, 4])

    path = tmp_path / "toy.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    s = load_npz(path, seed=0, val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (24, 6, 6)
    assert s.input_shape == (2, 5) and s.num_classes == 5 and s.name == "toy"
    assert s.train.tensors[0].dtype == torch.float32 and s.train.tensors[1].dtype == torch.int64
    assert np.bincount(_labels(s.val)).tolist() == [2, 2, 2]
    assert torch.equal(s.test.tensors[0], torch.from_numpy(x_test.astype(np.float32)))

    x_val, y_val = np.ones((3, 2, 5)), np.array([2, 1, 0])
    np.savez(
        path,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_val=x_val,
        y_val=y_val,
    )
    s = load_npz(path)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 3, 6)
    assert torch.equal(s.train.tensors[0], torch.from_numpy(x_train.astype(np.float32)))
    assert s.val.tensors[1].tolist() == [2, 1, 0]


def test_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.zeros(4), x_test=np.zeros((2, 2)))
    with pytest.raises(DataError, match="'y_test'.*x_test.*x_train.*y_train"):
        load_npz(path)
    np.savez(
        path,
        x_train=np.zeros((4, 2)),
        y_train=np.zeros(4),
        x_test=np.zeros((2, 2)),
        y_test=np.zeros(2),
        x_val=np.zeros((1, 2)),
    )
    with pytest.raises(DataError, match="'y_val'"):
        load_npz(path)
    np.savez(
        path,
        x_train=np.zeros((4, 2)),
        y_train=np.full(4, 0.5),
        x_test=np.zeros((2, 2)),
        y_test=np.zeros(2),
    )
    with pytest.raises(DataError, match="y_train.*integer"):
        load_npz(path)
    with pytest.raises(DataError, match="not found"):
        load_npz(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        load_npz(tmp_path / "junk.npz")


def test_get_dataset(tmp_path: Path) -> None:
    s = get_dataset("digits_seq", seed=2)
    assert isinstance(s, Splits) and s.name == "digits_seq" and s.input_shape == (8, 8)
    _write_mnist(tmp_path, True, True)
    assert get_dataset("mnist", folder=tmp_path, val_fraction=0.25).input_shape == (1, 4, 6)
    with pytest.raises(ConfigError, match="'imagenet'.*cifar10.*digits.*mnist.*npz"):
        get_dataset("imagenet")
    with pytest.raises(ConfigError, match="'mnist'"):
        get_dataset("mnist")  # folder missing
    with pytest.raises(ConfigError, match="'digits'"):
        get_dataset("digits", folder=tmp_path)


def test_digits_varlen_sequences_have_different_lengths_and_pad_at_the_front():
    from sparsemod.data import load_digits_varlen, pad_left_collate

    splits = load_digits_varlen(0)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    lengths = [splits.train[i][0].shape[0] for i in range(len(splits.train))]
    assert min(lengths) >= 5 and max(lengths) == 8 and len(set(lengths)) >= 3
    assert splits.train[0][0].shape[1] == 8
    a = (torch.ones(2, 3), torch.tensor(1))
    b = (torch.full((4, 3), 2.0), torch.tensor(0))
    x, y = pad_left_collate([a, b])
    assert x.shape == (2, 4, 3) and y.tolist() == [1, 0]
    assert x[0, :2].abs().sum() == 0 and torch.equal(x[0, 2:], a[0]) and torch.equal(x[1], b[0])
