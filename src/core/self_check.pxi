# =============================================================================
# Import-time self-check of the constructor patches
# =============================================================================
# Value's tp_new and tp_vectorcall slots are patched above (the type of a custom
# op's Value is chosen before the object exists). That leans on how Cython emits
# an extension type's constructor: a Cython release that changes it must fail
# here, at import, not later as a silently wrong type.

cdef str cython_version():
    h = CYTHON_HEX_VERSION
    return f"{h >> 24}.{(h >> 16) & 0xff}.{(h >> 8) & 0xff}"


cdef void check_constructor_patches() except *:
    a = Value(1.0)
    checks = (
        ("Value(1.0)", a, Value),
        ("Value(1.0, (a,), 'op')", Value(1.0, (a,), 'op'), CustomValue),
        ("Value(1.0, _children=(a,))", Value(1.0, _children=(a,)), CustomValue),
        ("Value(1.0, _op='op')", Value(1.0, _op='op'), CustomValue),
        ("a + 1.0", a + 1.0, Value),
    )
    for expr, got, want in checks:
        if type(got) is not want:
            raise ImportError(
                f"autograd._core is broken: {expr} made a {type(got).__name__}, not a "
                f"{want.__name__}. The Cython that compiled it (version {cython_version()}) "
                "emits constructors differently from what the tp_new/tp_vectorcall patch "
                "in src/core/extensible.pxi expects; build with the Cython range that pyproject.toml "
                "declares, or update the patch.")


check_constructor_patches()
