"""`python -m sandbox.demo [--full]`: what `make demo` runs (see `sandbox/demo/run.py`)."""

import sys

from sandbox.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
