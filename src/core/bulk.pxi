# =============================================================================
# Bulk data: many Values' data and grads in one C loop
# =============================================================================

@cython.final
cdef class ValueVector:
    """A fixed list of Values whose data and grads move to and from numpy arrays.

    Parameters
    ----------
    values : iterable of Value
        For example ``model.parameters()``. Their nodes stay alive as long as
        this vector does.

    Examples
    --------
    >>> params = ValueVector([Value(1.0), Value(2.0)])
    >>> params.data
    array([1., 2.])
    >>> params.data = params.data - 0.5
    >>> params.data
    array([0.5, 1.5])
    """

    def __cinit__(self, values):
        self.nodes = NULL
        self.size = 0
        seq = list(values)
        cdef Py_ssize_t n = len(seq), k
        for v in seq:
            if not isinstance(v, Value):
                raise TypeError(f"ValueVector holds Values, not {type(v).__name__}")
            if (<Value>v).idx == 0:
                raise_uninitialised()
        self.nodes = <node_t*>malloc((n if n else 1) * sizeof(node_t))
        if self.nodes == NULL:
            raise_no_memory("a ValueVector", n, sizeof(node_t))
        for k in range(n):
            self.nodes[k] = (<Value>seq[k]).idx
            node_pin(self.nodes[k])
            self.size = k + 1           # what __dealloc__ lets go of, if a pin fails

    def __dealloc__(self):
        cdef Py_ssize_t k
        if self.nodes != NULL:
            for k in range(self.size):
                node_decref(self.nodes[k])
            free(self.nodes)

    def __len__(self):
        return self.size

    @property
    def data(self):
        """The data of every Value, as a new float64 array."""
        import numpy as np
        out = np.empty(self.size, dtype=np.float64)
        cdef double[::1] view = out
        cdef Py_ssize_t k
        for k in range(self.size):
            view[k] = node_data[self.nodes[k]]
        return out

    @data.setter
    def data(self, values):
        cdef const double[::1] view = self._checked(values, "data")
        cdef Py_ssize_t k
        for k in range(self.size):
            node_data[self.nodes[k]] = view[k]

    @property
    def grad(self):
        """The grad of every Value, as a new float64 array."""
        import numpy as np
        out = np.empty(self.size, dtype=np.float64)
        cdef double[::1] view = out
        cdef Py_ssize_t k
        for k in range(self.size):
            view[k] = node_grad[self.nodes[k]]
        return out

    @grad.setter
    def grad(self, values):
        cdef const double[::1] view = self._checked(values, "grad")
        cdef Py_ssize_t k
        for k in range(self.size):
            node_grad[self.nodes[k]] = view[k]

    def zero_grad(self):
        """Set every grad to 0."""
        cdef Py_ssize_t k
        for k in range(self.size):
            node_grad[self.nodes[k]] = 0.0

    def sgd_step(self, double lr):
        """data -= lr * grad for every Value, micrograd's update, in one C loop."""
        cdef Py_ssize_t k
        cdef node_t i
        for k in range(self.size):
            i = self.nodes[k]
            node_data[i] -= lr * node_grad[i]

    cdef object _checked(self, values, str what):
        """`values` as a float64 array of this vector's size; a number is broadcast.

        Refuses what Value.data / Value.grad refuse (TypeError): None, str,
        complex; numpy would cast them to nan, parse them, drop the imaginary part.
        """
        import numpy as np
        arr = np.asarray(values)
        if arr.dtype.kind == "O":           # numbers.Real objects (Fraction, ...) or junk
            arr = np.array([to_double(x, what) for x in arr.reshape(-1)],
                           dtype=np.float64).reshape(arr.shape)
        elif arr.dtype.kind not in "biuf":
            if arr.ndim == 0:
                to_double(values, what)     # raises its TypeError: "..., not str"
            raise TypeError(f"{what} must be real numbers (int or float), not an array "
                            f"of {arr.dtype}")
        if arr.ndim == 0:
            arr = np.full(self.size, arr, dtype=np.float64)
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if arr.shape != (self.size,):
            raise ValueError(f"{what} must have shape ({self.size},), not {arr.shape}")
        return arr

    def __repr__(self):
        return f"ValueVector({self.size} values)"
