"""Side by side: klayers, tf-keras eager, tf-keras under ``tf.function``, ONNX Runtime.

The runner ships with klayers as :mod:`klayers.bench.compare` (``python -m klayers.bench``,
``klayers bench``); this script runs it from a source checkout, as it always did:

    PYTHONPATH=. /work/venvs/tf/bin/python benchmarks/compare_keras.py               # every workload
    PYTHONPATH=. /work/venvs/tf/bin/python benchmarks/compare_keras.py --workload b256 --markdown
    python3 benchmarks/compare_keras.py pool --threads 1    # without TensorFlow: klayers alone

Every option is :mod:`klayers.bench.compare`'s (``--help``).
"""

from __future__ import annotations

import os
import sys

try:  # prefer an installed klayers or PYTHONPATH; fall back to the checkout this script is in
    import klayers  # noqa: F401
except ImportError:
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from klayers.bench.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
