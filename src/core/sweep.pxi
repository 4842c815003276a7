# =============================================================================
# Topological order and the backward loop
# =============================================================================

# A sweep orders the nodes reachable from a root, operands before results: an
# iterative depth-first search (an explicit stack, ~i marking "the operands of i
# are done"), whose order follows the graph's structure and so stays close in
# memory. A node is marked with the sweep's number when it is expanded, so
# nothing needs unmarking afterwards.

cdef uint32_t sweep_number = 0

# The sweep's stack and order live from one sweep to the next: fresh multi-MB
# buffers would be new pages, and page faults, on every backward(). A sweep that
# starts while another runs (a finalizer run by the cycle collector during a
# custom op's lookup can call backward()) gets buffers of its own.
cdef node_t* sweep_stack = NULL
cdef node_t* sweep_order = NULL
cdef Py_ssize_t sweep_stack_cap = 0
cdef Py_ssize_t sweep_order_cap = 0
cdef bint sweep_busy = False


cdef int reserve(node_t** buf, Py_ssize_t* cap, Py_ssize_t needed, str what) except -1:
    """Grow a scratch buffer to at least `needed` entries (doubling)."""
    if needed <= cap[0]:
        return 0
    cdef Py_ssize_t new_cap = max(needed, 2 * cap[0], 1024)
    cdef node_t* new_buf = <node_t*>realloc(buf[0], new_cap * sizeof(node_t))
    if new_buf == NULL:
        raise_no_memory(what, new_cap, sizeof(node_t))
    buf[0] = new_buf
    cap[0] = new_cap
    return 0


cdef int raise_no_memory(str what, Py_ssize_t n, size_t item_size) except -1:
    raise MemoryError(f"cannot allocate {what} for {n} nodes "
                      f"({n * <double>item_size / 2**20:.1f} MB)")


cdef void drop_scratch_buffers() noexcept:
    """Free the sweep's buffers when they are larger than the arena (arena_trim)."""
    global sweep_stack, sweep_order, sweep_stack_cap, sweep_order_cap
    if sweep_order_cap > capacity:
        free(sweep_order)
        sweep_order = NULL
        sweep_order_cap = 0
    if sweep_stack_cap > capacity:
        free(sweep_stack)
        sweep_stack = NULL
        sweep_stack_cap = 0


cdef Py_ssize_t sweep(node_t root, bint backprop, node_t** order_out, bint pin=False) except -1:
    """Order the nodes reachable from root, operands first; with `backprop`, then
    apply every node's chain rule in reverse order (graphs without Python code).

    Returns how many nodes there are. If `order_out` is not NULL, it receives
    the order, a malloc'ed array that the caller frees.

    With `pin` (needed when a custom op is reachable: reading its children may
    run user code, which may drop them), every node holds a reference of the
    sweep from the moment it is pushed, so that no node the sweep holds can be
    freed or reused; the order keeps those references if `order_out` is given
    (the caller drops them), else they are dropped on return.
    """
    global sweep_busy
    cdef node_t* own_stack = NULL
    cdef node_t* own_order = NULL
    cdef Py_ssize_t own_stack_cap = 0, own_order_cap = 0
    if sweep_busy:
        try:
            return sweep_into(&own_stack, &own_stack_cap, &own_order, &own_order_cap,
                              root, backprop, order_out, pin)
        finally:
            free(own_stack)
            free(own_order)
    sweep_busy = True
    try:
        return sweep_into(&sweep_stack, &sweep_stack_cap, &sweep_order, &sweep_order_cap,
                          root, backprop, order_out, pin)
    finally:
        sweep_busy = False


cdef tuple sweep_children(node_t i):
    """A custom op's `_children` tuple as stored (any objects), read without
    calling out: `dict.get` would compare a colliding non-str key of its
    __dict__ with ==, which is user code."""
    cdef PyObject* h = live_handle(i)
    cdef PyObject* key
    cdef PyObject* value
    cdef Py_ssize_t pos = 0
    if h == NULL:
        return ()
    state = state_of(<Value>h)
    while PyDict_Next(state, &pos, &key, &value):
        if PyUnicode_CheckExact(<object>key) and <str>key == "_children":
            return <tuple>value if type(<object>value) is tuple else ()
    return ()


cdef void unpin_all(node_t* nodes, Py_ssize_t n) noexcept:
    """Drop one reference on each of n nodes (~i entries of a stack count as i)."""
    cdef Py_ssize_t k
    for k in range(n):
        node_decref(nodes[k] if nodes[k] >= 0 else ~nodes[k])


cdef Py_ssize_t sweep_into(node_t** stack_buf, Py_ssize_t* stack_cap_ptr, node_t** order_buf,
                           Py_ssize_t* order_cap_ptr, node_t root, bint backprop,
                           node_t** order_out, bint pin) except -1:
    global sweep_number
    cdef Py_ssize_t top = 0, n = 0, k, c, n_kids
    sweep_number += 1
    if sweep_number == 0:               # wrapped after 2**32 sweeps: forget old marks
        for k in range(n_used):
            arena[k].mark = 0
        sweep_number = 1
    cdef uint32_t mark = sweep_number
    # every reachable node enters the order once: n_live bounds it
    reserve(order_buf, order_cap_ptr, n_live + 1, "a graph sweep's order")
    reserve(stack_buf, stack_cap_ptr, 1024, "a graph sweep's stack")
    cdef node_t* stack = stack_buf[0]
    cdef node_t* order = order_buf[0]
    cdef node_t i, child, lhs, rhs
    cdef Node* node
    cdef tuple kids
    if pin:
        node_pin(root)
    stack[0] = root
    top = 1
    try:
        while top:
            # an entry leaves the stack only once handled: if anything raises,
            # the stack and the order hold exactly the pinned nodes
            i = stack[top - 1]
            if i < 0:                       # all operands of ~i are in the order
                if n == order_cap_ptr[0]:   # only if a finalizer grew a custom op's children
                    reserve(order_buf, order_cap_ptr, n + 1, "a graph sweep's order")
                    order = order_buf[0]
                order[n] = ~i
                n += 1
                top -= 1
                continue
            node = &arena[i]
            if node.mark == mark:           # pushed by two results: the first one placed it
                top -= 1
                if pin:
                    arena[i].refs -= 1      # never the last: the first push holds one
                continue
            if top + 2 > stack_cap_ptr[0]:
                reserve(stack_buf, stack_cap_ptr, top + 2, "a graph sweep's stack")
                stack = stack_buf[0]
            node = &arena[i]
            node.mark = mark
            if node.op == OP_CUSTOM:
                if not pin:
                    # FLAG_MANAGED marks every node above a custom op, and a sweep
                    # from a managed root pins: reaching one here is a bug of the
                    # core, which its children's lookup (user code) could make a
                    # use-after-free
                    raise SystemError(f"autograd core: custom op node {i} is below a "
                                      "node without FLAG_MANAGED")
                stack[top - 1] = ~i
                kids = sweep_children(i)    # may create the __dict__: the collector may run
                if sweep_number != mark:
                    raise RuntimeError("backward() ran inside another backward() (from a "
                                       "finalizer): the graph's order is lost")
                n_kids = len(kids)
                reserve(stack_buf, stack_cap_ptr, top + n_kids, "a graph sweep's stack")
                stack = stack_buf[0]
                for c in range(n_kids):
                    if not isinstance(kids[c], Value):  # a C type check: calls out to nothing
                        continue
                    child = (<Value>kids[c]).idx
                    if child and arena[child].mark != mark:
                        if pin:
                            node_pin(child)
                        stack[top] = child
                        top += 1
                continue
            lhs = node.lhs if node.lhs and arena[node.lhs].mark != mark else 0
            # a ** c's hidden exponent is no Value of the graph (micrograd's _prev is
            # {a}), and neither replay nor backward has anything to do with it
            rhs = node.rhs if (node.rhs and arena[node.rhs].mark != mark and
                               node.op != OP_POW_CONST) else 0
            if lhs == 0 and rhs == 0:       # a leaf, or its operands are done: place it now
                if n == order_cap_ptr[0]:
                    reserve(order_buf, order_cap_ptr, n + 1, "a graph sweep's order")
                    order = order_buf[0]
                order[n] = i
                n += 1
                top -= 1
                continue
            stack[top - 1] = ~i
            if rhs:
                if pin:
                    node_pin(rhs)
                stack[top] = rhs
                top += 1
            if lhs:
                if pin:
                    node_pin(lhs)
                stack[top] = lhs
                top += 1
    except BaseException:
        if pin:
            unpin_all(stack_buf[0], top)
            unpin_all(order_buf[0], n)
        raise
    if backprop:
        for k in range(n - 1, -1, -1):
            op_backward(order[k])
    if order_out != NULL:
        order_out[0] = <node_t*>malloc((n if n else 1) * sizeof(node_t))
        if order_out[0] == NULL:
            if pin:
                unpin_all(order, n)
            raise_no_memory("a graph's order", n, sizeof(node_t))
        memcpy(order_out[0], order, n * sizeof(node_t))
    elif pin:
        unpin_all(order, n)
    return n


cdef object replay_forward(node_t i):
    """What recomputes custom op node i in a replay: its `_forward`, or None for
    one without children (a leaf to replay). ValueError if it has children and
    no callable `_forward`: its data would go stale."""
    cdef PyObject* h = live_handle(i)
    if h == NULL:
        return None
    v = <Value>h
    fwd = state_of(v).get("_forward")
    if callable(fwd):
        return fwd
    if custom_children(v):
        raise ValueError(
            f"cannot replay custom op {v._op!r}: its _backward knows nothing of "
            "forward. Give its Value a `_forward` callable that recomputes "
            "out.data from its children, or rebuild the graph each step")
    return None


# Graph replay's loops for graphs without Python code (no custom op, no hook).
# A recorded program is mostly a chain: a node's operand is often the node just
# computed (the pendulum's every node is), so the loops keep the values they
# last stored in registers and read them from there instead of from the arena:
# a load of a value just stored waits for the store (store-to-load forwarding,
# 4 to 8 cycles on x86-64 cores), on the chain's critical path at every node. The
# values read are the arena's bit for bit (the same doubles, nothing else
# writes the arena during the loop): exact by construction. The formulas are
# op_forward's and op_chain's, called as every loop calls them.

cdef extern from *:
    """
    /* Graph replay's loops call op_forward / op_chain for any op: `flatten`
       inlines the op table's math rows into them (math_forward, math_chain),
       sparing a call and the results' round trip through memory at each node
       of a math function. `noinline` keeps each loop a function of its own:
       inlined into its caller (Graph.forward's wrapper), its calls were no
       longer flattened. */
    #if defined(__GNUC__)
    #define REPLAY_LOOP __attribute__((flatten, noinline))
    #else
    #define REPLAY_LOOP
    #endif
    struct __pyx_t_8autograd_5_core_Step;
    static Py_ssize_t __pyx_f_8autograd_5_core_replay_forward_steps(
        struct __pyx_t_8autograd_5_core_Step const *, Py_ssize_t, int *) REPLAY_LOOP;
    static void __pyx_f_8autograd_5_core_replay_backward_steps(
        struct __pyx_t_8autograd_5_core_Step const *, Py_ssize_t) REPLAY_LOOP;
    """


cdef Py_ssize_t replay_forward_steps(const Step* steps, Py_ssize_t n,
                                     int* err_out) noexcept nogil:
    """Graph.forward's loop (no custom op among the steps): each step's data
    from its operands, its grad zeroed. Returns n, or the index of the first
    step whose op raises eagerly (not FLAG_IEEE), its error in `err_out`,
    that step and the following ones left undone."""
    cdef double* data = node_data
    cdef double* grads = node_grad
    cdef const Step* st
    cdef node_t last = -1              # the node stored last and its data
    cdef double last_data = 0.0, a, b, out
    cdef int err = ERR_NONE
    cdef Py_ssize_t k
    for k in range(n):
        st = &steps[k]
        a = last_data if st.lhs == last else data[st.lhs]
        b = last_data if st.rhs == last else data[st.rhs]
        out = op_forward(st.op, a, b, &err)
        if err:
            if not st.ieee:
                err_out[0] = err
                return k
            err = ERR_NONE
        data[st.out] = out
        grads[st.out] = 0.0
        last = st.out
        last_data = out
    return n


cdef void replay_backward_steps(const Step* steps, Py_ssize_t n) noexcept nogil:
    """Graph.backward's loop (no custom op, no hook among the steps): every
    step's chain rule, last step first, as op_backward_step applies it. The
    grads the previous step stored stay in registers for the next step's read
    of its own grad (in a chain, always one of them)."""
    cdef double* data = node_data
    cdef double* grads = node_grad
    cdef const Step* st
    # the grads the previous step stored: its lhs's, then its rhs's (-1: none)
    cdef node_t last_lhs = -1, last_rhs = -1
    cdef double last_lhs_grad = 0.0, last_rhs_grad = 0.0, g, da, db
    cdef int to
    cdef Py_ssize_t k
    for k in range(n - 1, -1, -1):
        st = &steps[k]
        if st.out == last_rhs:          # stored after lhs's: the newer if they are one node
            g = last_rhs_grad
        elif st.out == last_lhs:
            g = last_lhs_grad
        else:
            g = grads[st.out]
        da = 0.0
        db = 0.0
        to = op_chain(st.op, data[st.lhs], data[st.rhs], data[st.out], g, &da, &db)
        last_lhs = -1
        last_rhs = -1
        if to & TO_LHS:
            last_lhs_grad = grads[st.lhs] + da
            grads[st.lhs] = last_lhs_grad
            last_lhs = st.lhs
        if to & TO_RHS:
            last_rhs_grad = grads[st.rhs] + db
            grads[st.rhs] = last_rhs_grad
            last_rhs = st.rhs


@cython.final
cdef class Graph:
    """A recorded graph: the nodes reachable from a root, operands first.

    Replay it to recompute every node from the current leaves and backpropagate,
    all in C, without rebuilding anything from Python. Valid while the same ops
    run in the same order: no Python control flow that depends on the data
    (``relu``'s branch is part of its op and is fine).

    Parameters
    ----------
    root : Value
        The output of the graph, usually a loss.

    Examples
    --------
    >>> x = Value(2.0)
    >>> y = x * x + 1
    >>> g = Graph(y)
    >>> x.data = 3.0
    >>> g.forward()        # y.data is now 10.0
    >>> g.backward()       # x.grad += 6.0
    >>> y.data, x.grad
    (10.0, 6.0)
    """

    def __cinit__(self):
        self.order = NULL
        self.steps = NULL
        self.n_steps = 0
        self.size = 0
        self.root = 0
        self.has_python = False
        self.has_gather = False
        self.pinned = False

    def __init__(self, Value root not None):
        if root.idx == 0:
            raise_uninitialised()
        if self.order != NULL:
            raise RuntimeError("Graph.__init__ was already called: make a new Graph")
        self.record(root.idx, True)
        self.check_replayable()

    def __dealloc__(self):
        self.release()

    cdef void release(self) noexcept:
        cdef Py_ssize_t k
        if self.order != NULL:
            if self.pinned:
                for k in range(self.size):
                    node_decref(self.order[k])
            free(self.order)
            self.order = NULL
        free(self.steps)
        self.steps = NULL
        self.n_steps = 0
        self.has_gather = False
        self.size = 0
        self.pinned = False

    cdef int record(self, node_t root, bint keep) except -1:
        """Order the nodes reachable from root, operands first.

        The nodes are pinned (a reference each) if `keep`, or if Python code
        (a custom op's hook) will run while the order is walked: it could drop
        the last reference to a node of the order.
        """
        cdef node_t* order = NULL
        cdef bint has_python = arena[root].flags & FLAG_MANAGED
        # pinned as the sweep goes: a custom op's lookup may run user code
        cdef Py_ssize_t n = sweep(root, False, &order, keep or has_python), k
        cdef PyObject* h
        self.release()
        self.order = order
        self.size = n
        self.root = root
        self.has_python = has_python
        self.pinned = keep or has_python
        self.steps = <Step*>malloc((n if n else 1) * sizeof(Step))
        if self.steps == NULL:
            self.release()
            raise_no_memory("a Graph's steps", n, sizeof(Step))
        for k in range(n):
            if arena[order[k]].op != OP_LEAF:
                self.steps[self.n_steps].out = order[k]
                self.steps[self.n_steps].lhs = arena[order[k]].lhs
                self.steps[self.n_steps].rhs = arena[order[k]].rhs
                self.steps[self.n_steps].op = arena[order[k]].op
                self.steps[self.n_steps].ieee = arena[order[k]].flags & FLAG_IEEE
                self.has_gather |= op_gathers(arena[order[k]].op)
                self.n_steps += 1
        # a custom op's rules live in its Value's __dict__: keep those Values too
        self.custom_values = []
        if self.has_python:
            for k in range(n):
                h = live_handle(order[k])
                if h != NULL and arena[order[k]].flags & FLAG_MANAGED:
                    self.custom_values.append(<Value>h)
        return 0

    cdef int check_replayable(self) except -1:
        cdef Py_ssize_t k
        cdef node_t i
        cdef PyObject* h
        if not self.has_python:
            return 0
        for k in range(self.size):
            i = self.order[k]
            if arena[i].op == OP_CUSTOM:
                replay_forward(i)
        return 0

    cdef int run_backward(self) except -1:
        """Apply every node's chain rule, results before operands (reverse order)."""
        cdef Py_ssize_t k
        cdef Step* st
        cdef PyObject* h
        if not self.has_python:
            replay_backward_steps(self.steps, self.n_steps)
            return 0
        for k in range(self.n_steps - 1, -1, -1):
            st = &self.steps[k]
            if self.has_python and arena[st.out].flags & FLAG_HOOK:
                h = live_handle(st.out)
                hook = python_hook(<Value>h) if h != NULL else None
                if hook is not None:
                    hook()          # may build or free Values: the arena may move
                    continue
            op_backward_step(st.op, st.out, st.lhs, st.rhs)
        return 0

    def forward(self):
        """Recompute every non-leaf node's data from its operands, in order, and
        zero its grad, so that the next backward gives a fresh graph's gradients.

        Leaves (parameters, inputs, constants) keep their data and grads.
        Raises the error the op raises eagerly (ZeroDivisionError, ...), except
        in nodes made by ``grad(..., create_graph=True)``: like ``backward()``,
        they compute with IEEE semantics (the grad of ``x ** 0.5`` at 0 is inf).
        """
        cdef Py_ssize_t k
        cdef Step* st
        cdef PyObject* h
        cdef int err = ERR_NONE
        cdef double data
        if not self.has_python and not self.has_gather:
            k = replay_forward_steps(self.steps, self.n_steps, &err)
            if k < self.n_steps:
                raise_forward_error(err, self.steps[k].op)
            return
        for k in range(self.n_steps):
            st = &self.steps[k]
            if st.op == OP_CUSTOM:
                # looked up on every pass: it may have been removed since recording
                fwd = replay_forward(st.out)
                if fwd is not None:
                    fwd()           # may move the arena
                    node_grad[st.out] = 0.0
                continue
            if op_gathers(st.op):      # an n-ary root: from its spine's operands
                data = gather_forward(st.op, st.lhs, &err)
            else:
                data = op_forward(st.op, node_data[st.lhs], node_data[st.rhs], &err)
            if err:
                if not st.ieee:
                    raise_forward_error(err, st.op)
                err = ERR_NONE
            node_data[st.out] = data
            node_grad[st.out] = 0.0

    def backward(self):
        """root.grad = 1, then every node's chain rule in reverse order (C loop)."""
        if self.size == 0:
            raise ValueError("this Graph was released")
        node_grad[self.root] = 1.0
        self.run_backward()

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"Graph({self.size} nodes)"


def topological_order(Value root not None):
    """The Values that computed `root`, operands before results: ``root.backward()``
    applies their chain rules (``_backward``) in the reverse of this order.

    The very order of ``backward()`` and of ``Graph(root)`` (the same sweep), for
    any graph, custom ops included. Used by ``autograd.viz.watch_backward`` to
    show backpropagation step by step. Makes a Python object for each node: a
    teaching and debugging tool, not a fast path.

    Returns
    -------
    list of Value

    Examples
    --------
    >>> a = Value(2.0); b = a * 3; c = b + a
    >>> [v.data for v in topological_order(c)]   # 3 is a leaf, as in micrograd
    [2.0, 3.0, 6.0, 8.0]
    """
    if root.idx == 0:
        raise_uninitialised()
    cdef Graph g = Graph.__new__(Graph)
    g.record(root.idx, True)                # pinned: making handles cannot free a node
    cdef Py_ssize_t k
    return [handle_of(g.order[k]) for k in range(g.size)]
