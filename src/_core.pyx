# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled core of autograd: a C arena of graph nodes behind micrograd's ``Value``.

Reading order for a newcomer:

1. the op table (``OP_NAMES``, ``op_forward``, ``op_backward_step``): every
   op's name, forward formula and local chain rule, written once;
2. the arena (``node_alloc``, ``node_decref``): where nodes live and die;
3. ``Value``: the Python face, one handle per live node at most; ``dot``, the
   neuron's weighted sum in one C loop;
4. ``sweep`` and ``Value.backward``: micrograd's backward, iterative;
5. ``Graph`` and ``ValueVector``: replaying a recorded graph and moving leaf
   data in bulk.

Lifetime: a node lives while its ``Value`` handle or a parent node refers to it
(``Node.refs``). Freeing is iterative, so a 10**7-node chain is released without
recursion. Ordinary Values hold no Python objects, so they are invisible to
Python's cycle collector and cost it nothing. A custom op (a Value made with
``_children``) is a ``CustomValue``: its children, ``_op`` and ``_backward``
closure live in its ``__dict__``, where the collector sees them, exactly as in
micrograd; every result built on top of one is a ``CustomValue`` too, so a
dropped graph of custom ops is collected by one ``gc.collect()``.
"""

cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_CheckExact
from cpython.bool cimport PyBool_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check, PyLong_CheckExact
from cpython.object cimport PyObject, PyTypeObject, newfunc
from cpython.ref cimport Py_REFCNT
from libc.math cimport NAN
from libc.math cimport exp as c_exp
from libc.math cimport floor as c_floor
from libc.math cimport isfinite, isinf, isnan
from libc.math cimport log as c_log
from libc.math cimport pow as c_pow
from libc.math cimport tanh as c_tanh
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import numbers

cdef extern from "Python.h":
    object PyObject_GenericGetDict(object o, void* context)

cdef extern from *:
    """
    /* Cython gives extension types a vectorcall constructor that skips tp_new;
       Value gets its own (value_vectorcall), which falls back to type.__call__. */
    static void autograd_set_vectorcall(PyTypeObject *t, void *f) {
        t->tp_vectorcall = (vectorcallfunc)f;
    }
    static PyObject *autograd_type_call(PyObject *t, PyObject *args, PyObject *kw) {
        return PyType_Type.tp_call(t, args, kw);
    }
    #define autograd_nargs(n) PyVectorcall_NARGS(n)
    #define count_trailing_zeros(x) __builtin_ctzll(x)
    """
    void autograd_set_vectorcall(PyTypeObject* t, void* f)
    object autograd_type_call(object t, object args, PyObject* kw)
    Py_ssize_t autograd_nargs(size_t nargsf) noexcept
    int count_trailing_zeros(uint64_t x) noexcept nogil


# =============================================================================
# The op table
# =============================================================================
# One row per op: its `_op` string (micrograd's where micrograd has the op), its
# forward formula (op_forward) and its local chain rule (op_backward_step).
# Eager ops, `_backward`, `backward()` and Graph replay all go through these.

OP_NAMES = ('', '+', '-', '*', '/', 'neg', '**', '**', 'ReLU', 'tanh', 'exp', 'log',
            'sigmoid', '')

# Forward errors, raised as Python does for the same computation on floats.
cdef enum:
    ERR_NONE = 0
    ERR_ZERO_DIVISION   # ZeroDivisionError, as 1.0 / 0.0 and 0.0 ** -1
    ERR_OVERFLOW        # OverflowError, as 1e308 ** 2 and math.exp(1000)
    ERR_DOMAIN          # ValueError, as math.log(-1)
    ERR_COMPLEX         # ValueError: (-8.0) ** 0.5 would be complex in Python


cdef inline double float_pow(double a, double b, int* err) noexcept nogil:
    """a ** b with the errors of Python's float.__pow__ (C99 pow handles inf/nan alike)."""
    if b == 0.0 or isnan(a) or isnan(b) or isinf(a) or isinf(b):
        return c_pow(a, b)
    if a == 0.0 and b < 0.0:
        err[0] = ERR_ZERO_DIVISION
        return NAN
    if a < 0.0 and b != c_floor(b):
        err[0] = ERR_COMPLEX
        return NAN
    cdef double r = c_pow(a, b)
    if isinf(r):
        err[0] = ERR_OVERFLOW
    return r


cdef inline double op_forward(uint8_t op, double a, double b, int* err) noexcept nogil:
    """The data of an `op` node whose operands hold `a` and `b`."""
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
            return NAN
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
            return NAN
        return c_log(a)
    if op == OP_SIGMOID:                      # never overflows: exp of a non-positive number
        if a >= 0.0:
            return 1.0 / (1.0 + c_exp(-a))
        e = c_exp(a)
        return e / (1.0 + e)
    return a                                  # OP_LEAF, OP_CUSTOM: not recomputed here


cdef inline void op_backward(node_t i) noexcept nogil:
    """Apply node i's local chain rule once: add its grad's share to its operands' grads."""
    op_backward_step(arena[i].op, i, arena[i].lhs, arena[i].rhs)


cdef inline void op_backward_step(uint8_t op, node_t i, node_t lhs, node_t rhs) noexcept nogil:
    """The chain rule of node i (op `op`, operands `lhs` and `rhs`).

    Computed with IEEE semantics, never raising: the grad of 0 ** 0.5 is inf.
    The formulas and their association follow micrograd's closures.
    """
    cdef double g = node_grad[i]
    cdef double out = node_data[i]
    cdef double a = node_data[lhs]
    cdef double b = node_data[rhs]
    if op == OP_ADD:
        node_grad[lhs] += g
        node_grad[rhs] += g
    elif op == OP_SUB:
        node_grad[lhs] += g
        node_grad[rhs] -= g
    elif op == OP_MUL:
        node_grad[lhs] += b * g
        node_grad[rhs] += a * g
    elif op == OP_DIV:
        node_grad[lhs] += g / b
        node_grad[rhs] -= g * a / (b * b)
    elif op == OP_NEG:
        node_grad[lhs] -= g
    elif op == OP_POW_CONST:
        if b != 0.0:                          # d(a**0)/da = 0, also at a == 0 (PyTorch)
            node_grad[lhs] += (b * c_pow(a, b - 1.0)) * g
    elif op == OP_POW:
        if b != 0.0:
            node_grad[lhs] += (b * c_pow(a, b - 1.0)) * g
        # d(a**b)/db = a**b * log(a): nan for a < 0; 0 at a == 0, b >= 0 (as PyTorch)
        if not (a == 0.0 and b >= 0.0):
            node_grad[rhs] += out * c_log(a) * g
    elif op == OP_RELU:
        node_grad[lhs] += (1.0 if out > 0.0 else 0.0) * g
    elif op == OP_TANH:
        node_grad[lhs] += (1.0 - out * out) * g
    elif op == OP_EXP:
        node_grad[lhs] += out * g
    elif op == OP_LOG:
        node_grad[lhs] += g / a
    elif op == OP_SIGMOID:
        node_grad[lhs] += out * (1.0 - out) * g
    # OP_LEAF: nothing to propagate. OP_CUSTOM: its rule is a Python _backward.


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


# =============================================================================
# The arena
# =============================================================================
# One growable array of Nodes and, indexed alike, the nodes' data, their grads
# and their live Value handles (borrowed; NULL if none). Free slots are bits in
# `free_bits`, reused lowest address first: a graph built step after step in a
# training loop then lies in creation order, and the passes over it (sort,
# backward, free) walk memory nearly in sequence instead of at random.

cdef Node* arena = NULL
cdef double* node_data = NULL   # Value.data of each node; apart from the nodes, so
cdef double* node_grad = NULL   # that loops over data and grads stream only those
cdef PyObject** handles = NULL
cdef uint64_t* free_bits = NULL  # bit i of word i // 64: slot i is free
cdef Py_ssize_t free_hint = 0   # no word below this one has a free bit
cdef node_t capacity = 0        # a multiple of 64
cdef node_t n_used = 1          # slots ever handed out; slot 0 is the null node
cdef node_t n_free = 0
cdef Py_ssize_t n_live = 0

# Side table for names: node index -> str, for nodes with FLAG_NAMED.
cdef dict names = {}

cdef Py_ssize_t MAX_NODES = 2147483584   # the largest multiple of 64 below 2**31


cdef int arena_grow() except -1:
    """Double the arena (sklearn's safe_realloc pattern: never lose the old block)."""
    global arena, node_data, node_grad, handles, free_bits, capacity
    cdef Py_ssize_t new_cap = 1024 if capacity == 0 else 2 * <Py_ssize_t>capacity
    if new_cap > MAX_NODES:
        new_cap = MAX_NODES
    if new_cap <= capacity:
        raise MemoryError(f"the autograd arena is full ({MAX_NODES} nodes)")
    cdef Node* new_nodes = <Node*>realloc(arena, new_cap * sizeof(Node))
    if new_nodes == NULL:
        raise MemoryError(f"cannot grow the autograd arena to {new_cap} nodes")
    arena = new_nodes
    cdef double* new_data = <double*>realloc(node_data, new_cap * sizeof(double))
    if new_data == NULL:
        raise MemoryError(f"cannot grow the autograd arena to {new_cap} nodes")
    node_data = new_data
    cdef double* new_grad = <double*>realloc(node_grad, new_cap * sizeof(double))
    if new_grad == NULL:
        raise MemoryError(f"cannot grow the autograd arena to {new_cap} nodes")
    node_grad = new_grad
    cdef PyObject** new_handles = <PyObject**>realloc(handles, new_cap * sizeof(PyObject*))
    if new_handles == NULL:
        raise MemoryError(f"cannot grow the autograd arena to {new_cap} nodes")
    handles = new_handles
    memset(&handles[capacity], 0, (new_cap - capacity) * sizeof(PyObject*))
    cdef uint64_t* new_bits = <uint64_t*>realloc(free_bits, new_cap // 64 * sizeof(uint64_t))
    if new_bits == NULL:
        raise MemoryError(f"cannot grow the autograd arena to {new_cap} nodes")
    free_bits = new_bits
    memset(&free_bits[capacity // 64], 0, (new_cap - capacity) // 64 * sizeof(uint64_t))
    if capacity == 0:
        memset(&arena[0], 0, sizeof(Node))   # the null node: data 0, never freed
        arena[0].refs = 1
        node_data[0] = 0.0
        node_grad[0] = 0.0
    capacity = <node_t>new_cap
    return 0


cdef inline node_t take_free_slot(Py_ssize_t max_words) noexcept nogil:
    """The lowest free slot among the next `max_words` words from the hint, or 0.

    Every all-used word passed over raises the hint for good (until a slot
    below it is freed), so the scanning costs O(1) per allocation amortized.
    """
    global free_hint, n_free
    cdef Py_ssize_t w = free_hint
    cdef Py_ssize_t end = (<uint32_t>n_used + 63) >> 6
    if w + max_words < end:
        end = w + max_words
    while w < end and free_bits[w] == 0:
        w += 1
    free_hint = w
    if w == end:
        return 0
    cdef uint64_t word = free_bits[w]
    free_bits[w] = word & (word - 1)
    n_free -= 1
    return <node_t>(w * 64 + count_trailing_zeros(word))


cdef inline void give_back_slot(node_t i) noexcept nogil:
    global free_hint, n_free
    cdef Py_ssize_t word = <uint32_t>i >> 6
    free_bits[word] |= (<uint64_t>1) << (<uint32_t>i & 63)
    n_free += 1
    if word < free_hint:
        free_hint = word


arena_grow()                    # slot 0, the null node, exists from import on


cdef inline int ensure_slots(Py_ssize_t k) except -1:
    """Make room for k new nodes now, so that an op that makes several nodes
    fails (MemoryError) before it makes any, rather than half-way."""
    while <Py_ssize_t>capacity - n_used + n_free < k:
        arena_grow()
    return 0


cdef inline node_t node_alloc(uint8_t op, double data, node_t lhs, node_t rhs,
                              uint8_t flags) except 0:
    """A new node with one reference (its creator's); takes a reference on each operand."""
    global n_used, n_live
    cdef node_t i = take_free_slot(64) if n_free else 0
    if i == 0:
        if n_used < capacity:
            i = n_used
            n_used += 1
        elif n_free:                     # full: search all before growing
            i = take_free_slot(capacity // 64)
        else:
            arena_grow()
            i = n_used
            n_used += 1
    cdef Node* n = &arena[i]
    node_data[i] = data
    node_grad[i] = 0.0
    n.lhs = lhs
    n.rhs = rhs
    n.refs = 1
    n.mark = 0
    n.op = op
    n.flags = flags
    arena[lhs].refs += 1       # slot 0 absorbs the increments of missing operands
    arena[rhs].refs += 1
    n_live += 1
    return i


cdef void node_free_cascade(node_t i) noexcept:
    """Free node i (refs reached 0) and, iteratively, every operand that it kept alive.

    Dying nodes are chained through their `refs` field, which is theirs to use
    once it is 0. No user code runs here: names are exact str in a dict.
    """
    global n_live
    cdef node_t pending = i
    cdef node_t child
    cdef int k
    cdef Node* n
    arena[i].refs = 0
    while pending:
        i = pending
        n = &arena[i]
        pending = <node_t>n.refs
        if n.flags & FLAG_NAMED and names is not None:
            names.pop(i, None)
        for k in range(2):
            child = n.lhs if k == 0 else n.rhs
            if child:
                arena[child].refs -= 1
                if arena[child].refs == 0:
                    arena[child].refs = <uint32_t>pending
                    pending = child
        n.flags = 0
        give_back_slot(i)
        n_live -= 1


cdef inline void node_decref(node_t i) noexcept:
    if i:
        arena[i].refs -= 1
        if arena[i].refs == 0:
            node_free_cascade(i)


cdef inline void node_incref(node_t i) noexcept nogil:
    arena[i].refs += 1


def graph_size(Value root not None):
    """How many Values the graph that computed `root` has (`root` and everything
    reachable through ``_prev``), counted in C.

    Examples
    --------
    >>> a = Value(2.0)
    >>> graph_size(a * a + 1)
    4
    """
    if root.idx == 0:
        raise_uninitialised()
    return sweep(root.idx, False, NULL)


def arena_stats():
    """Counts of the arena, for tests and benchmarks.

    Returns
    -------
    dict
        ``live`` (nodes alive), ``capacity`` (slots allocated), ``node_bytes``
        (bytes per slot: the node, its data and grad, its handle pointer).
    """
    return {"live": n_live, "capacity": capacity,
            "node_bytes": sizeof(Node) + 2 * sizeof(double) + sizeof(PyObject*)}


# =============================================================================
# Numbers in, numbers out
# =============================================================================

cdef inline bint is_number(object x):
    return PyFloat_Check(x) or PyLong_Check(x) or isinstance(x, numbers.Real)


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
    """A real number as a C double; TypeError for anything else (str, None, complex, list)."""
    if PyFloat_Check(x):
        return PyFloat_AS_DOUBLE(x)
    if PyLong_Check(x):
        return PyLong_AsDouble(x)       # OverflowError past 1.8e308, as float(x)
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(f"{what} must be a real number (int or float), not {type(x).__name__}")


# =============================================================================
# Value: the Python face
# =============================================================================

cdef inline PyObject* live_handle(node_t i) noexcept:
    """Node i's Value, or NULL if it has none or its Value is being deallocated
    (a subclass's weakref callbacks and __dict__ finalizers run before
    Value.__dealloc__ lets go of the node: that object must not be handed out)."""
    cdef PyObject* h = handles[i]
    if h != NULL and Py_REFCNT(<object>h) > 0:
        return h
    return NULL


cdef inline Value handle_of(node_t i):
    """The live Value of node i, made if it has none: at most one per node."""
    cdef PyObject* h = live_handle(i)
    if h != NULL:
        return <Value>h
    cdef Value v = Value.__new__(Value)
    v.idx = i
    node_incref(i)
    handles[i] = <PyObject*>v
    return v


cdef object apply_op(uint8_t op, object a, object b, uint8_t flags=0):
    """`a op b` (b None for unary ops).

    Either operand may be a number (it becomes a constant leaf, as in micrograd);
    anything else gives NotImplemented, so Python raises TypeError.
    """
    cdef node_t ia = 0, ib = 0
    cdef double da, db = 0.0
    cdef bint a_const = False, b_const = False
    cdef int err = ERR_NONE
    if isinstance(a, Value):
        ia = (<Value>a).idx
        if ia == 0:
            raise_uninitialised()
    elif is_number(a):
        da = to_double(a, "an operand")
        a_const = True
    else:
        return NotImplemented
    if b is not None:
        if isinstance(b, Value):
            ib = (<Value>b).idx
            if ib == 0:
                raise_uninitialised()
        elif is_number(b):
            db = to_double(b, "an operand")
            b_const = True
        else:
            return NotImplemented
    # read the Values' data only now: converting a number may run its __float__
    if not a_const:
        da = node_data[ia]
    if b is not None and not b_const:
        db = node_data[ib]
    cdef double data = op_forward(op, da, db, &err)
    if err:
        raise_forward_error(err, op)
    # A result that has a custom op below it must be visible to the cycle collector.
    if (arena[ia].flags | arena[ib].flags) & FLAG_MANAGED:
        return make_managed_result(op, data, a, b, flags)
    cdef Value out = Value.__new__(Value)
    ensure_slots(1 + a_const + b_const)
    if a_const:
        ia = node_alloc(OP_LEAF, da, 0, 0, 0)
    if b_const:
        ib = node_alloc(OP_LEAF, db, 0, 0, 0)
    out.idx = node_alloc(op, data, ia, ib, flags)
    handles[out.idx] = <PyObject*>out
    # the constants' creation references now belong to the result
    if a_const:
        arena[ia].refs -= 1
    if b_const:
        arena[ib].refs -= 1
    return out


cdef int raise_uninitialised() except -1:
    raise ValueError("this Value has no node: Value.__init__ was not called "
                     "(a subclass's __init__ must call super().__init__)")


cdef inline object binary_op(uint8_t op, Value v, object other, bint other_first):
    """`v op other` (or `other op v`): the fast path for a plain Value or a plain
    number operand (float, int, bool: a constant leaf) with no custom op below;
    anything else goes to apply_op."""
    return binary_op_flags(op, v, other, other_first, 0)


cdef inline object binary_op_flags(uint8_t op, Value v, object other, bint other_first,
                                   uint8_t flags):
    """binary_op, the result node with `flags` (FLAG_INT_EXP for ``** int``)."""
    cdef node_t iv = v.idx, io = 0
    if iv == 0:
        raise_uninitialised()
    cdef double dv = node_data[iv], do
    cdef bint constant
    cdef int err = ERR_NONE
    if other is None:               # apply_op reads None as "no operand"
        return NotImplemented
    if type(other) is Value:
        io = (<Value>other).idx
        if io == 0:
            raise_uninitialised()
        do = node_data[io]
        constant = False
    elif is_plain_number(other):
        do = plain_to_double(other)        # runs no Python code: dv stays valid
        constant = True
    else:
        return apply_op(op, other, v, flags) if other_first else apply_op(op, v, other, flags)
    if (arena[iv].flags | arena[io].flags) & FLAG_MANAGED:
        return apply_op(op, other, v, flags) if other_first else apply_op(op, v, other, flags)
    cdef double data = op_forward(op, do, dv, &err) if other_first else \
        op_forward(op, dv, do, &err)
    if err:
        raise_forward_error(err, op)
    cdef Value out = Value.__new__(Value)     # not a GC type: runs no collection
    if constant:
        ensure_slots(2)
        io = node_alloc(OP_LEAF, do, 0, 0, 0)
    out.idx = node_alloc(op, data, io, iv, flags) if other_first else \
        node_alloc(op, data, iv, io, flags)
    if constant:
        arena[io].refs -= 1                    # the result holds the constant now
    handles[out.idx] = <PyObject*>out
    return out


cdef inline object unary_op(uint8_t op, Value v):
    """`op(v)`: the fast path of functions of one Value."""
    cdef node_t iv = v.idx
    cdef int err = ERR_NONE
    if iv == 0:
        raise_uninitialised()
    if arena[iv].flags & FLAG_MANAGED:
        return apply_op(op, v, None)
    cdef double data = op_forward(op, node_data[iv], 0.0, &err)
    if err:
        raise_forward_error(err, op)
    cdef Value out = Value.__new__(Value)
    out.idx = node_alloc(op, data, iv, 0, 0)
    handles[out.idx] = <PyObject*>out
    return out


cdef object make_managed_result(uint8_t op, double data, object a, object b, uint8_t flags):
    if not isinstance(a, Value):
        a = Value(a)
    if b is not None and not isinstance(b, Value):
        b = Value(b)
    cdef node_t ib = (<Value>b).idx if b is not None else 0
    # the object first: allocating a GC type may run the collector, which may
    # free nodes and move the arena
    cdef Value out = CustomValue.__new__(CustomValue)
    out.idx = node_alloc(op, data, (<Value>a).idx, ib, flags | FLAG_MANAGED)
    handles[out.idx] = <PyObject*>out
    PyObject_GenericGetDict(out, NULL)["_children"] = (a,) if b is None else (a, b)
    return out


def dot(weights, inputs, start):
    """``start + w0*x0 + w1*x1 + ...``, built node by node exactly as micrograd's
    ``Neuron`` builds it (``sum((wi*xi for wi, xi in zip(w, x)), b)``), in one C loop.

    The graph, the data and the gradients are those of the Python expression;
    only the interpreter's work per term is gone. Terms stop at the shorter of
    `weights` and `inputs`, as with ``zip``.

    Parameters
    ----------
    weights : sequence of Value
    inputs : sequence of Value or float
    start : Value

    Returns
    -------
    Value

    Examples
    --------
    >>> w = [Value(2.0), Value(3.0)]
    >>> act = dot(w, [Value(1.0), 0.5], Value(1.0))
    >>> act.data
    4.5
    """
    cdef list ws = weights if type(weights) is list else list(weights)
    cdef list xs = inputs if type(inputs) is list else list(inputs)
    cdef Py_ssize_t n = min(len(ws), len(xs)), k
    cdef bint fast = type(start) is Value and not arena[(<Value>start).idx].flags & FLAG_MANAGED
    for k in range(n):
        if not fast:
            break
        w = ws[k]
        x = xs[k]
        fast = (type(w) is Value and not arena[(<Value>w).idx].flags & FLAG_MANAGED and
                (PyFloat_CheckExact(x) or
                 type(x) is Value and not arena[(<Value>x).idx].flags & FLAG_MANAGED))
    if not fast:                        # numbers, subclasses, custom ops: Python's way
        return sum((wi * xi for wi, xi in zip(ws, xs)), start)
    if n == 0:
        return start                    # as sum() of nothing
    cdef Value out = Value.__new__(Value)
    cdef node_t acc = (<Value>start).idx, term, iw, ix
    cdef double xd
    ensure_slots(3 * n)                 # a product, a sum and maybe a constant a term
    node_incref(acc)                    # the running sum's reference, dropped as it moves
    for k in range(n):
        iw = (<Value>ws[k]).idx
        x = xs[k]
        if type(x) is Value:
            ix = (<Value>x).idx
            xd = node_data[ix]
            term = node_alloc(OP_MUL, node_data[iw] * xd, iw, ix, 0)
        else:
            xd = PyFloat_AS_DOUBLE(x)
            ix = node_alloc(OP_LEAF, xd, 0, 0, 0)
            term = node_alloc(OP_MUL, node_data[iw] * xd, iw, ix, 0)
            arena[ix].refs -= 1
        iw = node_alloc(OP_ADD, node_data[acc] + node_data[term], acc, term, 0)
        arena[term].refs -= 1           # the sum holds the term now
        node_decref(acc)
        acc = iw
    out.idx = acc                       # the running sum's reference becomes the handle's
    handles[acc] = <PyObject*>out
    return out


@cython.freelist(1024)
cdef class Value:
    """A scalar that remembers how it was computed, micrograd's ``Value``.

    Parameters
    ----------
    data : int or float
        Any real number (int, float, bool, numpy scalar); stored as float64.
    _children : iterable of Value, optional
        The operands of a custom op (micrograd's way of writing one). A Value
        made with children or an ``_op`` is a :class:`CustomValue`.
    _op : str, optional
        The custom op's name, shown by ``draw_dot``.
    name : str, optional
        A label for ``draw_dot``; ``label=`` is an alias.

    Examples
    --------
    >>> a = Value(2.0, name='a')
    >>> b = a * a + 1
    >>> b.backward()
    >>> b.data, a.grad
    (5.0, 4.0)
    """

    def __init__(self, data, _children=(), _op='', name='', *, label=None):
        if self.idx:
            raise RuntimeError("Value.__init__ was already called: a Value cannot be "
                               "moved to another node")
        cdef double x = to_double(data, "Value data")
        children = tuple(_children)
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"_children must be Values, not {type(child).__name__}")
        if label is not None:
            name = label
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        custom = bool(children) or bool(_op) or isinstance(self, CustomValue)
        if custom:
            try:
                state = PyObject_GenericGetDict(self, NULL)
            except AttributeError:
                raise TypeError(f"{type(self).__name__} has no __dict__, so it cannot hold "
                                "a custom op's children and _backward") from None
            state["_children"] = children
            state["_op"] = str(_op)
        self.idx = node_alloc(OP_CUSTOM if custom else OP_LEAF, x, 0, 0,
                              FLAG_MANAGED if custom else 0)
        handles[self.idx] = <PyObject*>self
        if name:
            self.name = name

    def __dealloc__(self):
        if self.idx:
            if handles[self.idx] == <PyObject*>self:   # not if a newer handle took over
                handles[self.idx] = NULL
            node_decref(self.idx)

    # -- attributes -------------------------------------------------------

    @property
    def data(self):
        """The value, a float."""
        return node_data[self.idx]

    @data.setter
    def data(self, value):
        cdef double x = to_double(value, "data")
        if self.idx == 0:
            raise_uninitialised()
        node_data[self.idx] = x

    @property
    def grad(self):
        """d(root)/d(self) after ``root.backward()``; accumulates, as in micrograd."""
        return node_grad[self.idx]

    @grad.setter
    def grad(self, value):
        cdef double x = to_double(value, "grad")
        if self.idx == 0:
            raise_uninitialised()
        node_grad[self.idx] = x

    @property
    def name(self):
        """A label for ``draw_dot`` ('' if none)."""
        if arena[self.idx].flags & FLAG_NAMED:
            return names[self.idx]
        return ''

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise TypeError(f"name must be a str, not {type(value).__name__}")
        if self.idx == 0:
            return
        if value:
            # an exact str (a subclass's __del__ could run while nodes are freed)
            names[self.idx] = value if type(value) is str else str.__str__(value)
            arena[self.idx].flags |= FLAG_NAMED
        elif arena[self.idx].flags & FLAG_NAMED:
            del names[self.idx]
            arena[self.idx].flags &= ~FLAG_NAMED

    @property
    def label(self):
        """Alias of ``name`` (the spelling of micrograd's lecture notebooks)."""
        return self.name

    @label.setter
    def label(self, value):
        self.name = value

    @property
    def _op(self):
        """The op that made this Value: '+', '*', '**2', 'ReLU', ...; '' for a leaf."""
        cdef uint8_t op = arena[self.idx].op
        cdef bint int_exponent = arena[self.idx].flags & FLAG_INT_EXP
        cdef double c = node_data[arena[self.idx].rhs]
        if op == OP_CUSTOM:
            return state_of(self).get("_op", '')
        if op == OP_POW_CONST:
            return f"**{int(c) if int_exponent else c}"
        return OP_NAMES[op]

    @property
    def _prev(self):
        """The set of Values this one was computed from."""
        # copies, not a Node*: making the set may run the cycle collector, whose
        # finalizers may grow (move) the arena
        cdef uint8_t op = arena[self.idx].op
        cdef node_t lhs = arena[self.idx].lhs
        cdef node_t rhs = arena[self.idx].rhs if op != OP_POW_CONST else 0
        if op == OP_CUSTOM:
            return set(custom_children(self))
        out = set()
        if lhs:
            out.add(handle_of(lhs))
        if rhs:
            out.add(handle_of(rhs))
        return out

    @property
    def _backward(self):
        """Apply this Value's local chain rule once (what ``backward()`` runs per node).

        Assign a callable to a custom op's Value (one made with ``_children``) to
        give it its rule, as in micrograd.
        """
        hook = python_hook(self)
        if hook is not None:
            return hook
        return _LocalBackward(self)

    @_backward.setter
    def _backward(self, fn):
        if not arena[self.idx].flags & FLAG_MANAGED:
            raise AttributeError(
                "_backward can be assigned only to a custom op's Value, one made with "
                "Value(data, _children, _op); built-in ops have their rule in the core")
        if not callable(fn):
            raise TypeError(f"_backward must be callable, not {type(fn).__name__}")
        PyObject_GenericGetDict(self, NULL)["_backward"] = fn
        arena[self.idx].flags |= FLAG_HOOK

    def __repr__(self):
        return f"Value(data={node_data[self.idx]}, grad={node_grad[self.idx]})"

    def __reduce__(self):
        # copy, deepcopy and pickle: a leaf (a model parameter) is its data, grad
        # and name; a computed Value would need its whole graph, and its closures.
        if type(self) is not Value or arena[self.idx].op != OP_LEAF:
            raise TypeError("only leaf Values (made from a number) can be copied or "
                            "pickled; make a new leaf with Value(v.data)")
        return (_leaf, (node_data[self.idx], node_grad[self.idx], self.name))

    # -- ops: the forward formulas are op_forward's -------------------------

    def __add__(self, other):
        return binary_op(OP_ADD, self, other, False)

    def __radd__(self, other):
        return binary_op(OP_ADD, self, other, True)

    def __sub__(self, other):
        return binary_op(OP_SUB, self, other, False)

    def __rsub__(self, other):
        return binary_op(OP_SUB, self, other, True)

    def __mul__(self, other):
        return binary_op(OP_MUL, self, other, False)

    def __rmul__(self, other):
        return binary_op(OP_MUL, self, other, True)

    def __truediv__(self, other):
        return binary_op(OP_DIV, self, other, False)

    def __rtruediv__(self, other):
        return binary_op(OP_DIV, self, other, True)

    def __neg__(self):
        return unary_op(OP_NEG, self)

    def __pow__(self, other, modulo):
        if modulo is not None:
            return NotImplemented
        if isinstance(other, Value):
            return apply_op(OP_POW, self, other)
        # the exponent is a hidden constant operand: micrograd's _prev is {self}
        if is_plain_number(other):
            return binary_op_flags(OP_POW_CONST, self, other, False,
                             FLAG_INT_EXP if PyLong_Check(other) else 0)
        if not is_number(other):
            return NotImplemented
        return apply_op(OP_POW_CONST, self, other,
                        FLAG_INT_EXP if PyLong_Check(other) or (
                            not PyFloat_Check(other) and isinstance(other, numbers.Integral))
                        else 0)

    def __rpow__(self, other, modulo):
        if modulo is not None:
            return NotImplemented
        return apply_op(OP_POW, other, self)

    def relu(self):
        """max(0, x), micrograd's op 'ReLU'."""
        return unary_op(OP_RELU, self)

    def tanh(self):
        return unary_op(OP_TANH, self)

    def exp(self):
        """e ** x; OverflowError where math.exp overflows."""
        return unary_op(OP_EXP, self)

    def log(self):
        """The natural logarithm; ValueError for x <= 0, as math.log."""
        return unary_op(OP_LOG, self)

    def sigmoid(self):
        """1 / (1 + e ** -x), in a form that never overflows."""
        return unary_op(OP_SIGMOID, self)

    # -- backward -----------------------------------------------------------

    def backward(self):
        """Backpropagate from this Value, as micrograd does.

        Sets ``self.grad = 1``, then applies every node's local chain rule in
        reverse topological order, adding to (not replacing) the grads of all
        nodes reachable from here. Iterative: graph depth is unlimited.
        """
        cdef Graph g
        if self.idx == 0:
            raise_uninitialised()
        if not arena[self.idx].flags & FLAG_MANAGED:
            # no Python code below: nothing can free a node while we walk the order
            node_grad[self.idx] = 1.0
            sweep(self.idx, True, NULL)
            return
        g = Graph.__new__(Graph)
        g.record(self.idx, False)
        node_grad[self.idx] = 1.0
        g.run_backward()


def _leaf(data, grad, name):
    """Rebuild a pickled or copied leaf."""
    v = Value(data, name=name)
    v.grad = grad
    return v


class CustomValue(Value):
    """A Value that carries Python state: a custom op's children, ``_op``, and
    ``_backward`` (and ``_forward``, for Graph replay), kept in its ``__dict__``
    so that Python's cycle collector sees them.

    ``Value(data, _children, _op)`` returns one; so does any built-in op with a
    CustomValue operand.
    """


cdef dict state_of(Value v):
    """The __dict__ holding a CustomValue's Python state ({} for a plain Value)."""
    try:
        return PyObject_GenericGetDict(v, NULL)
    except AttributeError:
        return {}


cdef tuple raw_children(Value v):
    """A custom op's `_children` as stored (any objects), without allocating."""
    children = state_of(v).get("_children", ())
    return children if type(children) is tuple else ()


cdef tuple custom_children(Value v):
    """A custom op's children: the Values of its `_children` (a plain attribute
    that user code can reassign, so anything else in it is ignored)."""
    children = raw_children(v)
    for child in children:
        if not isinstance(child, Value):
            return tuple([c for c in children if isinstance(c, Value)])
    return children


cdef object python_hook(Value v):
    """A CustomValue's Python _backward, or None."""
    if not arena[v.idx].flags & FLAG_HOOK:
        return None
    return state_of(v).get("_backward")


@cython.final
cdef class _LocalBackward:
    """The callable that ``Value._backward`` returns for a built-in op."""
    cdef Value v

    def __cinit__(self, Value v not None):
        self.v = v

    def __call__(self):
        op_backward(self.v.idx)

    def __repr__(self):
        return f"<local chain rule of {self.v!r}>"


# Value(data, _children, _op) must return a CustomValue, which has a __dict__:
# the type is chosen in tp_new, before the object exists.
cdef newfunc base_tp_new = (<PyTypeObject*>Value).tp_new


cdef object value_tp_new(type t, PyObject* args, PyObject* kwds):
    if t is Value and makes_custom_op(<tuple>args, kwds):
        t = CustomValue
    return base_tp_new(t, args, kwds)


cdef bint makes_custom_op(tuple args, PyObject* kwds) except -1:
    children = args[1] if len(args) > 1 else ()
    op = args[2] if len(args) > 2 else ''
    if kwds != NULL:
        children = (<dict>kwds).get("_children", children)
        op = (<dict>kwds).get("_op", op)
    if isinstance(children, (tuple, list, set, frozenset)):
        return len(children) > 0 or bool(op)
    return True


cdef object value_vectorcall(object t, PyObject** args, size_t nargsf, PyObject* kwnames):
    """``Value(...)``: a leaf from one plain number in a few C steps (no argument
    tuple, no tp_new, no __init__); any other call is type.__call__'s, as before."""
    cdef Py_ssize_t n = autograd_nargs(nargsf), k
    cdef double x
    cdef Value out
    if t is Value and n == 1 and kwnames == NULL and is_plain_number(<object>args[0]):
        x = plain_to_double(<object>args[0])
        # the object first: allocating it may run the collector (if Value is a GC
        # type), whose finalizers may free nodes and move the arena
        out = Value.__new__(Value)
        out.idx = node_alloc(OP_LEAF, x, 0, 0, 0)
        handles[out.idx] = <PyObject*>out
        return out
    cdef Py_ssize_t nkw = len(<tuple>kwnames) if kwnames != NULL else 0
    pos = tuple([<object>args[k] for k in range(n)])
    if nkw == 0:
        return autograd_type_call(t, pos, NULL)
    kw = {(<tuple>kwnames)[k]: <object>args[n + k] for k in range(nkw)}
    return autograd_type_call(t, pos, <PyObject*>kw)


(<PyTypeObject*>Value).tp_new = <newfunc>value_tp_new
autograd_set_vectorcall(<PyTypeObject*>Value, <void*>value_vectorcall)
# CustomValue, created above, copied the old slot.
(<PyTypeObject*>CustomValue).tp_new = <newfunc>value_tp_new


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


cdef int reserve(node_t** buf, Py_ssize_t* cap, Py_ssize_t needed) except -1:
    """Grow a scratch buffer to at least `needed` entries (doubling)."""
    if needed <= cap[0]:
        return 0
    cdef Py_ssize_t new_cap = max(needed, 2 * cap[0], 1024)
    cdef node_t* new_buf = <node_t*>realloc(buf[0], new_cap * sizeof(node_t))
    if new_buf == NULL:
        raise MemoryError()
    buf[0] = new_buf
    cap[0] = new_cap
    return 0


cdef Py_ssize_t sweep(node_t root, bint backprop, node_t** order_out) except -1:
    """Order the nodes reachable from root, operands first; with `backprop`, then
    apply every node's chain rule in reverse order (graphs without Python code).

    Returns how many nodes there are. If `order_out` is not NULL, it receives
    the order, a malloc'ed array that the caller frees.
    """
    global sweep_busy
    cdef node_t* own_stack = NULL
    cdef node_t* own_order = NULL
    cdef Py_ssize_t own_stack_cap = 0, own_order_cap = 0
    if sweep_busy:
        try:
            return sweep_into(&own_stack, &own_stack_cap, &own_order, &own_order_cap,
                              root, backprop, order_out)
        finally:
            free(own_stack)
            free(own_order)
    sweep_busy = True
    try:
        return sweep_into(&sweep_stack, &sweep_stack_cap, &sweep_order, &sweep_order_cap,
                          root, backprop, order_out)
    finally:
        sweep_busy = False


cdef Py_ssize_t sweep_into(node_t** stack_buf, Py_ssize_t* stack_cap_ptr, node_t** order_buf,
                           Py_ssize_t* order_cap_ptr, node_t root, bint backprop,
                           node_t** order_out) except -1:
    global sweep_number
    cdef Py_ssize_t top = 0, n = 0, k, c, n_kids
    sweep_number += 1
    if sweep_number == 0:               # wrapped after 2**32 sweeps: forget old marks
        for k in range(n_used):
            arena[k].mark = 0
        sweep_number = 1
    cdef uint32_t mark = sweep_number
    # every reachable node enters the order once: n_live bounds it
    reserve(order_buf, order_cap_ptr, n_live + 1)
    reserve(stack_buf, stack_cap_ptr, 1024)
    cdef node_t* stack = stack_buf[0]
    cdef node_t* order = order_buf[0]
    cdef Py_ssize_t stack_cap = stack_cap_ptr[0]
    cdef node_t i, child, lhs, rhs
    cdef Node* node
    cdef PyObject* h
    cdef tuple kids
    stack[0] = root
    top = 1
    while top:
        top -= 1
        i = stack[top]
        if i < 0:                       # all operands of ~i are in the order
            if n == order_cap_ptr[0]:   # only if a finalizer grew a custom op's children
                reserve(order_buf, order_cap_ptr, n + 1)
                order = order_buf[0]
            order[n] = ~i
            n += 1
            continue
        node = &arena[i]
        if node.mark == mark:           # pushed by two results: the first one placed it
            continue
        node.mark = mark
        if top + 3 > stack_cap:
            reserve(stack_buf, stack_cap_ptr, top + 3)
            stack = stack_buf[0]
            stack_cap = stack_cap_ptr[0]
        if node.op == OP_CUSTOM:
            stack[top] = ~i
            top += 1
            # raw `_children`, non-Values skipped in place: allocating here could
            # start the cycle collector, whose finalizers could start a sweep
            h = live_handle(i)
            kids = raw_children(<Value>h) if h != NULL else ()
            if sweep_number != mark:
                raise RuntimeError("backward() ran inside another backward() (from a "
                                   "finalizer): the graph's order is lost")
            n_kids = len(kids)
            reserve(stack_buf, stack_cap_ptr, top + n_kids)
            stack = stack_buf[0]
            stack_cap = stack_cap_ptr[0]
            for c in range(n_kids):
                if not isinstance(kids[c], Value):
                    continue
                child = (<Value>kids[c]).idx
                if child and arena[child].mark != mark:
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
                reserve(order_buf, order_cap_ptr, n + 1)
                order = order_buf[0]
            order[n] = i
            n += 1
            continue
        stack[top] = ~i
        top += 1
        if rhs:
            stack[top] = rhs
            top += 1
        if lhs:
            stack[top] = lhs
            top += 1
    if backprop:
        for k in range(n - 1, -1, -1):
            op_backward(order[k])
    if order_out != NULL:
        order_out[0] = <node_t*>malloc((n if n else 1) * sizeof(node_t))
        if order_out[0] == NULL:
            raise MemoryError()
        memcpy(order_out[0], order, n * sizeof(node_t))
    return n


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
        self.size = 0
        self.pinned = False

    cdef int record(self, node_t root, bint keep) except -1:
        """Order the nodes reachable from root, operands first.

        The nodes are pinned (a reference each) if `keep`, or if Python code
        (a custom op's hook) will run while the order is walked: it could drop
        the last reference to a node of the order.
        """
        cdef node_t* order = NULL
        cdef Py_ssize_t n = sweep(root, False, &order), k
        cdef PyObject* h
        self.release()
        self.order = order
        self.size = n
        self.root = root
        self.steps = <Step*>malloc((n if n else 1) * sizeof(Step))
        if self.steps == NULL:
            self.release()
            raise MemoryError()
        for k in range(n):
            if arena[order[k]].op != OP_LEAF:
                self.steps[self.n_steps].out = order[k]
                self.steps[self.n_steps].lhs = arena[order[k]].lhs
                self.steps[self.n_steps].rhs = arena[order[k]].rhs
                self.steps[self.n_steps].op = arena[order[k]].op
                self.n_steps += 1
        self.has_python = arena[root].flags & FLAG_MANAGED
        self.pinned = keep or self.has_python
        if self.pinned:
            for k in range(n):
                node_incref(order[k])
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
            h = live_handle(i)
            if arena[i].op == OP_CUSTOM and h != NULL:
                v = <Value>h
                if custom_children(v) and not callable(state_of(v).get("_forward")):
                    raise ValueError(
                        f"cannot replay custom op {v._op!r}: its _backward knows nothing of "
                        "forward. Give its Value a `_forward` callable that recomputes "
                        "out.data from its children, or rebuild the graph each step")
        return 0

    cdef int run_backward(self) except -1:
        """Apply every node's chain rule, results before operands (reverse order)."""
        cdef Py_ssize_t k
        cdef Step* st
        cdef PyObject* h
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
        Raises the error the op raises eagerly (ZeroDivisionError, ...).
        """
        cdef Py_ssize_t k
        cdef Step* st
        cdef PyObject* h
        cdef int err = ERR_NONE
        cdef double data
        for k in range(self.n_steps):
            st = &self.steps[k]
            if st.op == OP_CUSTOM:
                h = live_handle(st.out)
                fwd = state_of(<Value>h).get("_forward") if h != NULL else None
                if fwd is not None:
                    fwd()           # may move the arena
                    node_grad[st.out] = 0.0
                continue
            data = op_forward(st.op, node_data[st.lhs], node_data[st.rhs], &err)
            if err:
                raise_forward_error(err, st.op)
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
            raise MemoryError()
        for k in range(n):
            self.nodes[k] = (<Value>seq[k]).idx
            node_incref(self.nodes[k])
        self.size = n

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
        import numpy as np
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(self.size, arr, dtype=np.float64)
        arr = np.ascontiguousarray(arr)
        if arr.shape != (self.size,):
            raise ValueError(f"{what} must have shape ({self.size},), not {arr.shape}")
        return arr

    def __repr__(self):
        return f"ValueVector({self.size} values)"
