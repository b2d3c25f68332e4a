# cython: language_level=3
"""Build facts the Python side asks about."""
from _openmp cimport KLAYERS_OPENMP, omp_get_max_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(KLAYERS_OPENMP)


def openmp_max_threads():
    """OpenMP's own default team size (1 in a serial build)."""
    return omp_get_max_threads()
