"""``python -m edge_sdk.cli``: the same as the ``edge-sdk`` command."""

import sys

from edge_sdk.cli import main

sys.exit(main())
