"""``python -m hpctune.worker EXP_DIR (--trial ID | --manifest FILE)``: run one trial."""

import os
import sys

from hpctune.worker.run import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the trial's events are written: skip the interpreter's slow teardown
