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
    drop_grad_scratch()


cdef double machine_bytes = 0.0


cdef double machine_memory():
    """The machine's physical memory in bytes (2**48 where the OS does not say).

    Lanes and forward-mode sweeps allocate B x nodes doubles at once: past this
    they refuse up front, with the bytes wanted, rather than let an overcommitting
    OS hand out memory that the first touch cannot have."""
    global machine_bytes
    if machine_bytes == 0.0:
        import os
        try:
            machine_bytes = <double>os.sysconf("SC_PAGE_SIZE") * <double>os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):    # no sysconf (Windows)
            machine_bytes = 2.0 ** 48
    return machine_bytes


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
