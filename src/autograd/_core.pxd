# Declarations of the compiled core; the implementation is src/_core.pyx and the
# parts it includes (src/core/*.pxi).
#
# Every graph node lives in one C array, the arena, as a `Node`. A `Value` is
# a handle that holds only the index of its node.

from cpython.object cimport PyObject
from libc.stdint cimport int32_t, uint8_t, uint32_t

# Index of a node in the arena. Slot 0 is the null node: "no operand".
ctypedef int32_t node_t


# The op codes. Their names, forward formulas and local chain rules are the op
# table, src/core/op_table.pxi (OP_NAMES, op_forward, op_backward_step, op_emit).
cdef enum Op:
    OP_LEAF        # a Value made from a number: no operands
    OP_ADD         # a + b
    OP_SUB         # a - b
    OP_MUL         # a * b
    OP_DIV         # a / b
    OP_NEG         # -a
    OP_POW_CONST   # a ** c, c a number held by a hidden constant operand (not in _prev)
    OP_POW         # a ** b, b a Value
    OP_RELU
    OP_TANH
    OP_EXP
    OP_LOG
    OP_SIGMOID
    OP_CUSTOM      # made by Value(data, _children, _op): its rules are Python code
    # made only by differentiation (autograd.grad with create_graph=True): the
    # conditions of relu's and a ** b's chain rules, as ops so that replay keeps them
    OP_STEP        # 1 if a > 0 else 0 (relu's local derivative); derivative 0
    OP_SELECT      # a if b != 0 else 0; no derivative with respect to b
    OP_POW_MASK    # 0 if a == 0 and b >= 0 else 1 (where d(a**b)/db is taken as 0)
    # the functions of Python's math module (autograd.math), one row each
    OP_SIN
    OP_COS
    OP_TAN
    OP_ASIN
    OP_ACOS
    OP_ATAN
    OP_SINH
    OP_COSH
    OP_ASINH
    OP_ACOSH
    OP_ATANH
    OP_EXP2
    OP_EXPM1
    OP_LOG2
    OP_LOG10
    OP_LOG1P
    OP_SQRT
    OP_CBRT
    OP_FABS
    OP_ERF
    OP_ERFC
    OP_GAMMA
    OP_LGAMMA
    OP_FLOOR
    OP_CEIL
    OP_TRUNC
    OP_ATAN2       # atan2(a, b), math's argument order (y, x)
    OP_HYPOT
    OP_FMOD
    OP_REMAINDER
    OP_COPYSIGN
    # made only by differentiation: helpers of the math rows' chain rules
    OP_SIGN        # 1, -1 or a itself (0, -0, nan): fabs's local derivative; derivative 0
    OP_RINT        # a rounded to the nearest integer, ties to even; derivative 0
    OP_POLYGAMMA   # polygamma(b, a), b a constant integer >= 0 (gamma's, lgamma's rules)
    # n-ary functions of autograd.math, with math's bits: a spine of binary steps
    # (their chain rules make the derivative) under a root that computes the value
    # from all the spine's operands at once, as math does (op_gathers)
    OP_NORM_FIRST  # a * a + b * b: the first two coordinates' squares, the spine's bottom
    OP_NORM_NEXT   # a + b * b: a the spine below, b the next coordinate
    OP_NORM        # math.hypot of spine a's coordinates (the root of the spine's sum)
    OP_FSUM_FIRST  # a + b: the first two terms
    OP_FSUM_NEXT   # a + b: a the spine below, b the next term
    OP_FSUM        # math.fsum of spine a's terms; derivative 1
    N_OPS


# Node.flags bits.
cdef enum:
    FLAG_NAMED = 1     # the node has an entry in the names side table
    FLAG_MANAGED = 2   # its Value carries Python state (children, hooks) in a __dict__;
                       # so does every node above it, and no node below a plain one
    FLAG_HOOK = 4      # its Value's __dict__ holds a Python `_backward`
    FLAG_INT_EXP = 8   # OP_POW_CONST whose exponent was an int: _op is '**2', not '**2.0'
    FLAG_OP_LABEL = 16 # the node has an entry in the op_labels side table (a written _op)
    FLAG_IEEE = 128    # made by differentiation: computes with IEEE semantics (1/0 is inf),
                       # also in Graph replay, as first-order backward does


# A node's data and grad live in two arrays beside the Node array (src/core/arena.pxi:
# node_data, node_grad), indexed alike.
cdef struct Node:       # 20 bytes
    node_t lhs        # first operand (0: none)
    node_t rhs        # second operand (0: none)
    uint32_t refs     # parents + Value handles that refer to this node
    uint32_t mark     # the number of the last sweep that visited this node
    uint8_t op        # an Op
    uint8_t flags     # FLAG_* bits


cdef class Value:
    cdef node_t idx
    # The instance __dict__ (NULL until an attribute is set): the type's
    # tp_dictoffset points here. A Value with a dict is tracked by the cycle
    # collector; a plain one is not (see "Values that carry attributes").
    cdef PyObject* attrs


# One step of a recorded graph: a non-leaf node with its op and operands, copied
# out of the arena (they never change) so that a replay reads them in sequence.
cdef struct Step:
    node_t out
    node_t lhs
    node_t rhs
    uint8_t op
    uint8_t ieee    # FLAG_IEEE: forward gives IEEE values instead of raising


cdef class Graph:
    cdef node_t* order      # operands before results
    cdef Py_ssize_t size
    cdef Step* steps        # the non-leaf nodes of `order`, in the same order
    cdef Py_ssize_t n_steps
    cdef node_t root
    cdef bint has_python    # some node runs Python code (a custom op)
    cdef bint has_gather    # some node is an n-ary root (op_gathers): the general loop
    cdef bint pinned        # holds a reference on every node in `order`
    cdef list custom_values # the CustomValues of its custom nodes: their rules

    cdef void release(self) noexcept
    cdef int record(self, node_t root, bint keep) except -1
    cdef int check_replayable(self) except -1
    cdef int run_backward(self) except -1


cdef class ValueVector:
    cdef node_t* nodes
    cdef Py_ssize_t size

    cdef object _checked(self, values, str what)
