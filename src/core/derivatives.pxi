# =============================================================================
# Derivatives of any order: grad
# =============================================================================
# grad() walks the sweep's order in reverse, as backward() does. Without
# create_graph it runs backward()'s own loop (op_backward_step, a custom op's
# _backward) on the graph's grads, saved before and restored after, so no
# .grad changes and the numbers are backward()'s bit for bit. With
# create_graph it keeps for each reached node its adjoint, the node holding
# d(outputs)/d(node), and builds each op's chain rule from nodes (op_emit, in
# the op table): the results are ordinary graphs, differentiable again.

cdef enum:
    TAKE_LHS = 1    # emit(): the new node takes over the caller's reference on its lhs
    TAKE_RHS = 2    # ... on its rhs

# Bits of a grad pass's per-node `state` array.
cdef enum:
    ST_INPUT = 1        # one of the inputs
    ST_IN_ORDER = 2     # reachable from the outputs
    ST_NEED = 4         # an input is at or below it: its adjoint is wanted
    ST_JOIN = 8         # a temporary node joining several outputs into one root

# Most nodes op_emit makes for one op (a ** b: 5 for each operand, 1 to add each).
cdef Py_ssize_t EMIT_MAX = 12

# A grad pass's scratch, indexed by node as the arena is: each node's `state`
# bits and, with create_graph, its adjoint `adj` (0: none yet). All zero between
# passes: a pass clears the entries it set (its order's nodes and its inputs),
# so that it costs O(its graph); a calloc of the arena's size per pass made a
# small grad() pay for the largest graph the process had held. Kept from one
# pass to the next, as the sweep's buffers, and dropped with them when the
# arena shrinks below it. A grad() that starts while another one runs (from a
# custom op's _backward or a finalizer) gets zeroed arrays of its own.
cdef node_t* grad_scratch = NULL    # grad_scratch_cap adjoints, then as many state bytes
cdef Py_ssize_t grad_scratch_cap = 0
cdef bint grad_busy = False


cdef void* take_grad_scratch(Py_ssize_t* cap, bint* shared) except NULL:
    """Zeroed scratch for a pass over the nodes below n_used: cap[0] adjoints,
    then cap[0] state bytes. Give it back with give_back_grad_scratch."""
    global grad_scratch, grad_scratch_cap, grad_busy
    cdef Py_ssize_t n = n_used
    cdef void* block
    if grad_busy:                       # a pass inside a pass: its own arrays
        block = calloc(n, sizeof(node_t) + 1)
        if block == NULL:
            raise_no_memory("a grad() pass's scratch", n, sizeof(node_t) + 1)
        cap[0] = n
        shared[0] = False
        return block
    if grad_scratch_cap < n:
        # all zero: nothing to keep; the arena's capacity, so that it grows as rarely
        free(grad_scratch)
        grad_scratch = NULL
        grad_scratch_cap = 0
        block = calloc(capacity, sizeof(node_t) + 1)
        if block == NULL:
            raise_no_memory("a grad() pass's scratch", capacity, sizeof(node_t) + 1)
        grad_scratch = <node_t*>block
        grad_scratch_cap = capacity
    grad_busy = True
    cap[0] = grad_scratch_cap
    shared[0] = True
    return grad_scratch


cdef void give_back_grad_scratch(void* block, bint shared) noexcept:
    """The end of a pass; its entries are all zero again."""
    global grad_busy
    if shared:
        grad_busy = False
    else:
        free(block)


cdef void drop_grad_scratch() noexcept:
    """Free the shared scratch when it is larger than the arena (arena_trim)."""
    global grad_scratch, grad_scratch_cap
    if grad_scratch_cap > capacity and not grad_busy:
        free(grad_scratch)
        grad_scratch = NULL
        grad_scratch_cap = 0


cdef inline node_t emit(uint8_t op, node_t a, node_t b, int take,
                        uint8_t flags=0) except 0:
    """A node made by differentiation: its data is the IEEE value (FLAG_IEEE),
    never an error. `take` hands the caller's references on a and b to it.
    The caller makes room first (ensure_slots), so that an op's nodes are made
    whole or not at all."""
    cdef int err = ERR_NONE
    cdef double data = op_forward(op, node_data[a], node_data[b], &err)
    cdef node_t t = node_alloc(op, data, a, b, flags | FLAG_IEEE)
    if take & TAKE_LHS:
        arena[a].refs -= 1          # t holds it now: never reaches 0 here
    if take & TAKE_RHS:
        arena[b].refs -= 1
    return t


cdef inline int accumulate(node_t* adj, node_t target, node_t c, bint negate,
                           bint owned) except -1:
    """adj[target] += c (-= c if `negate`), op_backward_step's `+=` as nodes.

    The first contribution is the adjoint itself (negated for -=), each later
    one is added with an OP_ADD (OP_SUB), in the order backward() adds them.
    Takes over the caller's reference on c if `owned`.
    """
    cdef node_t old = adj[target]
    if not owned:
        node_pin(c)
    if old == 0:
        adj[target] = emit(OP_NEG, c, 0, TAKE_LHS) if negate else c
    else:
        adj[target] = emit(OP_SUB if negate else OP_ADD, old, c, TAKE_LHS | TAKE_RHS)
    return 0


cdef list values_of(object xs, str what):
    """`xs` (a Value or a sequence of them) as a non-empty list of Values."""
    seq = [xs] if isinstance(xs, Value) else list(xs)
    if not seq:
        raise ValueError(f"{what} is empty")
    for x in seq:
        if not isinstance(x, Value):
            raise TypeError(f"{what} must be Values, not {type(x).__name__}")
        if (<Value>x).idx == 0:
            raise_uninitialised()
    return seq


cdef list weights_of(object grad_outputs, Py_ssize_t n, bint single):
    """grad_outputs as a list of n weights, each a float or a Value."""
    if grad_outputs is None:
        return [1.0] * n
    if single and (isinstance(grad_outputs, Value) or is_number(grad_outputs)):
        grad_outputs = [grad_outputs]
    ws = list(grad_outputs)
    if len(ws) != n:
        raise ValueError(f"grad_outputs has {len(ws)} entries for {n} outputs")
    for k in range(n):
        w = ws[k]
        if w is None:
            ws[k] = 1.0
        elif isinstance(w, Value):
            if (<Value>w).idx == 0:
                raise_uninitialised()
        else:
            ws[k] = to_double(w, "a grad_output")
    return ws


cdef node_t join_outputs(list outs) except 0:
    """One root for a sweep over several outputs (Values): a chain of temporary
    ADD nodes over them (ST_JOIN in a pass: no chain rule of the user's graph),
    marked FLAG_MANAGED if any output is. The caller owns the top node and drops
    it (node_decref) when the pass is done."""
    cdef Py_ssize_t j
    cdef uint8_t managed = 0
    cdef node_t root = (<Value>outs[0]).idx, t
    for j in range(len(outs)):
        managed |= arena[(<Value>outs[j]).idx].flags & FLAG_MANAGED
    ensure_slots(len(outs) - 1)
    node_pin(root)
    for j in range(1, len(outs)):
        t = node_alloc(OP_ADD, 0.0, root, (<Value>outs[j]).idx, managed)
        node_decref(root)           # t holds it now
        root = t
    return root


def grad(outputs, inputs, grad_outputs=None, *, create_graph=False, allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as ``torch.autograd.grad``.

    Computes ``sum_j grad_outputs[j] * d(outputs[j]) / d(input)`` for each input,
    in C, without reading or changing any ``.grad``.

    Parameters
    ----------
    outputs : Value or sequence of Value
    inputs : Value or sequence of Value
        Any Values of the outputs' graph: leaves or intermediate results.
    grad_outputs : float, Value or sequence of them, optional
        The weight of each output, 1.0 by default (None entries too). With
        `create_graph`, a Value weight becomes part of the result's graph:
        ``grad(grad(y, xs, create_graph=True), xs, grad_outputs=v)`` is a
        Hessian-vector product.
    create_graph : bool, default False
        Make each result the root of a graph of ordinary nodes (its chain rule
        built from ops), so that it can be differentiated again, replayed by
        `Graph` and drawn. Otherwise the results are new leaves.
    allow_unused : bool, default False
        Give None for an input the outputs do not depend on, instead of raising.

    Returns
    -------
    tuple of Value
        One per input (None for an unused one, with `allow_unused`).

    Raises
    ------
    ValueError
        An input is not in the outputs' graph (without `allow_unused`); with
        `create_graph`, the graph has a custom op, or a Value of `grad_outputs`
        is computed by one: its Python ``_backward`` adds numbers, not Values,
        so it cannot be differentiated again.

    Notes
    -----
    The numbers are ``backward()``'s, bit for bit, with or without
    `create_graph`: the nodes built compute op_backward_step's formulas in the
    same association. They compute with IEEE semantics, as ``backward()``
    does, also when replayed by `Graph` (the grad of ``x ** 0.5`` at 0 is
    inf). Second derivatives follow PyTorch: relu's is 0, d(a**0)/da is 0.

    Examples
    --------
    >>> x = Value(3.0)
    >>> y = x ** 3
    >>> (dy,) = grad(y, x, create_graph=True)     # 3 x**2, a graph
    >>> (d2y,) = grad(dy, x)                      # 6 x, a number
    >>> dy.data, d2y.data
    (27.0, 18.0)
    """
    cdef bint single = isinstance(outputs, Value)
    cdef list outs = values_of(outputs, "outputs")
    cdef list ins = values_of(inputs, "inputs")
    cdef list weights = weights_of(grad_outputs, len(outs), single)
    cdef Py_ssize_t n_out = len(outs), j, k
    cdef node_t root = (<Value>outs[0]).idx, t
    cdef uint8_t* state = NULL
    cdef node_t* adj = NULL
    cdef void* scratch = NULL
    cdef Py_ssize_t scratch_cap = 0
    cdef bint shared = False
    cdef Graph g = Graph.__new__(Graph)
    if create_graph:
        refuse_custom_weights(weights)
    if n_out > 1:
        root = join_outputs(outs)
    try:
        g.record(root, False)           # pins the nodes if a custom op's code will run
        scratch = take_grad_scratch(&scratch_cap, &shared)
        adj = <node_t*>scratch
        state = <uint8_t*>(adj + scratch_cap)
        t = root
        for j in range(n_out - 1):
            state[t] |= ST_JOIN
            t = arena[t].lhs
        for k in range(g.size):
            state[g.order[k]] |= ST_IN_ORDER
        for k in range(len(ins)):
            t = (<Value>ins[k]).idx
            state[t] |= ST_INPUT
            if not state[t] & ST_IN_ORDER and not allow_unused:
                raise ValueError(
                    f"input {k} is not in the graph of the outputs (they do not depend "
                    "on it); pass allow_unused=True to get None for it")
        if create_graph:
            if g.has_python:
                raise ValueError(
                    f"create_graph=True cannot differentiate through custom op "
                    f"{custom_op_name(g)!r}: its _backward adds numbers to .grad, not "
                    "Values. Build it from built-in ops, or use create_graph=False")
            return tuple(grad_graph(g, state, adj, outs, ins, weights))
        return tuple(grad_numbers(g, state, outs, ins, weights))
    finally:
        if scratch != NULL:
            # grad_graph zeroed the adjoints it set; the state bits are set on
            # the order's nodes and the inputs only
            for k in range(g.size):
                state[g.order[k]] = 0
            for x in ins:
                state[(<Value>x).idx] = 0
            give_back_grad_scratch(scratch, shared)
        g.release()
        if n_out > 1:
            node_decref(root)


cdef int refuse_custom_weights(list weights) except -1:
    """create_graph builds each Value weight into the gradient graph under
    built-in ops, which cannot run a custom op's Python _backward (nor keep its
    Value alive): a weight computed by one is refused, as a custom op in the
    outputs' graph is."""
    cdef Py_ssize_t k
    cdef Graph g
    for k in range(len(weights)):
        w = weights[k]
        if isinstance(w, Value) and arena[(<Value>w).idx].flags & FLAG_MANAGED:
            g = Graph.__new__(Graph)
            g.record((<Value>w).idx, False)
            raise ValueError(
                f"create_graph=True cannot build grad_outputs[{k}] into the gradient "
                f"graph: it is computed by custom op {custom_op_name(g)!r}, whose "
                "_backward adds numbers to .grad, not Values. Pass its number (.data) "
                "to use it as a constant, build it from built-in ops, or use "
                "create_graph=False")
    return 0


cdef str custom_op_name(Graph g):
    cdef Py_ssize_t k
    cdef PyObject* h
    for k in range(g.size - 1, -1, -1):
        if arena[g.order[k]].op == OP_CUSTOM:
            h = live_handle(g.order[k])
            return str(state_of(<Value>h).get("_op", '')) if h != NULL else ''
    return ''


cdef list grad_numbers(Graph g, uint8_t* state, list outs, list ins, list weights):
    """grad() without create_graph: backward()'s loop, on the graph's grads
    (saved, zeroed, and restored after), seeded with the weights."""
    cdef Py_ssize_t n = g.size, k, m = 0
    cdef node_t i
    cdef double* saved = <double*>malloc((n if n else 1) * sizeof(double))
    if saved == NULL:
        raise_no_memory("a grad() pass's saved grads", n, sizeof(double))
    # the join nodes carry no chain rule of the user's graph: out of the steps
    for k in range(g.n_steps):
        if not state[g.steps[k].out] & ST_JOIN:
            g.steps[m] = g.steps[k]
            m += 1
    g.n_steps = m
    cdef list found = [bool(state[(<Value>x).idx] & ST_IN_ORDER) for x in ins]
    cdef list numbers
    for k in range(n):
        saved[k] = node_grad[g.order[k]]
        node_grad[g.order[k]] = 0.0
    try:
        for k in range(len(outs)):
            w = weights[k]
            node_grad[(<Value>outs[k]).idx] += (
                node_data[(<Value>w).idx] if isinstance(w, Value) else <double>w)
        g.run_backward()            # a custom op's _backward may move the arena
        numbers = [node_grad[(<Value>x).idx] for x in ins]
    finally:
        for k in range(n):
            node_grad[g.order[k]] = saved[k]
        free(saved)
    return [new_leaf(numbers[k]) if found[k] else None for k in range(len(ins))]


cdef list grad_graph(Graph g, uint8_t* state, node_t* adj, list outs, list ins, list weights):
    """grad() with create_graph: the adjoints as nodes, built by op_emit in the
    reverse order (no Python runs: the graph has no custom op, the weights are
    plain). `adj` is zero on entry and on return."""
    cdef Py_ssize_t n = g.size, k
    cdef node_t* order = g.order
    cdef node_t i, gi, lhs, rhs, one = 0
    cdef uint8_t op, s
    # which adjoints are wanted: those of nodes with an input at or below them
    for k in range(n):
        i = order[k]
        s = state[i]
        op = arena[i].op
        if s & ST_INPUT or (not s & ST_JOIN and op != OP_LEAF and (
                state[arena[i].lhs] & ST_NEED or
                (op != OP_POW_CONST and state[arena[i].rhs] & ST_NEED))):
            state[i] = s | ST_NEED
    cdef list results = []
    try:
        ensure_slots(2 * len(outs) + 1)
        one = node_alloc(OP_LEAF, 1.0, 0, 0, 0)
        for k in range(len(outs)):
            i = (<Value>outs[k]).idx
            if not state[i] & ST_NEED:
                continue
            w = weights[k]
            if isinstance(w, Value):
                accumulate(adj, i, (<Value>w).idx, False, False)
            else:
                accumulate(adj, i, node_alloc(OP_LEAF, <double>w, 0, 0, 0), False, True)
        for k in range(n - 1, -1, -1):
            i = order[k]
            gi = adj[i]
            if gi == 0:             # no gradient reaches it (or it is a join node)
                continue
            op = arena[i].op
            if op != OP_LEAF:
                ensure_slots(EMIT_MAX)
                lhs = arena[i].lhs
                rhs = arena[i].rhs
                op_emit(op, i, lhs, rhs, gi, adj, state[lhs] & ST_NEED,
                        op != OP_POW_CONST and state[rhs] & ST_NEED, one)
            if not state[i] & ST_INPUT:
                adj[i] = 0          # complete and used: the pass lets go of it
                node_decref(gi)
        for x in ins:
            i = (<Value>x).idx
            if state[i] & ST_IN_ORDER and adj[i] == 0:
                # reached, but every path's chain rule is 0 (x ** 0, relu's step)
                ensure_slots(1)
                adj[i] = node_alloc(OP_LEAF, 0.0, 0, 0, 0)
        for x in ins:
            i = (<Value>x).idx
            results.append(handle_of(adj[i]) if adj[i] else None)
    finally:
        for k in range(n):
            i = order[k]
            if adj[i]:
                node_decref(adj[i])
                adj[i] = 0
        node_decref(one)
    return results


# =============================================================================
# Jacobians: one reverse sweep per output over one recorded order
# =============================================================================
# jacobian() records the outputs' graph once (joined under temporary ADD nodes,
# as grad() does), then for each output zeroes the order's grads, seeds the
# output with 1 and runs backward()'s loop (op_backward_step, a custom op's
# _backward) over the steps of the nodes that output reaches, results before
# operands; the inputs' grads are the Jacobian's row. A step the output does
# not reach is skipped, not run with a zero grad: 0 * inf would put a nan in a
# row whose output never sees that inf. The grads are saved first and
# restored after, so no .grad changes.


def jacobian(outputs, inputs, *, allow_unused=False, as_array=False):
    """The matrix of first derivatives of several outputs with respect to several inputs.

    ``J[i][j] = d(outputs[i]) / d(inputs[j])``, computed in C: the outputs'
    graph is recorded once, then swept backward once per output. No ``.grad``
    is read or changed.

    Parameters
    ----------
    outputs : Value or sequence of Value
        The functions to differentiate (one row each, also for a single Value).
    inputs : Value or sequence of Value
        Any Values of the outputs' graph (one column each): leaves or
        intermediate results, as for :func:`grad`.
    allow_unused : bool, default False
        Give a column of 0.0 for an input that no output depends on, instead of
        raising. An input that only some outputs depend on has 0.0 in the other
        rows either way.
    as_array : bool, default False
        Return a numpy array of shape ``(len(outputs), len(inputs))`` (float64)
        instead of a list of lists.

    Returns
    -------
    list of list of float, or numpy.ndarray
        One row per output, one column per input.

    Raises
    ------
    ValueError
        `outputs` or `inputs` is empty; an input is in no output's graph
        (without `allow_unused`).
    TypeError
        An entry of `outputs` or `inputs` is not a Value.

    See Also
    --------
    grad : one weighted sum of the outputs' gradients (a vector-Jacobian product).
    autograd.functional.jacobian : the same for a function of numbers, as
        ``torch.autograd.functional.jacobian``.

    Notes
    -----
    Row ``i`` is what ``grad(outputs, inputs, grad_outputs=e_i)`` gives (``e_i``
    one-hot) bit for bit, where the graph's values are finite: the same
    order, the same steps, the same sums. It equals ``grad(outputs[i],
    inputs)`` up to the order in which contributions reaching a node shared by
    several outputs are added (bit for bit when the outputs share only
    leaves). A custom op's Python ``_backward`` runs as in ``backward()``.
    Derivatives compute with IEEE semantics, as ``backward()`` does.

    Examples
    --------
    >>> x, y = Value(2.0), Value(3.0)
    >>> jacobian([x * y, x + y, x * x], [x, y])
    [[3.0, 2.0], [1.0, 1.0], [4.0, 0.0]]
    >>> jacobian(x * y, [x, y], as_array=True)
    array([[3., 2.]])
    """
    cdef list outs = values_of(outputs, "outputs")
    cdef list ins = values_of(inputs, "inputs")
    cdef Py_ssize_t n_out = len(outs)
    cdef node_t root = (<Value>outs[0]).idx
    cdef Graph g = Graph.__new__(Graph)
    if n_out > 1:
        root = join_outputs(outs)
    try:
        g.record(root, False)           # pins the nodes if a custom op's code will run
        rows = jacobian_rows(g, n_out - 1, outs, ins, allow_unused)
    finally:
        g.release()
        if n_out > 1:
            node_decref(root)
    if as_array:
        import numpy as np
        return np.array(rows, dtype=np.float64).reshape(n_out, len(ins))
    return rows


cdef inline Py_ssize_t position_in(node_t* order, Py_ssize_t n, node_t i) noexcept:
    """Where node i is in `order`, read from its grad while jacobian_rows keeps
    positions there; -1 if it is not in the order (its grad is then the user's)."""
    cdef double p = node_grad[i]
    cdef Py_ssize_t k
    if not (p >= 0.0 and p < <double>n):        # also false for nan
        return -1
    k = <Py_ssize_t>p
    return k if order[k] == i else -1


cdef list jacobian_rows(Graph g, Py_ssize_t n_join, list outs, list ins, bint allow_unused):
    """jacobian()'s rows: the graph's grads saved, one reverse pass per output
    over the steps it reaches, the grads restored."""
    cdef Py_ssize_t n = g.size, n_out = len(outs), n_in = len(ins)
    cdef Py_ssize_t k, m = 0, r, j, p, s
    cdef node_t* order = g.order
    cdef node_t t
    cdef Step* st
    cdef PyObject* h
    cdef uint8_t op
    cdef bint has_python = g.has_python
    # one block: saved grads (n), then node_t arrays: the kept steps' positions
    # (n), their operands' positions (2 n), the outputs' and inputs' positions
    cdef size_t size = n * sizeof(double) + (3 * n + n_out + n_in) * sizeof(node_t) + n
    cdef char* block = <char*>malloc(size if size else 1)
    if block == NULL:
        raise_no_memory("a jacobian()'s scratch", n, size // (n if n else 1))
    cdef double* saved = <double*>block
    cdef node_t* step_pos = <node_t*>(saved + n)
    cdef node_t* operand_pos = step_pos + n
    cdef node_t* out_pos = operand_pos + 2 * n
    cdef node_t* in_pos = out_pos + n_out
    cdef uint8_t* reached = <uint8_t*>(in_pos + n_in)
    cdef dict custom_children_pos = {}       # kept step -> its children's positions
    cdef list rows = []
    cdef list row
    for k in range(n):
        saved[k] = node_grad[order[k]]
    try:
        # positions first, kept in the grads: no array as large as the arena
        for k in range(n):
            node_grad[order[k]] = <double>k
        t = g.root
        for j in range(n_join):             # the join nodes: no step of the user's graph
            node_grad[t] = -1.0
            t = arena[t].lhs
        for k in range(g.n_steps):
            st = &g.steps[k]
            p = position_in(order, n, st.out)
            if p < 0:
                continue
            op = st.op
            step_pos[m] = <node_t>p
            operand_pos[2 * m] = <node_t>(
                position_in(order, n, st.lhs) if st.lhs and op != OP_CUSTOM else -1)
            operand_pos[2 * m + 1] = <node_t>(
                position_in(order, n, st.rhs)
                if st.rhs and op != OP_CUSTOM and op != OP_POW_CONST else -1)
            if op == OP_CUSTOM:
                custom_children_pos[m] = [
                    position_in(order, n, (<Value>c).idx) for c in sweep_children(st.out)
                    if isinstance(c, Value) and (<Value>c).idx]
            g.steps[m] = g.steps[k]
            m += 1
        for r in range(n_out):
            out_pos[r] = <node_t>position_in(order, n, (<Value>outs[r]).idx)
        for j in range(n_in):
            in_pos[j] = <node_t>position_in(order, n, (<Value>ins[j]).idx)
            if in_pos[j] < 0 and not allow_unused:
                raise ValueError(
                    f"input {j} is not in the graph of the outputs (they do not depend "
                    "on it); pass allow_unused=True to get a column of 0.0 for it")
        for r in range(n_out):
            for k in range(n):
                node_grad[order[k]] = 0.0
            memset(reached, 0, n)
            reached[out_pos[r]] = 1
            node_grad[(<Value>outs[r]).idx] += 1.0
            for s in range(m - 1, -1, -1):
                if not reached[step_pos[s]]:
                    continue
                st = &g.steps[s]
                if operand_pos[2 * s] >= 0:
                    reached[operand_pos[2 * s]] = 1
                if operand_pos[2 * s + 1] >= 0:
                    reached[operand_pos[2 * s + 1]] = 1
                if has_python:
                    if st.op == OP_CUSTOM:
                        for p in <list>custom_children_pos[s]:
                            if p >= 0:
                                reached[p] = 1
                    if arena[st.out].flags & FLAG_HOOK:
                        h = live_handle(st.out)
                        hook = python_hook(<Value>h) if h != NULL else None
                        if hook is not None:
                            hook()      # may build or free Values: the arena may move
                            continue
                op_backward_step(st.op, st.out, st.lhs, st.rhs)
            row = [0.0] * n_in
            for j in range(n_in):
                if in_pos[j] >= 0:
                    row[j] = node_grad[(<Value>ins[j]).idx]
            rows.append(row)
    finally:
        for k in range(n):
            node_grad[order[k]] = saved[k]
        free(block)
    return rows
