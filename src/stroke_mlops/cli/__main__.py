"""``python -m stroke_mlops.cli``: the ``stroke-mlops`` command."""

import sys

from stroke_mlops.cli import main

sys.exit(main())
