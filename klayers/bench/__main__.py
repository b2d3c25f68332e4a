"""``python -m klayers.bench ...``: the side-by-side layer benchmark (:mod:`klayers.bench.compare`)."""

import sys

from klayers.bench.compare import main

sys.exit(main())
