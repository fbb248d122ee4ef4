"""Device profiles: the boards a search can target, with their clock and memory budgets.

A :class:`Board` names its core (which row of the latency table,
:data:`sparsemod.objectives.latency.CYCLES`, prices its ops), its clock, and the two
budgets a model must fit: SRAM for the tensor arena and flash for the weights. The
built-in boards (:data:`BOARDS`) take their figures from the vendors' datasheets, cited
in each board's ``source``; :func:`custom_board` reads a user's ``[BOARD]`` section.

Memory counted: ``sram_bytes`` is the on-chip SRAM the datasheet gives, which the
application can address (the firmware, its stack and the runtime take their share of
it, so a model's arena gets less); ``flash_bytes`` is the program flash the board has,
internal or, where the chip has none, the board's external QSPI flash. KB = 1024 bytes,
as :func:`sparsemod.settings.parse_size` reads sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sparsemod.errors import ConfigError
from sparsemod.spec import did_you_mean
from sparsemod.units import parse_clock, parse_size

KB = 1024
MB = 1024 * KB

# The cores the latency table (sparsemod.objectives.latency.CYCLES) has figures for.
CORES = ("cortex-m0+", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "xtensa-lx7")


@dataclass(frozen=True)
class Board:
    """One device profile.

    Attributes:
        name: the name a config uses (``board = nucleo-f746zg``), lower case.
        core: one of :data:`CORES`.
        clock_hz: the core clock the model runs at, in Hz.
        sram_bytes: on-chip SRAM the application can address (see the module docstring).
        flash_bytes: program flash (internal, or the board's external flash).
        description: one line for ``sparsemod boards``.
        source: the datasheets the figures come from (document, number or revision, URL).
    """

    name: str
    core: str
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    description: str
    source: str


BOARDS: dict[str, Board] = {
    # Nordic nRF52840 Product Specification v1.7, sections 1 (features) and 4 (memory):
    # Arm Cortex-M4 with FPU at 64 MHz, 1 MB flash, 256 KB RAM (all of it application RAM
    # on a bare-metal build; a BLE SoftDevice or Mbed OS, as on the Arduino Nano 33 BLE,
    # takes part of it).
    "nrf52840-dk": Board(
        "nrf52840-dk",
        "cortex-m4",
        64_000_000,
        256 * KB,
        1 * MB,
        "Nordic nRF52840 DK (same SoC as the Arduino Nano 33 BLE)",
        "Nordic Semiconductor, nRF52840 Product Specification v1.7, "
        "infocenter.nordicsemi.com/pdf/nRF52840_PS_v1.7.pdf",
    ),
    # ST DS10916 (STM32F745xx/STM32F746xx datasheet), section 1 and 3.5: Cortex-M7 with
    # FPU at up to 216 MHz, 1 MB flash, 320 KB SRAM = 64 KB DTCM + 240 KB SRAM1 + 16 KB
    # SRAM2, one contiguous block from 0x2000_0000 (the 16 KB ITCM RAM and 4 KB backup
    # SRAM are not counted). Board: UM1974 (STM32 Nucleo-144 boards).
    "nucleo-f746zg": Board(
        "nucleo-f746zg",
        "cortex-m7",
        216_000_000,
        320 * KB,
        1 * MB,
        "ST NUCLEO-F746ZG (STM32F746ZG)",
        "STMicroelectronics, DS10916 STM32F745xx/STM32F746xx datasheet, "
        "st.com/resource/en/datasheet/stm32f746zg.pdf; UM1974 STM32 Nucleo-144 boards",
    ),
    # ST DS10198 (STM32L476xx datasheet), sections 1 and 3.5: Cortex-M4 with FPU at up to
    # 80 MHz, 1 MB flash, 128 KB SRAM = 96 KB SRAM1 + 32 KB SRAM2 (SRAM2 is also mapped
    # right after SRAM1, so the two are one block). Board: UM1724 (STM32 Nucleo-64).
    "nucleo-l476rg": Board(
        "nucleo-l476rg",
        "cortex-m4",
        80_000_000,
        128 * KB,
        1 * MB,
        "ST NUCLEO-L476RG (STM32L476RG)",
        "STMicroelectronics, DS10198 STM32L476xx datasheet, "
        "st.com/resource/en/datasheet/stm32l476rg.pdf; UM1724 STM32 Nucleo-64 boards",
    ),
    # Raspberry Pi RP2040 Datasheet, sections 1 and 2.6: dual Cortex-M0+ at 133 MHz (the
    # nominal clock; one core counted), 264 KB SRAM in six banks (4 x 64 KB striped +
    # 2 x 4 KB), no internal flash. Raspberry Pi Pico Datasheet: 2 MB QSPI flash
    # (W25Q16JV), executed in place through a 16 KB cache.
    "pico": Board(
        "pico",
        "cortex-m0+",
        133_000_000,
        264 * KB,
        2 * MB,
        "Raspberry Pi Pico (RP2040, one core; 2 MB external QSPI flash)",
        "Raspberry Pi Ltd, RP2040 Datasheet, "
        "datasheets.raspberrypi.com/rp2040/rp2040-datasheet.pdf; Raspberry Pi Pico "
        "Datasheet, datasheets.raspberrypi.com/pico/pico-datasheet.pdf",
    ),
    # Espressif ESP32-S3 Series Datasheet, section 1 and 4.1: dual Xtensa LX7 at up to
    # 240 MHz (one core counted), 512 KB on-chip SRAM (ESP-IDF takes part of it for the
    # flash cache and IRAM code: an application's heap is typically 300-400 KB), no PSRAM
    # on the N8. ESP32-S3-DevKitC-1 user guide: the N8 carries an ESP32-S3-WROOM-1-N8,
    # 8 MB quad SPI flash.
    "esp32-s3-devkitc-1": Board(
        "esp32-s3-devkitc-1",
        "xtensa-lx7",
        240_000_000,
        512 * KB,
        8 * MB,
        "Espressif ESP32-S3-DevKitC-1-N8 (one LX7 core; 8 MB flash, no PSRAM)",
        "Espressif, ESP32-S3 Series Datasheet, espressif.com/sites/default/files/"
        "documentation/esp32-s3_datasheet_en.pdf; ESP32-S3-DevKitC-1 v1.1 user guide",
    ),
}

_REQUIRED = {
    "core": "one of " + ", ".join(CORES),
    "clock": "a clock rate in Hz with an optional unit Hz, kHz, MHz, GHz, e.g. 64MHz",
    "sram": "a size, e.g. 256KB",
    "flash": "a size, e.g. 1MB",
}
# The keys of a [BOARD] section: name and description optional, the rest required.
BOARD_KEYS = ("name", "description", *_REQUIRED)


def get_board(name: str) -> Board:
    """The built-in board called ``name`` (case-insensitive).

    Args:
        name: a key of :data:`BOARDS`, e.g. ``"nucleo-f746zg"``.

    Returns:
        Its :class:`Board`.

    Raises:
        ConfigError: no board has that name; names it, the known boards and the closest
            (``key="board"``).
    """
    key = name.strip().lower()
    if key in BOARDS:
        return BOARDS[key]
    raise ConfigError(
        f"board: unknown board {name!r} (known: {', '.join(BOARDS)}; or a [BOARD] "
        f"section for a board of your own){did_you_mean(key, list(BOARDS))}",
        key="board",
    )


def custom_board(values: Mapping[str, str]) -> Board:
    """A board from a user's ``[BOARD]`` section.

    Keys: ``core`` (one of :data:`CORES`), ``clock`` (``64MHz``, ``1.2GHz``,
    ``64000000``), ``sram`` and ``flash`` (sizes as ``256KB``, ``1MB``: see
    :func:`sparsemod.settings.parse_size`); optional ``name`` (default ``custom``) and
    ``description``. Pass the section's own keys only (not those of ``[DEFAULT]``).

    Args:
        values: the section's keys and their text.

    Returns:
        The :class:`Board`; its ``source`` says it was given by the user.

    Raises:
        ConfigError: a key is unknown or missing, or a value is not allowed; names the
            key, the value and what is allowed (``section="BOARD"``).
    """
    values = {k.strip().lower(): str(v).strip() for k, v in values.items()}
    for key in values:
        if key not in BOARD_KEYS:
            raise ConfigError(
                f"[BOARD] {key}: unknown key (allowed: {', '.join(BOARD_KEYS)})"
                f"{did_you_mean(key, BOARD_KEYS)}",
                section="BOARD",
                key=key,
            )
    for key, allowed in _REQUIRED.items():
        if not values.get(key):
            raise ConfigError(
                f"[BOARD] {key}: missing (allowed: {allowed})", section="BOARD", key=key
            )
    core = values["core"].lower()
    if core not in CORES:
        raise ConfigError(
            f"[BOARD] core: {values['core']!r} is not a core the latency model knows "
            f"(allowed: {', '.join(CORES)}){did_you_mean(core, CORES)}",
            section="BOARD",
            key="core",
        )
    sizes = {key: _size(values[key], key) for key in ("sram", "flash")}
    return Board(
        name=values.get("name") or "custom",
        core=core,
        clock_hz=_clock(values["clock"]),
        sram_bytes=sizes["sram"],
        flash_bytes=sizes["flash"],
        description=values.get("description") or "custom board ([BOARD] section)",
        source="the user's [BOARD] section",
    )


def _clock(text: str) -> int:
    try:
        return parse_clock(text, "clock")
    except ConfigError as exc:
        raise ConfigError(f"[BOARD] {exc}", section="BOARD", key="clock") from None


def _size(text: str, key: str) -> int:
    try:
        size = parse_size(text, key)
    except ConfigError as exc:
        raise ConfigError(f"[BOARD] {exc}", section="BOARD", key=key) from None
    if size <= 0:
        raise ConfigError(
            f"[BOARD] {key}: {text!r} is not above 0 bytes (allowed: {_REQUIRED[key]})",
            section="BOARD",
            key=key,
        )
    return size


def format_boards(boards: Mapping[str, Board] = BOARDS) -> str:
    """The boards as a plain text table (name, core, clock, SRAM, flash, description), then
    the cores a ``[BOARD]`` section may name."""
    head = ("name", "core", "clock MHz", "SRAM KB", "flash KB", "description")
    rows = [head] + [
        (
            b.name,
            b.core,
            f"{b.clock_hz / 1e6:g}",
            f"{b.sram_bytes / KB:g}",
            f"{b.flash_bytes / KB:g}",
            b.description,
        )
        for b in boards.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1])])
        + "  "
        + "  ".join(c.rjust(w) for c, w in zip(r[2:5], widths[2:5]))
        + "  "
        + r[5]
        for r in rows
    ]
    lines.append(f"\ncores for a [BOARD] section: {', '.join(CORES)}")
    return "\n".join(line.rstrip() for line in lines)
