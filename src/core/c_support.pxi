# C that Cython cannot write for us: the type slots' helpers (attributes,
# constructor, dealloc), bit scans, and the no-FMA pragma. Included first.

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

    /* Values that carry attributes: see src/core/extensible.pxi. */
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

    /* A slot wrapper's docstring (help(Value.__mul__)) is its wrapperbase's doc,
       a C string in CPython's static slot table shared by every type: give this
       descriptor a copy of the wrapperbase with our doc. The copy keeps the
       name and wrapper function that update_slot compares, so assigning the
       descriptor back still restores the compiled slot. Both are kept for the
       life of the process (the type is static, its descriptors are never freed). */
    static int autograd_set_wrapper_doc(PyObject *descr, const char *doc) {
        PyWrapperDescrObject *w = (PyWrapperDescrObject *)descr;
        struct wrapperbase *copy;
        char *text;
        if (!Py_IS_TYPE(descr, &PyWrapperDescr_Type)) {
            PyErr_SetString(PyExc_TypeError, "not a slot wrapper");
            return -1;
        }
        copy = (struct wrapperbase *)PyMem_RawMalloc(sizeof(struct wrapperbase));
        text = (char *)PyMem_RawMalloc(strlen(doc) + 1);
        if (copy == NULL || text == NULL) {
            PyMem_RawFree(copy);
            PyMem_RawFree(text);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(text, doc, strlen(doc) + 1);
        *copy = *w->d_base;
        copy->doc = text;
        w->d_base = copy;
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
    int autograd_set_wrapper_doc(object descr, const char* doc) except -1
    void autograd_save_ops(PyTypeObject* t)
    bint autograd_ops_untouched(PyTypeObject* t) noexcept
    void autograd_set_vectorcall(PyTypeObject* t, void* f)
    object autograd_type_call(object t, object args, PyObject* kw)
    Py_ssize_t autograd_nargs(size_t nargsf) noexcept
    void* autograd_tp_init(PyTypeObject* t) noexcept
    int count_trailing_zeros(uint64_t x) noexcept nogil
