"""``python -m hpctune.cli ARGS``: the same as the ``hpctune`` console script."""

import sys

from hpctune.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
