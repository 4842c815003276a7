# =============================================================================
# The op table
# =============================================================================
# One row per op: its `_op` string (micrograd's where micrograd has the op), its
# forward formula (op_forward), its local chain rule (op_chain) and its chain
# rule built from nodes (op_emit), which makes it differentiable again.
# Eager ops, `_backward`, `backward()`, Graph replay and grad() all go through
# these.

OP_NAMES = ('', '+', '-', '*', '/', 'neg', '**', '**', 'ReLU', 'tanh', 'exp', 'log',
            'sigmoid', '', 'step', 'select', 'pow_mask',
            'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'asinh', 'acosh',
            'atanh', 'exp2', 'expm1', 'log2', 'log10', 'log1p', 'sqrt', 'cbrt', 'fabs',
            'erf', 'erfc', 'gamma', 'lgamma', 'floor', 'ceil', 'trunc', 'atan2', 'hypot',
            'fmod', 'remainder', 'copysign', 'sign', 'rint', 'polygamma',
            'sumsq', 'sumsq', 'hypot', '+', '+', 'fsum')

# Constants of the math rows' chain rules.
cdef double LN2 = 0.6931471805599453           # math.log(2)
cdef double LN10 = 2.302585092994046           # math.log(10)
cdef double TWO_OVER_SQRT_PI = 1.1283791670955126   # 2 / math.sqrt(math.pi)

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
    # autograd.math's functions that are Value methods (their derivative formulas,
    # in math_chain's association; SQRT_PI2 is 2 / math.sqrt(math.pi))
    OP_SIN: (("sin",), "math.sin(self.data)", "self.grad += math.cos(self.data) * out.grad"),
    OP_COS: (("cos",), "math.cos(self.data)", "self.grad -= math.sin(self.data) * out.grad"),
    OP_TAN: (("tan",), "math.tan(self.data)",
             "self.grad += (1 + out.data * out.data) * out.grad"),
    OP_ASIN: (("asin",), "math.asin(self.data)",
              "self.grad += out.grad / math.sqrt(1 - self.data * self.data)"),
    OP_ACOS: (("acos",), "math.acos(self.data)",
              "self.grad -= out.grad / math.sqrt(1 - self.data * self.data)"),
    OP_ATAN: (("atan",), "math.atan(self.data)",
              "self.grad += out.grad / (1 + self.data * self.data)"),
    OP_SINH: (("sinh",), "math.sinh(self.data)", "self.grad += math.cosh(self.data) * out.grad"),
    OP_COSH: (("cosh",), "math.cosh(self.data)", "self.grad += math.sinh(self.data) * out.grad"),
    OP_ASINH: (("asinh",), "math.asinh(self.data)",
               "self.grad += out.grad / math.sqrt(self.data * self.data + 1)"),
    OP_ACOSH: (("acosh",), "math.acosh(self.data)",
               "self.grad += out.grad / math.sqrt(self.data * self.data - 1)"),
    OP_ATANH: (("atanh",), "math.atanh(self.data)",
               "self.grad += out.grad / (1 - self.data * self.data)"),
    OP_EXP2: (("exp2",), "math.exp2(self.data)  # Python 3.11+", "self.grad += (out.data * math.log(2)) * out.grad"),
    OP_EXPM1: (("expm1",), "math.expm1(self.data)", "self.grad += (out.data + 1) * out.grad"),
    OP_LOG2: (("log2",), "math.log2(self.data)",
              "self.grad += out.grad / (self.data * math.log(2))"),
    OP_LOG10: (("log10",), "math.log10(self.data)",
               "self.grad += out.grad / (self.data * math.log(10))"),
    OP_LOG1P: (("log1p",), "math.log1p(self.data)", "self.grad += out.grad / (self.data + 1)"),
    OP_SQRT: (("sqrt",), "math.sqrt(self.data)", "self.grad += out.grad / (out.data + out.data)"),
    OP_CBRT: (("cbrt",), "math.cbrt(self.data)  # Python 3.11+",
              "self.grad += out.grad / (3 * (out.data * out.data))"),
    OP_FABS: (("abs", "__abs__"), "math.fabs(self.data)",
              "self.grad += (1.0 if self.data > 0 else -1.0 if self.data < 0 else self.data) "
              "* out.grad"),
    OP_ERF: (("erf",), "math.erf(self.data)",
             "self.grad += (2 / math.sqrt(math.pi) * math.exp(-(self.data * self.data))) "
             "* out.grad"),
    OP_ERFC: (("erfc",), "math.erfc(self.data)",
              "self.grad -= (2 / math.sqrt(math.pi) * math.exp(-(self.data * self.data))) "
              "* out.grad"),
    OP_LGAMMA: (("lgamma",), "math.lgamma(self.data)",
                "self.grad += digamma(self.data) * out.grad   # scipy.special.digamma"),
    OP_FLOOR: (("floor", "__floor__"), "float(math.floor(self.data))",
               "pass   # derivative 0 everywhere, jumps included (PyTorch's choice)"),
    OP_CEIL: (("ceil", "__ceil__"), "float(math.ceil(self.data))",
              "pass   # derivative 0 everywhere, jumps included (PyTorch's choice)"),
    OP_TRUNC: (("trunc", "__trunc__"), "float(math.trunc(self.data))",
               "pass   # derivative 0 everywhere, jumps included (PyTorch's choice)"),
    OP_SIGN: (("sign",), "1.0 if self.data > 0 else -1.0 if self.data < 0 else self.data",
              "pass   # derivative 0 everywhere"),
    OP_ATAN2: (("atan2",), "math.atan2(self.data, other.data)",
               "r = self.data * self.data + other.data * other.data\n"
               "self.grad += (out.grad * other.data) / r if r != 0 else 0.0\n"
               "other.grad -= (out.grad * self.data) / r if r != 0 else 0.0"),
    OP_HYPOT: (("hypot",), "math.hypot(self.data, other.data)",
               "self.grad += (out.grad * self.data) / out.data\n"
               "other.grad += (out.grad * other.data) / out.data"),
    OP_FMOD: (("fmod",), "math.fmod(self.data, other.data)",
              "self.grad += out.grad\n"
              "other.grad -= out.grad * math.trunc(self.data / other.data)"),
    OP_COPYSIGN: (("copysign",), "math.copysign(self.data, other.data)",
                  "self.grad += (out.data / self.data if self.data != 0 else 0.0) * out.grad"),
    # the n-ary functions' nodes (autograd.math.hypot and fsum of three or more):
    # no method of their own
    OP_NORM_FIRST: ((), "self.data * self.data + other.data * other.data   # hypot's first two",
                    "self.grad += self.data * out.grad     # (as if the half of it: the root\n"
                    "other.grad += other.data * out.grad   #  divides by hypot, not 2 hypot)"),
    OP_NORM_NEXT: ((), "self.data + other.data * other.data   # self: the squares so far",
                   "self.grad += out.grad\nother.grad += other.data * out.grad"),
    OP_NORM: ((), "math.hypot(*coordinates)   # of the spine below self, as math computes it",
              "r = out.data if out.data != 0 else 1.0   # all coordinates 0: derivative 0\n"
              "self.grad += out.grad / r   # d hypot / dx = x * (out.grad / hypot)"),
    OP_FSUM_FIRST: ((), "self.data + other.data   # fsum's first two terms",
                    "self.grad += out.grad\nother.grad += out.grad"),
    OP_FSUM_NEXT: ((), "self.data + other.data   # self: fsum's spine so far",
                   "self.grad += out.grad\nother.grad += out.grad"),
    OP_FSUM: ((), "math.fsum(terms)   # of the spine below self, exactly rounded as math's",
              "self.grad += out.grad   # the spine's steps carry the derivative"),
}

# Forward errors, raised as Python does for the same computation on floats.
cdef enum:
    ERR_NONE = 0
    ERR_ZERO_DIVISION   # ZeroDivisionError, as 1.0 / 0.0 and 0.0 ** -1
    ERR_OVERFLOW        # OverflowError, as 1e308 ** 2 and math.exp(1000)
    ERR_DOMAIN          # ValueError, as math.log(-1)
    ERR_COMPLEX         # ValueError: (-8.0) ** 0.5 would be complex in Python
    ERR_NO_MEMORY       # MemoryError: an n-ary op's operands could not be gathered


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
    if op >= OP_SIN:                          # the math rows: one test, not one per row above
        return math_forward_call(op, a, b, err)
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


cdef inline double math_forward_call(uint8_t op, double a, double b, int* err) noexcept nogil:
    """math_forward through a local error code: the caller's `err` (a register
    in the replay loops, where op_forward is inlined) never has its address
    passed out of line, so the loops keep it out of memory."""
    cdef int e = ERR_NONE
    cdef double r = math_forward(op, a, b, &e)
    if e:
        err[0] = e
    return r


cdef inline double math_1(double x, double r, bint can_overflow, int* err) noexcept nogil:
    """r = f(x), with the error CPython's math_1 raises for it: a nan from a
    non-nan is a domain error, an infinity from a finite x an overflow (if
    `can_overflow`) or a domain error (a singularity, as log(0))."""
    if isnan(r):
        if not isnan(x):
            err[0] = ERR_DOMAIN
    elif isinf(r) and isfinite(x):
        err[0] = ERR_OVERFLOW if can_overflow else ERR_DOMAIN
    return r


cdef inline double math_2(double x, double y, double r, int* err) noexcept nogil:
    """r = f(x, y), with the error CPython's math_2 raises for it."""
    if isnan(r):
        if not isnan(x) and not isnan(y):
            err[0] = ERR_DOMAIN
    elif isinf(r) and isfinite(x) and isfinite(y):
        err[0] = ERR_OVERFLOW
    return r


cdef double math_forward(uint8_t op, double a, double b, int* err) noexcept nogil:
    """op_forward's rows of the math functions (op >= OP_SIN): the data
    Python's math module returns for the same floats, bit for bit (libm where
    CPython calls libm, CPython's own algorithms ported in math_support.pxi
    where it has its own), and the error it raises."""
    cdef int e = 0
    cdef double r
    if op == OP_SIN:
        return math_1(a, c_sin(a), False, err)
    if op == OP_COS:
        return math_1(a, c_cos(a), False, err)
    if op == OP_TAN:
        return math_1(a, c_tan(a), False, err)
    if op == OP_ASIN:
        return math_1(a, c_asin(a), False, err)
    if op == OP_ACOS:
        return math_1(a, c_acos(a), False, err)
    if op == OP_ATAN:
        return math_1(a, c_atan(a), False, err)
    if op == OP_SINH:
        return math_1(a, c_sinh(a), True, err)
    if op == OP_COSH:
        return math_1(a, c_cosh(a), True, err)
    if op == OP_ASINH:
        return math_1(a, c_asinh(a), False, err)
    if op == OP_ACOSH:
        return math_1(a, c_acosh(a), False, err)
    if op == OP_ATANH:
        return math_1(a, c_atanh(a), False, err)
    if op == OP_EXP2:
        return math_1(a, c_exp2(a), True, err)
    if op == OP_EXPM1:
        return math_1(a, c_expm1(a), True, err)
    if op == OP_LOG2:
        return math_1(a, c_log2(a), False, err)
    if op == OP_LOG10:
        return math_1(a, c_log10(a), False, err)
    if op == OP_LOG1P:
        return math_1(a, a if a == 0.0 else c_log1p(a), False, err)   # CPython's _Py_log1p
    if op == OP_SQRT:
        return math_1(a, c_sqrt(a), False, err)
    if op == OP_CBRT:
        return math_1(a, c_cbrt(a), False, err)
    if op == OP_FABS:
        return c_fabs(a)
    if op == OP_ERF:
        return c_erf(a)
    if op == OP_ERFC:
        return c_erfc(a)
    if op == OP_GAMMA or op == OP_LGAMMA:
        r = autograd_tgamma(a, &e) if op == OP_GAMMA else autograd_lgamma(a, &e)
        if e == 1:
            err[0] = ERR_DOMAIN
        elif e == 2 and c_fabs(r) >= 1.5:
            err[0] = ERR_OVERFLOW
        return r
    if op == OP_FLOOR or op == OP_CEIL or op == OP_TRUNC:
        # math's are ints: float(math.floor(-0.5)) is 0.0, not -0.0 (+ 0.0 makes it so);
        # math raises for inf and nan
        if isinf(a):
            err[0] = ERR_OVERFLOW
        elif isnan(a):
            err[0] = ERR_DOMAIN
        if op == OP_FLOOR:
            return c_floor(a) + 0.0
        return (c_ceil(a) if op == OP_CEIL else c_trunc(a)) + 0.0
    if op == OP_ATAN2:
        return autograd_atan2(a, b)
    if op == OP_HYPOT:
        return autograd_hypot(a, b)
    if op == OP_NORM_FIRST:
        return a * a + b * b
    if op == OP_NORM_NEXT:
        return a + b * b
    if op == OP_FSUM_FIRST or op == OP_FSUM_NEXT:
        return a + b
    if op == OP_NORM or op == OP_FSUM:
        return NAN      # never used: a root's value is gathered (op_gathers, gather_forward)
    if op == OP_FMOD:
        if isinf(b) and isfinite(a):          # CPython: fmod(x, +-inf) is x
            return a
        return math_2(a, b, c_fmod(a, b), err)
    if op == OP_REMAINDER:
        return math_2(a, b, autograd_remainder(a, b), err)
    if op == OP_COPYSIGN:
        return c_copysign(a, b)
    if op == OP_SIGN:
        return 1.0 if a > 0.0 else (-1.0 if a < 0.0 else a)
    if op == OP_RINT:
        return c_rint(a)
    if op == OP_POLYGAMMA:
        return autograd_polygamma(b, a)
    return a


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
    if op >= OP_SIN:                          # the math rows: one test, not one per row above
        return math_chain_call(op, a, b, out, g, da, db)
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


cdef int math_chain(uint8_t op, double a, double b, double out, double g,
                    double* da, double* db) noexcept nogil:
    """op_chain's rows of the math functions (op >= OP_SIN). At points where
    a function is not differentiable, PyTorch's choice (README, "Differentiate
    a scalar program"): the formula's IEEE value, or 0 where PyTorch masks."""
    cdef double r
    if op == OP_SIN:
        da[0] = c_cos(a) * g
        return TO_LHS
    if op == OP_COS:
        da[0] = -(c_sin(a) * g)
        return TO_LHS
    if op == OP_TAN:
        da[0] = (1.0 + out * out) * g
        return TO_LHS
    if op == OP_ASIN:
        da[0] = g / c_sqrt(1.0 - a * a)
        return TO_LHS
    if op == OP_ACOS:
        da[0] = -(g / c_sqrt(1.0 - a * a))
        return TO_LHS
    if op == OP_ATAN:
        da[0] = g / (1.0 + a * a)
        return TO_LHS
    if op == OP_SINH:
        da[0] = c_cosh(a) * g
        return TO_LHS
    if op == OP_COSH:
        da[0] = c_sinh(a) * g
        return TO_LHS
    if op == OP_ASINH:
        da[0] = g / c_sqrt(a * a + 1.0)
        return TO_LHS
    if op == OP_ACOSH:
        da[0] = g / c_sqrt(a * a - 1.0)
        return TO_LHS
    if op == OP_ATANH:
        da[0] = g / (1.0 - a * a)
        return TO_LHS
    if op == OP_EXP2:
        da[0] = (out * LN2) * g
        return TO_LHS
    if op == OP_EXPM1:
        da[0] = (out + 1.0) * g
        return TO_LHS
    if op == OP_LOG2:
        da[0] = g / (a * LN2)
        return TO_LHS
    if op == OP_LOG10:
        da[0] = g / (a * LN10)
        return TO_LHS
    if op == OP_LOG1P:
        da[0] = g / (a + 1.0)
        return TO_LHS
    if op == OP_SQRT:
        da[0] = g / (out + out)
        return TO_LHS
    if op == OP_CBRT:
        da[0] = g / (3.0 * (out * out))
        return TO_LHS
    if op == OP_FABS:
        da[0] = (1.0 if a > 0.0 else (-1.0 if a < 0.0 else a)) * g     # OP_SIGN's formula
        return TO_LHS
    if op == OP_ERF:
        da[0] = (TWO_OVER_SQRT_PI * c_exp(-(a * a))) * g
        return TO_LHS
    if op == OP_ERFC:
        da[0] = -((TWO_OVER_SQRT_PI * c_exp(-(a * a))) * g)
        return TO_LHS
    if op == OP_GAMMA:
        da[0] = (out * autograd_polygamma(0.0, a)) * g
        return TO_LHS
    if op == OP_LGAMMA:
        da[0] = autograd_polygamma(0.0, a) * g
        return TO_LHS
    if op == OP_POLYGAMMA:
        da[0] = autograd_polygamma(b + 1.0, a) * g
        return TO_LHS
    if op == OP_ATAN2:
        r = a * a + b * b                     # at (0, 0): 0, as PyTorch (not 0/0)
        da[0] = (g * b) / r if r != 0.0 else 0.0
        db[0] = -((g * a) / r if r != 0.0 else 0.0)
        return TO_LHS | TO_RHS
    if op == OP_HYPOT:
        da[0] = (g * a) / out
        db[0] = (g * b) / out
        return TO_LHS | TO_RHS
    # hypot's spine and root: d hypot / dx = x * (g / hypot), the spine's steps
    # multiplying by x and the root dividing by hypot (as the derivative of half the
    # sum of squares and of sqrt(2 S): no 2 * hypot to overflow)
    if op == OP_NORM_FIRST:
        da[0] = a * g
        db[0] = b * g
        return TO_LHS | TO_RHS
    if op == OP_NORM_NEXT:
        da[0] = g
        db[0] = b * g
        return TO_LHS | TO_RHS
    if op == OP_FSUM_FIRST or op == OP_FSUM_NEXT:
        da[0] = g
        db[0] = g
        return TO_LHS | TO_RHS
    if op == OP_NORM:
        # where every coordinate is 0, divided by 1: their derivatives are 0 (PyTorch's
        # vector_norm) and no 0 / 0 appears
        r = out if out != 0.0 else 1.0
        da[0] = g / r
        return TO_LHS
    if op == OP_FSUM:
        da[0] = g
        return TO_LHS
    if op == OP_FMOD:
        da[0] = g
        db[0] = -(g * c_trunc(a / b))
        return TO_LHS | TO_RHS
    if op == OP_REMAINDER:
        da[0] = g
        db[0] = -(g * c_rint((a - out) / b))
        return TO_LHS | TO_RHS
    if op == OP_COPYSIGN:
        da[0] = (out / a if a != 0.0 else 0.0) * g
        return TO_LHS
    # OP_FLOOR, OP_CEIL, OP_TRUNC, OP_SIGN, OP_RINT: derivative 0
    return 0


cdef inline int math_chain_call(uint8_t op, double a, double b, double out, double g,
                                double* da, double* db) noexcept nogil:
    """math_chain through local results, as math_forward_call (the callers'
    da and db stay in registers)."""
    cdef double ma = 0.0, mb = 0.0
    cdef int to = math_chain(op, a, b, out, g, &ma, &mb)
    if to & TO_LHS:
        da[0] = ma
    if to & TO_RHS:
        db[0] = mb
    return to


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
    elif op >= OP_SIN:
        math_emit(op, i, lhs, rhs, g, adj, to_lhs, to_rhs, one)
    # OP_STEP, OP_POW_MASK: derivative 0. OP_LEAF: none. OP_CUSTOM: refused by grad().
    return 0


cdef inline node_t constant(double c) except 0:
    """A new constant leaf, its creation reference the caller's (hand it on with TAKE_*)."""
    return node_alloc(OP_LEAF, c, 0, 0, 0)


cdef int math_emit(uint8_t op, node_t i, node_t lhs, node_t rhs, node_t g, node_t* adj,
                   bint to_lhs, bint to_rhs, node_t one) except -1:
    """op_emit's rows of the math functions: math_chain's formulas as nodes, in
    the same association (so the same bits)."""
    cdef node_t t, u, r
    if op == OP_SIN:
        if to_lhs:
            t = emit(OP_COS, lhs, 0, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_COS:
        if to_lhs:
            t = emit(OP_SIN, lhs, 0, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), True, True)
    elif op == OP_TAN or op == OP_EXPM1:
        if to_lhs:
            if op == OP_TAN:
                t = emit(OP_MUL, i, i, 0)
                t = emit(OP_ADD, one, t, TAKE_RHS)
            else:
                t = emit(OP_ADD, i, one, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_ASIN or op == OP_ACOS or op == OP_ATANH:
        if to_lhs:
            t = emit(OP_MUL, lhs, lhs, 0)
            t = emit(OP_SUB, one, t, TAKE_RHS)
            if op != OP_ATANH:
                t = emit(OP_SQRT, t, 0, TAKE_LHS)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), op == OP_ACOS, True)
    elif op == OP_ATAN:
        if to_lhs:
            t = emit(OP_MUL, lhs, lhs, 0)
            t = emit(OP_ADD, one, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_SINH or op == OP_COSH:
        if to_lhs:
            t = emit(OP_COSH if op == OP_SINH else OP_SINH, lhs, 0, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_ASINH or op == OP_ACOSH:
        if to_lhs:
            t = emit(OP_MUL, lhs, lhs, 0)
            t = emit(OP_ADD if op == OP_ASINH else OP_SUB, t, one, TAKE_LHS)
            t = emit(OP_SQRT, t, 0, TAKE_LHS)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_EXP2:
        if to_lhs:
            t = emit(OP_MUL, i, constant(LN2), TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_LOG2 or op == OP_LOG10:
        if to_lhs:
            t = emit(OP_MUL, lhs, constant(LN2 if op == OP_LOG2 else LN10), TAKE_RHS)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_LOG1P:
        if to_lhs:
            t = emit(OP_ADD, lhs, one, 0)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_SQRT:
        if to_lhs:
            t = emit(OP_ADD, i, i, 0)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_CBRT:
        if to_lhs:
            t = emit(OP_MUL, i, i, 0)
            t = emit(OP_MUL, constant(3.0), t, TAKE_LHS | TAKE_RHS)
            accumulate(adj, lhs, emit(OP_DIV, g, t, TAKE_RHS), False, True)
    elif op == OP_FABS:
        if to_lhs:
            t = emit(OP_SIGN, lhs, 0, 0)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_ERF or op == OP_ERFC:
        if to_lhs:
            t = emit(OP_MUL, lhs, lhs, 0)
            t = emit(OP_NEG, t, 0, TAKE_LHS)
            t = emit(OP_EXP, t, 0, TAKE_LHS)
            t = emit(OP_MUL, constant(TWO_OVER_SQRT_PI), t, TAKE_LHS | TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), op == OP_ERFC, True)
    elif op == OP_GAMMA or op == OP_LGAMMA or op == OP_POLYGAMMA:
        if to_lhs:
            t = emit(OP_POLYGAMMA, lhs,
                     constant(node_data[rhs] + 1.0 if op == OP_POLYGAMMA else 0.0), TAKE_RHS)
            if op == OP_GAMMA:
                t = emit(OP_MUL, i, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    elif op == OP_ATAN2:
        t = emit(OP_MUL, lhs, lhs, 0)
        u = emit(OP_MUL, rhs, rhs, 0)
        r = emit(OP_ADD, t, u, TAKE_LHS | TAKE_RHS)
        if to_lhs:
            t = emit(OP_MUL, g, rhs, 0)
            t = emit(OP_DIV, t, r, TAKE_LHS)
            accumulate(adj, lhs, emit(OP_SELECT, t, r, TAKE_LHS), False, True)
        if to_rhs:
            t = emit(OP_MUL, g, lhs, 0)
            t = emit(OP_DIV, t, r, TAKE_LHS)
            accumulate(adj, rhs, emit(OP_SELECT, t, r, TAKE_LHS), True, True)
        node_decref(r)
    elif op == OP_HYPOT:
        if to_lhs:
            t = emit(OP_MUL, g, lhs, 0)
            accumulate(adj, lhs, emit(OP_DIV, t, i, TAKE_LHS), False, True)
        if to_rhs:
            t = emit(OP_MUL, g, rhs, 0)
            accumulate(adj, rhs, emit(OP_DIV, t, i, TAKE_LHS), False, True)
    elif op == OP_NORM_FIRST or op == OP_NORM_NEXT:
        if to_lhs:
            if op == OP_NORM_NEXT:
                accumulate(adj, lhs, g, False, False)
            else:
                accumulate(adj, lhs, emit(OP_MUL, lhs, g, 0), False, True)
        if to_rhs:
            accumulate(adj, rhs, emit(OP_MUL, rhs, g, 0), False, True)
    elif op == OP_NORM:
        if to_lhs:
            # r = out + (1 - step(out)): out, or 1 where out is 0 (op_chain's r, bit
            # for bit), and no division by 0 in this derivative's derivatives either
            t = emit(OP_STEP, i, 0, 0)
            t = emit(OP_SUB, one, t, TAKE_RHS)
            r = emit(OP_ADD, i, t, TAKE_RHS)
            accumulate(adj, lhs, emit(OP_DIV, g, r, TAKE_RHS), False, True)
    elif op == OP_FSUM_FIRST or op == OP_FSUM_NEXT:
        if to_lhs:
            accumulate(adj, lhs, g, False, False)
        if to_rhs:
            accumulate(adj, rhs, g, False, False)
    elif op == OP_FSUM:
        if to_lhs:
            accumulate(adj, lhs, g, False, False)
    elif op == OP_FMOD or op == OP_REMAINDER:
        if to_lhs:
            accumulate(adj, lhs, g, False, False)
        if to_rhs:
            if op == OP_FMOD:
                # C's trunc (op_chain's), -0.0 kept: OP_TRUNC's value is math's int,
                # never -0.0; copysign gives the quotient's sign back
                u = emit(OP_DIV, lhs, rhs, 0)
                t = emit(OP_TRUNC, u, 0, 0)
                t = emit(OP_COPYSIGN, t, u, TAKE_LHS | TAKE_RHS)
            else:
                t = emit(OP_SUB, lhs, i, 0)
                t = emit(OP_DIV, t, rhs, TAKE_LHS)
                t = emit(OP_RINT, t, 0, TAKE_LHS)
            accumulate(adj, rhs, emit(OP_MUL, g, t, TAKE_RHS), True, True)
    elif op == OP_COPYSIGN:
        if to_lhs:
            t = emit(OP_DIV, i, lhs, 0)
            t = emit(OP_SELECT, t, lhs, TAKE_LHS)
            accumulate(adj, lhs, emit(OP_MUL, t, g, TAKE_LHS), False, True)
    # OP_FLOOR, OP_CEIL, OP_TRUNC, OP_SIGN, OP_RINT: derivative 0
    return 0


cdef void raise_forward_error(int err, uint8_t op, bint as_math=False) except *:
    """Raise what Python raises for the computation `op` on floats: the
    operator's error, or (`as_math`, autograd.math.pow) the math module's."""
    if as_math and (err == ERR_ZERO_DIVISION or err == ERR_COMPLEX):
        err = ERR_DOMAIN
    if err == ERR_NO_MEMORY:
        raise MemoryError(f"no memory for the operands of {OP_NAMES[op]}")
    if op == OP_FSUM:
        if err == ERR_OVERFLOW:
            raise OverflowError("intermediate overflow in fsum")
        raise ValueError("-inf + inf in fsum")
    if op == OP_FLOOR or op == OP_CEIL or op == OP_TRUNC:
        if err == ERR_OVERFLOW:
            raise OverflowError("cannot convert float infinity to integer")
        raise ValueError("cannot convert float NaN to integer")
    if err == ERR_ZERO_DIVISION:
        if op == OP_DIV:
            raise ZeroDivisionError("float division by zero")
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if err == ERR_OVERFLOW:
        raise OverflowError("math range error")
    if err == ERR_COMPLEX:
        raise ValueError("a negative number cannot be raised to a fractional power "
                         "(Python would return a complex number)")
    raise ValueError("math domain error")


# -----------------------------------------------------------------------------
# The n-ary ops: a root computed from every operand of its spine
# -----------------------------------------------------------------------------
# math.hypot(a, b, c, ...) and math.fsum round once, at the end, from all the
# operands: no fold of binary ops has their bits. So hypot(x1, ..., xn) is a
# spine of binary hypot steps, NORM_NEXT(... NORM_NEXT(NORM_FIRST(x1, x2), x3) ...,
# xn), whose chain rules make the derivative, under a root, OP_NORM(spine), whose
# value is math's, computed from the spine's operands (derivative 1: the spine's
# value, computed with fewer roundings, is the same function). fsum likewise with
# sums. The loops that compute values (eager, replay, lanes) gather a root's
# operands (op_gathers); every other loop needs nothing more than the table.

cdef inline bint op_gathers(uint8_t op) noexcept nogil:
    """Whether op's value comes from its spine's operands (nary_value), not op_forward."""
    return op == OP_NORM or op == OP_FSUM


cdef inline bint op_spine_next(uint8_t op) noexcept nogil:
    return op == OP_NORM_NEXT or op == OP_FSUM_NEXT


cdef double nary_value(uint8_t op, const double* operands, Py_ssize_t n,
                       int* err) noexcept nogil:
    """A root's value from its spine's operands, first to last, as math computes it."""
    cdef int e = 0
    cdef double r
    if op == OP_NORM:
        return autograd_vector_norm(operands, n)
    r = autograd_fsum(operands, n, &e)
    if e == 1:
        err[0] = ERR_DOMAIN
    elif e == 2:
        err[0] = ERR_OVERFLOW
    elif e == 3:
        err[0] = ERR_NO_MEMORY
    return r


cdef Py_ssize_t spine_operands(node_t top, node_t* out) noexcept nogil:
    """How many operands the spine whose top step is `top` has; with `out`, also
    the operands' nodes, first to last."""
    cdef Py_ssize_t n = 2, k
    cdef node_t i = top
    while op_spine_next(arena[i].op):
        n += 1
        i = arena[i].lhs
    if out != NULL:
        k = n - 1
        i = top
        while op_spine_next(arena[i].op):
            out[k] = arena[i].rhs
            k -= 1
            i = arena[i].lhs
        out[1] = arena[i].rhs
        out[0] = arena[i].lhs
    return n


cdef double gather_forward(uint8_t op, node_t spine, int* err) noexcept nogil:
    """The value of root op over the spine whose top step is `spine`, from the arena."""
    cdef Py_ssize_t n = spine_operands(spine, NULL), k
    cdef node_t* nodes = <node_t*>malloc(n * sizeof(node_t))
    cdef double* values = <double*>malloc(n * sizeof(double))
    cdef double r = 0.0
    if nodes == NULL or values == NULL:
        err[0] = ERR_NO_MEMORY
    else:
        spine_operands(spine, nodes)
        for k in range(n):
            values[k] = node_data[nodes[k]]
        r = nary_value(op, values, n, err)
    free(nodes)
    free(values)
    return r
