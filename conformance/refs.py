"""Load recorded references for the replay tests (no TensorFlow needed)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any, Dict, List, Tuple

import numpy as np

REFS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "references")


@cache
def family(name: str, dialect: str = "keras2") -> Dict[str, Any]:
    """The family's JSON index: ``{"versions", "cases": {case: meta}}``."""
    path = os.path.join(REFS, dialect, name + ".json")
    with open(path) as f:
        return json.load(f)


def cases(name: str, dialect: str = "keras2") -> List[Tuple[str, Dict[str, Any]]]:
    """``[(case_name, meta)]`` sorted by name, for ``pytest.mark.parametrize``."""
    return sorted(family(name, dialect)["cases"].items())


def arrays(name: str, case: str, dialect: str = "keras2") -> Dict[str, np.ndarray]:
    """The case's recorded arrays."""
    path = os.path.join(REFS, dialect, name, case + ".npz")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
