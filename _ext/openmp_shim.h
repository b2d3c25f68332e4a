/* The only place that touches omp_*: with OpenMP these are the real functions, without it serial
 * stubs, so every kernel builds from one source either way. */
#ifndef KLAYERS_OPENMP_SHIM_H
#define KLAYERS_OPENMP_SHIM_H
#ifdef _OPENMP
#include <omp.h>
#define KLAYERS_OPENMP 1
#else
#define KLAYERS_OPENMP 0
static int omp_get_max_threads(void) { return 1; }
static int omp_get_thread_num(void) { return 0; }
#endif
#endif
