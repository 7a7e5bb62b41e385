"""`python -m tests.demo [--full]`: what `make demo` runs (see `tests/demo/run.py`)."""

import sys

from tests.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
