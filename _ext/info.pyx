# cython: language_level=3
"""Build facts the Python side asks about, and the kernels' shared constants."""
from _act cimport activation_codes
from _cpu cimport kl_cpu_level, kl_isa_name
from _openmp cimport KLAYERS_OPENMP, omp_get_max_threads

#: the activation codes (name -> code) of every kernel module (_act.pxd, activation_codes.h)
ACTIVATIONS = activation_codes()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(KLAYERS_OPENMP)


def openmp_max_threads():
    """OpenMP's own default team size (1 in a serial build)."""
    return omp_get_max_threads()


def cpu_isa(int max_level=2):
    """The rung of the CPU-feature ladder (``cpu_features.h``) that the kernel modules pick at
    import: the widest of "baseline", "avx2", "avx512" this CPU has, at most ``max_level``."""
    return kl_isa_name(kl_cpu_level(max_level)).decode()
