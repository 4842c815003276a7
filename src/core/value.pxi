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


cdef void value_release(PyObject* o) noexcept:
    """What a dying Value gives back: its place in the collector's lists, its
    node reference, its attributes (Value.__dealloc__, and autograd_value_dealloc
    without Cython's wrapping). Raises nothing; only the attributes' own
    finalizers can run code, last."""
    # (<Value>o).field reads the struct: no reference is counted on o, dying
    cdef PyObject* attrs = (<Value>o).attrs
    cdef node_t i = (<Value>o).idx
    # first: Cython's dealloc of a type it thinks has no GC (see make_value_extensible)
    autograd_untrack_dying(o)
    if i:
        if handles[i] == o:         # not if a newer handle took over
            handles[i] = NULL
        node_decref(i)
    # last: the attributes' finalizers may run any code, and find no handle here
    (<Value>o).attrs = NULL
    Py_XDECREF(attrs)


cdef inline Value new_value():
    """A new exact Value, without a node yet and without attributes.

    Allocating it may run the cycle collector (Value is a GC type), and with it
    any finalizer: callers allocate before they read nodes they do not own."""
    return Value.__new__(Value)


cdef inline Value new_leaf(double x):
    """A new exact Value on a new leaf node, what ``Value(x)`` makes, made without
    calling ``Value.__new__`` or ``Value.__init__`` (class attributes that user
    code can replace: the core never trusts what they return)."""
    cdef Value out = new_value()    # first: it may run the collector
    out.idx = node_alloc(OP_LEAF, x, 0, 0, 0)
    handles[out.idx] = <PyObject*>out
    return out


cdef inline Value handle_of(node_t i):
    """The live Value of node i, made if it has none: at most one per node; a
    CustomValue for a node above a custom op, as the op that made it gives."""
    cdef PyObject* h = live_handle(i)
    if h != NULL:
        return <Value>h
    cdef Value v = new_custom_value() if arena[i].flags & FLAG_MANAGED else new_value()
    # a Value is a GC type: making one may run the cycle collector, whose
    # finalizers may have made node i a handle meanwhile (the caller keeps i alive)
    h = live_handle(i)
    if h != NULL:
        return <Value>h
    node_pin(i)
    v.idx = i
    handles[i] = <PyObject*>v
    return v


cdef object apply_op(uint8_t op, object a, object b, uint8_t flags=0, bint as_math=False):
    """`a op b` (b None for unary ops).

    Either operand may be a number (it becomes a constant leaf, as in micrograd);
    anything else gives NotImplemented, so Python raises TypeError.
    """
    cdef node_t ia = 0, ib = 0
    cdef double da = 0.0, db = 0.0     # da = 0.0: gcc -Wall cannot see every path sets it
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
        raise_forward_error(err, op, as_math)
    # A result that has a custom op below it must be visible to the cycle collector.
    if (arena[ia].flags | arena[ib].flags) & FLAG_MANAGED:
        return make_managed_result(op, data, da if a_const else a, db if b_const else b, flags)
    cdef Value out = new_value()
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


cdef inline int check_unbound(Value v) except -1:
    if v.idx:
        raise RuntimeError("Value.__init__ was already called: a Value cannot be "
                           "moved to another node")
    return 0


cdef int raise_uninitialised() except -1:
    raise ValueError("this Value has no node: Value.__init__ was not called "
                     "(a subclass's __init__ must call super().__init__)")


cdef int refuse_delete(Value v, str name) except -1:
    """`del v.data` and the like: what Python says for a property without a
    deleter (Cython's default says NotImplementedError: __del__)."""
    raise AttributeError(f"property {name!r} of {type(v).__name__!r} object has no deleter")


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
    # one call of op_forward (two would not be inlined)
    cdef double data = op_forward(op, do if other_first else dv,
                                  dv if other_first else do, &err)
    if err:
        raise_forward_error(err, op)
    # a GC type: if this ever runs the cycle collector, whose finalizers run any
    # code, only copies (data) and nodes of Values our caller holds are used after it
    cdef Value out = new_value()
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
    cdef Value out = new_value()
    out.idx = node_alloc(op, data, iv, 0, 0)
    handles[out.idx] = <PyObject*>out
    return out


cdef object make_managed_result(uint8_t op, double data, object a, object b, uint8_t flags):
    """The CustomValue result of `a op b` (data computed already); a number operand
    comes as the float it was converted to, so that it is converted only once.

    Made as binary_op makes its result: the constant's leaf by node_alloc, the
    object by the type's C constructor. Nothing user code can replace
    (``Value.__new__``, ``Value.__init__``, ``CustomValue.__new__``) is called,
    so nothing can hand the core an object of its choice."""
    # the object first: allocating a GC type may run the collector, which may
    # free nodes and move the arena (a and b, held here, keep their nodes)
    cdef Value out = new_custom_value()
    cdef bint a_const = not isinstance(a, Value)
    cdef bint b_const = b is not None and not isinstance(b, Value)
    cdef node_t ia = 0 if a_const else (<Value>a).idx
    cdef node_t ib = 0 if b is None or b_const else (<Value>b).idx
    ensure_slots(1 + a_const + b_const)
    if a_const:
        ia = node_alloc(OP_LEAF, <double>a, 0, 0, 0)
    if b_const:
        ib = node_alloc(OP_LEAF, <double>b, 0, 0, 0)
    out.idx = node_alloc(op, data, ia, ib, flags | FLAG_MANAGED)
    handles[out.idx] = <PyObject*>out
    # the constants' creation references now belong to the result
    if a_const:
        arena[ia].refs -= 1
    if b_const:
        arena[ib].refs -= 1
    # the Value operands, where the cycle collector sees them (a constant is a
    # plain leaf, held by the node)
    autograd_get_dict(out, NULL)["_children"] = (
        (b,) if a_const else (a,) if b is None or b_const else (a, b))
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
    # first, as it may run the cycle collector, whose finalizers could change the
    # caller's lists after they were checked
    cdef Value out = new_value()
    cdef Py_ssize_t n = min(len(ws), len(xs)), k
    cdef bint fast = (type(start) is Value and not arena[(<Value>start).idx].flags & FLAG_MANAGED
                      and autograd_ops_untouched(<PyTypeObject*>Value))   # no Value.__add__ = f
    if isinstance(start, Value) and (<Value>start).idx == 0:
        raise_uninitialised()
    for k in range(n):
        if not fast:
            break
        w = ws[k]
        x = xs[k]
        fast = (type(w) is Value and not arena[(<Value>w).idx].flags & FLAG_MANAGED and
                (PyFloat_CheckExact(x) or
                 type(x) is Value and not arena[(<Value>x).idx].flags & FLAG_MANAGED))
        # the null node (an uninitialised Value) is no operand, as in `w * x`
        if fast and ((<Value>w).idx == 0 or type(x) is Value and (<Value>x).idx == 0):
            raise_uninitialised()
    if not fast:                        # numbers, subclasses, custom ops: Python's way
        return sum((wi * xi for wi, xi in zip(ws, xs)), start)
    if n == 0:
        return start                    # as sum() of nothing
    cdef node_t acc = (<Value>start).idx, term, iw, ix
    cdef double xd
    ensure_slots(3 * n)                 # a product, a sum and maybe a constant a term
    node_pin(acc)                       # the running sum's reference, dropped as it moves
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


cdef inline uint8_t int_exponent_flag(object c):
    """FLAG_INT_EXP for an integer exponent (``_op`` is then '**2', not '**2.0')."""
    return FLAG_INT_EXP if PyLong_Check(c) or (
        not PyFloat_Check(c) and isinstance(c, numbers.Integral)) else 0


def apply_math(int op, a, b=None):
    """The op `op` (an op code, see ``OP_CODES``) applied to `a` (and `b`), a
    Value and numbers in any mix, raising the errors Python's math module
    raises for the same floats: autograd.math's entry into the core.

    ``pow`` (OP_CODES['**']) takes the exponent as a hidden constant when it is
    a number, as ``v ** c`` does.
    """
    if op <= OP_CUSTOM and op != OP_EXP and op != OP_LOG and op != OP_TANH and op != OP_POW:
        raise ValueError(f"op {op} is not a math function")
    if op >= N_OPS:
        raise ValueError(f"no op {op}")
    if op >= OP_NORM_FIRST:
        raise ValueError(f"op {op} is a node of an n-ary function: use apply_nary")
    for x in (a, b):
        if x is not None and not isinstance(x, Value) and not is_number(x):
            raise TypeError(f"must be real number, not {type(x).__name__}")
    cdef uint8_t flags = 0
    if op == OP_POW and not isinstance(b, Value):
        flags = int_exponent_flag(b)
        op = OP_POW_CONST
    return apply_op(<uint8_t>op, a, b, flags, True)


def apply_nary(str function, operands):
    """math.hypot(*operands) or math.fsum(operands) (`function`) of two or more
    Values and numbers in any mix: a spine of binary steps under a root whose data
    is math's for the same floats (see the op table's n-ary ops), raising the
    errors math raises. autograd.math's entry into the core for them.

    Examples
    --------
    >>> apply_nary("fsum", [Value(1e100), 1.0, -1e100]).data       # math.fsum's
    1.0
    """
    cdef uint8_t first, step, root
    if function == "hypot":
        first, step, root = OP_NORM_FIRST, OP_NORM_NEXT, OP_NORM
    elif function == "fsum":
        first, step, root = OP_FSUM_FIRST, OP_FSUM_NEXT, OP_FSUM
    else:
        raise ValueError(f"no n-ary function {function!r}")
    operands = list(operands)
    if len(operands) < 2:
        raise ValueError(f"{function} of Values takes 2 or more operands here, "
                         f"not {len(operands)}")
    for x in operands:
        if not isinstance(x, Value) and not is_number(x):
            raise TypeError(f"must be real number, not {type(x).__name__}")
    spine = apply_op(first, operands[0], operands[1], 0, True)
    for x in operands[2:]:
        spine = apply_op(step, spine, x, 0, True)
    cdef node_t top = (<Value>spine).idx
    cdef int err = ERR_NONE
    cdef double data = gather_forward(root, top, &err)
    if err:
        raise_forward_error(err, root, True)
    if arena[top].flags & FLAG_MANAGED:
        return make_managed_result(root, data, spine, None, 0)
    cdef Value out = new_value()
    out.idx = node_alloc(root, data, (<Value>spine).idx, 0, 0)
    handles[out.idx] = <PyObject*>out
    return out


OP_CODES = {name: code for code, name in enumerate(OP_NAMES)
            if (code >= OP_SIN and code < OP_NORM_FIRST) or code in (OP_EXP, OP_LOG, OP_TANH)}
OP_CODES['**'] = OP_POW


cdef extern from *:
    """
    #if PY_VERSION_HEX >= 0x030D0000
    #define autograd_hash_pointer(p) Py_HashPointer(p)
    #else
    #define autograd_hash_pointer(p) _Py_HashPointer(p)
    #endif
    """
    Py_hash_t autograd_hash_pointer(void* p) noexcept


cdef inline int compare_data(Value v, object other, double* o) except -1:
    """`other`'s data (a Value's) or value (a number) in o[0]; 0 if it is neither."""
    if isinstance(other, Value):
        if (<Value>other).idx == 0:
            raise_uninitialised()
        o[0] = node_data[(<Value>other).idx]
        return 1
    if is_plain_number(other):
        o[0] = plain_to_double(other)
        return 1
    if is_number(other):
        o[0] = to_double(other, "a compared number")
        return 1
    return 0


cdef str conversion_hint(Value v, str what):
    return (f"a Value cannot be converted to {what}: that would drop its gradient. "
            f"Use v.data for the number ({node_data[v.idx]!r}, no gradient), or "
            f"autograd.math (e.g. autograd.math.sin(v)) instead of the math module "
            f"to keep it")


@cython.freelist(1024)
cdef class Value:
    """Value(data, _children=(), _op='', name='', *, label=None)
--

A scalar that remembers how it was computed, micrograd's ``Value``.

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

    Notes
    -----
    As micrograd's Python class, it can be extended: attributes on any Value
    (``v.color = 'red'``), methods and dunders on the class (``Value.f = g``,
    Python >= 3.10), and a writable ``_op`` label.

    Examples
    --------
    >>> a = Value(2.0, name='a')
    >>> b = a * a + 1
    >>> b.backward()
    >>> b.data, a.grad
    (5.0, 4.0)
    """

    def __init__(self, data, _children=(), _op='', name='', *, label=None):
        # One object, one node: everything that can run user code (the data's
        # __float__, iterating _children, _op's __bool__ and __str__, the
        # __dict__'s keys) runs first, and may re-enter __init__ on this very
        # object; then self.idx is checked again, and binding calls out no more.
        check_unbound(self)
        cdef double x = to_double(data, "Value data")
        children = tuple(_children)
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"_children must be Values, not {type(child).__name__}")
        if label is not None:
            name = label
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        cdef str exact_name = name if type(name) is str else str.__str__(name)
        cdef bint custom = bool(children) or bool(_op) or isinstance(self, custom_value_type)
        if custom:
            if type(self) is Value:     # Value.__new__(Value).__init__(x, children)
                raise TypeError("this Value was made as a plain Value, so it cannot become "
                                "a custom op: call Value(data, _children, _op)")
            state = autograd_get_dict(self, NULL)     # tracked: not an exact Value
            state["_children"] = children
            state["_op"] = str(_op)
        check_unbound(self)
        cdef node_t i = node_alloc(OP_CUSTOM if custom else OP_LEAF, x, 0, 0,
                                   FLAG_MANAGED if custom else 0)
        self.idx = i
        handles[i] = <PyObject*>self
        if exact_name:
            names[i] = exact_name        # what the name setter does, calling out to nothing
            arena[i].flags |= FLAG_NAMED

    def __dealloc__(self):
        value_release(<PyObject*>self)

    def __setattr__(self, name, value):
        autograd_set_attr(self, name, <PyObject*>value)

    def __delattr__(self, name):
        autograd_set_attr(self, name, NULL)

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

    @data.deleter
    def data(self):
        refuse_delete(self, "data")

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

    @grad.deleter
    def grad(self):
        refuse_delete(self, "grad")

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

    @name.deleter
    def name(self):
        refuse_delete(self, "name")

    @property
    def label(self):
        """Alias of ``name`` (the spelling of micrograd's lecture notebooks)."""
        return self.name

    @label.setter
    def label(self, value):
        self.name = value

    @label.deleter
    def label(self):
        refuse_delete(self, "label")

    @property
    def _op(self):
        """The op that made this Value: '+', '*', '**2', 'ReLU', ...; '' for a leaf.

        Writable, as in micrograd: a new label changes what ``_op`` returns and
        what ``draw_dot`` shows, never the chain rule.
        """
        cdef uint8_t op = arena[self.idx].op
        cdef bint int_exponent = arena[self.idx].flags & FLAG_INT_EXP
        cdef double c = node_data[arena[self.idx].rhs]
        if arena[self.idx].flags & FLAG_OP_LABEL:
            return op_labels[self.idx]
        if op == OP_CUSTOM:
            return state_of(self).get("_op", '')
        if op == OP_POW_CONST:
            return f"**{int(c) if int_exponent else c}"
        return OP_NAMES[op]

    @_op.setter
    def _op(self, value):
        if not isinstance(value, str):
            raise TypeError(f"_op must be a str, not {type(value).__name__}")
        if self.idx == 0:
            raise_uninitialised()
        # an exact str in a side table by node, as names (node_free_cascade pops it)
        op_labels[self.idx] = value if type(value) is str else str.__str__(value)
        arena[self.idx].flags |= FLAG_OP_LABEL

    @_op.deleter
    def _op(self):
        refuse_delete(self, "_op")

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

    @_prev.setter
    def _prev(self, children):
        if self.idx == 0:
            raise_uninitialised()
        if arena[self.idx].op != OP_CUSTOM:
            raise AttributeError(
                f"_prev of a built-in op ({self._op!r}) cannot be assigned: its operands live "
                "in the compiled core, which runs its chain rule. To give a Value operands "
                "of your choice, make it a custom op: Value(data, _children, _op) with a "
                "_backward, as in micrograd")
        children = tuple(children)
        for child in children:
            if not isinstance(child, Value):
                raise TypeError(f"_prev must hold Values, not {type(child).__name__}")
        autograd_get_dict(self, NULL)["_children"] = children

    @_prev.deleter
    def _prev(self):
        refuse_delete(self, "_prev")

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
        autograd_get_dict(self, NULL)["_backward"] = fn
        arena[self.idx].flags |= FLAG_HOOK

    @_backward.deleter
    def _backward(self):
        refuse_delete(self, "_backward")

    def __repr__(self):
        return f"Value(data={node_data[self.idx]}, grad={node_grad[self.idx]})"

    def __reduce__(self):
        # copy, deepcopy and pickle: a leaf (a model parameter) is its data, grad
        # and name, and its attributes (optimizer state); a computed Value would
        # need its whole graph, and its closures.
        if type(self) is not Value or arena[self.idx].op != OP_LEAF:
            raise TypeError("only leaf Values (made from a number) can be copied or "
                            "pickled; make a new leaf with Value(v.data)")
        args = (node_data[self.idx], node_grad[self.idx], self.name)
        if self.attrs != NULL and len(<dict>self.attrs):
            return (_leaf, args, <dict>self.attrs)
        return (_leaf, args)

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
        if not is_number(other):
            return NotImplemented
        # the exponent is a hidden constant operand: micrograd's _prev is {self}
        cdef uint8_t flags = int_exponent_flag(other)
        if is_plain_number(other):
            return binary_op_flags(OP_POW_CONST, self, other, False, flags)
        return apply_op(OP_POW_CONST, self, other, flags)

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

    # -- math: PyTorch's method names; the rows are the op table's ------------

    def sin(self):
        """math.sin(x), differentiable; see autograd.math."""
        return unary_op(OP_SIN, self)

    def cos(self):
        """math.cos(x), differentiable."""
        return unary_op(OP_COS, self)

    def tan(self):
        """math.tan(x), differentiable."""
        return unary_op(OP_TAN, self)

    def asin(self):
        """math.asin(x); ValueError outside [-1, 1], as math."""
        return unary_op(OP_ASIN, self)

    def acos(self):
        """math.acos(x); ValueError outside [-1, 1], as math."""
        return unary_op(OP_ACOS, self)

    def atan(self):
        """math.atan(x), differentiable."""
        return unary_op(OP_ATAN, self)

    def sinh(self):
        """math.sinh(x), differentiable."""
        return unary_op(OP_SINH, self)

    def cosh(self):
        """math.cosh(x), differentiable."""
        return unary_op(OP_COSH, self)

    def asinh(self):
        """math.asinh(x), differentiable."""
        return unary_op(OP_ASINH, self)

    def acosh(self):
        """math.acosh(x); ValueError below 1, as math."""
        return unary_op(OP_ACOSH, self)

    def atanh(self):
        """math.atanh(x); ValueError outside (-1, 1), as math."""
        return unary_op(OP_ATANH, self)

    def exp2(self):
        """math.exp2(x): 2 ** x."""
        return unary_op(OP_EXP2, self)

    def expm1(self):
        """math.expm1(x): e ** x - 1, accurate near 0."""
        return unary_op(OP_EXPM1, self)

    def log2(self):
        """math.log2(x)."""
        return unary_op(OP_LOG2, self)

    def log10(self):
        """math.log10(x)."""
        return unary_op(OP_LOG10, self)

    def log1p(self):
        """math.log1p(x): log(1 + x), accurate near 0."""
        return unary_op(OP_LOG1P, self)

    def sqrt(self):
        """math.sqrt(x); ValueError for x < 0, as math."""
        return unary_op(OP_SQRT, self)

    def cbrt(self):
        """math.cbrt(x), the real cube root."""
        return unary_op(OP_CBRT, self)

    def abs(self):
        """|x| (math.fabs); its derivative at 0 is 0, as PyTorch's."""
        return unary_op(OP_FABS, self)

    def erf(self):
        """math.erf(x), the error function."""
        return unary_op(OP_ERF, self)

    def erfc(self):
        """math.erfc(x) = 1 - erf(x), accurate for large x."""
        return unary_op(OP_ERFC, self)

    def lgamma(self):
        """math.lgamma(x): log |gamma(x)|."""
        return unary_op(OP_LGAMMA, self)

    def floor(self):
        """The floor of x as a Value (derivative 0, as PyTorch's)."""
        return unary_op(OP_FLOOR, self)

    def ceil(self):
        """The ceiling of x as a Value (derivative 0)."""
        return unary_op(OP_CEIL, self)

    def trunc(self):
        """x rounded toward 0, as a Value (derivative 0)."""
        return unary_op(OP_TRUNC, self)

    def sign(self):
        """1.0, -1.0 or 0.0 (nan for nan), as torch.sign; derivative 0."""
        return unary_op(OP_SIGN, self)

    def atan2(self, other):
        """math.atan2(self, other): the angle of the point (other, self)."""
        return apply_math(OP_ATAN2, self, other)

    def hypot(self, other):
        """math.hypot(self, other)."""
        return apply_math(OP_HYPOT, self, other)

    def fmod(self, other):
        """math.fmod(self, other): C's fmod (the sign of self), as torch.fmod."""
        return apply_math(OP_FMOD, self, other)

    def copysign(self, other):
        """math.copysign(self, other)."""
        return apply_math(OP_COPYSIGN, self, other)

    def __abs__(self):
        return unary_op(OP_FABS, self)

    def __floor__(self):
        # math.floor(v): a Value (derivative 0), as for a PyTorch scalar
        return unary_op(OP_FLOOR, self)

    def __ceil__(self):
        return unary_op(OP_CEIL, self)

    def __trunc__(self):
        return unary_op(OP_TRUNC, self)

    # -- numbers out: refused, with the way to the number or the gradient ------

    def __float__(self):
        raise TypeError(conversion_hint(self, "float"))

    def __int__(self):
        raise TypeError(conversion_hint(self, "int"))

    def __index__(self):
        raise TypeError(conversion_hint(self, "an integer index"))

    def __round__(self, ndigits=None):
        raise TypeError(conversion_hint(self, "a rounded number") +
                        "; math.floor(v), math.ceil(v) and math.trunc(v) give Values")

    def __format__(self, spec):
        """format(v, '.4f') and f'{v:.4f}' format the data, as PyTorch scalars;
        an empty spec gives repr(v)."""
        if not spec:
            return repr(self)
        return format(node_data[self.idx], spec)

    # -- comparisons: of the data, as floats; == and hash stay identity ---------

    def __lt__(self, other):
        cdef double o
        if not compare_data(self, other, &o):
            return NotImplemented
        return node_data[self.idx] < o

    def __le__(self, other):
        cdef double o
        if not compare_data(self, other, &o):
            return NotImplemented
        return node_data[self.idx] <= o

    def __gt__(self, other):
        cdef double o
        if not compare_data(self, other, &o):
            return NotImplemented
        return node_data[self.idx] > o

    def __ge__(self, other):
        cdef double o
        if not compare_data(self, other, &o):
            return NotImplemented
        return node_data[self.idx] >= o

    def __eq__(self, other):
        # identity, as object's: micrograd's graph walks keep Values in sets
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return autograd_hash_pointer(<void*>self)

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
