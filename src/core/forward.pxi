# =============================================================================
# Forward mode in lanes: jvp, jacfwd (and so the Hessian, forward over reverse)
# =============================================================================
# A tangent sweep carries, for every node of the outputs' graph, L tangents
# (lanes): d(node)/d(direction k) for L directions at once, stored contiguous
# per node, t[pos * L + k]. The primal data is the arena's, the same for every
# lane, read once per node; the lane loop runs only the derivative.
#
# The tangent rule is derived from the op table's chain rule, never written
# again: a scalar op's Jacobian is 1x2 [da, db], and op_chain(g), linear in g,
# gives its transpose applied to g: (da * g, db * g). So op_chain at g = 1
# gives the partial derivatives, once per node for all its lanes, and
#     t_out[k] = da * t_a[k] + db * t_b[k]
# is the same two-term loop for every op, vectorised by the compiler, with
# nothing of the op in it. Every row of the table, present or future, works
# in forward mode with it. For a rule of the form factor * g (all but the
# divisions g / b of '/' and log) this is op_chain's own number at g = t_a
# bit for bit (x * 1 == x); for those two it may differ by the rounding of
# one division (1 / b then * g, instead of g / b).

# Structural zeros: each node has a lane range [lo, hi) outside which its
# tangents are known to be 0 (the hull of its operands' ranges, and of the
# lanes seeded at it). A node no seeded input is below has an empty range and
# costs nothing; a Jacobian of a graph where each node sees few inputs (a sum
# of local terms: Rosenbrock's Hessian) costs about the nonzeros, not n lanes
# per node. Inside a range the lanes are dense, so only a contribution known
# to be zero is skipped (as JAX's symbolic zeros: a constant operand times an
# infinite partial derivative adds 0, not nan).


cdef inline void tangent_lanes(double da, double db, const double* ta, const double* tb,
                               double* t, Py_ssize_t lo, Py_ssize_t hi, int which) noexcept nogil:
    """t[k] = da * ta[k] + db * tb[k] for k in [lo, hi), only the operands in
    `which` (TO_LHS, TO_RHS) counted: the same loop for every op."""
    cdef Py_ssize_t k
    if which == TO_LHS | TO_RHS:
        for k in range(lo, hi):
            t[k] = da * ta[k] + db * tb[k]
    elif which == TO_LHS:
        for k in range(lo, hi):
            t[k] = da * ta[k]
    else:
        for k in range(lo, hi):
            t[k] = db * tb[k]


cdef inline const double* lanes_over(double* tangents, int32_t* lo_of, int32_t* hi_of,
                                     Py_ssize_t p, Py_ssize_t L, Py_ssize_t lo,
                                     Py_ssize_t hi, double* scratch) noexcept nogil:
    """Node p's tangents, readable for every lane of [lo, hi): its own row if
    its range covers [lo, hi), else `scratch` with its lanes and zeros."""
    cdef double* row = &tangents[p * L]
    cdef Py_ssize_t plo = lo_of[p], phi = hi_of[p], k
    if plo <= lo and phi >= hi:
        return row
    # ranges are often a few lanes wide: plain loops, no calls to memset/memcpy
    for k in range(lo, plo):
        scratch[k] = 0.0
    for k in range(plo, phi):
        scratch[k] = row[k]
    for k in range(phi, hi):
        scratch[k] = 0.0
    return scratch


# node -> 1 + its position in a tangent sweep's order (0: not in it). Kept from
# one sweep to the next and all 0 between them (a sweep clears the entries it
# set): a fresh calloc of the arena's size per call would cost more than a
# small graph's sweep. No Python code runs while it is in use.
cdef int32_t* tangent_pos = NULL
cdef Py_ssize_t tangent_pos_cap = 0


cdef int32_t* position_buffer() except NULL:
    """tangent_pos, all 0, with an entry for every slot of the arena; given back
    and made afresh when the arena has shrunk well below it."""
    global tangent_pos, tangent_pos_cap
    cdef int32_t* grown
    if tangent_pos_cap > 2 * <Py_ssize_t>n_used + 4096:
        free(tangent_pos)
        tangent_pos = NULL
        tangent_pos_cap = 0
    if tangent_pos_cap < n_used:
        grown = <int32_t*>realloc(tangent_pos, n_used * sizeof(int32_t))
        if grown == NULL:
            raise_no_memory("a tangent sweep's positions", n_used, sizeof(int32_t))
        memset(&grown[tangent_pos_cap], 0, (n_used - tangent_pos_cap) * sizeof(int32_t))
        tangent_pos = grown
        tangent_pos_cap = n_used
    return tangent_pos


cdef struct TangentStep:
    node_t node         # whose data the partials read (with its operands')
    node_t lhs
    node_t rhs
    int32_t plhs        # the operands' positions in the order (-1: none, or a ** c's c)
    int32_t prhs
    uint8_t op          # OP_LEAF for a leaf: nothing to compute


@cython.final
cdef class ForwardJacobian:
    """The recorded graph of some outputs, ready for tangent sweeps over their
    inputs at the graph's current data (jvp, jacfwd, RecordedHessian).

    Records once what every sweep needs and only depends on the graph's
    structure: the order, each node's operands as positions, the inputs' and
    outputs' positions; a sweep then reads the arena's data and writes L lanes
    per node. With `keep` the nodes are pinned, so that the object stays valid
    while the caller changes data (Graph.forward) between sweeps.

    Parameters
    ----------
    outputs, inputs : Value or sequence of Value
        As :func:`jacfwd`.

    Examples
    --------
    >>> x, y = Value(2.0), Value(3.0)
    >>> jac = ForwardJacobian([x * y], [x, y])
    >>> jac()
    array([[3., 2.]])
    >>> x.data = 5.0
    >>> jac()                   # at the current data: d(x*y) = (y, x)
    array([[3., 5.]])
    """
    cdef Graph graph
    cdef TangentStep* steps     # one per position of graph.order
    cdef int32_t* in_pos        # per input: its position (-1: not in the graph)
    cdef int32_t* out_pos       # per output: its position
    cdef readonly Py_ssize_t n_inputs
    cdef readonly Py_ssize_t n_outputs

    def __cinit__(self):
        self.steps = NULL
        self.in_pos = NULL
        self.out_pos = NULL
        self.n_inputs = 0
        self.n_outputs = 0

    def __init__(self, outputs, inputs):
        self.record(values_of(outputs, "outputs"), values_of(inputs, "inputs"), True)

    def __dealloc__(self):
        free(self.steps)
        free(self.in_pos)
        free(self.out_pos)

    cdef int record(self, list outs, list ins, bint keep) except -1:
        cdef Py_ssize_t n_out = len(outs), n_in = len(ins), n, p, j
        cdef node_t root = (<Value>outs[0]).idx, i, joined
        cdef uint8_t op
        cdef int32_t* pos = NULL
        cdef Graph g = Graph.__new__(Graph)
        if self.steps != NULL:
            raise RuntimeError("ForwardJacobian.__init__ was already called")
        if n_out > 1:
            # one root for the sweep, as grad() joins its outputs (kept alive by the
            # graph's pins while it is kept, never swept for tangents)
            root = join_outputs(outs)
        joined = root
        try:
            g.record(root, keep)
            if g.has_python:
                for j in range(g.n_steps):
                    if g.steps[j].op == OP_CUSTOM:
                        raise ValueError(
                            f"forward mode cannot differentiate through custom op "
                            f"{custom_op_name(g)!r}: its rule is a Python _backward "
                            "(reverse mode only), which gives no tangents. Build it from "
                            "built-in ops, or use autograd.grad")
            n = g.size
            self.steps = <TangentStep*>malloc((n if n else 1) * sizeof(TangentStep))
            self.in_pos = <int32_t*>malloc(n_in * sizeof(int32_t))
            self.out_pos = <int32_t*>malloc(n_out * sizeof(int32_t))
            if self.steps == NULL or self.in_pos == NULL or self.out_pos == NULL:
                raise_no_memory("a tangent sweep's steps", n, sizeof(TangentStep))
            pos = position_buffer()
            for p in range(n):
                pos[g.order[p]] = <int32_t>(p + 1)
            for p in range(n):
                i = g.order[p]
                op = arena[i].op
                self.steps[p].node = i
                self.steps[p].lhs = arena[i].lhs
                self.steps[p].rhs = arena[i].rhs
                self.steps[p].op = op
                self.steps[p].plhs = pos[arena[i].lhs] - 1 if op != OP_LEAF else -1
                self.steps[p].prhs = pos[arena[i].rhs] - 1 if op != OP_LEAF else -1
            for j in range(n_out - 1):
                self.steps[pos[root] - 1].op = OP_LEAF      # a join node: no tangents
                root = arena[root].lhs
            for j in range(n_in):
                self.in_pos[j] = pos[(<Value>ins[j]).idx] - 1
            for j in range(n_out):
                self.out_pos[j] = pos[(<Value>outs[j]).idx] - 1
            for p in range(n):
                pos[g.order[p]] = 0
        finally:
            if n_out > 1:
                # the join nodes live on in a kept graph's pins; otherwise they go now
                # (their steps are leaves: a sweep never reads them)
                node_decref(joined)
        self.graph = g
        self.n_inputs = n_in
        self.n_outputs = n_out
        return 0

    def __call__(self):
        """The Jacobian at the graph's current data, (n_outputs, n_inputs)."""
        import numpy as np
        if self.steps == NULL:
            raise ValueError("this ForwardJacobian was not recorded")
        out = np.empty((self.n_outputs, self.n_inputs), dtype=np.float64)
        cdef double[:, ::1] r = out
        if self.n_inputs:
            self.sweep(NULL, self.n_inputs, &r[0, 0])
        return out

    cdef int sweep(self, const double* seeds, Py_ssize_t L, double* result) except -1:
        """The tangents of the outputs for L directions: result[j * L + k] = sum over
        the inputs i of d(outs[j])/d(ins[i]) * seeds[i * L + k]; `seeds` NULL
        stands for the identity (L == n_inputs: lane i is input i's, the Jacobian).

        Inputs may be any nodes of the graph (as grad()'s): a seeded node's
        tangent is what its operands give plus its seed, so the Jacobian is
        grad()'s, transposed. The graph's data are used as they are (no forward
        pass); nothing in the arena changes.
        """
        cdef Py_ssize_t n = self.graph.size, n_in = self.n_inputs, p, j, q
        cdef TangentStep* st
        cdef int32_t* lo_of = NULL          # per position: the lanes that may be nonzero
        cdef int32_t* hi_of = NULL
        cdef int32_t* first_seed = NULL     # per position: its first seeded input + 1
        cdef int32_t* next_seed = NULL      # per input: the next one seeded at the same node + 1
        cdef int32_t* seed_lo = NULL        # per input: the hull of its nonzero seeds
        cdef int32_t* seed_hi = NULL
        cdef double* tangents = NULL
        cdef double* scratch = NULL
        cdef double* row
        cdef const double* srow
        cdef const double* ta
        cdef const double* tb
        cdef Py_ssize_t lo, hi, clo, chi, pl, pr
        cdef int which
        cdef bint ra, rb
        cdef double da, db
        cdef size_t n_bytes
        if L > 0 and n > (<Py_ssize_t>0x7FFFFFFFFFFFFFFF) // 8 // L:
            raise MemoryError(f"forward mode needs {n} x {L} tangents: more bytes than "
                              "can be addressed")
        n_bytes = <size_t>n * <size_t>L * sizeof(double)
        if n_bytes > (1 << 30) and n_bytes > machine_memory():
            raise MemoryError(f"forward mode needs {n_bytes:,} bytes for {L} lanes x "
                              f"{n} nodes of tangents, more than this machine's memory")
        try:
            tangents = <double*>malloc(n_bytes if n_bytes else 1)
            if tangents == NULL:
                raise MemoryError(f"forward mode needs {n_bytes:,} bytes for {L} lanes x "
                                  f"{n} nodes of tangents")
            scratch = <double*>malloc(2 * (L if L else 1) * sizeof(double))
            lo_of = <int32_t*>malloc((n if n else 1) * sizeof(int32_t))
            hi_of = <int32_t*>malloc((n if n else 1) * sizeof(int32_t))
            first_seed = <int32_t*>calloc(n if n else 1, sizeof(int32_t))
            next_seed = <int32_t*>calloc(n_in, sizeof(int32_t))
            seed_lo = <int32_t*>malloc(n_in * sizeof(int32_t))
            seed_hi = <int32_t*>malloc(n_in * sizeof(int32_t))
            if (scratch == NULL or lo_of == NULL or hi_of == NULL or first_seed == NULL or
                    next_seed == NULL or seed_lo == NULL or seed_hi == NULL):
                raise MemoryError("forward mode: no memory for its scratch arrays")
            # each input's nonzero seeds, hung on its node's position
            for j in range(n_in):
                if seeds == NULL:
                    lo = j
                    hi = j + 1
                else:
                    srow = &seeds[j * L]
                    lo = 0
                    while lo < L and srow[lo] == 0.0:
                        lo += 1
                    hi = L
                    while hi > lo and srow[hi - 1] == 0.0:
                        hi -= 1
                seed_lo[j] = <int32_t>lo
                seed_hi[j] = <int32_t>hi
                q = self.in_pos[j]
                if q >= 0 and hi > lo:
                    next_seed[j] = first_seed[q]
                    first_seed[q] = <int32_t>(j + 1)
            for p in range(n):
                if (p & 16383) == 16383:
                    # Ctrl-C stops a long sweep. A signal handler may run Python: the
                    # graph holds its nodes, and node_data is read anew after it
                    PyErr_CheckSignals()
                st = &self.steps[p]
                row = &tangents[p * L]
                lo = L
                hi = 0
                if st.op != OP_LEAF:
                    # the local partial derivatives, and which operands have one
                    da = 0.0
                    db = 0.0
                    which = op_chain(st.op, node_data[st.lhs], node_data[st.rhs],
                                     node_data[st.node], 1.0, &da, &db)
                    pl = st.plhs
                    pr = st.prhs
                    ra = (which & TO_LHS) != 0 and pl >= 0 and lo_of[pl] < hi_of[pl]
                    rb = (which & TO_RHS) != 0 and pr >= 0 and lo_of[pr] < hi_of[pr]
                    which = (TO_LHS if ra else 0) | (TO_RHS if rb else 0)
                    if ra:
                        lo = lo_of[pl]
                        hi = hi_of[pl]
                    if rb:
                        lo = min(lo, lo_of[pr])
                        hi = max(hi, hi_of[pr])
                    if which:
                        ta = lanes_over(tangents, lo_of, hi_of, pl, L, lo, hi,
                                        scratch) if ra else NULL
                        tb = lanes_over(tangents, lo_of, hi_of, pr, L, lo, hi,
                                        &scratch[L]) if rb else NULL
                        tangent_lanes(da, db, ta, tb, row, lo, hi, which)
                clo = lo
                chi = hi
                q = first_seed[p]
                if q:
                    # a seeded node: its seeds added to what its operands gave
                    while q:
                        lo = min(lo, seed_lo[q - 1])
                        hi = max(hi, seed_hi[q - 1])
                        q = next_seed[q - 1]
                    if chi <= clo:
                        clo = chi = hi
                    for j in range(lo, clo):
                        row[j] = 0.0
                    for j in range(chi, hi):
                        row[j] = 0.0
                    q = first_seed[p]
                    while q:
                        if seeds == NULL:
                            row[q - 1] += 1.0
                        else:
                            srow = &seeds[(q - 1) * L]
                            for j in range(seed_lo[q - 1], seed_hi[q - 1]):
                                row[j] += srow[j]
                        q = next_seed[q - 1]
                if hi <= lo:
                    lo = hi = 0
                lo_of[p] = <int32_t>lo
                hi_of[p] = <int32_t>hi
            for j in range(self.n_outputs):
                p = self.out_pos[j]
                row = &result[j * L]
                memset(row, 0, L * sizeof(double))
                memcpy(&row[lo_of[p]], &tangents[p * L + lo_of[p]],
                       (hi_of[p] - lo_of[p]) * sizeof(double))
        finally:
            free(tangents)
            free(scratch)
            free(lo_of)
            free(hi_of)
            free(first_seed)
            free(next_seed)
            free(seed_lo)
            free(seed_hi)
        return 0


cdef int tangent_sweep(list outs, list ins, const double* seeds, Py_ssize_t L,
                       double* result) except -1:
    """One sweep of a ForwardJacobian recorded for it (nodes not pinned: no
    Python code runs between recording and sweeping)."""
    cdef ForwardJacobian jac = ForwardJacobian.__new__(ForwardJacobian)
    jac.record(outs, ins, False)
    return jac.sweep(seeds, L, result)


def jvp(outputs, inputs, tangents):
    """The directional derivatives of `outputs` along `tangents`: a Jacobian-vector
    product by forward mode, in C, as ``torch.func.jvp``'s tangent part.

    Computes ``sum_i d(outputs[j]) / d(inputs[i]) * tangents[i]`` for each output,
    at the graph's current data, in one forward sweep over the outputs' graph;
    no ``.data`` or ``.grad`` changes. Each op's tangent rule is derived from its
    chain rule in the op table.

    Parameters
    ----------
    outputs : Value or sequence of Value
    inputs : Value or sequence of Value
        Any Values of the outputs' graph: leaves or intermediate results (an
        intermediate one's tangent is what its operands give plus its own, so the
        result is ``grad``'s Jacobian times the tangents). An input the outputs do
        not depend on contributes 0.
    tangents : sequence of float, or array of shape (len(inputs), L)
        One number per input (a direction), or L directions at once as the columns
        of a 2-d array: the L lanes are swept together. Non-finite numbers are
        allowed and propagate with IEEE arithmetic (as in PyTorch). A zero tangent
        is a structural zero: its input contributes nothing, not even
        ``inf * 0 = nan`` through an infinite partial derivative (as JAX's
        symbolic zeros).

    Returns
    -------
    tuple of float, or numpy.ndarray of shape (len(outputs), L)
        One tangent per output; an array for 2-d `tangents`.

    Raises
    ------
    ValueError
        Empty `outputs` or `inputs`, a wrong number of tangents, or a custom op
        in the graph (its Python ``_backward`` gives no tangents).
    TypeError
        Non-Values in `outputs` or `inputs`, non-numbers in `tangents`.
    MemoryError
        The lanes do not fit (the message gives the bytes wanted).

    Examples
    --------
    >>> x, y = Value(2.0), Value(3.0)
    >>> z = x * y + x.tanh()
    >>> jvp(z, [x, y], [1.0, 0.0])           # dz/dx = y + 1 - tanh(x)**2
    (3.0706508248531645,)
    >>> jvp([z, x * x], [x, y], [1.0, 2.0])  # along (1, 2)
    (7.070650824853164, 4.0)
    """
    import numpy as np
    cdef list outs = values_of(outputs, "outputs")
    cdef list ins = values_of(inputs, "inputs")
    cdef Py_ssize_t n_in = len(ins), n_out = len(outs), L
    cdef bint lanes = isinstance(tangents, np.ndarray) and tangents.ndim == 2
    if lanes:
        seeds = checked_tangents(tangents, "tangents")
        if seeds.shape[0] != n_in:
            raise ValueError(f"tangents has {seeds.shape[0]} rows for {n_in} inputs")
    else:
        if isinstance(inputs, Value) and is_number(tangents):
            tangents = [tangents]
        if isinstance(tangents, (str, bytes)) or not hasattr(tangents, "__len__"):
            raise TypeError(f"tangents must be a sequence of numbers, not "
                            f"{type(tangents).__name__}")
        if len(tangents) != n_in:
            raise ValueError(f"{len(tangents)} tangents for {n_in} inputs")
        seeds = np.array([to_double(x, "a tangent") for x in tangents],
                         dtype=np.float64).reshape(n_in, 1)
    L = seeds.shape[1]
    out = np.empty((n_out, L), dtype=np.float64)
    cdef const double[:, ::1] s = seeds
    cdef double[:, ::1] r = out
    if L:
        tangent_sweep(outs, ins, &s[0, 0], L, &r[0, 0])
    if lanes:
        return out
    return tuple(out[:, 0].tolist())


cdef object checked_tangents(object arr, str what):
    """A 2-d array of real numbers as a C-contiguous float64 array."""
    import numpy as np
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be real numbers, not an array of {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def jacfwd(outputs, inputs):
    """The Jacobian of `outputs` with respect to `inputs`, by forward mode: one
    tangent lane per input, all swept together in C (as ``torch.func.jacfwd``).

    The primal data are the graph's, read once per node for every lane; a node
    only some inputs are below carries only their lanes, so a sparse Jacobian
    costs about its nonzeros. Applied to a gradient built with
    ``grad(..., create_graph=True)`` it gives the Hessian (forward over reverse,
    as :func:`autograd.functional.hessian` does).

    Parameters
    ----------
    outputs : Value or sequence of Value
    inputs : Value or sequence of Value
        Any Values of the outputs' graph (see :func:`jvp`); a column is 0 for an
        input the outputs do not depend on.

    Returns
    -------
    numpy.ndarray of shape (len(outputs), len(inputs))
        ``J[j, i] = d outputs[j] / d inputs[i]``, equal to :func:`grad`'s within
        float rounding.

    Raises
    ------
    ValueError, TypeError, MemoryError
        As :func:`jvp`.

    Examples
    --------
    >>> x, y = Value(2.0), Value(3.0)
    >>> jacfwd([x * y, x + y ** 2], [x, y])
    array([[3., 2.],
           [1., 6.]])
    """
    import numpy as np
    cdef list outs = values_of(outputs, "outputs")
    cdef list ins = values_of(inputs, "inputs")
    cdef Py_ssize_t n_in = len(ins)
    out = np.empty((len(outs), n_in), dtype=np.float64)
    cdef double[:, ::1] r = out
    tangent_sweep(outs, ins, NULL, n_in, &r[0, 0])
    return out
