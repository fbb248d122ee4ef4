"""The cost-model keys of a config: runtime, latency_model, board, reserves, [BOARD]."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from sparsemod.config import TrainConfig, load_config, resume_changes
from sparsemod.core.boards import get_board
from sparsemod.errors import ConfigError

KB = 1024


def train(**keys) -> TrainConfig:
    return load_config(data={"DEFAULT": {"train": "true"}, "TRAIN": keys}).train_config


def test_a_board_sets_the_memory_limits_less_the_reserves():
    cfg = train(board="NUCLEO-L476RG", reserve_ram="16KB", reserve_flash="512KB")
    assert cfg.board == get_board("nucleo-l476rg")
    assert cfg.constraints == {
        "working_memory_bytes": float(128 * KB - 16 * KB),
        "model_size_bytes": float(1024 * KB - 512 * KB),
    }
    # a limit the config sets lower is kept; max_latency is not the board's business
    cfg = train(board="pico", max_working_memory="8KB", max_latency="5ms")
    assert cfg.constraints == {
        "working_memory_bytes": 8.0 * KB,
        "model_size_bytes": 2048.0 * KB,
        "latency_s": 0.005,
    }
    # and with no board nothing changes
    assert train(max_model_size="64KB").constraints == {"model_size_bytes": 64.0 * KB}


def test_a_limit_over_the_boards_budget_is_refused_naming_both():
    with pytest.raises(ConfigError) as info:
        train(board="nucleo-l476rg", reserve_ram="28KB", max_working_memory="101KB")
    msg = str(info.value)
    assert msg.startswith("[TRAIN] max_working_memory: 103424 B is over what board nucleo-l476rg")
    assert "131072 B of SRAM - reserve_ram 28672 B = 102400 B" in msg
    assert info.value.key == "max_working_memory"


@pytest.mark.parametrize(
    ("keys", "key", "match"),
    [
        ({"board": "nucleo-f764zg"}, "board", r"unknown board .*did you mean 'nucleo-f746zg'"),
        ({"board": "pico", "reserve_flash": "2MB"}, "reserve_flash", r"leaves nothing of pico"),
        ({"reserve_ram": "1KB"}, "reserve_ram", r"is set but no board is"),
        ({"reserve_ram": "-1"}, "reserve_ram", r"reserve_ram: .-1. is not a size"),
        ({"board": "custom"}, "board", r"'custom' names the board of a \[BOARD\] section"),
        ({"runtime": "tflite"}, "runtime", r"'tflite' is not one of tflm, ideal, executorch"),
        ({"latency_model": "ops"}, "latency_model", r"'ops' counts cycles on a board's core"),
        ({"quant_scheme": "none"}, "quant_scheme", r"'none' is not what runtime = tflm deploys"),
        ({"compression": "lut", "runtime": "ideal"}, "compression",
         r"'lut' is TensorFlow Lite Micro's weight compression, and runtime = ideal"),
        ({"compression": "huffman"}, "compression", r"'huffman' is not one of none, lut"),
        ({"lut_bits": "8"}, "lut_bits", r"lut_bits: '8' is out of range \(allowed: 1 to 7\)"),
    ],
)
def test_each_bad_cost_key_is_one_error_naming_it(keys, key, match):
    with pytest.raises(ConfigError, match=match) as info:
        train(**keys)
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_a_board_section_describes_the_users_own_board(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text(
        "[DEFAULT]\ntrain = true\n[TRAIN]\nlatency_model = ops\nreserve_ram = 4KB\n"
        "[BOARD]\nname = my-m4\ncore = cortex-m4\nclock = 48MHz\nsram = 32KB\nflash = 256KB\n"
    )
    cfg = load_config(path).train_config
    assert (cfg.board.name, cfg.board.core, cfg.board.clock_hz) == ("my-m4", "cortex-m4", 48e6)
    assert cfg.constraints == {"working_memory_bytes": 28.0 * KB, "model_size_bytes": 256.0 * KB}
    # reaches the evaluator, whose ops latency needs it
    settings = cfg.eval_settings(1)
    assert settings.board == cfg.board and settings.cost_model().latency_model == "ops"
    # --set reaches the section too, and its keys are checked
    again = load_config(path, ["BOARD.clock=64MHz"]).train_config
    assert again.board.clock_hz == 64_000_000
    with pytest.raises(ConfigError, match=r"--set BOARD.ram=1KB: unknown key 'ram'") as info:
        load_config(path, ["BOARD.ram=1KB"])
    assert info.value.section == "BOARD"


def test_a_board_named_twice_is_refused(tmp_path):
    path = tmp_path / "config.ini"
    path.write_text(
        "[DEFAULT]\ntrain = true\n[TRAIN]\nboard = pico\n"
        "[BOARD]\ncore = cortex-m4\nclock = 48MHz\nsram = 32KB\nflash = 256KB\n"
    )
    with pytest.raises(ConfigError, match=r"board: 'pico' and a \[BOARD\] section both"):
        load_config(path)


def test_the_stored_config_reads_back_with_its_board():
    cfg = train(board="esp32-s3-devkitc-1", runtime="tflm", latency_model="ops")
    stored = json.loads(json.dumps(asdict(cfg)))  # as the store keeps it
    assert stored["board"]["sram_bytes"] == 512 * KB
    again = TrainConfig(**{**stored, "ref_point": None})
    assert again == cfg
    assert resume_changes(stored, again) == {}


def test_a_search_stored_before_runtime_existed_resumes_only_as_ideal():
    before = {k: v for k, v in asdict(train(runtime="ideal")).items() if k != "runtime"}
    assert resume_changes(before, train(runtime="ideal")) == {}
    with pytest.raises(ConfigError, match=r"runtime 'ideal' -> 'tflm'"):
        resume_changes(before, train())


def test_test_section_takes_the_cost_keys():
    run = load_config(
        data={
            "DEFAULT": {"train": "false"},
            "TEST": {"runtime": "ideal", "quant_scheme": "none", "board": "pico"},
        }
    )
    settings = run.test_config.eval_settings()
    assert (settings.runtime, settings.quant_scheme, settings.board.name) == (
        "ideal",
        "none",
        "pico",
    )
