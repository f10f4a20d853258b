"""``python -m t5score.cli``: the ``t5score`` command."""

import sys

from t5score.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
