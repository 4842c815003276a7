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
recursion. A Value can carry attributes in a ``__dict__``; one without any is
untracked by Python's cycle collector and costs it nothing (see "Values that
carry attributes", after the Value class). A custom op (a Value made with
``_children``) is a ``CustomValue``: its children, ``_op`` and ``_backward``
closure live in its ``__dict__``, where the collector sees them, exactly as in
micrograd; every result built on top of one is a ``CustomValue`` too, so a
dropped graph of custom ops is collected by one ``gc.collect()``.
"""

cimport cython
from cpython.dict cimport PyDict_Next
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_CheckExact
from cpython.bool cimport PyBool_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check, PyLong_CheckExact
from cpython.object cimport PyObject, PyTypeObject, newfunc
from cpython.ref cimport Py_REFCNT
from cpython.unicode cimport PyUnicode_CheckExact
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
import sys

cdef extern from "Python.h":
    bint PyObject_GC_IsTracked(object o)
    void PyObject_GC_Track(object o)
    void PyObject_GC_UnTrack(object o)
    void Py_XDECREF(PyObject* o)

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
    static void *autograd_tp_init(PyTypeObject *t) { return (void *)t->tp_init; }

    /* Eager ops and Graph replay must round alike on every platform: no a*b + c
       fused into one FMA rounding. setup.py passes -ffp-contract=off (gcc, clang)
       and /fp:precise (MSVC); the pragmas say it again for compilers that see this
       file without those flags (MSVC before VS 2022 contracted under /fp:precise). */
    #if defined(_MSC_VER) && !defined(__clang__)
    #pragma fp_contract(off)
    #elif defined(__clang__)
    #pragma STDC FP_CONTRACT OFF
    #endif

    /* The index of the lowest set bit of a nonzero word (the free-slot bitmap). */
    #if defined(_MSC_VER)
    #include <intrin.h>
    static __inline int count_trailing_zeros(unsigned __int64 x) {
        unsigned long i;
    #if defined(_M_X64) || defined(_M_ARM64) || defined(_M_ARM64EC)
        _BitScanForward64(&i, x);
    #else   /* 32-bit x86 and ARM have no 64-bit scan: the low half, else the high */
        if (!_BitScanForward(&i, (unsigned long)x)) {
            _BitScanForward(&i, (unsigned long)(x >> 32));
            i += 32;
        }
    #endif
        return (int)i;
    }
    #else
    #define count_trailing_zeros(x) __builtin_ctzll(x)
    #endif

    /* Values that carry attributes: see make_value_extensible in _core.pyx. */
    static Py_ssize_t autograd_dict_offset = 0;
    static PyTypeObject *autograd_value_type = NULL;

    #define AUTOGRAD_ATTRS_SLOT(o) (*(PyObject **)((char *)(o) + autograd_dict_offset))

    static int autograd_value_traverse(PyObject *o, visitproc visit, void *arg) {
        Py_VISIT(AUTOGRAD_ATTRS_SLOT(o));
        return 0;
    }

    static int autograd_value_clear(PyObject *o) {
        Py_CLEAR(AUTOGRAD_ATTRS_SLOT(o));
        return 0;
    }

    /* A new exact Value has no dict: it stays out of the collector's lists.
       It is allocated as PyType_GenericAlloc would (GC header first, zeroed:
       "untracked"), but without counting it as a new GC object, which would
       start a collection every 700 Values. Freed alike, without uncounting.
       Subclasses are allocated, counted and tracked the usual way. */
    static Py_ssize_t autograd_gc_presize = 0;   /* 0: use PyType_GenericAlloc */

    /* Exact Values freed by autograd_value_dealloc, for autograd_value_alloc. */
    #define AUTOGRAD_FREELIST_SIZE 1024
    static PyObject *autograd_freelist[AUTOGRAD_FREELIST_SIZE];
    static int autograd_free_count = 0;

    static PyObject *autograd_value_alloc(PyTypeObject *t, Py_ssize_t n) {
        PyObject *o;
        char *mem;
        size_t size;
        if (t != autograd_value_type || autograd_gc_presize == 0) {
            o = PyType_GenericAlloc(t, n);
            if (o != NULL && t == autograd_value_type)
                PyObject_GC_UnTrack(o);
            return o;
        }
        size = (size_t)(autograd_gc_presize + t->tp_basicsize);
        if (autograd_free_count > 0)
            mem = (char *)autograd_freelist[--autograd_free_count] - autograd_gc_presize;
        else if ((mem = (char *)PyObject_Malloc(size)) == NULL)
            return PyErr_NoMemory();
        memset(mem, 0, size);
        o = (PyObject *)(mem + autograd_gc_presize);
        PyObject_Init(o, t);
        return o;
    }

    static void autograd_value_free(void *o) {
        PyObject_Free((char *)o - autograd_gc_presize);
    }

    /* Value's tp_dealloc. An exact Value without a finalizer (the Values of
       every op) is released by value_release (Value.__dealloc__'s work, which
       raises nothing and leaves the error indicator alone) and kept for reuse.
       Anything else (a subclass, an assigned Value.__del__, an unknown GC
       header) takes Cython's dealloc, which also saves and restores the error
       indicator around __dealloc__: 60 instructions a Value, a sixth of an op. */
    static destructor autograd_cython_dealloc = NULL;
    static void (*autograd_release)(PyObject *) = NULL;

    static void autograd_value_dealloc(PyObject *o) {
        PyTypeObject *t = Py_TYPE(o);
        if (t->tp_finalize != NULL) {
            /* an assigned Value.__del__ (subclasses' finalizers have run in
               subtype_dealloc): what Cython's dealloc does only if tp_dealloc
               is its own */
            if (!PyObject_GC_IsFinalized(o) && PyObject_CallFinalizerFromDealloc(o) < 0)
                return;                                     /* resurrected */
            autograd_cython_dealloc(o);
            return;
        }
        if (t != autograd_value_type || autograd_gc_presize == 0) {
            autograd_cython_dealloc(o);
            return;
        }
        Py_SET_REFCNT(o, 1);       /* alive while released, as Cython does */
        autograd_release(o);
        Py_SET_REFCNT(o, 0);
        if (autograd_free_count < AUTOGRAD_FREELIST_SIZE)
            autograd_freelist[autograd_free_count++] = o;
        else
            autograd_value_free(o);
    }

    /* A dying Value leaves the collector's lists, and a dying exact Value gets
       its GC header back to "new" (zero), as Cython's freelist reuses it as it
       is: a finalized flag left there would keep an assigned Value.__del__
       from running for the next Value. A Value that never had a dict has a
       zero header already (the common case: nothing to call). */
    static CYTHON_INLINE void autograd_untrack_dying(PyObject *o) {
        void **h;
        if (Py_TYPE(o) != autograd_value_type || autograd_gc_presize == 0) {
            PyObject_GC_UnTrack(o);
            return;
        }
        h = (void **)((char *)o - autograd_gc_presize);     /* two words */
        if (h[0] != NULL || h[1] != NULL) {
            PyObject_GC_UnTrack(o);
            h[0] = h[1] = NULL;
        }
    }

    static void autograd_track_if_dict(PyObject *o) {
        if (AUTOGRAD_ATTRS_SLOT(o) != NULL && !PyObject_GC_IsTracked(o))
            PyObject_GC_Track(o);
    }

    /* The Value's own __dict__, made if it has none (then it is tracked). */
    static PyObject *autograd_get_dict(PyObject *o, void *context) {
        PyObject *d = PyObject_GenericGetDict(o, context);
        autograd_track_if_dict(o);
        return d;
    }

    static int autograd_set_dict(PyObject *o, PyObject *value, void *context) {
        int r;
        if (value == NULL) {    /* `del v.__dict__`, as on a Python class's instance */
            Py_CLEAR(AUTOGRAD_ATTRS_SLOT(o));
            return 0;
        }
        r = PyObject_GenericSetDict(o, value, context);
        autograd_track_if_dict(o);
        return r;
    }

    /* `v.name = x` and `del v.name`, the generic way (the dict at tp_dictoffset);
       a Value that gets a dict joins the cycle collector's lists. */
    static int autograd_set_attr(PyObject *o, PyObject *name, PyObject *value) {
        int r = PyObject_GenericSetAttr(o, name, value);
        autograd_track_if_dict(o);
        return r;
    }

    static PyGetSetDef autograd_dict_getset = {
        "__dict__", autograd_get_dict, autograd_set_dict,
        "The Value's attributes (created when the first one is set).", NULL};

    static int autograd_make_extensible(PyTypeObject *t, Py_ssize_t dict_offset,
                                        Py_ssize_t gc_presize, void (*release)(PyObject *)) {
        PyObject *descr;
        autograd_value_type = t;
        autograd_dict_offset = dict_offset;
        /* the GC header's size, as measured on a list: only the layout we know */
        autograd_gc_presize = gc_presize == 2 * (Py_ssize_t)sizeof(void *) ? gc_presize : 0;
        t->tp_dictoffset = dict_offset;
        t->tp_flags |= Py_TPFLAGS_HAVE_GC;
        t->tp_traverse = autograd_value_traverse;
        t->tp_clear = autograd_value_clear;
        t->tp_alloc = autograd_value_alloc;
        t->tp_free = autograd_gc_presize ? autograd_value_free : PyObject_GC_Del;
        autograd_release = release;
        autograd_cython_dealloc = t->tp_dealloc;
        t->tp_dealloc = autograd_value_dealloc;
        descr = PyDescr_NewGetSet(t, &autograd_dict_getset);
        if (descr == NULL)
            return -1;
        if (PyDict_SetItemString(t->tp_dict, "__dict__", descr) < 0) {
            Py_DECREF(descr);
            return -1;
        }
        Py_DECREF(descr);
    #ifdef Py_TPFLAGS_IMMUTABLETYPE
        t->tp_flags &= ~Py_TPFLAGS_IMMUTABLETYPE;
    #endif
        PyType_Modified(t);
        return 0;
    }
    /* Cython exposes a binary operator's __add__ and __radd__ as methods, not as
       the slot wrappers CPython makes for its own types: with a method in the
       dict, assigning it back after a replacement would leave the generic slot
       function (a dict lookup and a call per operation). Replace them by slot
       wrappers of the compiled slot, made from float's (for the slot table
       entry, which names the slot), as PyType_Ready would have made them. */
    static int autograd_wrap_number_slot(PyTypeObject *t, PyObject *model) {
        PyWrapperDescrObject *w = (PyWrapperDescrObject *)model;
        PyObject *descr;
        Py_ssize_t off;
        if (!Py_IS_TYPE(model, &PyWrapperDescr_Type)) {
            PyErr_SetString(PyExc_TypeError, "not a slot wrapper");
            return -1;
        }
        off = (Py_ssize_t)w->d_base->offset - (Py_ssize_t)offsetof(PyHeapTypeObject, as_number);
        if (off < 0 || off >= (Py_ssize_t)sizeof(PyNumberMethods) || t->tp_as_number == NULL) {
            PyErr_SetString(PyExc_TypeError, "not a number slot");
            return -1;
        }
        descr = PyDescr_NewWrapper(t, w->d_base, *(void **)((char *)t->tp_as_number + off));
        if (descr == NULL)
            return -1;
        if (PyDict_SetItem(t->tp_dict, w->d_base->name_strobj, descr) < 0) {
            Py_DECREF(descr);
            return -1;
        }
        Py_DECREF(descr);
        PyType_Modified(t);
        return 0;
    }

    /* The compiled + and * of Value, to know when code replaced them. */
    static binaryfunc autograd_nb_add = NULL, autograd_nb_mul = NULL;
    static void autograd_save_ops(PyTypeObject *t) {
        autograd_nb_add = t->tp_as_number->nb_add;
        autograd_nb_mul = t->tp_as_number->nb_multiply;
    }
    static int autograd_ops_untouched(PyTypeObject *t) {
        return t->tp_as_number->nb_add == autograd_nb_add &&
               t->tp_as_number->nb_multiply == autograd_nb_mul;
    }
    #define AUTOGRAD_VALUE_ATTRS_OFFSET offsetof(struct __pyx_obj_8autograd_5_core_Value, attrs)
    """
    long CYTHON_HEX_VERSION         # defined by Cython in every module it generates
    int autograd_make_extensible(PyTypeObject* t, Py_ssize_t dict_offset,
                                 Py_ssize_t gc_presize,
                                 void (*release)(PyObject*) noexcept) except -1
    void autograd_track_if_dict(PyObject* o)
    object autograd_get_dict(object o, void* context)
    int autograd_set_attr(object o, object name, PyObject* value) except -1
    void autograd_untrack_dying(PyObject* o)
    Py_ssize_t AUTOGRAD_VALUE_ATTRS_OFFSET
    int autograd_wrap_number_slot(PyTypeObject* t, object model) except -1
    void autograd_save_ops(PyTypeObject* t)
    bint autograd_ops_untouched(PyTypeObject* t) noexcept
    void autograd_set_vectorcall(PyTypeObject* t, void* f)
    object autograd_type_call(object t, object args, PyObject* kw)
    Py_ssize_t autograd_nargs(size_t nargsf) noexcept
    void* autograd_tp_init(PyTypeObject* t) noexcept
    int count_trailing_zeros(uint64_t x) noexcept nogil


# =============================================================================
# The op table
# =============================================================================
# One row per op: its `_op` string (micrograd's where micrograd has the op), its
# forward formula (op_forward) and its local chain rule (op_backward_step).
# Eager ops, `_backward`, `backward()` and Graph replay all go through these.

OP_NAMES = ('', '+', '-', '*', '/', 'neg', '**', '**', 'ReLU', 'tanh', 'exp', 'log',
            'sigmoid', '', 'step', 'select', 'pow_mask')

# Forward errors, raised as Python does for the same computation on floats.
cdef enum:
    ERR_NONE = 0
    ERR_ZERO_DIVISION   # ZeroDivisionError, as 1.0 / 0.0 and 0.0 ** -1
    ERR_OVERFLOW        # OverflowError, as 1e308 ** 2 and math.exp(1000)
    ERR_DOMAIN          # ValueError, as math.log(-1)
    ERR_COMPLEX         # ValueError: (-8.0) ** 0.5 would be complex in Python


cdef inline double float_pow(double a, double b, int* err) noexcept nogil:
    """a ** b: C99's pow (the IEEE value), with the error Python's float.__pow__
    would raise set in `err` (C99 pow handles inf/nan as Python does)."""
    cdef double r = c_pow(a, b)
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


cdef inline void op_backward_step(uint8_t op, node_t i, node_t lhs, node_t rhs) noexcept nogil:
    """The chain rule of node i (op `op`, operands `lhs` and `rhs`).

    Computed with IEEE semantics, never raising: the grad of 0 ** 0.5 is inf.
    The formulas and their association follow micrograd's closures; op_emit
    builds the same formulas as nodes (keep the two in step).
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
        # b is data here, so the conditions are selects (OP_SELECT in op_emit)
        node_grad[lhs] += (b * c_pow(a, b - 1.0)) * g if b != 0.0 else 0.0
        # d(a**b)/db = a**b * log(a): nan for a < 0; 0 at a == 0, b >= 0 (as PyTorch)
        node_grad[rhs] += out * c_log(a) * g if not (a == 0.0 and b >= 0.0) else 0.0
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
    elif op == OP_SELECT:
        node_grad[lhs] += g if b != 0.0 else 0.0
    # OP_LEAF: nothing to propagate. OP_CUSTOM: its rule is a Python _backward.
    # OP_STEP, OP_POW_MASK: derivative 0.


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
# Side table for written `_op` labels: node index -> str, for nodes with FLAG_OP_LABEL.
cdef dict op_labels = {}

# 2**30 nodes is a 47 GB arena, more than any laptop has. The bound makes the
# 32-bit reference counts safe: every node has at most two operands, so all the
# parent references in the arena, to one node or spread over many, number at most
# 2 * MAX_NODES; a *pin* (a Value handle, a Graph, a ValueVector, dot's running
# sum, a sweep's hold on a node it pushed) is refused while a count is above
# PIN_LIMIT, so no count can pass UINT32_MAX. Slot 0, the null node, takes the
# increments of missing operands unchecked: it is never freed or pinned, and
# nothing reads its count, so it may wrap harmlessly.
cdef Py_ssize_t MAX_NODES = 1 << 30
cdef uint32_t PIN_LIMIT = <uint32_t>(0xFFFFFFFF - 2 * (1 << 30))

# Giving memory back (arena_trim): when a large free leaves fewer than 1/8 of
# the slots live, the free tail is handed back to the C library (tried again
# when n_live halves, or when the live node that blocked the tail is freed). A
# capacity that had to be regrown soon after a trim (before two sweeps ran) is
# the program's working size: no trim goes below it again, so a training loop
# does not shrink and regrow every step.
cdef node_t TRIM_MIN_CAPACITY = 1 << 16   # 2.9 MB: below that, not worth a trim
cdef node_t trim_floor = 0                # no trim below this capacity
cdef node_t trim_below_live = 0           # try a trim when n_live falls below this
cdef bint trimmed_recently = False        # a trim ran, and fewer than 2 sweeps since
cdef node_t trim_retry_at = 1 << 30       # freeing this slot or one above: try again
cdef uint32_t trim_sweep_number = 0       # sweep_number at the last trim
cdef Py_ssize_t n_grows = 0, n_trims = 0  # for arena_stats


cdef int arena_grow() except -1:
    """Double the arena (sklearn's safe_realloc pattern: never lose the old block)."""
    global arena, node_data, node_grad, handles, free_bits, capacity, trim_floor, trim_below_live
    global n_grows
    cdef Py_ssize_t new_cap = 1024 if capacity == 0 else 2 * <Py_ssize_t>capacity
    if new_cap > MAX_NODES:
        new_cap = MAX_NODES
    if new_cap <= capacity:
        raise MemoryError(f"the autograd arena is full ({MAX_NODES} nodes)")
    if trimmed_recently and sweep_number - trim_sweep_number < 2:
        trim_floor = <node_t>new_cap    # regrown soon after a trim: keep this size
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
    trim_below_live = capacity // 8
    n_grows += 1
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
    cdef node_t top = 0                 # the highest slot freed
    arena[i].refs = 0
    while pending:
        i = pending
        if i > top:
            top = i
        n = &arena[i]
        pending = <node_t>n.refs
        if n.flags & (FLAG_NAMED | FLAG_OP_LABEL):     # rare: one test for both
            if n.flags & FLAG_NAMED and names is not None:
                names.pop(i, None)
            if n.flags & FLAG_OP_LABEL and op_labels is not None:
                op_labels.pop(i, None)
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
    if n_live < trim_below_live or top >= trim_retry_at:
        arena_trim(n_live < trim_below_live)


cdef inline void node_decref(node_t i) noexcept:
    """Drop a reference to node i; the arena may shrink (move) if it is freed."""
    if i:
        arena[i].refs -= 1
        if arena[i].refs == 0:
            node_free_cascade(i)


cdef inline int node_pin(node_t i) except -1:
    """A reference held from outside the arena (a handle, a Graph, ...): refused
    near the top of the 32-bit count, so that parent references cannot wrap it."""
    if arena[i].refs >= PIN_LIMIT:
        raise_too_many_pins(i)
    arena[i].refs += 1
    return 0


cdef int raise_too_many_pins(node_t i) except -1:
    raise OverflowError(f"node {i} is referenced {arena[i].refs} times: its 32-bit "
                        "reference count is full (drop some Graphs, ValueVectors or "
                        "Values that hold it)")


def _add_refs(Value v not None, long long delta, int operand=0):
    """Test hook: add `delta` to the reference count of v's node (or, with
    `operand` 1 or 2, of its first or second operand's) and return the count.

    Lets a test bring a count near its limit without 2**32 objects; the caller
    must take back what it added before the node is released.
    """
    if v.idx == 0:
        raise_uninitialised()
    cdef node_t i = v.idx if operand == 0 else arena[v.idx].lhs if operand == 1 else arena[v.idx].rhs
    if i == 0:
        raise ValueError("no such operand")
    arena[i].refs = <uint32_t>(arena[i].refs + delta)
    return arena[i].refs


# -- giving memory back ------------------------------------------------------

cdef extern from *:
    """
    #if defined(__unix__) || defined(__APPLE__)
    #include <sys/mman.h>
    #include <unistd.h>
    #endif
    #if defined(MADV_DONTNEED)
    /* Hand the whole pages inside [p, p + n) back to the system: they read as
       zeros from then on (private anonymous memory), so an unused slot stays
       a NULL handle and a zero node. */
    static void autograd_discard(void *p, size_t n) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    #else
    static void autograd_discard(void *p, size_t n) { (void)p; (void)n; }
    #endif
    #if defined(_MSC_VER) && !defined(__clang__)
    /* Plain C, not __popcnt64/_BitScanReverse64: those are missing on 32-bit
       targets (and __popcnt64 on ARM64), and __popcnt64 needs a CPU with POPCNT.
       Only a trim calls these, once per 64 slots. */
    static int count_leading_zeros(unsigned long long x) {   /* x != 0 */
        int n = 0;
        while (!(x & 0x8000000000000000ULL)) { x <<= 1; n++; }
        return n;
    }
    static int popcount(unsigned long long x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    }
    #else
    #define count_leading_zeros(x) __builtin_clzll(x)
    #define popcount(x) __builtin_popcountll(x)
    #endif
    """
    void autograd_discard(void* p, size_t n) noexcept nogil
    int count_leading_zeros(uint64_t x) noexcept nogil
    int popcount(uint64_t x) noexcept nogil


cdef void lower_high_water() noexcept nogil:
    """n_used = 1 + the last live slot: the free slots above it become "never
    handed out" again (their free bits cleared), so a trim can drop them."""
    global n_used, n_free, free_hint
    cdef Py_ssize_t w = ((<uint32_t>n_used + 63) >> 6) - 1
    cdef uint64_t used, valid
    cdef node_t last = 0
    while w >= 0:
        valid = ~(<uint64_t>0)
        if w == (<uint32_t>n_used - 1) >> 6 and (n_used & 63):
            valid = ((<uint64_t>1) << (n_used & 63)) - 1   # slots past n_used: never used
        used = ~free_bits[w] & valid
        if used:
            last = <node_t>(w * 64 + 63 - count_leading_zeros(used))
            break
        n_free -= popcount(free_bits[w])    # (bits at and past n_used are 0)
        free_bits[w] = 0
        w -= 1
    # in the word holding `last`, the free slots above it go too
    cdef uint64_t above = (~(<uint64_t>0)) << ((last & 63) + 1) if (last & 63) != 63 else 0
    n_free -= popcount(free_bits[last >> 6] & above)
    free_bits[last >> 6] &= ~above
    n_used = last + 1
    if free_hint > (<uint32_t>last >> 6):
        free_hint = <uint32_t>last >> 6


cdef void arena_trim(bint full) noexcept:
    """Give memory back: the arena's slots above the last live one (realloc
    down), and with `full`, the whole pages of long free runs below it (madvise)
    and the sweep's scratch buffers.

    Runs at the end of a free, where no caller holds a pointer into the arena.
    Live nodes keep their indices. `full` after a large free (n_live halved);
    otherwise a retry because the live node that blocked the last trim, the top
    one, was freed (cheap: only the tail is looked at).
    """
    global arena, node_data, node_grad, handles, free_bits, capacity
    global trim_below_live, trimmed_recently, trim_sweep_number, n_trims, trim_retry_at
    cdef node_t target
    cdef Py_ssize_t k, start
    cdef void* p
    if full:
        trim_below_live = n_live // 2        # at most one more full try per halving
    trim_retry_at = MAX_NODES
    if capacity < TRIM_MIN_CAPACITY or capacity <= trim_floor or n_live >= capacity // 8:
        return
    lower_high_water()
    target = (n_used + 63) & ~63
    if target < TRIM_MIN_CAPACITY:
        target = TRIM_MIN_CAPACITY
    if target < trim_floor:
        target = trim_floor
    if target <= capacity // 2:
        # a failed shrink keeps the old block, which is still valid
        p = realloc(arena, target * sizeof(Node))
        if p != NULL:
            arena = <Node*>p
        p = realloc(node_data, target * sizeof(double))
        if p != NULL:
            node_data = <double*>p
        p = realloc(node_grad, target * sizeof(double))
        if p != NULL:
            node_grad = <double*>p
        p = realloc(handles, target * sizeof(PyObject*))
        if p != NULL:
            handles = <PyObject**>p
        p = realloc(free_bits, target // 64 * sizeof(uint64_t))
        if p != NULL:
            free_bits = <uint64_t*>p
        capacity = target
        trim_below_live = min(trim_below_live, capacity // 8)
        trimmed_recently = True
        trim_sweep_number = sweep_number
        n_trims += 1
    if n_used > 2 * TRIM_MIN_CAPACITY and n_used > capacity // 2:
        trim_retry_at = n_used - 1           # the top live node blocks a (further) trim
    if not full:
        return
    # free runs of whole words (64 slots) below the tail: their pages read as
    # zeros afterwards, as a free slot's node, handle (NULL), data and grad may
    start = 0
    for k in range(1, (<uint32_t>n_used >> 6) + 1):
        if k < (<uint32_t>n_used >> 6) and free_bits[k] == ~(<uint64_t>0):
            if start == 0:
                start = k
            continue
        if start and k - start >= 64:    # 4096 slots: at least a page of each array
            autograd_discard(&arena[start * 64], (k - start) * 64 * sizeof(Node))
            autograd_discard(&node_data[start * 64], (k - start) * 64 * sizeof(double))
            autograd_discard(&node_grad[start * 64], (k - start) * 64 * sizeof(double))
            autograd_discard(&handles[start * 64], (k - start) * 64 * sizeof(PyObject*))
        start = 0
    if not sweep_busy:
        drop_scratch_buffers()


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
    return sweep(root.idx, False, NULL, arena[root.idx].flags & FLAG_MANAGED)


def arena_stats():
    """Counts of the arena, for tests and benchmarks.

    Returns
    -------
    dict
        ``live`` (nodes alive), ``capacity`` (slots allocated), ``node_bytes``
        (bytes per slot: the node, its data and grad, its handle pointer),
        ``grows`` and ``trims`` (how many times the arena grew and gave memory
        back, since import).
    """
    return {"live": n_live, "capacity": capacity,
            "node_bytes": sizeof(Node) + 2 * sizeof(double) + sizeof(PyObject*),
            "grows": n_grows, "trims": n_trims}


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


cdef inline Value handle_of(node_t i):
    """The live Value of node i, made if it has none: at most one per node."""
    cdef PyObject* h = live_handle(i)
    if h != NULL:
        return <Value>h
    cdef Value v = new_value()
    # a Value is a GC type: making one may run the cycle collector, whose
    # finalizers may have made node i a handle meanwhile (the caller keeps i alive)
    h = live_handle(i)
    if h != NULL:
        return <Value>h
    node_pin(i)
    v.idx = i
    handles[i] = <PyObject*>v
    return v


cdef object apply_op(uint8_t op, object a, object b, uint8_t flags=0):
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
        raise_forward_error(err, op)
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
    comes as the float it was converted to, so that it is converted only once."""
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
    autograd_get_dict(out, NULL)["_children"] = (a,) if b is None else (a, b)
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
        cdef bint custom = bool(children) or bool(_op) or isinstance(self, CustomValue)
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
        cdef uint8_t flags = FLAG_INT_EXP if PyLong_Check(other) or (
            not PyFloat_Check(other) and isinstance(other, numbers.Integral)) else 0
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
    if (t is Value and n == 1 and kwnames == NULL and is_plain_number(<object>args[0])
            and autograd_tp_init(<PyTypeObject*>Value) == value_tp_init   # no Value.__init__ = f,
            and <void*>(<PyTypeObject*>Value).tp_new == value_tp_new_slot):   # no Value.__new__ = f
        x = plain_to_double(<object>args[0])
        # the object first: allocating it may run the collector (if Value is a GC
        # type), whose finalizers may free nodes and move the arena
        out = new_value()
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
# the slots value_vectorcall's shortcut stands for: a class-level assignment of
# __init__ or __new__ replaces them, and Value(x) then takes type.__call__'s way
cdef void* value_tp_init = autograd_tp_init(<PyTypeObject*>Value)
cdef void* value_tp_new_slot = <void*>(<PyTypeObject*>Value).tp_new
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
        for k in range(self.n_steps):
            st = &self.steps[k]
            if st.op == OP_CUSTOM:
                # looked up on every pass: it may have been removed since recording
                fwd = replay_forward(st.out)
                if fwd is not None:
                    fwd()           # may move the arena
                    node_grad[st.out] = 0.0
                continue
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

from libc.stdlib cimport calloc

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
        `create_graph`, the graph has a custom op, whose Python ``_backward``
        adds numbers, not Values, so it cannot be differentiated again.

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
    cdef uint8_t managed = 0
    cdef uint8_t* state = NULL
    cdef Graph g = Graph.__new__(Graph)
    if n_out > 1:
        # one root for the sweep: a chain of temporary ADD nodes over the outputs
        for j in range(n_out):
            managed |= arena[(<Value>outs[j]).idx].flags & FLAG_MANAGED
        ensure_slots(n_out - 1)
        node_pin(root)
        for j in range(1, n_out):
            t = node_alloc(OP_ADD, 0.0, root, (<Value>outs[j]).idx, managed)
            node_decref(root)           # t holds it now
            root = t
    try:
        g.record(root, False)           # pins the nodes if a custom op's code will run
        state = <uint8_t*>calloc(n_used, 1)
        if state == NULL:
            raise MemoryError()
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
            return tuple(grad_graph(g, state, outs, ins, weights))
        return tuple(grad_numbers(g, state, outs, ins, weights))
    finally:
        free(state)
        g.release()
        if n_out > 1:
            node_decref(root)


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
        raise MemoryError()
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
    return [Value(numbers[k]) if found[k] else None for k in range(len(ins))]


cdef list grad_graph(Graph g, uint8_t* state, list outs, list ins, list weights):
    """grad() with create_graph: the adjoints as nodes, built by op_emit in the
    reverse order (no Python runs: the graph has no custom op)."""
    cdef Py_ssize_t n = g.size, k
    cdef node_t* order = g.order
    cdef node_t i, gi, lhs, rhs, one = 0
    cdef uint8_t op, s
    cdef node_t* adj = <node_t*>calloc(n_used, sizeof(node_t))
    if adj == NULL:
        raise MemoryError()
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
        free(adj)
    return results


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
                "in src/_core.pyx expects; build with the Cython range that pyproject.toml "
                "declares, or update the patch.")


check_constructor_patches()
