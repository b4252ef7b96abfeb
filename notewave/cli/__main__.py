"""``python -m notewave.cli``: the same as the ``notewave`` command."""

import sys

from notewave.cli import main

sys.exit(main())
