"""``python -m klayers`` runs the ``klayers`` command."""

import sys

from klayers.cli import main

sys.exit(main())
