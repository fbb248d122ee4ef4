"""A board's budgets: which board a config names, and the hard limits it sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparsemod.core.boards import Board, get_board
from sparsemod.errors import ConfigError

if TYPE_CHECKING:
    from sparsemod.config import TrainConfig


def board_value(value: Board | str | Mapping[str, Any] | None) -> Board | None:
    # A name (config.ini, REST), a record (a [BOARD] section, Python) or a stored JSON
    # object (a search read back from the store) all become the board's record.
    if value is None or isinstance(value, Board):
        return value
    if isinstance(value, str):
        return get_board(value)
    if isinstance(value, Mapping):
        return Board(**value)
    raise ConfigError(f"board: {value!r} is not a board name", key="board")


def board_budgets(config: TrainConfig) -> dict[str, int]:
    """The board's hard limits: SRAM - reserve_ram and flash - reserve_flash.

    Raises:
        ConfigError: a reserve leaves nothing, or a limit the config sets itself is
            over the board's.
    """
    if config.board is None:
        for key in ("reserve_ram", "reserve_flash"):
            if getattr(config, key):
                raise ConfigError(
                    f"[TRAIN] {key}: {getattr(config, key)} is set but no board is "
                    "(set board = NAME or a [BOARD] section)",
                    section="TRAIN",
                    key=key,
                )
        return {}
    board, budgets = config.board, {}
    for key, memory, total, reserve in (
        ("max_working_memory", "SRAM", board.sram_bytes, config.reserve_ram),
        ("max_model_size", "flash", board.flash_bytes, config.reserve_flash),
    ):
        budget = total - reserve
        reserve_key = "reserve_ram" if memory == "SRAM" else "reserve_flash"
        if budget <= 0:
            raise ConfigError(
                f"[TRAIN] {reserve_key}: {reserve} B leaves nothing of {board.name}'s "
                f"{total} B of {memory}",
                section="TRAIN",
                key=reserve_key,
            )
        own = getattr(config, key)
        if own is not None and own > budget:
            raise ConfigError(
                f"[TRAIN] {key}: {own} B is over what board {board.name} has for it "
                f"({total} B of {memory} - {reserve_key} {reserve} B = {budget} B); "
                f"lower it, or leave it out to use the board's",
                section="TRAIN",
                key=key,
            )
        budgets[key] = budget if own is None else own
    return budgets
