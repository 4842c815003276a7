# =============================================================================
# Lanes: one recorded graph, evaluated for B inputs at once
# =============================================================================
# A Graph recorded from one sample becomes a compact tape (operands' positions in
# the recorded order instead of arena indices). The lanes run it block by block:
# a block is `block` consecutive lanes, and a block's data and grads live in a
# scratch of rows x block doubles, each node's lanes contiguous (row * block + j),
# small enough to stay in cache while the whole tape runs forward and backward
# over it. Nothing of B x nodes size is ever stored: only the declared outputs'
# values, the inputs' per-lane grads and each block's sum of the shared leaves'
# grads leave the scratch. (Writing every node's lanes to memory and reading them
# back for backward would cost more than the arithmetic.)
#
# Each step runs its op over the block's lanes in one loop: the op is tested once
# per step, not per lane. The hot ops get a loop of their own with the op a
# constant, so that the C compiler inlines op_forward / op_chain, folds the
# dispatch away and vectorizes; every other op (any row added to the op table)
# runs through the generic loop. Both call the op table's functions: no formula
# is written here.
#
# Threads take whole blocks; everything the C loops read is copied out of the
# arena and out of Python objects first (the tape, the shared leaves' values, the
# inputs), because once the GIL is released other Python threads may run, free
# nodes and move the arena. Results are written back with the GIL held.
#
# The threads are a pool started once and kept (native threads that never take
# the GIL, waiting on a lock between runs): starting a thread per call cost more
# than a run of a thousand lanes.

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.exc cimport PyErr_CheckSignals
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock,
                               WAIT_LOCK, NOWAIT_LOCK,
                               PyLockStatus, PY_LOCK_ACQUIRED)

cdef extern from "pythread.h":
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, long long microseconds,
                                             int intr_flag) nogil

cdef extern from *:
    """
    /* A stop request read by worker loops: volatile so that the read is not hoisted. */
    static int lanes_read_flag(const int *p) { return *(const volatile int *)p; }
    static void lanes_set_flag(int *p, int v) { *(volatile int *)p = v; }

    /* The per-step loops below call op_forward / op_chain, which the compiler
       would keep as calls (the op table is long): `flatten` inlines them into
       each loop, where the constant op folds their dispatch away and the loop
       vectorizes. Declared here by the names Cython gives the functions. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    /* one clone for AVX2 machines, chosen at load time (IEEE double arithmetic
       either way: the same bits; FMA stays off, -ffp-contract=off) */
    #define LANES_LOOP __attribute__((flatten, target_clones("avx2", "default")))
    #elif defined(__GNUC__)
    #define LANES_LOOP __attribute__((flatten))
    #endif
    #if defined(__GNUC__)
    static int __pyx_f_8autograd_5_core_lanes_forward_rows(uint8_t, double *, double const *,
        double const *, Py_ssize_t) LANES_LOOP;
    static void __pyx_f_8autograd_5_core_lanes_backward_rows(uint8_t, double const *,
        double const *, double const *, double const *, double *, double *, Py_ssize_t, int)
        LANES_LOOP;
    static void __pyx_f_8autograd_5_core_lanes_product_sum_forward(double *, double const *,
        double const *, double const *, Py_ssize_t, int) LANES_LOOP;
    static void __pyx_f_8autograd_5_core_lanes_product_sum_backward(double const *, double *,
        double const *, double const *, double *, double *, Py_ssize_t, int, int, int)
        LANES_LOOP;
    static void __pyx_f_8autograd_5_core_lanes_product_sum_forward_fold(double *,
        double const *, double, double const *, Py_ssize_t, int, int) LANES_LOOP;
    static double __pyx_f_8autograd_5_core_lanes_product_sum_backward_fold(double const *,
        double *, double, double const *, double *, Py_ssize_t, int, int, int, int)
        LANES_LOOP;
    #endif
    """
    int lanes_read_flag(const int* p) noexcept nogil
    void lanes_set_flag(int* p, int v) noexcept nogil

cdef extern from *:
    """
    /* the first address at or after p at the start of a line of `line` bytes (a power of 2) */
    static void *lanes_line_after(char *p, size_t line) {
        return (void *)(((uintptr_t)p + line - 1) & ~(uintptr_t)(line - 1));
    }
    """
    void* lanes_line_after(char* p, size_t line) noexcept nogil

cdef extern from *:
    """
    /* The next unclaimed block: each thread takes blocks one at a time, so that a
       thread that starts late or is preempted leaves its blocks to the others.
       Only the count is shared (each block's results go to its own places), so
       relaxed ordering suffices; the locks that end a run order the rest. */
    #if defined(_MSC_VER) && defined(_WIN64)
    #include <intrin.h>
    static Py_ssize_t lanes_claim_block(Py_ssize_t *next) {
        return (Py_ssize_t)_InterlockedExchangeAdd64((volatile __int64 *)next, 1);
    }
    #elif defined(_MSC_VER)
    #include <intrin.h>
    static Py_ssize_t lanes_claim_block(Py_ssize_t *next) {
        return (Py_ssize_t)_InterlockedExchangeAdd((volatile long *)next, 1);
    }
    #else
    static Py_ssize_t lanes_claim_block(Py_ssize_t *next) {
        return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
    }
    #endif
    """
    Py_ssize_t lanes_claim_block(Py_ssize_t* next) noexcept nogil

cdef extern from *:
    """
    /* the process that started a pool's threads: a fork's child has none of them */
    #ifdef _WIN32
    #include <process.h>
    static long lanes_process_id(void) { return (long)_getpid(); }
    #else
    #include <unistd.h>
    static long lanes_process_id(void) { return (long)getpid(); }
    #endif
    """
    long lanes_process_id() noexcept nogil

cdef extern from *:
    """
    /* a native thread running f(arg); 0 if the system gives none */
    static int lanes_start_thread(void (*f)(void *), void *arg) {
        return PyThread_start_new_thread(f, arg) != PYTHREAD_INVALID_THREAD_ID;
    }
    """
    int lanes_start_thread(void (*f)(void*) noexcept nogil, void* arg) noexcept

cdef extern from *:
    """
    /* a spinning thread's pause: lets the other hyperthread run, saves power */
    #if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <intrin.h>
    static void lanes_pause(void) { _mm_pause(); }
    #elif defined(_MSC_VER) && defined(_M_ARM64)
    #include <intrin.h>
    static void lanes_pause(void) { __yield(); }
    #elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static void lanes_pause(void) { __builtin_ia32_pause(); }
    #elif defined(__GNUC__) && defined(__aarch64__)
    static void lanes_pause(void) { __asm__ __volatile__("yield"); }
    #else
    static void lanes_pause(void) { }
    #endif
    """
    void lanes_pause() noexcept nogil


# How many doubles a block's data scratch may take (its grads as many again):
# 2**17 doubles = 1 MiB each: a block stays in a core's L2 (or a near L3); for
# micrograd's demo (987 nodes per sample) a block is at most 128 lanes.
LANES_BLOCK_DOUBLES = 131072
cdef enum:
    LANES_LINE = 128           # cache lines (two: processors fetch pairs) that threads share
    LANES_MAX_BLOCK = 1024     # the backward loop's local buffers hold a block
    LANES_SPLIT_BLOCKS = 8     # a small batch is still cut into up to 8 blocks (threads' work) ...
    LANES_SPLIT_LANES = 48     # ... of at least 48 lanes each (shorter loops cost more a lane)


cdef inline Py_ssize_t lanes_block_size(Py_ssize_t cap, Py_ssize_t n_lanes) noexcept nogil:
    """Lanes per block for B = n_lanes: blocks of at most `cap` lanes, as even as
    possible, and up to LANES_SPLIT_BLOCKS of them when B is small, so that threads
    share a small batch too. A function of the graph (cap) and B only, never of the
    threads: the blocks fix the order of the shared grads' sums."""
    cdef Py_ssize_t n_blocks = (n_lanes + cap - 1) // cap
    n_blocks = max(n_blocks, min(<Py_ssize_t>LANES_SPLIT_BLOCKS,
                                 n_lanes // LANES_SPLIT_LANES), 1)
    return (n_lanes + n_blocks - 1) // n_blocks


cdef struct LaneRun:
    # A run, as every thread reads it. The fields are read at every step by every
    # thread; what threads write during the run is in lines of its own (a line
    # written by one core and read by another goes back and forth between them).
    char apart_front[LANES_LINE]
    # the tape (positions in the recorded order) and its shape
    Step* steps
    const uint8_t* kind         # per step: 0, or PRODUCT_FIRST/SECOND for a product run with
                                # the sum of the next step (that step is then skipped),
                                # or GATHER for an n-ary root (op_gathers)
    const uint8_t* first        # per step: the operands (TO_LHS, TO_RHS) whose grad rows it
                                # writes first in backward: it stores, the others add
    const Py_ssize_t* grad_row  # per row: the row its grad is read from (itself, or for a
                                # sum's operand the sum's: ACC_ALIASED)
    const Py_ssize_t* gather_index  # an n-ary root step k's operand rows are
    const Py_ssize_t* gather_rows   # gather_rows[gather_index[k]:gather_index[k + 1]]
    Py_ssize_t n_steps
    Py_ssize_t n_rows
    Py_ssize_t block            # lanes per block
    Py_ssize_t stride           # doubles per row of a block's scratch (block, rounded up to 8)
    Py_ssize_t n_blocks
    Py_ssize_t n_lanes          # B
    Py_ssize_t root
    # leaves: shared rows get one value for every lane; input rows their lanes' values
    const Py_ssize_t* folds     # per step (NULL: none): -1, or for a product-and-sum whose
                                # product reads a shared leaf read nowhere else, 2 * i + side:
                                # shared leaf i (side 0: the product's first operand, 1: its
                                # second) is read as one number, its grad summed in the loop
    const Py_ssize_t* fill_index    # the shared leaves whose rows hold their value (not folded)
    Py_ssize_t n_fill
    const Py_ssize_t* sum_index     # the shared leaves whose grads are summed from rows
    Py_ssize_t n_sum
    Py_ssize_t* shared_rows
    double* shared_vals
    Py_ssize_t n_shared
    Py_ssize_t n_shared_grads   # the first n_shared_grads shared rows are leaves of the graph
    Py_ssize_t* input_rows
    double** input_vals
    double** input_grads
    Py_ssize_t n_inputs
    Py_ssize_t* output_rows
    double** output_vals
    Py_ssize_t n_outputs
    double* partials            # each block's sums of the shared grads: block blk's sum of
    Py_ssize_t partials_stride  # shared grad i at [blk * partials_stride + i] (a block's sums
                                # in lines of their own)
    bint backward
    # written during the run
    char apart_written[LANES_LINE]
    Py_ssize_t next_block       # the next block no thread has taken (lanes_claim_block)
    int stop                    # set by the main thread: workers stop between blocks
    char apart_back[LANES_LINE]


cdef struct LaneJob:
    # One thread's part of a run. The blocks it takes come in increasing order, so
    # its failure (the earliest step, then the first lane there) is that of its
    # blocks; the run's is the least (step, lane) of its jobs' whatever the threads.
    char apart[LANES_LINE]      # jobs side by side: each in lines of its own (LaneRun)
    double* scratch             # 2 x n_rows x block doubles: data, then grads
    bint filled                 # the shared rows of the data scratch hold their values
    Py_ssize_t fail_step        # the earliest step at which a lane raised (n_steps: none)
    Py_ssize_t fail_lane
    int fail_err


cdef inline int lanes_forward_rows(uint8_t op, double* o, const double* a, const double* b,
                                   Py_ssize_t n) noexcept nogil:
    """o[j] = op_forward(op, a[j], b[j]) for j < n; the error of some lane, or 0."""
    cdef Py_ssize_t j
    cdef int e = ERR_NONE
    if op == OP_ADD:
        for j in range(n):
            o[j] = op_forward(OP_ADD, a[j], b[j], &e)
    elif op == OP_MUL:
        for j in range(n):
            o[j] = op_forward(OP_MUL, a[j], b[j], &e)
    elif op == OP_SUB:
        for j in range(n):
            o[j] = op_forward(OP_SUB, a[j], b[j], &e)
    elif op == OP_RELU:
        for j in range(n):
            o[j] = op_forward(OP_RELU, a[j], b[j], &e)
    elif op == OP_NEG:
        for j in range(n):
            o[j] = op_forward(OP_NEG, a[j], b[j], &e)
    elif op == OP_DIV:
        for j in range(n):
            o[j] = op_forward(OP_DIV, a[j], b[j], &e)
    elif op == OP_POW_CONST:
        for j in range(n):
            o[j] = op_forward(OP_POW_CONST, a[j], b[j], &e)
    elif op == OP_TANH:
        for j in range(n):
            o[j] = op_forward(OP_TANH, a[j], b[j], &e)
    elif op == OP_EXP:
        for j in range(n):
            o[j] = op_forward(OP_EXP, a[j], b[j], &e)
    elif op == OP_LOG:
        for j in range(n):
            o[j] = op_forward(OP_LOG, a[j], b[j], &e)
    elif op == OP_SIGMOID:
        for j in range(n):
            o[j] = op_forward(OP_SIGMOID, a[j], b[j], &e)
    else:                       # every other op of the table, present and future
        for j in range(n):
            o[j] = op_forward(op, a[j], b[j], &e)
    return e


cdef inline int lanes_chain_lane(uint8_t op, const double* o, const double* g,
                                 const double* a, const double* b, double* da, double* db,
                                 uint8_t* to, Py_ssize_t j) noexcept nogil:
    """Lane j of one step's chain rule (op_chain) into the local buffers."""
    to[j] = <uint8_t>op_chain(op, a[j], b[j], o[j], g[j], &da[j], &db[j])
    return to[j]


cdef inline void lanes_chain_direct(uint8_t op, const double* o, const double* g,
                                    const double* a, const double* b, double* ga, double* gb,
                                    Py_ssize_t j, int first) noexcept nogil:
    """Lane j of one step's chain rule added straight into the grads, as
    op_backward_step does (first operand first). An operand in `first` (a
    constant where this is inlined) has not been written yet: its grad is
    0.0 + share, stored without reading the row (the same bits as adding to
    a zeroed row). For ops whose rule feeds the same operands on every lane."""
    cdef double da = 0.0, db = 0.0
    cdef int to = op_chain(op, a[j], b[j], o[j], g[j], &da, &db)
    if to & TO_LHS:
        ga[j] = (0.0 if first & TO_LHS else ga[j]) + da
    if to & TO_RHS:
        gb[j] = (0.0 if first & TO_RHS else gb[j]) + db


cdef inline void lanes_direct_rows(uint8_t op, const double* o, const double* g,
                                   const double* a, const double* b, double* ga, double* gb,
                                   Py_ssize_t n, int first) noexcept nogil:
    """lanes_chain_direct over n lanes: one loop per case of `first`, each
    with constants the compiler folds."""
    cdef Py_ssize_t j
    if first == 0:
        for j in range(n):
            lanes_chain_direct(op, o, g, a, b, ga, gb, j, 0)
    elif first == TO_LHS:
        for j in range(n):
            lanes_chain_direct(op, o, g, a, b, ga, gb, j, TO_LHS)
    elif first == TO_RHS:
        for j in range(n):
            lanes_chain_direct(op, o, g, a, b, ga, gb, j, TO_RHS)
    else:
        for j in range(n):
            lanes_chain_direct(op, o, g, a, b, ga, gb, j, TO_LHS | TO_RHS)


cdef inline void lanes_backward_rows(uint8_t op, const double* o, const double* g,
                                     const double* a, const double* b, double* ga, double* gb,
                                     Py_ssize_t n, int first) noexcept nogil:
    """One step's chain rule over n lanes, added to the operands' grads as
    op_backward_step adds it: per lane, the first operand's share first. The
    grad rows of the operands in `first` are written here first: they are
    stored (0.0 + share; 0.0 on a lane the rule does not feed), not read.

    The hot ops add straight into the grads (their op is a constant: the
    compiler vectorizes, with a run-time check for x * x, where ga and gb are
    one row). Every other op goes through local buffers first (which alias
    nothing), then into the grads; when every lane feeds the same operands the
    adds are plain loops. Per lane the same two additions in the same order as
    the scalar rule."""
    cdef double da[LANES_MAX_BLOCK]
    cdef double db[LANES_MAX_BLOCK]
    cdef uint8_t to[LANES_MAX_BLOCK]
    cdef int any_to = 0, all_to = TO_LHS | TO_RHS, t
    cdef Py_ssize_t j
    if op == OP_ADD:
        lanes_direct_rows(OP_ADD, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_MUL:
        lanes_direct_rows(OP_MUL, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_SUB:
        lanes_direct_rows(OP_SUB, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_RELU:
        lanes_direct_rows(OP_RELU, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_NEG:
        lanes_direct_rows(OP_NEG, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_DIV:
        lanes_direct_rows(OP_DIV, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_POW_CONST:
        for j in range(n):
            t = lanes_chain_lane(OP_POW_CONST, o, g, a, b, da, db, to, j)
            any_to |= t
            all_to &= t
    elif op == OP_TANH:
        lanes_direct_rows(OP_TANH, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_EXP:
        lanes_direct_rows(OP_EXP, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_LOG:
        lanes_direct_rows(OP_LOG, o, g, a, b, ga, gb, n, first)
        return
    elif op == OP_SIGMOID:
        lanes_direct_rows(OP_SIGMOID, o, g, a, b, ga, gb, n, first)
        return
    else:                       # every other op of the table, present and future
        for j in range(n):
            t = lanes_chain_lane(op, o, g, a, b, da, db, to, j)
            any_to |= t
            all_to &= t
    if any_to == all_to:        # every lane feeds the same operands
        if all_to & TO_LHS:
            if first & TO_LHS:
                for j in range(n):
                    ga[j] = 0.0 + da[j]
            else:
                for j in range(n):
                    ga[j] += da[j]
        elif first & TO_LHS:
            memset(ga, 0, n * sizeof(double))
        if all_to & TO_RHS:
            if first & TO_RHS:
                for j in range(n):
                    gb[j] = 0.0 + db[j]
            else:
                for j in range(n):
                    gb[j] += db[j]
        elif first & TO_RHS:
            memset(gb, 0, n * sizeof(double))
    else:
        for j in range(n):
            if to[j] & TO_LHS:
                ga[j] = (0.0 if first & TO_LHS else ga[j]) + da[j]
            elif first & TO_LHS:
                ga[j] = 0.0
            if to[j] & TO_RHS:
                gb[j] = (0.0 if first & TO_RHS else gb[j]) + db[j]
            elif first & TO_RHS:
                gb[j] = 0.0


# A product feeding only the sum after it (u = acc + w * x, as every neuron of an MLP
# sums its inputs) runs as one step: the two ops of the table in one loop, the
# product kept in a register instead of a row written and read back, forward and
# backward. Per lane the same operations in the same order as the two steps.

cdef enum:
    # in LaneRun.first, for the sum of a product-and-sum: the sum's other operand (acc)
    # is read by nothing else and is itself the sum of a product-and-sum; its grad,
    # 0.0 + this sum's grad, is not stored: the step that made acc reads this sum's
    # grad instead (LaneRun.grad_row). For that step, which adds its grad with the sum's
    # rule (0.0 + g), g and 0.0 + g give the same bits: an accumulated grad is never
    # -0.0 (its first write is 0.0 + share), so the two differ nowhere.
    ACC_ALIASED = 4
    PRODUCT_FIRST = 1           # the sum's first operand is the product (w * x + acc)
    PRODUCT_SECOND = 2          # its second (acc + w * x)
    GATHER = 3                  # not a product: an n-ary root, whose lanes gather their operands


cdef inline void lanes_product_sum_forward(double* u, const double* acc, const double* w,
                                           const double* x, Py_ssize_t n,
                                           int where) noexcept nogil:
    """u[j] = acc[j] + w[j] * x[j] (or w[j] * x[j] + acc[j]): op_forward's MUL, then ADD."""
    cdef Py_ssize_t j
    cdef int e = ERR_NONE
    if where == PRODUCT_SECOND:
        for j in range(n):
            u[j] = op_forward(OP_ADD, acc[j], op_forward(OP_MUL, w[j], x[j], &e), &e)
    else:
        for j in range(n):
            u[j] = op_forward(OP_ADD, op_forward(OP_MUL, w[j], x[j], &e), acc[j], &e)


cdef inline void lanes_product_sum_backward(const double* gu, double* gacc, const double* w,
                                            const double* x, double* gw, double* gx,
                                            Py_ssize_t n, int where, int first_acc,
                                            int first_product) noexcept nogil:
    """The sum's chain rule, then the product's, as the two steps add them (the
    product's grad starts from 0.0, as its row would: 0.0 + g, not g). The
    product's grads wait in a local buffer (it aliases nothing: the loops vectorize).
    `first_acc`: the sum's other operand's row is written here first (stored);
    `first_product`: the product's operands' rows so written (lanes_direct_rows)."""
    cdef double gp[LANES_MAX_BLOCK]
    lanes_sum_rule(gu, gacc, gp, n, where, first_acc)
    lanes_direct_rows(OP_MUL, gp, gp, w, x, gw, gx, n, first_product)


cdef inline void lanes_sum_rule(const double* gu, double* gacc, double* gp, Py_ssize_t n,
                                int where, int first_acc) noexcept nogil:
    """A product-and-sum's sum rule: into the sum's other operand's grads, and the
    product's grads (from 0.0) into gp. With ACC_ALIASED in `first_acc`, the other
    operand's grads are not written at all (LaneRun.grad_row)."""
    cdef double da, db
    cdef Py_ssize_t j
    if first_acc & ACC_ALIASED:
        for j in range(n):
            op_chain(OP_ADD, 0.0, 0.0, 0.0, gu[j], &da, &db)       # reads no data
            gp[j] = 0.0 + (db if where == PRODUCT_SECOND else da)
        return
    if where == PRODUCT_SECOND:
        if first_acc:
            for j in range(n):
                op_chain(OP_ADD, 0.0, 0.0, 0.0, gu[j], &da, &db)   # reads no data
                gacc[j] = 0.0 + da
                gp[j] = 0.0 + db
        else:
            for j in range(n):
                op_chain(OP_ADD, 0.0, 0.0, 0.0, gu[j], &da, &db)
                gacc[j] += da
                gp[j] = 0.0 + db
    else:
        if first_acc:
            for j in range(n):
                op_chain(OP_ADD, 0.0, 0.0, 0.0, gu[j], &da, &db)
                gp[j] = 0.0 + da
                gacc[j] = 0.0 + db
        else:
            for j in range(n):
                op_chain(OP_ADD, 0.0, 0.0, 0.0, gu[j], &da, &db)
                gp[j] = 0.0 + da
                gacc[j] += db


# A product-and-sum whose product reads a shared leaf w (a weight) that nothing else
# reads: w is one number for every lane, not a row of copies, and its grad, which only
# this step writes (0.0 + share on each lane), is summed over the block's lanes in the
# loop that computes it, in lanes_block_sum's order (partial sums of the lanes j = r
# (mod 4)), instead of being stored to a row and read back. The same operations in the
# same order as the two steps with w's row: the same bits.

cdef inline void lanes_product_sum_forward_fold(double* u, const double* acc, double w,
                                                const double* x, Py_ssize_t n, int where,
                                                int side) noexcept nogil:
    """lanes_product_sum_forward with w one number: w * x[j] (side 0) or x[j] * w (1)."""
    cdef Py_ssize_t j
    cdef int e = ERR_NONE
    if where == PRODUCT_SECOND:
        if side == 0:
            for j in range(n):
                u[j] = op_forward(OP_ADD, acc[j], op_forward(OP_MUL, w, x[j], &e), &e)
        else:
            for j in range(n):
                u[j] = op_forward(OP_ADD, acc[j], op_forward(OP_MUL, x[j], w, &e), &e)
    else:
        if side == 0:
            for j in range(n):
                u[j] = op_forward(OP_ADD, op_forward(OP_MUL, w, x[j], &e), acc[j], &e)
        else:
            for j in range(n):
                u[j] = op_forward(OP_ADD, op_forward(OP_MUL, x[j], w, &e), acc[j], &e)


cdef inline double lanes_fold_lane(double w, const double* x, const double* gp, double* gx,
                                   Py_ssize_t j, int side, int first_x) noexcept nogil:
    """Lane j of the product's rule: x's share into its grad row; w's share (0.0 +
    share, as its row would hold) returned."""
    cdef double da = 0.0, db = 0.0
    if side == 0:
        op_chain(OP_MUL, w, x[j], 0.0, gp[j], &da, &db)
        gx[j] = (0.0 if first_x else gx[j]) + db
        return 0.0 + da
    op_chain(OP_MUL, x[j], w, 0.0, gp[j], &da, &db)
    gx[j] = (0.0 if first_x else gx[j]) + da
    return 0.0 + db


cdef inline double lanes_fold_rows(double w, const double* x, const double* gp, double* gx,
                                   Py_ssize_t n, int side, int first_x) noexcept nogil:
    """The product's rule over the block; returns the block's sum of w's shares."""
    cdef double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0
    cdef Py_ssize_t j, m = n - n % 4
    for j in range(0, m, 4):
        p0 += lanes_fold_lane(w, x, gp, gx, j, side, first_x)
        p1 += lanes_fold_lane(w, x, gp, gx, j + 1, side, first_x)
        p2 += lanes_fold_lane(w, x, gp, gx, j + 2, side, first_x)
        p3 += lanes_fold_lane(w, x, gp, gx, j + 3, side, first_x)
    if m < n:
        p0 += lanes_fold_lane(w, x, gp, gx, m, side, first_x)
    if m + 1 < n:
        p1 += lanes_fold_lane(w, x, gp, gx, m + 1, side, first_x)
    if m + 2 < n:
        p2 += lanes_fold_lane(w, x, gp, gx, m + 2, side, first_x)
    return (p0 + p1) + (p2 + p3)


cdef inline double lanes_product_sum_backward_fold(const double* gu, double* gacc, double w,
                                                   const double* x, double* gx, Py_ssize_t n,
                                                   int where, int side, int first_acc,
                                                   int first_x) noexcept nogil:
    """lanes_product_sum_backward with w one number; returns the block's sum of w's
    grads (lanes_block_sum of the row it would have had)."""
    cdef double gp[LANES_MAX_BLOCK]
    lanes_sum_rule(gu, gacc, gp, n, where, first_acc)
    if side == 0:
        if first_x:
            return lanes_fold_rows(w, x, gp, gx, n, 0, 1)
        return lanes_fold_rows(w, x, gp, gx, n, 0, 0)
    if first_x:
        return lanes_fold_rows(w, x, gp, gx, n, 1, 1)
    return lanes_fold_rows(w, x, gp, gx, n, 1, 0)


cdef inline double lanes_block_sum(const double* row, Py_ssize_t n) noexcept nogil:
    """A block's sum of a shared leaf's grads, in the documented order: four
    partial sums p[r] of the lanes j = r (mod 4), each from 0.0 in lane order,
    then (p[0] + p[1]) + (p[2] + p[3]). Four independent chains: the adds
    overlap and vectorize, and the order is fixed whatever the threads."""
    cdef double p0 = 0.0, p1 = 0.0, p2 = 0.0, p3 = 0.0
    cdef Py_ssize_t j, m = n - n % 4
    for j in range(0, m, 4):
        p0 += row[j]
        p1 += row[j + 1]
        p2 += row[j + 2]
        p3 += row[j + 3]
    if m < n:
        p0 += row[m]
    if m + 1 < n:
        p1 += row[m + 1]
    if m + 2 < n:
        p2 += row[m + 2]
    return (p0 + p1) + (p2 + p3)


cdef bint lanes_gather_forward(LaneRun* r, LaneJob* job, Py_ssize_t s, double* d,
                               Py_ssize_t L, Py_ssize_t k0, Py_ssize_t n) noexcept nogil:
    """An n-ary root's step: each lane's value from its operands' rows (nary_value).
    True if a lane raised (the first one, recorded in the job)."""
    cdef const Step* st = &r.steps[s]
    cdef const Py_ssize_t* rows = r.gather_rows + r.gather_index[s]
    cdef Py_ssize_t count = r.gather_index[s + 1] - r.gather_index[s], i, j
    cdef double* o = d + st.out * L
    cdef double* values = <double*>malloc(count * sizeof(double))
    cdef int e
    if values == NULL:
        job.fail_step = s
        job.fail_lane = k0
        job.fail_err = ERR_NO_MEMORY
        return True
    for j in range(n):
        for i in range(count):
            values[i] = d[rows[i] * L + j]
        e = ERR_NONE
        o[j] = nary_value(st.op, values, count, &e)
        if e and not st.ieee:
            free(values)
            job.fail_step = s
            job.fail_lane = k0 + j
            job.fail_err = e
            return True
    free(values)
    return False


cdef void lanes_run_block(LaneRun* r, LaneJob* job, Py_ssize_t blk) noexcept nogil:
    """Forward (and backward) of block `blk` in the job's scratch; a lane's
    forward error is recorded in the job if it is earlier (by step) than the
    job's current one."""
    cdef Py_ssize_t L = r.stride, k0 = blk * r.block, n = min(r.block, r.n_lanes - k0)
    cdef Py_ssize_t i, j, k, s, acc, limit = job.fail_step
    cdef int side
    cdef double* d = job.scratch
    cdef double* g = job.scratch + r.n_rows * L
    cdef double* row
    cdef double v, total
    cdef Step* st
    cdef Step* nx
    cdef Step* pr
    cdef int e, e1
    if not job.filled:                  # no step writes a leaf's row: once per job
        job.filled = True
        for k in range(r.n_fill):
            i = r.fill_index[k]
            row = d + r.shared_rows[i] * L
            v = r.shared_vals[i]
            for j in range(r.block):
                row[j] = v
    for i in range(r.n_inputs):
        memcpy(d + r.input_rows[i] * L, r.input_vals[i] + k0, n * sizeof(double))
    s = 0
    while s < limit:
        st = &r.steps[s]
        if r.kind[s] == GATHER:
            if lanes_gather_forward(r, job, s, d, L, k0, n):
                return                  # a lane raised here: recorded in the job
            s += 1
            continue
        if r.kind[s]:                   # this product and the sum after it (never raise)
            nx = &r.steps[s + 1]
            acc = nx.rhs if r.kind[s] == PRODUCT_FIRST else nx.lhs
            if r.folds != NULL and r.folds[s] >= 0:
                side = r.folds[s] & 1
                lanes_product_sum_forward_fold(d + nx.out * L, d + acc * L,
                                               r.shared_vals[r.folds[s] >> 1],
                                               d + (st.rhs if side == 0 else st.lhs) * L, n,
                                               r.kind[s], side)
            else:
                lanes_product_sum_forward(d + nx.out * L, d + acc * L, d + st.lhs * L,
                                          d + st.rhs * L, n, r.kind[s])
            s += 2
            continue
        e = lanes_forward_rows(st.op, d + st.out * L, d + st.lhs * L, d + st.rhs * L, n)
        if e and not st.ieee:
            for j in range(n):          # which lane: the first one that raises here
                e1 = ERR_NONE
                op_forward(st.op, d[st.lhs * L + j], d[st.rhs * L + j], &e1)
                if e1:
                    job.fail_step = s
                    job.fail_lane = k0 + j
                    job.fail_err = e1
                    return
        s += 1
    if job.fail_step < r.n_steps:       # an earlier block failed: nothing more matters
        return
    for i in range(r.n_outputs):
        memcpy(r.output_vals[i] + k0, d + r.output_rows[i] * L, n * sizeof(double))
    if not r.backward:
        return
    # no memset of the grads: each row's first writer stores (LaneRun.first)
    row = g + r.root * L
    for j in range(n):
        row[j] = 1.0
    s = r.n_steps - 1
    while s >= 0:
        st = &r.steps[s]
        if s > 0 and (r.kind[s - 1] == PRODUCT_FIRST or r.kind[s - 1] == PRODUCT_SECOND):
            # the sum of a product-and-sum pair: both steps' rules
            pr = &r.steps[s - 1]
            acc = st.rhs if r.kind[s - 1] == PRODUCT_FIRST else st.lhs
            if r.folds != NULL and r.folds[s - 1] >= 0:
                side = r.folds[s - 1] & 1
                i = r.folds[s - 1] >> 1
                k = pr.rhs if side == 0 else pr.lhs       # the product's other operand
                r.partials[blk * r.partials_stride + i] = lanes_product_sum_backward_fold(
                    g + r.grad_row[st.out] * L, g + acc * L, r.shared_vals[i], d + k * L,
                    g + k * L, n, r.kind[s - 1], side, r.first[s],
                    r.first[s - 1] & (TO_RHS if side == 0 else TO_LHS))
            else:
                lanes_product_sum_backward(
                    g + r.grad_row[st.out] * L, g + acc * L, d + pr.lhs * L, d + pr.rhs * L,
                    g + pr.lhs * L, g + pr.rhs * L, n, r.kind[s - 1], r.first[s],
                    r.first[s - 1])
            s -= 2
            continue
        lanes_backward_rows(st.op, d + st.out * L, g + st.out * L, d + st.lhs * L,
                            d + st.rhs * L, g + st.lhs * L, g + st.rhs * L, n, r.first[s])
        s -= 1
    for i in range(r.n_inputs):
        memcpy(r.input_grads[i] + k0, g + r.input_rows[i] * L, n * sizeof(double))
    for k in range(r.n_sum):
        i = r.sum_index[k]
        r.partials[blk * r.partials_stride + i] = lanes_block_sum(g + r.shared_rows[i] * L, n)


cdef void lanes_run_job(LaneRun* r, LaneJob* job) noexcept nogil:
    """A worker thread's part: the blocks it takes, until none is left or it is
    asked to stop."""
    cdef Py_ssize_t blk
    while not lanes_read_flag(&r.stop):
        blk = lanes_claim_block(&r.next_block)
        if blk >= r.n_blocks:
            return
        lanes_run_block(r, job, blk)


# -----------------------------------------------------------------------------
# The worker pool
# -----------------------------------------------------------------------------
# A pool is a few native threads, each waiting on its `go` lock; a run hands each
# worker a job (its share of the blocks) by releasing `go`, does its own share,
# then takes each worker's `done` lock back. Pools are kept for the next run; two
# runs at once (two Python threads) take two pools. The threads never take the
# GIL and never call into Python.

cdef struct LaneWorker:
    PyThread_type_lock go       # held while the worker is idle; released to hand it a job
    PyThread_type_lock done     # held while it works; released when the job is done
    LaneRun* run
    LaneJob* job


cdef struct LanePool:
    LaneWorker** workers
    Py_ssize_t n_workers
    long process                # lanes_process_id() of the process whose threads these are


cdef enum:
    # How long a thread polls a lock before it sleeps on it (about a millisecond).
    # A sleeping thread is woken by the system late (tens of microseconds in a VM),
    # and often on the waker's own core; one that polls is running on its own core
    # when the next job comes, as in a training loop's next step. (OpenMP runtimes
    # spin the same way, and longer.)
    LANES_SPIN = 20000


cdef inline bint lanes_poll_lock(PyThread_type_lock lock) noexcept nogil:
    """Take the lock if it is released within LANES_SPIN polls."""
    cdef int k
    for k in range(LANES_SPIN):
        if PyThread_acquire_lock(lock, NOWAIT_LOCK):
            return True
        lanes_pause()
    return False


cdef void lanes_worker_main(void* arg) noexcept nogil:
    """A pool thread's life: wait for a job, run it, say so."""
    cdef LaneWorker* w = <LaneWorker*>arg
    while True:
        if not lanes_poll_lock(w.go):
            PyThread_acquire_lock(w.go, WAIT_LOCK)
        lanes_run_job(w.run, w.job)
        PyThread_release_lock(w.done)


cdef LaneWorker* lanes_start_worker() noexcept:
    """A new idle worker and its thread; NULL if the system gives no thread."""
    cdef LaneWorker* w = <LaneWorker*>calloc(1, sizeof(LaneWorker))
    if w == NULL:
        return NULL
    w.go = PyThread_allocate_lock()
    w.done = PyThread_allocate_lock()
    if (w.go != NULL and w.done != NULL
            and PyThread_acquire_lock(w.go, NOWAIT_LOCK)
            and PyThread_acquire_lock(w.done, NOWAIT_LOCK)
            and lanes_start_thread(lanes_worker_main, w)):
        return w
    if w.go != NULL:
        PyThread_free_lock(w.go)
    if w.done != NULL:
        PyThread_free_lock(w.done)
    free(w)
    return NULL


cdef LanePool** idle_pools = NULL        # pools no run holds now (the GIL guards them)
cdef Py_ssize_t n_idle_pools = 0
cdef Py_ssize_t idle_pools_cap = 0


cdef LanePool* lanes_take_pool(Py_ssize_t workers) except NULL:
    """A pool of this process with as many workers as the system gives, up to
    `workers` (fewer only change the speed). Give it back with lanes_give_pool."""
    global idle_pools, n_idle_pools
    cdef LanePool* pool = NULL
    cdef LaneWorker** grown
    cdef LaneWorker* w
    cdef long process = lanes_process_id()
    while n_idle_pools and pool == NULL:
        n_idle_pools -= 1
        if idle_pools[n_idle_pools].process == process:
            pool = idle_pools[n_idle_pools]
        # else: made before a fork; its threads are not in this process (left as it is)
    if pool == NULL:
        pool = <LanePool*>calloc(1, sizeof(LanePool))
        if pool == NULL:
            raise MemoryError("Lanes: cannot allocate a thread pool")
        pool.process = process
    if pool.n_workers < workers:
        grown = <LaneWorker**>realloc(pool.workers, workers * sizeof(LaneWorker*))
        if grown != NULL:
            pool.workers = grown
            while pool.n_workers < workers:
                w = lanes_start_worker()
                if w == NULL:
                    break
                pool.workers[pool.n_workers] = w
                pool.n_workers += 1
    return pool


cdef int lanes_give_pool(LanePool* pool) except -1:
    """Keep an idle pool for the next run."""
    global idle_pools, n_idle_pools, idle_pools_cap
    cdef LanePool** grown
    if n_idle_pools == idle_pools_cap:
        grown = <LanePool**>realloc(idle_pools, (2 * idle_pools_cap + 4) * sizeof(LanePool*))
        if grown == NULL:
            raise MemoryError("Lanes: cannot keep a thread pool")   # its threads stay idle
        idle_pools = grown
        idle_pools_cap = 2 * idle_pools_cap + 4
    idle_pools[n_idle_pools] = pool
    n_idle_pools += 1
    return 0


cdef bint lanes_wait_worker(LaneWorker* w, bint interruptible) except -1:
    """Wait until the worker's job is done (the GIL released meanwhile). If
    `interruptible`, signals are checked every 20 ms: their handler's exception
    (KeyboardInterrupt) is raised, the job still running."""
    cdef PyLockStatus status
    with nogil:
        if lanes_poll_lock(w.done):
            return True
    while True:
        with nogil:
            status = PyThread_acquire_lock_timed(w.done, 20000 if interruptible else -1, 0)
        if status == PY_LOCK_ACQUIRED:
            return True
        if interruptible:
            PyErr_CheckSignals()


def default_threads():
    """The cores this process may run on (``os.sched_getaffinity``), else ``os.cpu_count()``."""
    import os
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


cdef object lanes_error(int err, uint8_t op, Py_ssize_t lane, Py_ssize_t n_lanes):
    """The error a scalar replay of `lane` raises, naming the lane."""
    try:
        raise_forward_error(err, op)
    except (ArithmeticError, ValueError) as e:
        return type(e)(f"{e} (in lane {lane} of {n_lanes})")
    return RuntimeError("unknown forward error")


@cython.final
cdef class Lanes:
    """A graph recorded from one sample, evaluated for many samples (lanes) at once.

    Each lane is a replay of the scalar graph with its own values of the
    per-lane leaves (`inputs`); every other leaf (a parameter, a constant)
    keeps its one current value, shared by all lanes. The lanes run in C,
    over blocks of lanes, on `threads` threads with the GIL released (a pool
    of threads started at the first run and kept for the next ones).

    Every lane is bit for bit what ``Graph.forward()`` and ``Graph.backward()``
    give for that lane's inputs alone (a NaN is a NaN: its sign bit may differ,
    as it may between any two compiled loops). The one reordering is the sum over lanes
    of a shared leaf's gradient, taken in a fixed order that does not depend on
    the number of threads: lanes are cut into blocks of ``block`` consecutive
    lanes (the last block may be shorter; ``block`` is set by the graph's size
    and the number of lanes B, never by the threads: blocks of at most about
    2**17 / nodes lanes, as even as possible, and up to 8 blocks of at least 48
    lanes when B is small); in a block, four partial sums
    ``p[r]`` add the lanes ``j = r (mod 4)`` in lane order, each from 0.0, and
    the block's sum is ``(p[0] + p[1]) + (p[2] + p[3])``; the block sums are
    added in block order, and the total is added to the leaf's ``.grad``, as
    ``backward()`` would add it.

    Forward errors are those of a scalar replay: a lane where an op raises
    (``1 / 0``, ``log(-1)``, ...) raises the same exception, naming the lane
    (the first lane at the earliest step where any lane raises); nothing is
    changed then. Nodes made by ``grad(..., create_graph=True)`` compute with
    IEEE values, as in replay.

    Graphs with custom ops (a Value made with ``_children``, or one given a
    Python ``_backward``) are refused: their rules are Python code on one
    number at a time.

    Parameters
    ----------
    root : Value
        The graph's output for one sample, usually its loss.
    inputs : sequence of Value
        The leaves that get a value per lane (the sample's features, its label).
    outputs : sequence of Value, optional
        Nodes of the graph whose per-lane values ``data()`` should give after
        a forward, besides the root (a model's score, say).
    threads : int, optional
        How many threads run the lanes; default: the cores available to the
        process. Results do not depend on it.

    Examples
    --------
    >>> w, x = Value(3.0), Value(1.0)
    >>> lanes = Lanes(w * x * x, inputs=[x])
    >>> lanes.forward([np.array([1.0, 2.0, 3.0])])
    array([ 3., 12., 27.])
    >>> lanes.backward()            # d/dx per lane; w.grad += sum of x * x
    (array([ 6., 12., 18.]),)
    >>> w.grad
    14.0
    """

    cdef Graph graph
    cdef Step* steps
    cdef uint8_t* kind              # per step (and one more): see LaneRun.kind
    cdef uint8_t* first             # per step: see LaneRun.first
    cdef Py_ssize_t* folds          # see LaneRun.folds (NULL: none)
    cdef Py_ssize_t* fill_index     # see LaneRun.fill_index
    cdef Py_ssize_t* sum_index      # see LaneRun.sum_index
    cdef Py_ssize_t n_fill, n_sum
    cdef Py_ssize_t* grad_row       # see LaneRun.grad_row
    cdef Py_ssize_t* gather_index   # see LaneRun.gather_index (NULL: no n-ary root)
    cdef Py_ssize_t* gather_rows
    cdef Py_ssize_t n_steps, n_rows, block_cap, root
    cdef Py_ssize_t* shared_rows
    cdef node_t* shared_nodes
    cdef Py_ssize_t n_shared, n_shared_grads
    cdef Py_ssize_t* input_rows
    cdef Py_ssize_t* output_rows
    cdef Py_ssize_t n_inputs, n_outputs
    cdef double* shared_vals
    cdef double* scratch            # threads x 2 x n_rows x block_cap
    cdef Py_ssize_t scratch_jobs
    cdef double* partials           # in partials_memory, at a line's start
    cdef double* partials_memory
    cdef Py_ssize_t partials_cap
    cdef object input_values        # the last forward's per-lane inputs (float64 copies, a row each)
    cdef object output_values       # the last forward's outputs' lanes (a row each)
    cdef tuple input_grads
    cdef tuple inputs, outputs
    cdef Py_ssize_t n_lanes
    cdef bint ready                 # the last forward finished
    cdef bint busy
    cdef long busy_process          # the process whose thread set busy (a fork's child has none)
    cdef int n_threads

    def __cinit__(self):
        self.steps = NULL
        self.kind = NULL
        self.first = NULL
        self.folds = NULL
        self.fill_index = NULL
        self.sum_index = NULL
        self.n_fill = 0
        self.n_sum = 0
        self.grad_row = NULL
        self.gather_index = NULL
        self.gather_rows = NULL
        self.shared_rows = NULL
        self.shared_nodes = NULL
        self.input_rows = NULL
        self.output_rows = NULL
        self.shared_vals = NULL
        self.scratch = NULL
        self.partials = NULL
        self.partials_memory = NULL
        self.scratch_jobs = 0
        self.partials_cap = 0
        self.n_lanes = 0
        self.ready = False
        self.busy = False

    def __dealloc__(self):
        self.free_tape()

    cdef void free_tape(self) noexcept:
        """Give back what compile() and reserve() allocated; as __cinit__ left it."""
        free(self.steps)
        free(self.kind)
        free(self.first)
        free(self.folds)
        free(self.fill_index)
        free(self.sum_index)
        free(self.grad_row)
        free(self.gather_index)
        free(self.gather_rows)
        free(self.shared_rows)
        free(self.shared_nodes)
        free(self.input_rows)
        free(self.output_rows)
        free(self.shared_vals)
        free(self.scratch)
        free(self.partials_memory)
        self.steps = NULL
        self.kind = self.first = NULL
        self.folds = self.fill_index = self.sum_index = self.grad_row = NULL
        self.gather_index = self.gather_rows = NULL
        self.shared_rows = self.input_rows = self.output_rows = NULL
        self.shared_nodes = NULL
        self.shared_vals = self.scratch = self.partials = self.partials_memory = NULL
        self.n_steps = self.n_rows = self.n_inputs = self.n_outputs = 0
        self.n_shared = self.n_shared_grads = self.n_fill = self.n_sum = 0
        self.block_cap = self.scratch_jobs = self.partials_cap = 0

    def __init__(self, Value root not None, inputs, outputs=(), threads=None):
        if self.graph is not None:
            raise RuntimeError("Lanes.__init__ was already called: make a new Lanes")
        inputs = tuple(inputs)
        outputs = tuple(outputs)
        for v in inputs + outputs:
            if not isinstance(v, Value):
                raise TypeError(f"inputs and outputs are Values, not {type(v).__name__}")
            if (<Value>v).idx == 0:
                raise_uninitialised()
        self.threads = threads
        cdef Graph graph = Graph.__new__(Graph)
        graph.record(root.idx, True)    # custom ops: refused below, by compile
        try:
            self.compile(graph, inputs, outputs)
        except BaseException:
            self.free_tape()            # a half-made tape: none (these Lanes stay unmade)
            raise
        self.graph = graph
        self.inputs = inputs
        self.outputs = (root,) + outputs

    cdef int compile(self, Graph graph, tuple inputs, tuple outputs) except -1:
        """The compact tape: positions instead of node indices; the leaves split
        into inputs and shared ones; operands outside the order (a ** c's hidden
        exponent) become shared rows after the order's."""
        cdef Py_ssize_t n = graph.size, k, m, extra = 0
        cdef node_t i, operand
        cdef node_t* pos = <node_t*>calloc(n_used + 1, sizeof(node_t))   # node -> row + 1
        if pos == NULL:
            raise_no_memory("a node map", n_used, sizeof(node_t))
        try:
            for k in range(n):
                i = graph.order[k]
                if arena[i].op == OP_CUSTOM or arena[i].flags & FLAG_HOOK:
                    raise ValueError(
                        "Lanes cannot run a graph with custom ops (a Value made with "
                        "_children, with its Python _backward): their rules are Python "
                        "code on one number. Use Graph replay for it, or build it from "
                        "the op table's ops")
                pos[i] = <node_t>(k + 1)
            # hidden operands: rows after the order's
            hidden = []
            for k in range(graph.n_steps):
                for operand in (graph.steps[k].lhs, graph.steps[k].rhs):
                    if operand and pos[operand] == 0:
                        hidden.append(operand)
                        pos[operand] = <node_t>(n + len(hidden))
            extra = len(hidden)
            self.n_rows = n + extra
            self.n_steps = graph.n_steps
            self.steps = <Step*>malloc((self.n_steps or 1) * sizeof(Step))
            if self.steps == NULL:
                raise_no_memory("a Lanes tape", self.n_steps, sizeof(Step))
            for k in range(self.n_steps):
                self.steps[k] = graph.steps[k]
                self.steps[k].out = pos[graph.steps[k].out] - 1
                self.steps[k].lhs = pos[graph.steps[k].lhs] - 1 if graph.steps[k].lhs else 0
                # a unary op's missing operand reads its first operand's row (ignored)
                self.steps[k].rhs = (pos[graph.steps[k].rhs] - 1 if graph.steps[k].rhs
                                     else self.steps[k].lhs)
            self.root = pos[graph.root] - 1
            self.find_gathers(graph, pos)
            # rows that are inputs
            self.n_inputs = len(inputs)
            self.input_rows = <Py_ssize_t*>malloc((self.n_inputs or 1) * sizeof(Py_ssize_t))
            if self.input_rows == NULL:
                raise_no_memory("Lanes inputs", self.n_inputs, sizeof(Py_ssize_t))
            is_input = set()
            for k in range(self.n_inputs):
                i = (<Value>inputs[k]).idx
                if pos[i] == 0 or pos[i] > n or arena[i].op != OP_LEAF:
                    raise ValueError(f"input {k} ({inputs[k]!r}) is not a leaf of the graph")
                if i in is_input:
                    raise ValueError(f"input {k} ({inputs[k]!r}) is given twice")
                is_input.add(i)
                self.input_rows[k] = pos[i] - 1
            self.n_outputs = len(outputs) + 1
            self.output_rows = <Py_ssize_t*>malloc(self.n_outputs * sizeof(Py_ssize_t))
            if self.output_rows == NULL:
                raise_no_memory("Lanes outputs", self.n_outputs, sizeof(Py_ssize_t))
            self.output_rows[0] = self.root
            for k in range(1, self.n_outputs):
                i = (<Value>outputs[k - 1]).idx
                if pos[i] == 0 or pos[i] > n:
                    raise ValueError(f"output {k - 1} ({outputs[k - 1]!r}) is not a node "
                                     "of the graph")
                self.output_rows[k] = pos[i] - 1
            # shared rows: the order's other leaves, then the hidden operands
            m = 0
            for k in range(n):
                if arena[graph.order[k]].op == OP_LEAF and graph.order[k] not in is_input:
                    m += 1
            self.n_shared_grads = m
            self.n_shared = m + extra
            self.shared_rows = <Py_ssize_t*>malloc((self.n_shared or 1) * sizeof(Py_ssize_t))
            self.shared_nodes = <node_t*>malloc((self.n_shared or 1) * sizeof(node_t))
            self.shared_vals = <double*>malloc((self.n_shared or 1) * sizeof(double))
            if self.shared_rows == NULL or self.shared_nodes == NULL or self.shared_vals == NULL:
                raise_no_memory("Lanes shared leaves", self.n_shared, sizeof(double))
            m = 0
            for k in range(n):
                i = graph.order[k]
                if arena[i].op == OP_LEAF and i not in is_input:
                    self.shared_rows[m] = k
                    self.shared_nodes[m] = i
                    m += 1
            for k in range(extra):
                self.shared_rows[m + k] = n + k
                self.shared_nodes[m + k] = <node_t>hidden[k]
        finally:
            free(pos)
        self.block_cap = max(8, min(LANES_MAX_BLOCK, LANES_BLOCK_DOUBLES // max(self.n_rows, 1)))
        self.block_cap -= self.block_cap % 8
        uses = self.row_uses()
        self.find_product_sums(uses)
        self.find_folds(uses)
        self.find_first_writes(graph, uses)
        return 0

    cdef list row_uses(self):
        """How many times each row is read: as a step's operand (a unary op's row
        twice), as an output (the root too) or by an n-ary root."""
        cdef Py_ssize_t k
        uses = [0] * self.n_rows
        for k in range(self.n_steps):
            uses[self.steps[k].lhs] += 1
            uses[self.steps[k].rhs] += 1
        for k in range(self.n_outputs):
            uses[self.output_rows[k]] += 1
        if self.gather_index != NULL:
            for k in range(self.gather_index[self.n_steps]):
                uses[self.gather_rows[k]] += 1
        return uses

    cdef int find_folds(self, list uses) except -1:
        """The product-and-sum steps whose product reads a shared leaf that nothing
        else reads (LaneRun.folds), and the shared leaves' lists of rows to fill
        and grads to sum from rows."""
        cdef Py_ssize_t k, i, side, row
        cdef Step* st
        shared_grad = {self.shared_rows[i]: i for i in range(self.n_shared_grads)}
        folded = set()
        folds = {}
        for k in range(self.n_steps):
            if self.kind[k] != PRODUCT_FIRST and self.kind[k] != PRODUCT_SECOND:
                continue
            st = &self.steps[k]
            for side in (0, 1):
                row = st.lhs if side == 0 else st.rhs
                if row in shared_grad and uses[row] == 1:
                    folds[k] = 2 * shared_grad[row] + side
                    folded.add(shared_grad[row])
                    break
        if folds:
            self.folds = <Py_ssize_t*>malloc((self.n_steps + 1) * sizeof(Py_ssize_t))
            if self.folds == NULL:
                raise_no_memory("a Lanes tape", self.n_steps + 1, sizeof(Py_ssize_t))
            for k in range(self.n_steps + 1):
                self.folds[k] = folds.get(k, -1)
        fill = [i for i in range(self.n_shared) if i not in folded]
        summed = [i for i in range(self.n_shared_grads) if i not in folded]
        self.fill_index = <Py_ssize_t*>malloc((len(fill) or 1) * sizeof(Py_ssize_t))
        self.sum_index = <Py_ssize_t*>malloc((len(summed) or 1) * sizeof(Py_ssize_t))
        if self.fill_index == NULL or self.sum_index == NULL:
            raise_no_memory("a Lanes tape", self.n_shared, sizeof(Py_ssize_t))
        self.n_fill = len(fill)
        self.n_sum = len(summed)
        for k in range(self.n_fill):
            self.fill_index[k] = fill[k]
        for k in range(self.n_sum):
            self.sum_index[k] = summed[k]
        return 0

    cdef int find_gathers(self, Graph graph, node_t* pos) except -1:
        """The operand rows of each n-ary root (op_gathers), from its spine in the
        arena (the graph's nodes are held); marks the steps GATHER in `kind`."""
        cdef Py_ssize_t k, total = 0, at = 0, count, q
        cdef node_t* nodes
        for k in range(self.n_steps):
            if op_gathers(self.steps[k].op):
                total += spine_operands(graph.steps[k].lhs, NULL)
        if total == 0:
            return 0
        self.gather_index = <Py_ssize_t*>calloc(self.n_steps + 1, sizeof(Py_ssize_t))
        self.gather_rows = <Py_ssize_t*>malloc(total * sizeof(Py_ssize_t))
        nodes = <node_t*>malloc(total * sizeof(node_t))
        if self.gather_index == NULL or self.gather_rows == NULL or nodes == NULL:
            free(nodes)
            raise_no_memory("Lanes' n-ary operands", total, sizeof(Py_ssize_t))
        for k in range(self.n_steps):
            self.gather_index[k] = at
            if op_gathers(self.steps[k].op):
                count = spine_operands(graph.steps[k].lhs, nodes)
                for q in range(count):
                    self.gather_rows[at + q] = pos[nodes[q]] - 1
                at += count
        self.gather_index[self.n_steps] = at
        free(nodes)
        return 0

    cdef int find_first_writes(self, Graph graph, list uses) except -1:
        """Which step writes each grad row first in backward (LaneRun.first), in
        the order the backward loop writes them: that write stores, so the grads
        need no zeroing. Every row but the root's is some step's operand (the tape
        is the root's graph), so every grad row read is written first."""
        cdef Py_ssize_t s, acc, k
        cdef Step* st
        cdef Step* pr
        self.first = <uint8_t*>calloc(self.n_steps + 1, 1)
        self.grad_row = <Py_ssize_t*>malloc((self.n_rows or 1) * sizeof(Py_ssize_t))
        if self.first == NULL or self.grad_row == NULL:
            raise_no_memory("a Lanes tape", self.n_steps + 1, sizeof(Py_ssize_t))
        for k in range(self.n_rows):
            self.grad_row[k] = k
        fused_sums = {self.steps[k].out for k in range(1, self.n_steps)    # their rows
                      if self.kind[k - 1] == PRODUCT_FIRST or self.kind[k - 1] == PRODUCT_SECOND}
        written = bytearray(self.n_rows)
        written[self.root] = 1                  # the seed, 1.0
        s = self.n_steps - 1
        while s >= 0:
            st = &self.steps[s]
            if s > 0 and (self.kind[s - 1] == PRODUCT_FIRST
                          or self.kind[s - 1] == PRODUCT_SECOND):
                # the sum writes its other operand, then the product its two
                pr = &self.steps[s - 1]
                written[pr.out] = 1             # the product's row: a register, never read
                acc = st.rhs if self.kind[s - 1] == PRODUCT_FIRST else st.lhs
                if not written[acc] and uses[acc] == 1 and acc in fused_sums:
                    written[acc] = 1            # acc's grad is this sum's: ACC_ALIASED
                    self.first[s] |= ACC_ALIASED
                    self.grad_row[acc] = self.grad_row[st.out]
                elif not written[acc]:
                    written[acc] = 1
                    self.first[s] |= TO_RHS if self.kind[s - 1] == PRODUCT_FIRST else TO_LHS
                if not written[pr.lhs]:
                    written[pr.lhs] = 1
                    self.first[s - 1] |= TO_LHS
                if not written[pr.rhs]:
                    written[pr.rhs] = 1
                    self.first[s - 1] |= TO_RHS
                s -= 2
                continue
            # the operands the step has (a unary op's rhs row is its lhs, never written)
            if graph.steps[s].lhs and not written[st.lhs]:
                written[st.lhs] = 1
                self.first[s] |= TO_LHS
            if graph.steps[s].rhs and not written[st.rhs]:
                written[st.rhs] = 1
                self.first[s] |= TO_RHS
            s -= 1
        return 0

    cdef int find_product_sums(self, list uses) except -1:
        """Mark each product whose only use is the sum of the very next step, and
        that is no output: the two run as one step (LaneRun.kind)."""
        cdef Py_ssize_t k, t
        cdef Step* st
        cdef Step* nx
        self.kind = <uint8_t*>calloc(self.n_steps + 1, 1)
        if self.kind == NULL:
            raise_no_memory("a Lanes tape", self.n_steps + 1, 1)
        # uses: a unary op's row counts twice (never fused); outputs and n-ary roots'
        # operands count (kept)
        for k in range(self.n_steps):
            if op_gathers(self.steps[k].op):
                self.kind[k] = GATHER
        k = 0
        while k + 1 < self.n_steps:
            st = &self.steps[k]
            nx = &self.steps[k + 1]
            t = st.out
            if (st.op == OP_MUL and nx.op == OP_ADD and uses[t] == 1 and not self.kind[k]
                    and (nx.lhs == t) != (nx.rhs == t)):
                self.kind[k] = PRODUCT_FIRST if nx.lhs == t else PRODUCT_SECOND
                k += 2
            else:
                k += 1
        return 0

    @property
    def threads(self):
        """How many threads run the lanes (results do not depend on it)."""
        return self.n_threads

    @threads.setter
    def threads(self, value):
        if value is None:
            value = default_threads()
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"threads must be an int or None, not {type(value).__name__}")
        if value < 1:
            raise ValueError(f"threads must be at least 1, not {value}")
        self.n_threads = min(value, 1024)

    @property
    def block(self):
        """Lanes per block in the last forward (before any: the most a block takes):
        the unit of work of a thread and of the shared-grad sums. Set by the
        graph's size and the number of lanes, never by the threads."""
        return lanes_block_size(self.block_cap, self.n_lanes) if self.n_lanes else self.block_cap

    @property
    def lanes(self):
        """B, the number of lanes of the last forward (0 before any)."""
        return self.n_lanes

    def __len__(self):
        """The number of nodes of the recorded graph (per lane)."""
        self.check_made()
        return self.graph.size

    def __repr__(self):
        if self.graph is None:
            return "Lanes(not made: __init__ did not complete)"
        return (f"Lanes({self.graph.size} nodes, {len(self.inputs)} inputs, "
                f"{self.n_lanes} lanes, {self.n_threads} threads)")

    cdef int check_made(self) except -1:
        """ValueError for Lanes whose __init__ was not called or failed."""
        if self.graph is None:
            raise ValueError("these Lanes have no graph: Lanes.__init__ was not called or "
                             "did not complete")
        return 0

    def _tape(self):
        """The compact tape, for tests and the bench: (steps as (out, lhs, rhs, op,
        ieee) rows, number of rows, root row, input rows, shared rows)."""
        cdef Py_ssize_t k
        steps = [(self.steps[k].out, self.steps[k].lhs, self.steps[k].rhs,
                  self.steps[k].op, self.steps[k].ieee) for k in range(self.n_steps)]
        return (steps, self.n_rows, self.root,
                [self.input_rows[k] for k in range(self.n_inputs)],
                [self.shared_rows[k] for k in range(self.n_shared)])

    def _folded(self):
        """The product-and-sum steps that read a shared leaf as one number, for tests:
        (step, shared leaf's position in the shared rows, side) triples."""
        if self.folds == NULL:
            return []
        return [(k, self.folds[k] >> 1, self.folds[k] & 1) for k in range(self.n_steps)
                if self.folds[k] >= 0]

    def _aliased(self):
        """The sums of product-and-sum steps whose other operand's grad is not stored
        (ACC_ALIASED), for tests: their steps."""
        return [k for k in range(self.n_steps) if self.first[k] & ACC_ALIASED]

    def _fused(self):
        """The products run with the sum after them, for tests: (step, 1 if the sum's
        first operand is the product else 2) pairs."""
        return [(k, self.kind[k]) for k in range(self.n_steps)
                if self.kind[k] == PRODUCT_FIRST or self.kind[k] == PRODUCT_SECOND]

    cdef int check_idle(self) except -1:
        """RuntimeError if another thread of this process is running these Lanes: its C
        loops use the scratch that a new run would reallocate."""
        self.check_made()
        if self.busy and self.busy_process == lanes_process_id():
            raise RuntimeError("these Lanes are already running (in another thread, or "
                               "further up this thread's calls: a signal handler)")
        return 0

    cdef object checked_inputs(self, values):
        """The per-lane inputs as C-contiguous float64 copies, all of one length B >= 1."""
        import numpy as np
        if isinstance(values, np.ndarray) and values.ndim == 2:
            values = list(values)
        elif not isinstance(values, (list, tuple)):
            raise TypeError("values must be a list of arrays, one per input, not "
                            f"{type(values).__name__}")
        if len(values) != self.n_inputs:
            raise ValueError(f"values must have one array per input ({self.n_inputs}), "
                             f"not {len(values)}")
        arrays = []
        n_lanes = -1
        for k, raw in enumerate(values):
            arr = np.asarray(raw)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"values[{k}] must be an array of real numbers, not of "
                                f"{arr.dtype}")
            if arr.ndim != 1:
                raise ValueError(f"values[{k}] must be one-dimensional (one value per lane), "
                                 f"not of shape {arr.shape}")
            if n_lanes < 0:
                n_lanes = arr.shape[0]
            elif arr.shape[0] != n_lanes:
                raise ValueError(f"values[{k}] has {arr.shape[0]} lanes, values[0] "
                                 f"{n_lanes}: every input needs one value per lane")
            arrays.append(arr)
        if n_lanes < 0:                 # no inputs: nothing says how many lanes
            raise ValueError("a Lanes without inputs has no lanes to run")
        if n_lanes == 0:
            raise ValueError("values have 0 lanes: give at least one value per input")
        self.reserve(n_lanes, self.jobs_for(n_lanes))
        # copies, one row each: the C loops read them without the GIL, when other
        # code could change the caller's arrays
        copies = np.empty((self.n_inputs, n_lanes), dtype=np.float64)
        for k in range(self.n_inputs):
            copies[k] = arrays[k]
        return copies, n_lanes

    cdef Py_ssize_t partials_stride(self):
        """Doubles per block in LaneRun.partials: the shared grads, rounded up to lines."""
        cdef Py_ssize_t per_line = LANES_LINE // sizeof(double)
        return (self.n_shared_grads + per_line - 1) // per_line * per_line

    cdef Py_ssize_t jobs_for(self, Py_ssize_t n_lanes):
        """How many threads a run of n_lanes lanes uses: at most one per block."""
        cdef Py_ssize_t block = lanes_block_size(self.block_cap, n_lanes)
        return max(1, min(<Py_ssize_t>self.n_threads, (n_lanes + block - 1) // block))

    cdef int reserve(self, Py_ssize_t n_lanes, Py_ssize_t jobs) except -1:
        """Scratch for `jobs` threads and the block sums for `n_lanes` lanes; the
        size is checked before anything is allocated."""
        cdef Py_ssize_t block = lanes_block_size(self.block_cap, n_lanes)
        cdef Py_ssize_t n_blocks = (n_lanes + block - 1) // block
        cdef double per_job = 2.0 * self.n_rows * self.block_cap * sizeof(double)
        cdef double wanted = (jobs * per_job + n_blocks * self.partials_stride() * 8.0
                              + n_lanes * (2.0 * self.n_inputs + self.n_outputs) * 8.0)
        cdef double* buf
        self.check_idle()
        check_memory(wanted, n_lanes)
        if jobs > self.scratch_jobs:
            buf = <double*>malloc(<size_t>(jobs * per_job))
            if buf == NULL:
                raise MemoryError(f"Lanes: cannot allocate {jobs * per_job:.0f} bytes of "
                                  "scratch")
            free(self.scratch)
            self.scratch = buf
            self.scratch_jobs = jobs
        if n_blocks * self.partials_stride() > self.partials_cap:
            # threads write it during a run: in lines of its own (LaneRun), from a
            # line's start, so that each block's sums are in lines of their own too
            buf = <double*>malloc(<size_t>(n_blocks * self.partials_stride() * sizeof(double)
                                           + 3 * LANES_LINE))
            if buf == NULL:
                raise MemoryError(f"Lanes: cannot allocate "
                                  f"{n_blocks * self.partials_stride() * 8} bytes of block sums")
            free(self.partials_memory)
            self.partials_memory = buf
            self.partials = <double*>lanes_line_after(<char*>buf + LANES_LINE, LANES_LINE)
            self.partials_cap = n_blocks * self.partials_stride()
        return 0

    def forward(self, values, *, backward=False):
        """Run every lane forward; returns the root's value in each lane.

        Parameters
        ----------
        values : list of array_like
            One array per input, each of B real numbers: lane k takes
            ``values[i][k]`` as input i's data. Shared leaves take their
            current ``.data``.
        backward : bool, optional
            Also run ``backward()`` in the same pass (cheaper than two calls).

        Returns
        -------
        numpy.ndarray
            The root's data in each lane, shape (B,).

        Examples
        --------
        >>> x = Value(0.0)
        >>> Lanes(x.relu(), inputs=[x]).forward([[-1.0, 2.0]])
        array([0., 2.])
        """
        self.check_idle()        # before checked_inputs: its reserve() may free the scratch
        arrays, n_lanes = self.checked_inputs(values)
        return self.run(arrays, n_lanes, backward, True)

    def backward(self):
        """Backpropagate every lane of the last forward.

        Each lane starts from d(root)/d(root) = 1 and fresh grads. The shared
        leaves' ``.grad`` receive the sum over lanes (in the order the class
        docstring gives); the arena is otherwise untouched. The forward values
        are recomputed block by block rather than stored (B x nodes doubles):
        bit for bit the same, and cheaper than reading them back from memory.

        Returns
        -------
        tuple of numpy.ndarray
            Each input's gradient in each lane, shape (B,) each.

        Examples
        --------
        >>> w, x = Value(2.0), Value(0.0)
        >>> lanes = Lanes(w * x, inputs=[x])
        >>> _ = lanes.forward([[1.0, 2.0]])
        >>> lanes.backward(), w.grad
        ((array([2., 2.]),), 3.0)
        """
        self.check_idle()
        if not self.ready:
            raise RuntimeError("backward() needs a finished forward() first")
        self.run(self.input_values, self.n_lanes, True, False)
        return self.input_grads

    def data(self, Value v not None):
        """The B values of the root, an output or an input in the last forward.

        Examples
        --------
        >>> x = Value(1.0); y = x * 2
        >>> lanes = Lanes(y + 1, inputs=[x], outputs=[y])
        >>> _ = lanes.forward([[1.0, 5.0]])
        >>> lanes.data(y)
        array([ 2., 10.])
        """
        return self.values_of(v).copy()

    cdef object values_of(self, Value v):
        """data(v), not copied."""
        if not self.ready:
            raise RuntimeError("no finished forward() yet")
        for k, u in enumerate(self.outputs):
            if (<Value>u).idx == v.idx:
                return self.output_values[k]
        for k, u in enumerate(self.inputs):
            if (<Value>u).idx == v.idx:
                return self.input_values[k]
        raise ValueError(f"{v!r} is not the root, an output or an input of these Lanes "
                         "(pass it in outputs=)")

    def sum(self, Value v not None):
        """The sum of data(v), added left to right from 0.0: what micrograd's
        ``sum(losses)`` of the lanes' Values gives (and Python's ``sum`` of floats
        up to 3.11; 3.12's compensates), on every Python.

        Examples
        --------
        >>> x = Value(1.0)
        >>> lanes = Lanes(x * x, inputs=[x])
        >>> _ = lanes.forward([[1e16, 1.0, -1e16]])
        >>> lanes.sum(x) == 1e16 + 1.0 - 1e16
        True
        """
        values = self.values_of(v)
        cdef Py_buffer buf
        cdef double total = 0.0
        cdef const double* p
        cdef Py_ssize_t j, n
        PyObject_GetBuffer(values, &buf, PyBUF_C_CONTIGUOUS)
        p = <const double*>buf.buf
        n = buf.len // sizeof(double)
        for j in range(n):
            total += p[j]
        PyBuffer_Release(&buf)
        return total

    def grad(self, Value v not None):
        """An input's B grads from the last backward.

        Examples
        --------
        >>> x = Value(1.0)
        >>> lanes = Lanes(x * x, inputs=[x])
        >>> _ = lanes.forward([[1.0, 5.0]], backward=True)
        >>> lanes.grad(x)
        array([ 2., 10.])
        """
        if self.input_grads is None:
            raise RuntimeError("no finished backward() yet")
        for k, u in enumerate(self.inputs):
            if (<Value>u).idx == v.idx:
                return self.input_grads[k].copy()
        raise ValueError(f"{v!r} is not an input of these Lanes")

    cdef object run(self, object arrays, Py_ssize_t n_lanes, bint backward, bint is_forward):
        """Run the lanes of `arrays` (inputs x B, this class's float64 copy)."""
        import numpy as np
        cdef Py_ssize_t k
        self.check_idle()
        self.reserve(n_lanes, self.jobs_for(n_lanes))
        # the outputs' lanes, then (backward) the inputs' grads: a row each
        results = np.empty((self.n_outputs + (self.n_inputs if backward else 0), n_lanes),
                           dtype=np.float64)
        pointer_buf = bytearray((2 * self.n_inputs + self.n_outputs + 1) * sizeof(double*))
        cdef double** ptrs = <double**><char*>pointer_buf
        # both are this class's own C-contiguous float64 arrays, kept alive by the locals
        # (the buffer protocol, not typed memoryviews: those cost microseconds a call)
        cdef Py_buffer in_buf, out_buf
        PyObject_GetBuffer(arrays, &in_buf, PyBUF_C_CONTIGUOUS)
        try:
            PyObject_GetBuffer(results, &out_buf, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
        except BaseException:
            PyBuffer_Release(&in_buf)
            raise
        for k in range(self.n_inputs):
            ptrs[k] = <double*>in_buf.buf + k * n_lanes
        for k in range(results.shape[0]):       # the outputs, then the inputs' grads
            ptrs[self.n_inputs + k] = <double*>out_buf.buf + k * n_lanes
        try:
            return self.run_buffers(ptrs, arrays, results, n_lanes, backward, is_forward)
        finally:
            PyBuffer_Release(&out_buf)
            PyBuffer_Release(&in_buf)

    cdef object run_buffers(self, double** ptrs, object arrays, object results,
                            Py_ssize_t n_lanes, bint backward, bint is_forward):
        """run(), with the arrays' rows as pointers: inputs, outputs, then grads."""
        cdef Py_ssize_t block = lanes_block_size(self.block_cap, n_lanes)
        cdef Py_ssize_t k, b, n_blocks = (n_lanes + block - 1) // block
        cdef Py_ssize_t jobs = self.jobs_for(n_lanes), started = 0, waited = 0
        cdef LaneRun r
        cdef LaneJob* job
        cdef LanePool* pool = NULL
        cdef LaneWorker* w
        cdef double total
        job_buf = bytearray(jobs * sizeof(LaneJob))
        cdef LaneJob* job_arr = <LaneJob*><char*>job_buf
        # shared values: read from the arena now, with the GIL
        if is_forward:
            for k in range(self.n_shared):
                self.shared_vals[k] = node_data[self.shared_nodes[k]]
        r.steps = self.steps
        r.kind = self.kind
        r.first = self.first
        r.folds = self.folds
        r.fill_index = self.fill_index
        r.n_fill = self.n_fill
        r.sum_index = self.sum_index
        r.n_sum = self.n_sum
        r.grad_row = self.grad_row
        r.gather_index = self.gather_index
        r.gather_rows = self.gather_rows
        r.n_steps = self.n_steps
        r.n_rows = self.n_rows
        r.block = block
        r.stride = (block + 7) // 8 * 8
        r.n_blocks = n_blocks
        r.n_lanes = n_lanes
        r.root = self.root
        r.shared_rows = self.shared_rows
        r.shared_vals = self.shared_vals
        r.n_shared = self.n_shared
        r.n_shared_grads = self.n_shared_grads
        r.input_rows = self.input_rows
        r.input_vals = ptrs
        r.input_grads = ptrs + self.n_inputs + self.n_outputs
        r.n_inputs = self.n_inputs
        r.output_rows = self.output_rows
        r.output_vals = ptrs + self.n_inputs
        r.n_outputs = self.n_outputs
        r.partials = self.partials
        r.partials_stride = self.partials_stride()
        r.backward = backward
        r.stop = 0
        if is_forward:
            self.ready = False
        self.busy = True
        self.busy_process = lanes_process_id()
        try:
            if jobs > 1:
                pool = lanes_take_pool(jobs - 1)
                jobs = min(jobs, pool.n_workers + 1)    # the system may give fewer threads
            r.next_block = 0
            for k in range(jobs):
                job_arr[k].filled = False
                job_arr[k].scratch = self.scratch + k * 2 * self.n_rows * self.block_cap
                job_arr[k].fail_step = self.n_steps
                job_arr[k].fail_lane = 0
                job_arr[k].fail_err = ERR_NONE
            try:
                for k in range(1, jobs):
                    w = pool.workers[k - 1]
                    w.run = &r
                    w.job = &job_arr[k]
                    PyThread_release_lock(w.go)
                    started += 1
                job = &job_arr[0]
                while True:                         # this thread's part, signals checked
                    b = lanes_claim_block(&r.next_block)
                    if b >= n_blocks:
                        break
                    with nogil:
                        lanes_run_block(&r, job, b)
                    PyErr_CheckSignals()
                while waited < started:
                    lanes_wait_worker(pool.workers[waited], True)
                    waited += 1
            except BaseException:
                # the workers stop between blocks; r and the jobs live until they have
                lanes_set_flag(&r.stop, 1)
                while waited < started:
                    lanes_wait_worker(pool.workers[waited], False)
                    waited += 1
                raise
            finally:
                if pool != NULL:
                    lanes_give_pool(pool)
        finally:
            self.busy = False
        # the earliest failing step, then the first lane there
        job = NULL
        for k in range(jobs):
            if job_arr[k].fail_step < self.n_steps and (
                    job == NULL or job_arr[k].fail_step < job.fail_step
                    or (job_arr[k].fail_step == job.fail_step
                        and job_arr[k].fail_lane < job.fail_lane)):
                job = &job_arr[k]
        if job != NULL:
            raise lanes_error(job.fail_err, self.steps[job.fail_step].op, job.fail_lane,
                              n_lanes)
        if is_forward:
            self.input_values = arrays
            self.output_values = results[:self.n_outputs]
            self.n_lanes = n_lanes
            self.input_grads = None
            self.ready = True
        if backward:
            for k in range(self.n_shared_grads):
                total = self.partials[k]
                for b in range(1, n_blocks):
                    total += self.partials[b * r.partials_stride + k]
                node_grad[self.shared_nodes[k]] += total
            self.input_grads = tuple(results[self.n_outputs:])
        return results[0].copy() if is_forward else None


cdef int check_memory(double wanted, Py_ssize_t n_lanes) except -1:
    """MemoryError, with the bytes wanted, for more than the machine's memory."""
    cdef double physical = machine_memory()
    if wanted > physical or wanted > <double>PY_SSIZE_T_MAX:
        raise MemoryError(f"Lanes: {n_lanes} lanes need {wanted:.0f} bytes, more than this "
                          f"machine's {physical} bytes of memory")
    return 0
