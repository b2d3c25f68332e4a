# Named kernel arguments: klayers.ops passes a kernel's geometry as a dict that Cython converts to a
# C struct field by field (``cdef SomeStruct g = the_dict``). When the conversion fails, this
# names the field at fault, so a bad geometry is an error a person can act on.


cdef inline object geometry_error(dict geometry, dict fields, object error, str where):
    """The error for a geometry dict that did not convert to its struct, naming the field."""
    for name, axes in fields.items():
        if name not in geometry:
            return ValueError(f"{where}: geometry lacks the field {name!r}; expected the fields {list(fields)}")
        v = geometry[name]
        if axes and (not isinstance(v, (tuple, list)) or len(v) != axes):
            return ValueError(f"{where}: geometry {name} must be a tuple of {axes} integers, got {name}={v!r}")
        for e in (v if axes else (v,)):
            if not hasattr(e, "__index__"):
                return TypeError(f"{where}: geometry {name} must hold integers, got {name}={v!r}")
            if not -2**63 <= e < 2**63:
                return OverflowError(f"{where}: geometry {name} is out of range, got {name}={v!r}")
    return type(error)(f"{where}: bad geometry: {error}")
