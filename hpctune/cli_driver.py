"""Kept for detached driver jobs queued before ``hpctune.cli.driver``: their sbatch scripts
run ``python -m hpctune.cli_driver <plan>``."""

import sys

from hpctune.cli.driver import main

if __name__ == "__main__":
    sys.exit(main())
