# =============================================================================
# The op table
# =============================================================================
# One row per op: its `_op` string (micrograd's where micrograd has the op), its
# forward formula (op_forward), its local chain rule (op_chain) and its chain
# rule built from nodes (op_emit), which makes it differentiable again.
# Eager ops, `_backward`, `backward()`, Graph replay and grad() all go through
# these.

OP_NAMES = ('', '+', '-', '*', '/', 'neg', '**', '**', 'ReLU', 'tanh', 'exp', 'log',
            'sigmoid', '', 'step', 'select', 'pow_mask')

# Each op in micrograd's Python: (the Value methods that make it, `out`'s data,
# the `_backward` closure's body[, its `_op` label if not OP_NAMES']), with micrograd's names: self and other the
# operands, out the result. The same formulas and association as op_forward and
# op_backward_step below (keep them in step). help(Value.__mul__) and the repr
# of a `_backward` are made from these rows (op_docs in extensible.pxi): a new
# op's row is all its documentation needs. Ops with no row (the leaf, custom
# ops, the internal ops of differentiation) have no method of their own.
OP_PYTHON = {
    OP_ADD: (("__add__", "__radd__"), "self.data + other.data",
             "self.grad += out.grad\nother.grad += out.grad"),
    OP_SUB: (("__sub__", "__rsub__"), "self.data - other.data",
             "self.grad += out.grad\nother.grad -= out.grad"),
    OP_MUL: (("__mul__", "__rmul__"), "self.data * other.data",
             "self.grad += other.data * out.grad\nother.grad += self.data * out.grad"),
    OP_DIV: (("__truediv__", "__rtruediv__"), "self.data / other.data",
             "self.grad += out.grad / other.data\n"
             "other.grad -= out.grad * self.data / (other.data * other.data)"),
    OP_NEG: (("__neg__",), "-self.data", "self.grad -= out.grad"),
    OP_POW_CONST: (("__pow__",), "self.data ** other          # other: a number",
                   "if other != 0:\n    self.grad += (other * self.data ** (other - 1)) * out.grad",
                   "f'**{other}'"),
    OP_POW: (("__pow__", "__rpow__"), "self.data ** other.data    # other: a Value",
             "if other.data != 0:\n"
             "    self.grad += (other.data * self.data ** (other.data - 1)) * out.grad\n"
             "if not (self.data == 0 and other.data >= 0):\n"
             "    other.grad += out.data * math.log(self.data) * out.grad"),
    OP_RELU: (("relu",), "0 if self.data < 0 else self.data",
              "self.grad += (1.0 if out.data > 0 else 0.0) * out.grad"),
    OP_TANH: (("tanh",), "math.tanh(self.data)",
              "self.grad += (1 - out.data * out.data) * out.grad"),
    OP_EXP: (("exp",), "math.exp(self.data)", "self.grad += out.data * out.grad"),
    OP_LOG: (("log",), "math.log(self.data)", "self.grad += out.grad / self.data"),
    OP_SIGMOID: (("sigmoid",), "(1 / (1 + math.exp(-self.data)) if self.data >= 0 else\n"
                               "               math.exp(self.data) / (1 + math.exp(self.data)))",
                 "self.grad += out.data * (1 - out.data) * out.grad"),
}

# Forward errors, raised as Python does for the same computation on floats.
cdef enum:
    ERR_NONE = 0
    ERR_ZERO_DIVISION   # ZeroDivisionError, as 1.0 / 0.0 and 0.0 ** -1
    ERR_OVERFLOW        # OverflowError, as 1e308 ** 2 and math.exp(1000)
    ERR_DOMAIN          # ValueError, as math.log(-1)
    ERR_COMPLEX         # ValueError: (-8.0) ** 0.5 would be complex in Python


cdef inline double pow_exact_first(double a, double b) noexcept nogil:
    """C's pow(a, b), without calling it for b == 1 and b == 0, whose results are
    exact (a, and 1 even for nan: C99 F.9.4.4), so pow gives them bit for bit too.
    Those are the exponents of x ** 2's chain rule (x ** 1) and of its derivative
    (x ** 0), which second derivatives evaluate at every node of a squared term."""
    if b == 1.0:
        return a
    if b == 0.0:
        return 1.0
    return c_pow(a, b)


cdef inline double float_pow(double a, double b, int* err) noexcept nogil:
    """a ** b: C99's pow (the IEEE value), with the error Python's float.__pow__
    would raise set in `err` (C99 pow handles inf/nan as Python does)."""
    cdef double r = pow_exact_first(a, b)
    if b == 0.0 or isnan(a) or isnan(b) or isinf(a) or isinf(b):
        return r
    if a == 0.0 and b < 0.0:
        err[0] = ERR_ZERO_DIVISION
    elif a < 0.0 and b != c_floor(b):
        err[0] = ERR_COMPLEX
    elif isinf(r):
        err[0] = ERR_OVERFLOW
    return r


cdef inline double op_forward(uint8_t op, double a, double b, int* err) noexcept nogil:
    """The data of an `op` node whose operands hold `a` and `b`.

    Always the IEEE value (1 / 0 is inf, log(0) is -inf); where Python's floats
    would raise, the error is also set in `err`. Eager ops raise it; nodes made
    by differentiation (FLAG_IEEE) keep the IEEE value, as backward() does.
    """
    cdef double e
    if op == OP_ADD:
        return a + b
    if op == OP_SUB:
        return a - b
    if op == OP_MUL:
        return a * b
    if op == OP_DIV:
        if b == 0.0:
            err[0] = ERR_ZERO_DIVISION
        return a / b
    if op == OP_NEG:
        return -a
    if op == OP_POW or op == OP_POW_CONST:
        return float_pow(a, b, err)
    if op == OP_RELU:
        return 0.0 if a < 0.0 else a          # micrograd: 0 if x < 0 else x (nan stays nan)
    if op == OP_TANH:
        return c_tanh(a)
    if op == OP_EXP:
        e = c_exp(a)
        if isinf(e) and isfinite(a):
            err[0] = ERR_OVERFLOW
        return e
    if op == OP_LOG:
        if a <= 0.0:
            err[0] = ERR_DOMAIN
        return c_log(a)
    if op == OP_SIGMOID:                      # never overflows: exp of a non-positive number
        if a >= 0.0:
            return 1.0 / (1.0 + c_exp(-a))
        e = c_exp(a)
        return e / (1.0 + e)
    if op == OP_STEP:
        return 1.0 if a > 0.0 else 0.0
    if op == OP_SELECT:
        return a if b != 0.0 else 0.0
    if op == OP_POW_MASK:
        return 0.0 if a == 0.0 and b >= 0.0 else 1.0
    return a                                  # OP_LEAF, OP_CUSTOM: not recomputed here


cdef inline void op_backward(node_t i) noexcept nogil:
    """Apply node i's local chain rule once: add its grad's share to its operands' grads."""
    op_backward_step(arena[i].op, i, arena[i].lhs, arena[i].rhs)


cdef enum:
    TO_LHS = 1      # op_chain gave a contribution to the first operand's grad
    TO_RHS = 2      # ... to the second operand's


cdef inline int op_chain(uint8_t op, double a, double b, double out, double g,
                         double* da, double* db) noexcept nogil:
    """The chain rule of one op: what a node with operands holding `a` and `b`,
    data `out` and grad `g` adds to its operands' grads (`da[0]`, `db[0]`).

    Returns which operands receive something (TO_LHS | TO_RHS); the others'
    grads are left alone. A pure function of numbers, linear in `g`, so that
    every loop runs it alike: backward() and replay on the arena
    (op_backward_step), and loops over other arrays of data and grads.
    Computed with IEEE semantics, never raising: the grad of 0 ** 0.5 is inf.
    The formulas and their association follow micrograd's closures (``-=``
    is ``+=`` of the negation, the same bits); op_emit builds the same
    formulas as nodes (keep the two in step).
    """
    if op == OP_ADD:
        da[0] = g
        db[0] = g
        return TO_LHS | TO_RHS
    if op == OP_SUB:
        da[0] = g
        db[0] = -g
        return TO_LHS | TO_RHS
    if op == OP_MUL:
        da[0] = b * g
        db[0] = a * g
        return TO_LHS | TO_RHS
    if op == OP_DIV:
        da[0] = g / b
        db[0] = -(g * a / (b * b))
        return TO_LHS | TO_RHS
    if op == OP_NEG:
        da[0] = -g
        return TO_LHS
    if op == OP_POW_CONST:
        if b == 0.0:                          # d(a**0)/da = 0, also at a == 0 (PyTorch)
            return 0
        da[0] = (b * pow_exact_first(a, b - 1.0)) * g
        return TO_LHS
    if op == OP_POW:
        # b is data here, so the conditions are selects (OP_SELECT in op_emit)
        da[0] = (b * pow_exact_first(a, b - 1.0)) * g if b != 0.0 else 0.0
        # d(a**b)/db = a**b * log(a): nan for a < 0; 0 at a == 0, b >= 0 (as PyTorch)
        db[0] = out * c_log(a) * g if not (a == 0.0 and b >= 0.0) else 0.0
        return TO_LHS | TO_RHS
    if op == OP_RELU:
        da[0] = (1.0 if out > 0.0 else 0.0) * g
        return TO_LHS
    if op == OP_TANH:
        da[0] = (1.0 - out * out) * g
        return TO_LHS
    if op == OP_EXP:
        da[0] = out * g
        return TO_LHS
    if op == OP_LOG:
        da[0] = g / a
        return TO_LHS
    if op == OP_SIGMOID:
        da[0] = out * (1.0 - out) * g
        return TO_LHS
    if op == OP_SELECT:
        da[0] = g if b != 0.0 else 0.0
        return TO_LHS
    # OP_LEAF: nothing to propagate. OP_CUSTOM: its rule is a Python _backward.
    # OP_STEP, OP_POW_MASK: derivative 0.
    return 0


cdef inline void op_backward_step(uint8_t op, node_t i, node_t lhs, node_t rhs) noexcept nogil:
    """Apply the chain rule of node i (op `op`, operands `lhs` and `rhs`) to the
    arena's grads: op_chain's contributions, the first operand's first (they
    may be one node: x * x)."""
    cdef double da = 0.0, db = 0.0
    cdef int to = op_chain(op, node_data[lhs], node_data[rhs], node_data[i], node_grad[i],
                           &da, &db)
    if to & TO_LHS:
        node_grad[lhs] += da
    if to & TO_RHS:
        node_grad[rhs] += db


cdef int op_emit(uint8_t op, node_t i, node_t lhs, node_t rhs, node_t g, node_t* adj,
                 bint to_lhs, bint to_rhs, node_t one) except -1:
    """The chain rule of node i as graph nodes: op_backward_step's formulas, built
    from ops in the same association, so that their data are its numbers bit for bit.

    `g` is the node holding d(output)/d(i); the contributions go to adj[lhs] (if
    `to_lhs`) and adj[rhs] (if `to_rhs`) through `accumulate`. `one` is a
    constant leaf 1.0. Conditions on data (relu's, a ** b's) are ops (OP_STEP,
    OP_SELECT, OP_POW_MASK), not branches taken now, so that a replayed grad
    graph stays right when the inputs change. The arena may move at each
    emit() or node_alloc(), so nothing here holds a pointer into it.
    """
    cdef node_t t, u
    cdef double c
    if op == OP_ADD:
        if to_lhs:
            accumulate(adj, lhs, g, False, False)
        if to_rhs:
            accumulate(adj, rhs, g, False, False)
    elif op == OP_SUB:
        if to_lhs:
            accumulate(adj, lhs, g, False, False)
        if to_rhs:
            accumulate(adj, rhs, g, True, False)
    elif op == OP_MUL:
        if to_lhs:
            accumulate(adj, lhs, emit(OP_MUL, rhs, g, 0), False, True)
        if to_rhs:
            accumulate(adj, rhs, emit(OP_MUL, lhs, g, 0), False, True)
    elif op == OP_DIV:
        if to_lhs:
            accumulate(adj, lhs, emit(OP_DIV, g, rhs, 0), False, True)
        if to_rhs:
            t = emit(OP_MUL, g, lhs, 0)
            u = emit(OP_MUL, rhs, rhs, 0)
            accumulate(adj, rhs, emit(OP_DIV, t, u, TAKE_LHS | TAKE_RHS), True, True)
    elif op == OP_NEG:
        if to_lhs:
            accumulate(adj, lhs, g, True, False)
    elif op == OP_POW_CONST:
        c = node_data[rhs]              # a constant: its condition is fixed for good
        if to_lhs and c != 0.0:
            t = node_alloc(OP_LEAF, c - 1.0, 0, 0, 0)
            t = emit(OP_POW_CONST, lhs, t, TAKE_RHS, arena[i].flags & FLAG_INT_EXP)
            t = emit(OP_MUL, rhs, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_POW:
        if to_lhs:
            t = emit(OP_SUB, rhs, one, 0)
            t = emit(OP_POW, lhs, t, TAKE_RHS)
            t = emit(OP_MUL, rhs, t, TAKE_RHS)
            t = emit(OP_MUL, t, g, TAKE_LHS)
            accumulate(adj, lhs, emit(OP_SELECT, t, rhs, TAKE_LHS), False, True)
        if to_rhs:
            t = emit(OP_LOG, lhs, 0, 0)
            t = emit(OP_MUL, i, t, TAKE_RHS)
            t = emit(OP_MUL, t, g, TAKE_LHS)
            u = emit(OP_POW_MASK, lhs, rhs, 0)
            accumulate(adj, rhs, emit(OP_SELECT, t, u, TAKE_LHS | TAKE_RHS), False, True)
    elif op == OP_RELU:
        if to_lhs:
            t = emit(OP_STEP, i, 0, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_TANH:
        if to_lhs:
            t = emit(OP_MUL, i, i, 0)
            t = emit(OP_SUB, one, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_EXP:
        if to_lhs:
            accumulate(adj, lhs, emit(OP_MUL, i, g, 0), False, True)
    elif op == OP_LOG:
        if to_lhs:
            accumulate(adj, lhs, emit(OP_DIV, g, lhs, 0), False, True)
    elif op == OP_SIGMOID:
        if to_lhs:
            t = emit(OP_SUB, one, i, 0)
            t = emit(OP_MUL, i, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_SELECT:
        if to_lhs:
            accumulate(adj, lhs, emit(OP_SELECT, g, rhs, 0), False, True)
    # OP_STEP, OP_POW_MASK: derivative 0. OP_LEAF: none. OP_CUSTOM: refused by grad().
    return 0


cdef void raise_forward_error(int err, uint8_t op) except *:
    name = OP_NAMES[op]
    if err == ERR_ZERO_DIVISION:
        if op == OP_DIV:
            raise ZeroDivisionError("float division by zero")
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if err == ERR_OVERFLOW:
        raise OverflowError(f"math range error (op {name!r}: the result is too large for a float)")
    if err == ERR_COMPLEX:
        raise ValueError("a negative number cannot be raised to a fractional power "
                         "(Python would return a complex number)")
    raise ValueError(f"math domain error (op {name!r})")
