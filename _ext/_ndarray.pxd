# The arrays of a prepared kernel's call: a kernel object (a cdef class built once with its
# checked geometry, weights and tiling) takes its per-call input and output as NumPy arrays and
# reads their data pointers here, after checking type, dtype, layout and size: no memoryview
# acquisition and no geometry conversion per call (about 1.5 us of a small layer's 4). A wrong
# array is a ValueError naming the kernel and the argument, never a crash.
cimport numpy as cnp


cdef inline char* array_data(object a, int typenum, Py_ssize_t size, bint writable, str where,
                             str name) except NULL:
    """The data pointer of ``a``: a C-contiguous ndarray of NumPy type ``typenum`` (NPY_FLOAT or
    NPY_DOUBLE) holding ``size`` values, writable when ``writable``; else ValueError."""
    cdef cnp.ndarray arr
    if type(a) is not cnp.ndarray:
        raise ValueError(f"{where}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != typenum:
        raise ValueError(f"{where}: {name} has dtype {arr.dtype}, the kernel was prepared for "
                         f"{'float32' if typenum == cnp.NPY_FLOAT else 'float64'}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{where}: {name} must be C-contiguous")
    if cnp.PyArray_SIZE(arr) != size:
        raise ValueError(f"{where}: {name} has {cnp.PyArray_SIZE(arr)} values, the kernel was prepared for {size}")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{where}: {name} is read-only")
    cdef char* data = <char*>cnp.PyArray_DATA(arr)
    # an empty array's pointer is never read, but NULL here means an error
    return data if data != NULL else <char*>a


cdef inline Py_ssize_t array_size(object a, str where, str name) except -1:
    """The number of values of ``a``, a numpy.ndarray; else ValueError."""
    if type(a) is not cnp.ndarray:
        raise ValueError(f"{where}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    return cnp.PyArray_SIZE(<cnp.ndarray>a)


cdef inline int float_type(object dtype, str where) except -1:
    """NPY_FLOAT or NPY_DOUBLE for a float32 / float64 ``dtype``; else ValueError."""
    if dtype == "float32":
        return cnp.NPY_FLOAT
    if dtype == "float64":
        return cnp.NPY_DOUBLE
    raise ValueError(f"{where}: kernels take float32 or float64, got {dtype}")
