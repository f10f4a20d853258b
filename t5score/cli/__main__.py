import sys

from t5score.cli.main import main

sys.exit(main())
