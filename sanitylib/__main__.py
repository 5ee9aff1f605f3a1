"""``python -m sanitylib``: the same as the ``sanitylib`` command."""

import sys

from sanitylib.cli import main

sys.exit(main())
