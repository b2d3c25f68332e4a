"""Load recorded references for the replay tests (no TensorFlow needed)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Dict, List, Optional, Tuple

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


DIALECTS = ("keras2", "keras3")


@dataclass(frozen=True)
class Case:
    """One recorded case as the replay sees it: ``family``, ``dialect`` ("keras2" or "keras3"),
    ``name``, its JSON ``meta``; ``item`` names one entry of a case that is replayed entry by
    entry (an alias of the ``api`` case)."""

    family: str
    dialect: str
    name: str
    meta: Dict[str, Any] = field(repr=False, compare=False)
    item: Optional[str] = None

    @property
    def version(self) -> int:
        """2 for tf-keras, 3 for Keras 3."""
        return 3 if self.dialect == "keras3" else 2

    def arrays(self) -> Dict[str, np.ndarray]:
        """The case's recorded arrays."""
        return arrays(self.family, self.name, self.dialect)

    def other(self, name: str, dialect: Optional[str] = None) -> Case:
        """Another recorded case of the same family (``dialect``: this one's by default)."""
        dialect = dialect or self.dialect
        return Case(self.family, dialect, name, family(self.family, dialect)["cases"][name])
