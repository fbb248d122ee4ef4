"""The key tables, written from the declarations: the config's docstring and README.md's.

``python -m sparsemod.config.docs README.md`` rewrites README.md's tables between their
``<!-- keys:SECTION -->`` and ``<!-- /keys -->`` markers; a test checks they are current.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sparsemod.candidate import SPECS
from sparsemod.config import section_keys
from sparsemod.spec import markdown_table

_BLOCK = re.compile(r"(<!-- keys:(\w+) -->\n).*?(<!-- /keys -->)", re.DOTALL)


def readme_tables(text: str) -> str:
    """``text`` with each ``<!-- keys:SECTION -->`` block holding its current table."""
    return _BLOCK.sub(
        lambda m: m.group(1) + markdown_table(section_keys(m.group(2)), SPECS) + "\n" + m.group(3),
        text,
    )


def main(argv: list[str] | None = None) -> int:
    """Rewrite the key tables of the given markdown files in place."""
    for name in argv if argv is not None else sys.argv[1:]:
        path = Path(name)
        path.write_text(readme_tables(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
