# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled core of autograd: a C arena of graph nodes behind micrograd's ``Value``.

One extension module, written as one ``.pyx`` and the parts it includes from
``src/core/`` (as lxml's ``etree.pyx`` includes its ``.pxi`` files): nothing
crosses a module boundary on a hot path. The declarations (``Node``, the op
codes, the classes' C fields) are in ``src/autograd/_core.pxd``.

Reading order for a newcomer, which is also the order of the includes:

1. ``core/op_table.pxi``: every op's name, forward formula (``op_forward``),
   chain rule (``op_backward_step``) and differentiable chain rule
   (``op_emit``), written once;
2. ``core/arena.pxi``: where nodes live and die (``node_alloc``,
   ``node_decref``), and how memory is given back;
3. ``core/numbers.pxi``: Python numbers in, C doubles out;
4. ``core/value.pxi``: ``Value``, the Python face, one handle per live node at
   most; ``dot``, the neuron's weighted sum in one C loop;
5. ``core/extensible.pxi``: attributes on Values, a class code can extend,
   custom ops (``CustomValue``);
6. ``core/sweep.pxi``: topological order, ``Value.backward`` (micrograd's
   backward, iterative) and ``Graph`` replay;
7. ``core/bulk.pxi``: ``ValueVector``, many leaves' data and grads at once;
   ``core/lanes.pxi``: ``Lanes``, one recorded graph run for many samples at
   once (blocks of lanes, threads without the GIL), through the op table;
8. ``core/derivatives.pxi``: ``grad``, derivatives of any order;
   ``core/forward.pxi``: forward mode in lanes (``jvp``, ``jacfwd``), each op's
   tangent derived from its chain rule;
9. ``core/self_check.pxi``: the import-time check of the constructor patches.

``core/c_support.pxi`` holds the C that Cython cannot write (type slots, bit
scans, the no-FMA pragma); it comes first. ``core/math_support.pxi`` holds the
C helpers of the math rows (CPython's own gamma, lgamma, atan2, remainder and
hypot, ported so that the data are ``math``'s bit for bit; polygamma for the
chain rules of gamma and lgamma); it comes before the op table.

Lifetime: a node lives while its ``Value`` handle or a parent node refers to it
(``Node.refs``). Freeing is iterative, so a 10**7-node chain is released without
recursion. A Value can carry attributes in a ``__dict__``; one without any is
untracked by Python's cycle collector and costs it nothing (see
``core/extensible.pxi``). A custom op (a Value made with ``_children``) is a
``CustomValue``: its children, ``_op`` and ``_backward`` closure live in its
``__dict__``, where the collector sees them, exactly as in micrograd; every
result built on top of one is a ``CustomValue`` too, so a dropped graph of
custom ops is collected by one ``gc.collect()``.
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
from libc.math cimport NAN, isfinite, isinf, isnan
from libc.math cimport log as c_log
from libc.math cimport pow as c_pow
from libc.math cimport tanh as c_tanh
from libc.math cimport (sin as c_sin, cos as c_cos, tan as c_tan, asin as c_asin,
                        acos as c_acos, atan as c_atan, sinh as c_sinh, cosh as c_cosh,
                        asinh as c_asinh, acosh as c_acosh, atanh as c_atanh,
                        exp2 as c_exp2, expm1 as c_expm1, log2 as c_log2,
                        log10 as c_log10, log1p as c_log1p, sqrt as c_sqrt,
                        cbrt as c_cbrt, fabs as c_fabs, erf as c_erf, erfc as c_erfc,
                        ceil as c_ceil, trunc as c_trunc, fmod as c_fmod,
                        copysign as c_copysign, rint as c_rint)
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import numbers
import sys

include "core/c_support.pxi"
include "core/math_support.pxi"
include "core/op_table.pxi"
include "core/arena.pxi"
include "core/numbers.pxi"
include "core/value.pxi"
include "core/extensible.pxi"
include "core/sweep.pxi"
include "core/bulk.pxi"
include "core/lanes.pxi"
include "core/derivatives.pxi"
include "core/forward.pxi"
include "core/self_check.pxi"
