# =============================================================================
# Numbers in, numbers out
# =============================================================================

cdef inline bint is_number(object x):
    return (PyFloat_Check(x) or PyLong_Check(x) or isinstance(x, numbers.Real) or
            is_numpy_bool(x))


cdef bint is_numpy_bool(object x):
    """numpy's bool scalar (np.True_), which numpy does not register as numbers.Real
    although it is a bool; no numpy import: if numpy is not loaded, x is not one."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.bool_)


cdef inline bint is_plain_number(object x) noexcept:
    """A float, int or bool exactly: converted to a double without running any Python
    code (a subclass's __float__ or __index__ could, so subclasses are not plain)."""
    return PyFloat_CheckExact(x) or PyLong_CheckExact(x) or PyBool_Check(x)


cdef inline double plain_to_double(object x) except? -1.0:
    """`x` (a plain number, see is_plain_number) as a double; OverflowError for an int
    past 1.8e308, as float(x)."""
    if PyFloat_CheckExact(x):
        return PyFloat_AS_DOUBLE(x)
    return PyLong_AsDouble(x)


cdef double to_double(object x, str what) except? -1.0:
    """A real number as a C double; TypeError for anything else (str, None, complex, list).

    Converts once: a number whose __float__ has side effects is called once.
    """
    if PyFloat_Check(x):
        return PyFloat_AS_DOUBLE(x)
    if PyLong_Check(x):
        return PyLong_AsDouble(x)       # OverflowError past 1.8e308, as float(x)
    if isinstance(x, numbers.Real):
        return float(x)
    if is_numpy_bool(x):
        return 1.0 if x else 0.0
    t = type(x)     # numpy.bool, not bool: the name alone could be Python's
    name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    raise TypeError(f"{what} must be a real number (int or float), not {name}")
