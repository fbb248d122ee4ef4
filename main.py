"""``python main.py [--config config.ini] [--set SECTION.key=value ...]``: see sparsemod.cli."""

import sys

from sparsemod.cli import main

if __name__ == "__main__":
    sys.exit(main())
