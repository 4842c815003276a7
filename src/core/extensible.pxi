# =============================================================================
# Values that carry attributes; a Value class that code can extend
# =============================================================================
# Code written for micrograd's Python class sets attributes on Values (colours,
# optimizer state, tags) and adds methods to the class (`Value.sigmoid = f`).
#
# Attributes: every Value has an instance __dict__ slot (`attrs`, NULL until the
# first attribute), so Value is a GC type whose tp_traverse visits that dict:
# `v.me = v` or `p.state = [p]` is freed by one gc.collect(), as in micrograd.
# Cython would make __dict__ a dict created with every object; instead the
# type is made a GC type here, after PyType_Ready and before any Value or
# subclass exists (tp_dictoffset, the GC flag, traverse, clear, GC free, and
# a `__dict__` descriptor). A plain Value stays out of the collector's lists,
# as CPython keeps tuples of atoms out: tp_alloc makes a new exact Value
# untracked, and does not count it as a GC allocation, so making Values starts
# no collection (Cython's freelist reuses untracked ones as they are), and the
# only ways to give it a dict (Value.__setattr__, the `__dict__` getter and
# setter) track it. So "has a dict => tracked" always holds, and a Value
# without attributes costs the collector nothing. __dealloc__ untracks first
# (Cython writes no GC dealloc for a type it thinks has no GC) and clears the
# dict last, after the node's handle is gone. Subclasses (CustomValue and
# user classes) are always tracked. Cost: 16 bytes per live handle (the GC
# header and the dict pointer take a Value from pymalloc's 32-byte class to
# its 48-byte one), nothing per node. CPython requires the header on every
# instance of a GC type (the collector reads it on any object a container
# refers to), and cycles through attributes need a GC type. On CPython 3.11
# only, a method call (`x.relu()`) is not specialized while the dict slot is
# empty (3.12's LOAD_ATTR_METHOD_LAZY_DICT is), about 15 ns more per call. A
# shared empty dict in the slot would let 3.11 specialize it, but a class-level
# `Value.__setattr__ = f` would then write other Values' attributes into it.
#
# For the core: making a CustomValue (or, if the GC header's layout is not the
# known one, any Value) may run the cycle collector, and with it any
# finalizer. Every allocation point (handle_of, binary_op, unary_op, apply_op,
# make_managed_result, dot) allocates the object before it holds a Node* or
# reads a node it does not own, or re-checks after.
#
# The class: a static type is immutable (Py_TPFLAGS_IMMUTABLETYPE, 3.10+).
# Clearing the flag lets `Value.f = g`, `del Value.f` and dunder assignment go
# through type_setattro, which writes tp_dict, invalidates the method cache
# (PyType_Modified) and, for a dunder, points the C slot at the generic slot
# function (and propagates it to subclasses), exactly as for a Python class.
# Assigning back the original (e.g. the saved `Value.__dict__['__add__']`)
# gives back the compiled slot: update_slot recognises its wrapper. Operators
# the user does not replace keep their compiled slot; `dot` checks + and *.
# The type object is static, so it is never freed, even at interpreter exit:
# functions assigned to it live until the process ends (as on a module-level
# Python class). Python 3.9 refuses assignment to any non-heap type: there,
# class-level assignment raises CPython's TypeError.

autograd_make_extensible(<PyTypeObject*>Value, AUTOGRAD_VALUE_ATTRS_OFFSET,
                         sys.getsizeof([]) - [].__sizeof__(), value_release)
for _name in ('__add__', '__radd__', '__sub__', '__rsub__', '__mul__', '__rmul__',
              '__truediv__', '__rtruediv__'):
    autograd_wrap_number_slot(<PyTypeObject*>Value, float.__dict__[_name])
del _name
autograd_save_ops(<PyTypeObject*>Value)


# -- what an op is, in micrograd's Python: help() and _backward's repr -------
# Made from OP_PYTHON's rows once, at import: no cost when an op runs.

cdef str indent(str text, str prefix):
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


cdef str op_python(uint8_t op, str method):
    """The micrograd-style Python of op `op`, as the method `method` of Value."""
    methods, forward, backward = OP_PYTHON[op][:3]
    label = OP_PYTHON[op][3] if len(OP_PYTHON[op]) > 3 else repr(OP_NAMES[op])
    binary = "other.data" in forward or "other.data" in backward
    takes_other = binary or "other" in forward
    lines = [f"def {method}(self{', other' if takes_other else ''}):"]
    if binary:
        lines.append("    other = other if isinstance(other, Value) else Value(other)")
    children = "(self, other)" if binary else "(self,)"
    lines += [f"    out = Value({forward.split('  #')[0].strip()}, {children}, {label})", "",
              "    def _backward():", indent(backward, "        "),
              "    out._backward = _backward", "", "    return out"]
    return "\n".join(lines)


cdef str op_doc(str method):
    """help(Value.<method>): the micrograd Python of every op the method makes."""
    rows = [op for op in sorted(OP_PYTHON) if method in OP_PYTHON[op][0]]
    first = OP_PYTHON[rows[0]][0][0]
    reflected = method != first
    parts = []
    for op in rows:
        methods, forward = OP_PYTHON[op][:2]
        binary = "other" in forward
        symbol = OP_NAMES[op]
        if reflected:
            head = (f"``other {symbol} self`` for a number ``other``: ``Value(other) {symbol} "
                    f"self``, one '{symbol}' node.")
        elif binary:
            kind = forward.partition("#")[2].strip()
            head = (f"``self.{method}(other)``" if symbol.isidentifier() else
                    f"``self {symbol} other``") + (f" ({kind})." if kind else ".")
        else:
            head = f"``self.{method}()``." if not method.startswith("__") else \
                f"``{symbol}(self)``, micrograd's ``{method}``."
        parts.append(head + " micrograd's Python for it (the core computes the same "
                     "numbers, in C)::\n\n" + indent(op_python(op, first), "    "))
    return "\n\n".join(parts) + ("\n\nThe _backward of the result applies the chain rule "
                                  "above; see its repr.")


cdef int install_op_docs() except -1:
    attrs = Value.__dict__
    done = set()
    for op in OP_PYTHON:
        for method in OP_PYTHON[op][0]:
            if method in done:
                continue
            done.add(method)
            doc = op_doc(method)
            descr = attrs[method]
            if type(descr).__name__ == "wrapper_descriptor":
                # keep the signature line CPython's own doc starts with
                sig = descr.__text_signature__
                autograd_set_wrapper_doc(descr, f"{method}{sig}\n--\n\n{doc}".encode())
            else:
                descr.__doc__ = doc
    return 0


install_op_docs()


def _leaf(data, grad, name):
    """Rebuild a pickled or copied leaf."""
    v = new_leaf(to_double(data, "data"))     # not Value(...): user code may replace it
    v.grad = grad
    v.name = name
    return v


class CustomValue(Value):
    """A Value that carries Python state: a custom op's children, ``_op``, and
    ``_backward`` (and ``_forward``, for Graph replay), kept in its ``__dict__``
    so that Python's cycle collector sees them.

    ``Value(data, _children, _op)`` returns one; so does any built-in op with a
    CustomValue operand.
    """


# The class object itself, for the core: the module's name `CustomValue` and the
# class's `__new__` are user-writable (a float there made tp_new write a Value's
# fields past a float's end), the C constructor is not.
cdef type custom_value_type = CustomValue


cdef dict NO_STATE = {}


cdef dict state_of(Value v):
    """The __dict__ holding a CustomValue's Python state (an empty dict, never
    written, if the Value has none); allocates nothing."""
    if v.attrs == NULL:
        return NO_STATE
    return <dict>v.attrs


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
        """Which chain rule, on which operands: OP_PYTHON's `_backward` body."""
        cdef uint8_t op = arena[self.v.idx].op
        if op not in OP_PYTHON:
            return f"<_backward of {self.v!r} (op {self.v._op!r}): nothing to propagate>"
        cdef node_t lhs = arena[self.v.idx].lhs
        cdef node_t rhs = arena[self.v.idx].rhs
        backward = OP_PYTHON[op][2]
        names = [f"out = {value_text(self.v)}", f"self = {value_text(handle_of(lhs))}"]
        if "other" in backward:
            names.append(f"other = {value_text(handle_of(rhs))}" if op != OP_POW_CONST
                         else f"other = {node_data[rhs]!r}")
        return (f"<_backward of op {self.v._op!r}, {', '.join(names)}:\n"
                + indent(backward, "    ") + ">")


cdef str value_text(Value v):
    return f"{v.name} {v!r}" if v.name else repr(v)


# Value(data, _children, _op) must return a CustomValue, which has a __dict__:
# the type is chosen in tp_new, before the object exists.
cdef newfunc base_tp_new = (<PyTypeObject*>Value).tp_new


cdef object value_tp_new(type t, PyObject* args, PyObject* kwds):
    if t is Value and makes_custom_op(<tuple>args, kwds):
        t = custom_value_type
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
    if (t is Value and n == 1 and kwnames == NULL and is_plain_number(<object>args[0])
            and autograd_tp_init(<PyTypeObject*>Value) == value_tp_init   # no Value.__init__ = f,
            and <void*>(<PyTypeObject*>Value).tp_new == value_tp_new_slot):   # no Value.__new__ = f
        x = plain_to_double(<object>args[0])
        return new_leaf(x)
    cdef Py_ssize_t nkw = len(<tuple>kwnames) if kwnames != NULL else 0
    pos = tuple([<object>args[k] for k in range(n)])
    if nkw == 0:
        return autograd_type_call(t, pos, NULL)
    kw = {(<tuple>kwnames)[k]: <object>args[n + k] for k in range(nkw)}
    return autograd_type_call(t, pos, <PyObject*>kw)


cdef Value new_custom_value():
    """A new CustomValue, without a node yet and without attributes, made by the
    type's C constructor as new_value() makes a Value (not by
    ``CustomValue.__new__``, which code can replace). It is a GC type: making it
    may run the collector, and with it any finalizer."""
    return <Value>base_tp_new(custom_value_type, <PyObject*>(), NULL)


(<PyTypeObject*>Value).tp_new = <newfunc>value_tp_new
autograd_set_vectorcall(<PyTypeObject*>Value, <void*>value_vectorcall)
# the slots value_vectorcall's shortcut stands for: a class-level assignment of
# __init__ or __new__ replaces them, and Value(x) then takes type.__call__'s way
cdef void* value_tp_init = autograd_tp_init(<PyTypeObject*>Value)
cdef void* value_tp_new_slot = <void*>(<PyTypeObject*>Value).tp_new
# CustomValue, created above, copied the old slot.
(<PyTypeObject*>CustomValue).tp_new = <newfunc>value_tp_new
