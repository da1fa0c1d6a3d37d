"""``python -m fastbp`` and the ``fastbp`` console script (see fastbp.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
