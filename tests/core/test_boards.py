"""Device profiles: the built-in boards' budgets, a [BOARD] section, ``sparsemod boards``."""

from __future__ import annotations

import dataclasses

import pytest

from sparsemod.cli import main
from sparsemod.core.boards import (
    BOARDS,
    CORES,
    Board,
    custom_board,
    format_boards,
    get_board,
)
from sparsemod.errors import ConfigError
from sparsemod.units import parse_clock

KB, MB = 1024, 1024 * 1024


@pytest.mark.parametrize(
    ("name", "core", "clock_hz", "sram", "flash"),
    [
        ("nrf52840-dk", "cortex-m4", 64_000_000, 256 * KB, 1 * MB),
        ("nucleo-f746zg", "cortex-m7", 216_000_000, 320 * KB, 1 * MB),
        ("nucleo-l476rg", "cortex-m4", 80_000_000, 128 * KB, 1 * MB),
        ("pico", "cortex-m0+", 133_000_000, 264 * KB, 2 * MB),
        ("esp32-s3-devkitc-1", "xtensa-lx7", 240_000_000, 512 * KB, 8 * MB),
    ],
)
def test_each_board_has_its_datasheet_budgets(name, core, clock_hz, sram, flash):
    b = get_board(name)
    assert (b.name, b.core, b.clock_hz, b.sram_bytes, b.flash_bytes) == (
        name,
        core,
        clock_hz,
        sram,
        flash,
    )
    assert b.core in CORES
    assert "datasheet" in b.source.lower() or "specification" in b.source.lower()


def test_the_table_has_the_five_boards():
    assert len(BOARDS) == 5
    assert all(key == b.name for key, b in BOARDS.items())


def test_a_board_is_frozen_and_rebuilds_from_its_fields():
    b = get_board("pico")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.clock_hz = 1  # type: ignore[misc]
    assert Board(**dataclasses.asdict(b)) == b  # as a search stored as JSON is read back


def test_get_board_ignores_case_and_spaces():
    assert get_board("  NUCLEO-F746ZG ") is BOARDS["nucleo-f746zg"]


def test_an_unknown_board_names_the_known_ones_and_the_closest():
    with pytest.raises(ConfigError) as err:
        get_board("nucleo-f764zg")
    assert err.value.key == "board"
    message = str(err.value)
    assert "'nucleo-f764zg'" in message
    assert "did you mean 'nucleo-f746zg'?" in message
    assert all(name in message for name in BOARDS)


def _section(**over: str) -> dict[str, str]:
    return {"core": "cortex-m4", "clock": "64MHz", "sram": "256KB", "flash": "1MB", **over}


def test_custom_board_reads_a_board_section():
    b = custom_board(_section(name="my-nrf", core="Cortex-M4"))
    assert b == Board(
        "my-nrf",
        "cortex-m4",
        64_000_000,
        262_144,
        1_048_576,
        "custom board ([BOARD] section)",
        "the user's [BOARD] section",
    )
    assert custom_board(_section()).name == "custom"
    assert custom_board(_section(description="bench rig")).description == "bench rig"


@pytest.mark.parametrize(
    ("text", "hz"),
    [
        ("64MHz", 64_000_000),
        ("64000000", 64_000_000),
        ("1.2GHz", 1_200_000_000),
        ("80 mhz", 80_000_000),
        ("32.768kHz", 32_768),
        ("100Hz", 100),
    ],
)
def test_a_clock_takes_a_unit(text, hz):
    assert parse_clock(text, "clock") == hz
    assert custom_board(_section(clock=text)).clock_hz == hz


def test_sizes_take_their_units():
    b = custom_board(_section(sram="1.5MB", flash="4096"))
    assert (b.sram_bytes, b.flash_bytes) == (1_572_864, 4096)


@pytest.mark.parametrize(
    ("values", "key", "fragments"),
    [
        (_section(ram="256KB"), "ram", ["unknown key", "did you mean 'sram'?"]),
        ({"clock": "64MHz", "sram": "1KB", "flash": "1KB"}, "core", ["missing", "cortex-m4"]),
        (_section(clock=""), "clock", ["missing", "64MHz"]),
        (_section(core="cortex-m3"), "core", ["'cortex-m3'", "cortex-m0+", "did you mean"]),
        (_section(clock="fast"), "clock", ["'fast'", "MHz"]),
        (_section(clock="64MB"), "clock", ["'64MB'", "not a clock rate"]),
        (_section(clock="0MHz"), "clock", ["'0MHz'", "above 0"]),
        (_section(clock="1.5Hz"), "clock", ["'1.5Hz'", "whole number"]),
        (_section(sram="lots"), "sram", ["'lots'", "KB"]),
        (_section(flash="0"), "flash", ["'0'", "above 0"]),
        (_section(flash="0.5B"), "flash", ["'0.5B'", "whole number"]),
    ],
)
def test_each_bad_key_is_one_config_error_naming_it(values, key, fragments):
    with pytest.raises(ConfigError) as err:
        custom_board(values)
    assert (err.value.section, err.value.key) == ("BOARD", key)
    message = str(err.value)
    assert message.startswith(f"[BOARD] {key}:")
    assert all(f in message for f in fragments), message


def test_format_boards_is_one_row_a_board():
    lines = format_boards().splitlines()
    assert lines[0].split()[:3] == ["name", "core", "clock"]
    row = next(line for line in lines if line.startswith("nucleo-f746zg"))
    assert row.split()[:5] == ["nucleo-f746zg", "cortex-m7", "216", "320", "1024"]
    assert ", ".join(CORES) in lines[-1]


def test_the_boards_command_prints_the_table(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for b in BOARDS.values():
        assert b.name in out and b.core in out
    assert "esp32-s3-devkitc-1  xtensa-lx7        240      512      8192" in out
