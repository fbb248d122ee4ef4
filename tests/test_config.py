"""The configuration: config.ini and dicts to typed settings, and one clear error per problem."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sparsemod import candidate, config
from sparsemod.config import RunConfig, TrainConfig, load_config
from sparsemod.errors import ConfigError
from sparsemod.settings import parse_duration, parse_flops, parse_objectives, parse_size

FULL_INI = """\
[DEFAULT]
train = yes

[TRAIN]
name = tiny-cnn        ; results go to out/tiny-cnn/
root = out
problem = mypkg.problems:tiny
R1 = 3                 # keys are case-insensitive
r2 = 0
r3 = 5
epochs1 = 1
epochs2 = 2
epochs3 = 6
batch_size = 4
objectives = [0, 1, 2, 3]
debug = on
flops = 100M
quant_scheme = Dynamic
morphisms = no
pruning = 0
prune_method = magnitude
keep_ratio = 1
finetune_epochs = 0
train_batch_size = 32
splitter = true
seed = 7
device = cuda:1
max_model_size = 2KB
max_working_memory = 1.5MB
max_latency = 250us
tolerance = 0.01
patience = 3
ref_point = 1.0, 50KB, 8 KiB, 10ms
generator = ax
num_candidates = 64
cost_scale = Log
runtime = Ideal

[TEST]
name = tiny-cnn
root = out
arm = 3_0
epochs = 9
quant_scheme = none
objectives = 2
flops = 1.2G
runtime = ideal
device = CPU
"""


def write(tmp_path, text, name="config.ini"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(match: str):
    """ConfigError whose one-line message matches ``match``."""
    return pytest.raises(ConfigError, match=match)


def test_full_ini_parses_into_exact_values(tmp_path):
    run = load_config(write(tmp_path, FULL_INI))
    assert run == RunConfig(
        train=True,
        train_config=TrainConfig(
            name="tiny-cnn",
            root="out",
            problem="mypkg.problems:tiny",
            r1=3,
            r2=0,
            r3=5,
            epochs1=1,
            epochs2=2,
            epochs3=6,
            batch_size=4,
            objectives=4,
            debug=True,
            flops=1e8,
            quant_scheme="dynamic",
            morphisms=False,
            pruning=False,
            prune_method="magnitude",
            keep_ratio=1.0,
            finetune_epochs=0,
            train_batch_size=32,
            splitter=True,
            seed=7,
            device="cuda:1",
            max_model_size=2048,
            max_working_memory=1572864,
            max_latency=0.00025,
            tolerance=0.01,
            patience=3,
            ref_point=(1.0, 51200.0, 8192.0, 0.01),
            generator="ax",
            num_candidates=64,
            cost_scale="log",
            runtime="ideal",
        ),
        test_config=config.TestConfig(
            name="tiny-cnn",
            root="out",
            arm=3,
            epochs=9,
            quant_scheme="none",
            objectives=2,
            flops=1.2e9,
            runtime="ideal",
            device="cpu",
        ),
        source=str(tmp_path / "config.ini"),
    )
    assert run.train_config.objective_names == [
        "error",
        "model_size_bytes",
        "working_memory_bytes",
        "latency_s",
    ]
    assert run.train_config.constraints == {
        "model_size_bytes": 2048.0,
        "working_memory_bytes": 1572864.0,
        "latency_s": 0.00025,
    }


def test_empty_sections_give_the_defaults(tmp_path):
    run = load_config(write(tmp_path, "[DEFAULT]\ntrain = true\n[TRAIN]\n"))
    assert run.train is True and run.test_config is None
    t = run.train_config
    assert t == TrainConfig()
    assert (t.name, t.root, t.problem) == ("digits_cnn", "results", "digits_cnn")
    assert (t.r1, t.r2, t.r3, t.epochs1, t.epochs2, t.epochs3) == (2, 4, 2, 3, 4, 4)
    assert (t.batch_size, t.objectives, t.flops, t.quant_scheme) == (2, 3, 1e8, "post")
    assert (t.keep_ratio, t.train_batch_size, t.tolerance, t.patience) == (0.5, 64, 0.0, 2)
    assert (t.generator, t.num_candidates, t.ref_point) == ("pool", 256, None)
    assert t.objective_names == ["error", "model_size_bytes", "working_memory_bytes"]
    assert t.constraints == {}
    test = load_config(write(tmp_path, "[DEFAULT]\ntrain = off\n[TEST]\n")).test_config
    assert (test.arm, test.epochs, test.objectives, test.seed) == (0, 5, 3, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("512B", 512),
        ("2KB", 2048),
        ("2 KiB", 2048),
        ("2kb", 2048),
        ("1.5MB", 1572864),
        ("1MiB", 1048576),
        ("1GB", 1073741824),
        ("0.5KB", 512),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text, "max_model_size") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10ms", 0.01),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("250μs", 0.00025),
        ("1s", 1.0),
        ("0.01", 0.01),
        ("5ns", 5e-9),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text, "max_latency") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e8", 1e8), ("100M", 1e8), ("1.2G", 1.2e9), ("64k", 64000.0), ("48000000", 4.8e7)],
)
def test_parse_flops(text, expected):
    assert parse_flops(text, "flops") == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("3", 3), ("1", 1), ("[0]", 1), ("[0, 1, 2]", 3), ("[0,1,2,3]", 4)]
)
def test_parse_objectives(text, expected):
    assert parse_objectives(text) == expected


@pytest.mark.parametrize("text", ["0", "5", "[1, 2]", "[0, 2]", "[0, 1, 2, 3, 4]", "[]", "x"])
def test_parse_objectives_rejects(text):
    with error(rf"^objectives: {re.escape(repr(text))} is not a number of objectives"):
        parse_objectives(text)


@pytest.mark.parametrize(
    ("parse", "text", "match"),
    [
        (parse_size, "2XB", r"^max_model_size: '2XB' is not a size \(allowed: .*KiB"),
        (parse_size, "2.5B", r"^max_model_size: '2.5B' is not a whole number of bytes"),
        (parse_size, "-1KB", r"^max_model_size: '-1KB' is not a size"),
        (parse_duration, "10 min", r"^max_model_size: '10 min' is not a duration"),
        (parse_flops, "0", r"^max_model_size: '0' is not a number of operations per second"),
        (parse_flops, "fast", r"^max_model_size: 'fast' is not a number of operations"),
    ],
)
def test_unit_parsers_name_key_and_value(parse, text, match):
    with error(match):
        parse(text, "max_model_size")


def test_overrides_apply_over_the_file_and_can_add_a_section(tmp_path):
    path = write(tmp_path, "[DEFAULT]\ntrain = true\n[TRAIN]\nr1 = 1\nname = a\n")
    run = load_config(
        path,
        [
            "TRAIN.r1=3",
            "train.Max_Latency = 10ms",
            "TRAIN.ref_point=1, 2KB, 1KB",
            "TEST.arm=4",
        ],
    )
    assert run.train_config.r1 == 3
    assert run.train_config.name == "a"
    assert run.train_config.max_latency == 0.01
    assert run.train_config.ref_point == (1.0, 2048.0, 1024.0)
    assert run.test_config == config.TestConfig(arm=4)
    flipped = load_config(path, ["DEFAULT.train=false", "TEST.epochs=2"])
    assert flipped.train is False and flipped.test_config.epochs == 2


def test_default_section_does_not_leak_into_train_and_test(tmp_path):
    # configparser would copy [DEFAULT] keys into every section; `train` is not a TRAIN key.
    run = load_config(write(tmp_path, "[DEFAULT]\ntrain = 1\n[TRAIN]\nr1 = 1\n[TEST]\n"))
    assert run.train is True
    assert run.train_config.r1 == 1
    assert run.test_config == config.TestConfig()


def test_other_default_keys_are_errors(tmp_path):
    path = write(tmp_path, "[DEFAULT]\ntrain = true\nname = shared\n[TRAIN]\n")
    with error(r"^\[DEFAULT\] unknown key 'name' \(known keys: train; put it in \[TRAIN\] or"):
        load_config(path)


def test_data_dict_input_like_the_rest_service():
    run = load_config(
        data={
            "DEFAULT": {"train": True},
            "TRAIN": {
                "R1": 1,
                "objectives": [0, 1],
                "max_model_size": "64KB",
                "max_latency": None,
                "flops": 2e8,
                "ref_point": [1.0, "64KB"],
                "pruning": False,
            },
        }
    )
    assert run.source == "<dict>"
    assert run.test_config is None
    t = run.train_config
    assert (t.r1, t.objectives, t.max_model_size, t.max_latency) == (1, 2, 65536, None)
    assert (t.flops, t.ref_point, t.pruning) == (2e8, (1.0, 65536.0), False)


def test_overrides_alone_make_a_config():
    run = load_config(overrides=["DEFAULT.train=true", "TRAIN.seed=3"])
    assert run.train_config == TrainConfig(seed=3)


def test_train_eval_settings_maps_every_field():
    from sparsemod.evaluate import EvalSettings

    t = TrainConfig(
        train_batch_size=16,
        pruning=False,
        keep_ratio=0.25,
        finetune_epochs=3,
        quant_scheme="dynamic",
        flops=5e7,
        runtime="ideal",
        device="cpu",
        seed=11,
        debug=True,
    )
    assert t.eval_settings(7) == EvalSettings(
        epochs=7,
        batch_size=16,
        pruning=False,
        prune_method="magnitude",
        keep_ratio=0.25,
        finetune_epochs=3,
        quant_scheme="dynamic",
        target_flops=5e7,
        runtime="ideal",
        device="cpu",
        seed=11,
        score_test=False,
        debug=True,
    )
    assert t.eval_settings(2, score_test=True).score_test is True


def test_test_eval_settings_scores_test():
    s = config.TestConfig(epochs=9, quant_scheme="none", seed=4, runtime="ideal").eval_settings()
    assert (s.epochs, s.quant_scheme, s.seed, s.score_test, s.batch_size) == (
        9,
        "none",
        4,
        True,
        64,
    )


def test_both_maps_onto_the_evaluator():
    assert TrainConfig(quant_scheme="both").eval_settings(1).quant_scheme == "both"


TRAIN_HEAD = "[DEFAULT]\ntrain = true\n[TRAIN]\n"


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("r1 = abc", r"\[TRAIN\] r1: 'abc' is not an integer \(allowed: an integer >= 1\)$"),
        ("r1 = 0", r"\[TRAIN\] r1: '0' is out of range \(allowed: an integer >= 1\)$"),
        ("r2 = -1", r"\[TRAIN\] r2: '-1' is out of range \(allowed: an integer >= 0\)$"),
        ("epochs2 = 0", r"\[TRAIN\] epochs2: '0' is out of range"),
        ("batch_size = 2.5", r"\[TRAIN\] batch_size: '2.5' is not an integer"),
        ("num_candidates = 4", r"\[TRAIN\] num_candidates: '4' is out of range .*>= 8"),
        ("patience = 0", r"\[TRAIN\] patience: '0' is out of range"),
        (
            "quant_scheme = int4",
            r"\[TRAIN\] quant_scheme: 'int4' is not one of post, dynamic, both, none$",
        ),
        ("generator = random", r"\[TRAIN\] generator: 'random' is not one of pool, ax$"),
        ("cost_scale = cubic", r"\[TRAIN\] cost_scale: 'cubic' is not one of linear, log$"),
        ("debug = maybe", r"\[TRAIN\] debug: 'maybe' is not a boolean \(allowed: true, false"),
        (
            "keep_ratio = 0",
            r"\[TRAIN\] keep_ratio: '0' is out of range \(allowed: a number in \(0, 1\]\)",
        ),
        ("keep_ratio = 1.5", r"\[TRAIN\] keep_ratio: '1.5' is out of range"),
        ("keep_ratio = nan", r"\[TRAIN\] keep_ratio: 'nan' is not a number"),
        ("tolerance = -0.1", r"\[TRAIN\] tolerance: '-0.1' is out of range"),
        ("flops = 0", r"\[TRAIN\] flops: '0' is not a number of operations per second"),
        ("objectives = 5", r"\[TRAIN\] objectives: '5' is not a number of objectives"),
        ("device = gpu", r"\[TRAIN\] device: 'gpu' is not a device \(allowed: auto, cpu, cuda"),
        ("device = cuda:x", r"\[TRAIN\] device: 'cuda:x' is not a device"),
        ("name = ../etc", r"\[TRAIN\] name: '../etc' is not a plain name"),
        ("problem = a b", r"\[TRAIN\] problem: 'a b' is not a problem"),
        ("max_model_size = 2XB", r"\[TRAIN\] max_model_size: '2XB' is not a size"),
        ("max_model_size = 0", r"\[TRAIN\] max_model_size: '0' is out of range"),
        ("max_working_memory = 0.1B", r"\[TRAIN\] max_working_memory: '0.1B' is not a whole"),
        ("max_latency = soon", r"\[TRAIN\] max_latency: 'soon' is not a duration"),
        (
            "ref_point = 1.0, 50KB",
            r"\[TRAIN\] ref_point: '1.0, 50KB' has 2 values \(allowed: one per objective, 3 ",
        ),
        (
            "ref_point = 1.0, 50KB, 8 parsecs",
            r"\[TRAIN\] ref_point value 3 \(working_memory_bytes\): '8 parsecs' is not a size",
        ),
        ("ref_point = 1, 0, 3", r"\[TRAIN\] ref_point: '1, 0, 3' value 2 is out of range"),
        ("ref_point = 1, 2, 3, 4, 5", r"\[TRAIN\] ref_point: '1, 2, 3, 4, 5' has 5 values"),
        (
            "epoch1 = 3",
            r"\[TRAIN\] unknown key 'epoch1' \(known keys: name, .*; did you mean 'epochs1'\?\)$",
        ),
        ("arm = 3", r"\[TRAIN\] unknown key 'arm' \(known keys: "),
    ],
)
def test_train_errors_name_section_key_and_value(tmp_path, line, match):
    with error("^" + match) as caught:
        load_config(write(tmp_path, TRAIN_HEAD + line + "\n"))
    assert "\n" not in str(caught.value)


def test_ref_point_length_follows_objectives(tmp_path):
    path = write(tmp_path, TRAIN_HEAD + "objectives = 2\nref_point = [1.0, 50KB]\n")
    assert load_config(path).train_config.ref_point == (1.0, 51200.0)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("arm = x_1", r"\[TEST\] arm: 'x_1' is not a trial index"),
        ("epochs = 0", r"\[TEST\] epochs: '0' is out of range"),
        ("r1 = 2", r"\[TEST\] unknown key 'r1' \(known keys: name, root, arm, "),
    ],
)
def test_test_section_errors(tmp_path, line, match):
    with error("^" + match):
        load_config(write(tmp_path, "[DEFAULT]\ntrain = false\n[TEST]\n" + line + "\n"))


def test_missing_section_for_the_mode(tmp_path):
    path = write(tmp_path, "[DEFAULT]\ntrain = true\n[TEST]\n")
    with error(r"config\.ini: no \[TRAIN\] section \(needed because \[DEFAULT\] train = true\)$"):
        load_config(path)
    path = write(tmp_path, "[DEFAULT]\ntrain = no\n[TRAIN]\n")
    with error(r"config\.ini: no \[TEST\] section \(needed because \[DEFAULT\] train = false\)$"):
        load_config(path)


def test_default_train_is_required_and_boolean(tmp_path):
    with error(r"config\.ini: no \[DEFAULT\] train"):
        load_config(write(tmp_path, "[TRAIN]\nr1 = 1\n"))
    with error(r"^\[DEFAULT\] train: 'perhaps' is not a boolean"):
        load_config(write(tmp_path, "[DEFAULT]\ntrain = perhaps\n[TRAIN]\n"))


def test_unknown_section_is_named(tmp_path):
    with error(r"config\.ini: unknown section \[TRIAN\] .*did you mean 'TRAIN'\?\)$"):
        load_config(write(tmp_path, "[DEFAULT]\ntrain = true\n[TRIAN]\n"))


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("TRAIN.r1", r"^--set 'TRAIN\.r1' has no '=' \(write SECTION\.key=value\)$"),
        ("r1=3", r"^--set 'r1=3' has no SECTION\.key before '='"),
        ("TRAIN.nope=1", r"^--set TRAIN\.nope=1: unknown key 'nope' \(known keys: name, "),
        ("TRAIN.epoch1=1", r"^--set TRAIN\.epoch1=1: unknown key .*did you mean 'epochs1'\?\)$"),
        ("TRIAN.r1=1", r"^--set TRIAN\.r1=1: unknown section \[TRIAN\]"),
        ("TRAIN.r1=abc", r"^\[TRAIN\] r1: 'abc' is not an integer"),
    ],
)
def test_override_errors(tmp_path, item, match):
    with error(match):
        load_config(write(tmp_path, TRAIN_HEAD), [item])


def test_missing_file():
    with error(r"^config file 'x\.ini' not found$"):
        load_config("x.ini")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("r1 = 3\n", r"bad\.ini: not a valid INI file \(File contains no section headers\."),
        ("[TRAIN]\nr1 = 1\nr1 = 2\n", r"bad\.ini: not a valid INI file \(.*'r1'.*already exists"),
        ("[TRAIN]\nthis is not a key\n", r"bad\.ini: not a valid INI file \(.*parsing errors"),
    ],
)
def test_malformed_ini_names_file_and_reason(tmp_path, text, match):
    with error(match) as caught:
        load_config(write(tmp_path, text, "bad.ini"))
    assert "\n" not in str(caught.value)


def test_data_errors():
    with error(r"^\[TRAIN\] r1: '0' is out of range"):
        load_config(data={"DEFAULT": {"train": "true"}, "TRAIN": {"r1": 0}})
    with error(r"^\[TRAIN\] r1: \{'a': 1\} is a dict"):
        load_config(data={"DEFAULT": {"train": "true"}, "TRAIN": {"r1": {"a": 1}}})
    with error(r"^<dict>: no \[TEST\] section"):
        load_config(data={"DEFAULT": {"train": False}})
    with error(r"not both"):
        load_config("x.ini", data={})


def test_direct_construction_is_validated_too():
    with error(r"^\[TRAIN\] r1: 0 is out of range \(allowed: an integer >= 1\)$"):
        TrainConfig(r1=0)
    with error(r"^\[TRAIN\] ref_point: \(1\.0,\) has 1 values"):
        TrainConfig(ref_point=(1.0,))
    with error(r"^\[TEST\] quant_scheme: 'int4' is not one of"):
        config.TestConfig(quant_scheme="int4")


def test_module_docstring_lists_every_key():
    keys = {f.name for cls in (TrainConfig, config.TestConfig) for f in dataclasses.fields(cls)}
    documented = set(re.findall(r"^\s{2}(\w+)", config.__doc__, re.MULTILINE))
    documented |= set(re.findall(r"(\w+),", config.__doc__))
    assert keys | {"train"} <= documented


def test_compression_method_keys_reach_the_evaluator():
    cfg = load_config(
        None,
        [
            "DEFAULT.train=true",
            "TRAIN.prune_method=imp",
            "TRAIN.imp_rate=0.3",
            "TRAIN.rewind_epoch=1",
            "TRAIN.dst_regrow=gradient",
        ],
    ).train_config
    s = cfg.eval_settings(3)
    assert (s.prune_method, s.imp_rate, s.rewind_epoch, s.dst_regrow) == ("imp", 0.3, 1, "gradient")
    with error(r"\[TRAIN\] dst_regrow: 'sideways'"):
        load_config(None, ["DEFAULT.train=true", "TRAIN.dst_regrow=sideways"])


@pytest.mark.parametrize(
    "items, section, key",
    [
        (["TRAIN.r1=0"], "TRAIN", "r1"),
        (["TRAIN.epoch1=3"], "TRAIN", "epoch1"),
        (["TRAIN.max_model_size=2XB"], "TRAIN", "max_model_size"),
        (["TRAIN.ref_point=1, 2"], "TRAIN", "ref_point"),
        (["TRAIN.imp_rate=0.2", "TRAIN.imp_rounds=3"], "TRAIN", "imp_rounds"),
        (["DEFAULT.train=maybe"], "DEFAULT", "train"),
        (["DEFAULT.train=false"], "TEST", None),
    ],
)
def test_errors_carry_section_and_key(items, section, key):
    # The service reads these fields to name the request field at fault.
    head = [] if any(i.startswith("DEFAULT.") for i in items) else ["DEFAULT.train=true"]
    with pytest.raises(ConfigError) as caught:
        load_config(None, head + items)
    assert (caught.value.section, caught.value.key) == (section, key)


_EDGES = {
    "keep_ratio": ["0", "1e-9", "1", "1.0001"],
    "imp_rate": ["none", "0", "0.5", "0.999", "1", "1.5"],
    "imp_rounds": ["0", "3", "-1"],
    "dst_drop_fraction": ["-0.1", "0", "0.3", "0.999", "1"],
    "dst_interval": ["-1", "0", "5"],
    "snip_batches": ["0", "1"],
    "finetune_epochs": ["-1", "0"],
    "train_batch_size": ["0", "1"],
    "prune_method": ["magnitude", "imp", "snip", "dynamic_sparse", "l1_structured", "sideways"],
    "quant_scheme": ["post", "both", "int4"],
    "flops": ["0", "1"],
}


@pytest.mark.parametrize("section", ["TRAIN", "TEST"])
@pytest.mark.parametrize(
    "items",
    [[f"{k}={v}"] for k, values in _EDGES.items() for v in values]
    + [
        ["prune_method=imp", "imp_rate=0.2", "imp_rounds=3"],
        ["prune_method=imp", "rewind_epoch=2"],
        ["prune_method=imp", "rewind_epoch=3"],
        ["prune_method=magnitude", "rewind_epoch=3"],
    ],
)
def test_a_value_load_config_accepts_runs_and_one_it_refuses_does_not(section, items):
    # One declaration per range: the config and the evaluator's own checks agree, so a
    # configuration that loads is one the evaluator takes.
    epochs = ["TRAIN.epochs1=2", "TRAIN.epochs2=3"] if section == "TRAIN" else ["TEST.epochs=2"]
    overrides = [f"DEFAULT.train={section == 'TRAIN'}"] + epochs
    overrides += [f"{section}.{item}" for item in items]
    try:
        run = load_config(None, overrides)
    except ConfigError:
        loaded = None
    else:
        loaded = run.train_config or run.test_config
    if loaded is None:
        # Refused: the evaluator refuses it too, when given the same values directly.
        from sparsemod.evaluate import EvalSettings

        values = {}
        for item in items:
            k, _, v = item.partition("=")
            try:
                values[k] = candidate.SPECS[k].parse(v, k)
            except (ValueError, KeyError, ConfigError):
                values[k] = v
        renamed = {"train_batch_size": "batch_size", "flops": "target_flops"}
        kwargs = {renamed.get(k, k): v for k, v in values.items()}
        with pytest.raises(ConfigError):
            EvalSettings(epochs=2, **kwargs)
        return
    if section == "TRAIN":
        for epochs_ in (2, 3):
            loaded.eval_settings(epochs_)
    else:
        loaded.eval_settings()


def test_readme_key_tables_are_the_declarations():
    from pathlib import Path

    from sparsemod.config.docs import readme_tables

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "<!-- keys:TRAIN -->" in readme and "<!-- keys:TEST -->" in readme
    assert readme_tables(readme) == readme, "run: python -m sparsemod.config.docs README.md"
    # every key of a section is in its table, with its default
    assert "| `runtime` | whose counts model size" in readme and "| `tflm` |" in readme


def test_every_key_is_declared_once_with_help_and_a_default():
    from sparsemod.spec import REQUIRED

    for key, spec in candidate.SPECS.items():
        assert spec.help, key
        assert (spec.default is REQUIRED) == (key == "train"), key
        if spec.default is not REQUIRED:
            assert spec.check(spec.default) is None, key  # a default its own check takes
    # the sections' defaults are the declarations'
    for cls in (TrainConfig, config.TestConfig):
        for f in dataclasses.fields(cls):
            assert f.default == candidate.SPECS[f.name].default, (cls.__name__, f.name)
