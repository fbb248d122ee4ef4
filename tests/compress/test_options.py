"""A pruning method's own keys: declared once, in its ``Options``, and read everywhere."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparsemod import candidate, settings
from sparsemod.compress import PRUNERS, PruneContext, PrunerOptions, option
from sparsemod.compress.dynamic_sparse import DynamicSparse
from sparsemod.compress.lottery import LotteryTicket
from sparsemod.compress.options import gather
from sparsemod.compress.registry import OPTIONS
from sparsemod.compress.snip import Snip
from sparsemod.config import TestConfig, TrainConfig, load_config
from sparsemod.data import load_digits
from sparsemod.errors import ConfigError
from sparsemod.evaluate import EvalSettings
from sparsemod.spec import integer
from sparsemod.train import TrainSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_each_method_declares_its_own_keys_and_nothing_else_does():
    assert list(LotteryTicket.Options.specs()) == ["imp_rate", "imp_rounds", "rewind_epoch"]
    assert list(Snip.Options.specs()) == ["snip_batches"]
    assert list(DynamicSparse.Options.specs())[:2] == ["dst_interval", "dst_drop_fraction"]
    assert not PRUNERS["magnitude"].Options.specs()  # a one-shot method has none
    owned = {k for cls in PRUNERS.values() for k in cls.Options.specs()}
    assert set(OPTIONS) == owned
    assert not owned & set(settings.SPECS)  # sparsemod's table does not repeat them
    # the joined table has them beside the other pruning keys, once each
    keys = list(candidate.SPECS)
    at = keys.index("finetune_epochs")
    assert keys[at + 1 : at + 1 + len(OPTIONS)] == list(OPTIONS)
    assert len(keys) == len(settings.SPECS) + len(OPTIONS)


def test_every_section_and_the_evaluator_take_them_with_the_declared_defaults():
    readme = README.read_text(encoding="utf-8")
    for cls in (TrainConfig, TestConfig, EvalSettings):
        by_name = {f.name: f for f in dataclasses.fields(cls)}
        for key, spec in OPTIONS.items():
            assert by_name[key].default == spec.default, (cls.__name__, key)
    for key, spec in OPTIONS.items():
        assert f"| `{key}` | {spec.help}" in readme, key


def test_a_config_reads_checks_and_hands_them_to_the_chosen_method():
    run = load_config(None, ["DEFAULT.train=true", "TRAIN.prune_method=imp", "TRAIN.imp_rounds=3"])
    cfg = run.train_config
    assert cfg.imp_rounds == 3
    assert cfg.eval_settings(2).prune_options() == LotteryTicket.Options(imp_rounds=3)
    # pickled with the config, as the process and Ray executors do
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(ConfigError, match=r"^\[TRAIN\] snip_batches: '0' is out of range"):
        load_config(None, ["DEFAULT.train=true", "TRAIN.snip_batches=0"])
    with pytest.raises(ConfigError, match=r"^\[TEST\] dst_regrow: 'magic' is not one of"):
        load_config(None, ["DEFAULT.train=false", "TEST.dst_regrow=magic"])


def test_checks_across_a_methods_keys_name_the_section_and_the_key():
    # imp_rate with imp_rounds is refused whichever method runs, as a bad value is
    with pytest.raises(ConfigError) as err:
        load_config(None, ["DEFAULT.train=true", "TRAIN.imp_rate=0.3", "TRAIN.imp_rounds=2"])
    assert str(err.value) == (
        "[TRAIN] imp_rate 0.3 and imp_rounds 2: give one of them (the keep ratio fixes the other)"
    )
    assert (err.value.section, err.value.key) == ("TRAIN", "imp_rounds")
    # rewinding after the end of training only matters to imp, against the fewest epochs
    given = ["DEFAULT.train=true", "TRAIN.rewind_epoch=3", "TRAIN.epochs1=2"]
    assert load_config(None, given).train_config.rewind_epoch == 3
    with pytest.raises(ConfigError, match=r"^\[TRAIN\] rewind_epoch: 3 is after the last epoch"):
        load_config(None, [*given, "TRAIN.prune_method=imp"])


def test_a_method_refuses_another_methods_options():
    context = PruneContext(load_digits(0), TrainSettings(epochs=1), None, Snip.Options())
    assert Snip().options(context) == Snip.Options()
    with pytest.raises(ConfigError, match="'imp' takes LotteryTicket.Options, not Snip.Options"):
        LotteryTicket().options(context)
    context.options = None
    assert LotteryTicket().options(context) == LotteryTicket.Options()  # the defaults


def test_two_methods_cannot_declare_one_key_two_ways():
    @dataclass(frozen=True)
    class First(PrunerOptions):
        rounds: int = option(integer(1).declare(2, "first: rounds"))

    @dataclass(frozen=True)
    class Second(PrunerOptions):
        rounds: int = option(integer(0).declare(0, "second: rounds"))

    assert gather({"first": First}) == {"rounds": First.specs()["rounds"]}
    with pytest.raises(ConfigError, match="'rounds' is declared by both 'first' and 'second'"):
        gather({"first": First, "second": Second})
    with pytest.raises(ConfigError, match=r"rounds: 0 is out of range"):
        First(rounds=0)
    assert First.of({"other": 1}) == First(rounds=2)  # keys it lacks take the default
