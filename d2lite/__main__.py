"""``python -m d2lite SUBCOMMAND ...``: the ``d2lite`` command."""
import sys

from d2lite.cli import main

if __name__ == "__main__":
    sys.exit(main())
