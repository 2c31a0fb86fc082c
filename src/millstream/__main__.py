"""`python -m millstream`: the `millstream` command line."""

import sys

from millstream.daemon.cli import main

sys.exit(main())
