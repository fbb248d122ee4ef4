"""Tests of sparsemod.train: real (small) training runs on the digits, with numbers checked."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from sparsemod.data import Splits, load_digits
from sparsemod.errors import ConfigError, DataError, InfeasibleError
from sparsemod.train import (
    EpochRecord,
    TrainSettings,
    accuracy,
    resolve_device,
    seeded,
    train,
)


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_digits(seed=0)


def _mlp(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    with seeded(seed):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(32, 10),
        )


def _cpu(**kwargs: object) -> TrainSettings:
    return TrainSettings(**{"epochs": 3, "device": "cpu", **kwargs})


def _without_time(history: list[EpochRecord]) -> list[tuple]:
    return [(r.epoch, r.loss, r.val_accuracy, r.samples) for r in history]


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


class _ListDataset(Dataset):
    """Serves samples one by one from Python, so train() cannot take the tensor path."""

    def __init__(self, dataset: TensorDataset) -> None:
        self.x, self.y = dataset.tensors

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


# --- training ----------------------------------------------------------------------------


def test_mlp_learns_digits(digits: Splits) -> None:
    model = _mlp()
    history = train(model, digits, _cpu(lr=1e-2))
    n_train = len(digits.train)
    assert [r.epoch for r in history] == [1, 2, 3]
    assert all(r.samples == n_train for r in history)
    assert all(r.seconds > 0 for r in history)
    assert history[-1].loss < history[0].loss
    assert history[-1].val_accuracy >= 0.90
    # The record's accuracy is what accuracy() measures on the trained model.
    assert history[-1].val_accuracy == accuracy(model, digits.val)


def test_same_seed_is_bit_identical_and_other_seed_differs(digits: Splits) -> None:
    runs = []
    for seed in (5, 5, 6):
        model = _mlp(dropout=0.2)  # same initial weights every time; dropout draws from seed
        runs.append((model, train(model, digits, _cpu(seed=seed))))
    (m1, h1), (m2, h2), (m3, h3) = runs
    _assert_same_weights(m1, m2)
    assert _without_time(h1) == _without_time(h2)
    assert any(
        not torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m3.state_dict().values())
    )
    assert _without_time(h1) != _without_time(h3)


def test_global_rng_state_is_left_alone(digits: Splits) -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    train(_mlp(dropout=0.5), digits, _cpu(epochs=1))
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(7):
        torch.rand(10)
    assert torch.equal(torch.get_rng_state(), before)


def test_seeded_builds_the_same_model() -> None:
    _assert_same_weights(_mlp(3), _mlp(3))
    assert not torch.equal(_mlp(3)[1].weight, _mlp(4)[1].weight)


def test_after_step_is_called_once_per_step(digits: Splits) -> None:
    calls = []
    settings = _cpu(epochs=2, batch_size=100)
    train(_mlp(), digits, settings, after_step=calls.append)
    assert len(calls) == 2 * math.ceil(len(digits.train) / 100)
    assert len(digits.train) % 100 != 0  # so the partial last batch is counted too


def test_after_step_can_keep_weights_zero(digits: Splits) -> None:
    model = _mlp()
    mask = (torch.arange(32 * 64).reshape(32, 64) % 2).float()

    def reapply(m: nn.Module) -> None:
        m[1].weight.mul_(mask)  # in place on a leaf: works because train() calls under no_grad

    history = train(model, digits, _cpu(epochs=2, lr=1e-2), after_step=reapply)
    assert torch.all(model[1].weight[mask == 0] == 0)
    assert history[-1].val_accuracy > 0.8


def test_zero_epochs_returns_nothing_and_changes_nothing(digits: Splits) -> None:
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert train(model, digits, _cpu(epochs=0)) == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_dataloader_fallback_matches_the_tensor_path(digits: Splits) -> None:
    listed = replace(digits, train=_ListDataset(digits.train), val=_ListDataset(digits.val))
    fast, slow = _mlp(), _mlp()
    h_fast = train(fast, digits, _cpu(epochs=2))
    h_slow = train(slow, listed, _cpu(epochs=2))
    assert len(h_slow) == 2 and all(isinstance(r, EpochRecord) for r in h_slow)
    assert [r.samples for r in h_slow] == [len(digits.train)] * 2
    # Both paths visit the samples in the same order, so they train the very same weights.
    assert _without_time(h_slow) == _without_time(h_fast)
    _assert_same_weights(fast, slow)


def test_fallback_uses_the_collate_fn(digits: Splits) -> None:
    seen = []

    def collate(samples: list) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(len(samples))
        return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])

    listed = replace(digits, train=_ListDataset(digits.train), collate_fn=collate)
    history = train(_mlp(), listed, _cpu(epochs=1, batch_size=128))
    assert sum(seen) == len(digits.train) and max(seen) == 128
    assert history[0].samples == len(digits.train)


def test_val_dataset_overrides_the_validation_split(digits: Splits) -> None:
    model = _mlp()
    history = train(model, digits, _cpu(epochs=1), val_dataset=digits.test)
    assert history[0].val_accuracy == accuracy(model, digits.test)


def test_model_mode_is_restored(digits: Splits) -> None:
    model = _mlp()
    model.eval()
    train(model, digits, _cpu(epochs=1))
    assert not model.training


def test_divergence_raises_infeasible(digits: Splits) -> None:
    model = _mlp()
    with torch.no_grad():
        model[4].bias.fill_(float("nan"))
    with pytest.raises(InfeasibleError, match="training diverged: loss is nan at epoch 1"):
        train(model, digits, _cpu(epochs=2))


def test_empty_training_split_is_a_data_error(digits: Splits) -> None:
    empty = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="training split is empty"):
        train(_mlp(), replace(digits, train=empty), _cpu(epochs=1))


# --- settings and devices ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", -1),
        ("epochs", 1.5),
        ("batch_size", 0),
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", float("nan")),
        ("weight_decay", -0.1),
    ],
)
def test_settings_are_validated(field: str, value: object) -> None:
    kwargs = {"epochs": 1, field: value}
    with pytest.raises(ConfigError, match=rf"{field} .*{value!r}"):
        TrainSettings(**kwargs)


def test_settings_defaults() -> None:
    s = TrainSettings(epochs=2)
    assert (s.batch_size, s.lr, s.weight_decay, s.device, s.seed) == (64, 1e-3, 0.0, "auto", 0)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match="unknown device 'gpu'.*'auto', 'cpu', 'cuda'"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="unknown device 'cuda:x'"):
        resolve_device("cuda:x")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_resolve_device_without_cuda(digits: Splits) -> None:
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=f"device '{name}'.*CUDA is not available"):
            resolve_device(name)
    with pytest.raises(ConfigError, match="'cuda'"):
        train(_mlp(), digits, TrainSettings(epochs=1, device="cuda"))


# --- accuracy ----------------------------------------------------------------------------


def test_accuracy_known_answer() -> None:
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 0, 0])  # predictions are 0, 1, 0, 1: the last one is wrong
    data = TensorDataset(x, y)
    assert accuracy(model, data) == 0.75
    assert accuracy(model, data, batch_size=1) == 0.75
    assert accuracy(model, _ListDataset(data), batch_size=3) == 0.75


def test_accuracy_without_parameters_runs_on_cpu_and_restores_mode() -> None:
    model = nn.Sequential(nn.Identity())  # the inputs are the logits
    logits = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    data = TensorDataset(logits, torch.tensor([1, 0, 0]))
    assert accuracy(model, data) == pytest.approx(2 / 3)
    assert model.training


def test_accuracy_errors() -> None:
    empty = TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        accuracy(nn.Linear(2, 2), empty)
    data = TensorDataset(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="batch_size"):
        accuracy(nn.Linear(2, 2), data, batch_size=0)


def test_a_last_batch_of_one_sample_is_dropped_so_batch_norm_trains():
    splits = load_digits(0)
    n = len(splits.train)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    history = train(model, splits, TrainSettings(epochs=1, batch_size=n - 1))
    assert history[0].samples == n - 1
