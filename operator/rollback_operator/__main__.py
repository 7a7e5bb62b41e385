"""`python -m rollback_operator` is the `rollback-operator` command."""

import sys

from rollback_operator.cli import main

sys.exit(main())
