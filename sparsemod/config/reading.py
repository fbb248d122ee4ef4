"""Reading a configuration's text: an INI file, a mapping of sections, ``--set`` items.

What comes out is text by section and key, lower-cased keys and canonical section names;
:mod:`sparsemod.config` types and checks it against the declared settings.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.spec import did_you_mean

SECTIONS = ("DEFAULT", "TRAIN", "TEST", "BOARD")


def section_name(name: str, where: str) -> str:
    if name.upper() in SECTIONS:
        return name.upper()
    hint = did_you_mean(name.upper(), SECTIONS)
    raise ConfigError(
        f"{where}: unknown section [{name}] (known sections: {', '.join(SECTIONS)}{hint})",
        section=name,
    )


def as_text(value: Any, label: str) -> str:
    # The REST service passes JSON values; the parsers read text, as from a file.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(as_text(v, label) for v in value) + "]"
    raise ConfigError(
        f"{label}: {value!r} is a {type(value).__name__} (allowed: a string, number or boolean)"
    )


def read_file(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    source = os.fspath(path)
    parser = configparser.ConfigParser(
        interpolation=None,
        inline_comment_prefixes=(";", "#"),
        # A section name nobody writes: [DEFAULT] becomes an ordinary section whose keys
        # do not leak into [TRAIN] and [TEST].
        default_section="\x00no default section",
    )
    try:
        with open(source, encoding="utf-8") as f:
            parser.read_file(f, source=source)
    except FileNotFoundError:
        raise ConfigError(f"config file {source!r} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config file {source!r} cannot be read ({exc.strerror})") from None
    except configparser.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"{source}: not a valid INI file ({reason})") from None
    sections: dict[str, dict[str, str]] = {}
    for name in parser.sections():
        canonical = section_name(name, source)
        if canonical in sections:
            raise ConfigError(f"{source}: section [{canonical}] given twice", section=canonical)
        sections[canonical] = dict(parser[name])
    return sections


def read_data(data: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for name, body in data.items():
        canonical = section_name(str(name), "<dict>")
        if not isinstance(body, Mapping):
            raise ConfigError(
                f"<dict>: section [{name}] is not a mapping of keys to values", section=canonical
            )
        if canonical in sections:
            raise ConfigError(f"<dict>: section [{canonical}] given twice", section=canonical)
        section: dict[str, str] = {}
        for key, value in body.items():
            lowered = str(key).strip().lower()  # keys are case-insensitive, as in a file
            if lowered in section:
                raise ConfigError(
                    f"[{canonical}] {lowered}: given twice", section=canonical, key=lowered
                )
            try:
                section[lowered] = as_text(value, f"[{canonical}] {lowered}")
            except ConfigError as exc:
                raise ConfigError(str(exc), section=canonical, key=lowered) from None
        sections[canonical] = section
    return sections


def apply_override(
    sections: dict[str, dict[str, str]], item: str, unknown: Callable[[str, str], str | None]
) -> None:
    """Apply one ``SECTION.key=value`` item; ``unknown(section, key)`` says why a key is not
    one of the section's, or ``None``."""
    target, eq, value = item.partition("=")
    if not eq:
        raise ConfigError(f"--set {item!r} has no '=' (write SECTION.key=value)")
    name, dot, key = target.strip().partition(".")
    if not dot or not name or not key.strip():
        raise ConfigError(f"--set {item!r} has no SECTION.key before '=' (write SECTION.key=value)")
    section = section_name(name, f"--set {item}")
    key = key.strip().lower()
    problem = unknown(section, key)
    if problem:
        raise ConfigError(f"--set {item}: {problem}", section=section, key=key)
    sections.setdefault(section, {})[key] = value.strip()
