/* A batch's output as Kafka record batches (magic 2), built in C: the twin of the path through
 * aiokafka's BatchBuilder in worker/stream/produce.py, which is the reference (and the fallback
 * when this was not built, or when the producer compresses).
 *
 * encode(runs, partitions, keyless, batch_size, max_request_size) takes the records of one
 * classifier batch as runs, [(topic, [(key, value), ...]), ...] (the lists the batch step fills:
 * no tuple per record to build), and returns, per (topic, partition) in the order each first
 * appears, its record batches as [(batch, count), ...]: a bytearray with room for the 61-byte
 * batch header, then each record framed as DefaultRecordBatchBuilder.append() frames it (length,
 * attributes 0, timestamp delta 0, offset delta, key, value, no headers: zig-zag varints); a batch
 * is closed when the next record would take it past batch_size (a first record always fits, as
 * there). A keyed record's partition is Kafka's default (murmur2.h); a key-less one goes to
 * keyless[topic] (0 when absent). When a record would not fit a request of max_request_size even
 * alone, nothing is built: the result is its index (counted across the runs).
 *
 * finish(batch, count, timestamp_ms, attributes, producer_id, producer_epoch, base_sequence) writes
 * the header into that room (every record stamped timestamp_ms) with its CRC-32C, and returns the
 * CRC: the batch is then byte for byte what DefaultRecordBatchBuilder.build() writes for the same
 * records. The header is written last because an idempotent producer's id and sequence are known
 * only when the sender drains the batch.
 *
 * Why: appending a STOP storm's 320,000 records a run to BatchBuilders one call at a time, with a
 * partition per record and a size check per record in Python, was about 10% of the classifier's
 * busy time (py-spy), and building the batches (aiokafka's CRC) another 2%. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "murmur2.h"

#define HEADER_SIZE 61
#define CRC_OFFSET 17
#define ATTRIBUTES_OFFSET 21

/* ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Kafka's record batches use ---- */

static uint32_t crc_table[8][256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

/* Slicing-by-8: the portable path. */
static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
/* SSE 4.2's crc32 instruction computes exactly this CRC, 8 bytes at a time. */
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#define HAVE_SSE42_PATH 1
#endif

static uint32_t (*crc32c)(uint32_t, const unsigned char *, size_t) = crc_soft;

/* ---- varints (zig-zag, as the record format writes every length and delta) ---- */

static inline uint64_t zigzag(int64_t n) { return ((uint64_t)n << 1) ^ (uint64_t)(n >> 63); }

static inline Py_ssize_t varint_size(int64_t n)
{
    uint64_t v = zigzag(n);
    Py_ssize_t size = 1;
    while (v >= 0x80) {
        v >>= 7;
        size++;
    }
    return size;
}

static inline unsigned char *put_varint(unsigned char *p, int64_t n)
{
    uint64_t v = zigzag(n);
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* One record's size without its length varint, at offset delta `delta` (a length of -1: null). */
static inline Py_ssize_t record_size(Py_ssize_t key_len, Py_ssize_t value_len, long delta)
{
    return 1 /* attributes */ + 1 /* timestamp delta 0 */ + varint_size(delta) + varint_size(key_len) +
           (key_len > 0 ? key_len : 0) + varint_size(value_len) + (value_len > 0 ? value_len : 0) +
           1 /* no headers */;
}

/* The same with its length varint: what the record adds to a batch. */
static inline Py_ssize_t frame_size(Py_ssize_t key_len, Py_ssize_t value_len, long delta)
{
    Py_ssize_t body = record_size(key_len, value_len, delta);
    return varint_size(body) + body;
}

/* ---- encode() ---- */

typedef struct {
    PyObject *batch; /* a bytearray: HEADER_SIZE bytes of room, then the records; NULL when none open */
    Py_ssize_t len, cap; /* bytes written (the room included), bytes allocated */
    long count;
    PyObject *bodies; /* the group's list in the result; NULL until its first record */
} Group;

typedef struct {
    PyObject *name; /* borrowed from the records */
    long partitions, keyless;
    Group *groups;
} Topic;

typedef struct {
    Topic *topics;
    Py_ssize_t count, cap;
} Topics;

static void topics_free(Topics *topics)
{
    for (Py_ssize_t t = 0; t < topics->count; t++) {
        Topic *topic = &topics->topics[t];
        for (long p = 0; p < topic->partitions; p++)
            Py_XDECREF(topic->groups[p].batch);
        PyMem_Free(topic->groups);
    }
    PyMem_Free(topics->topics);
}

static long dict_long(PyObject *dict, PyObject *name, long missing, int required)
{
    PyObject *item = PyDict_GetItemWithError(dict, name);
    if (item == NULL) {
        if (PyErr_Occurred())
            return -1;
        if (required) {
            PyErr_SetObject(PyExc_KeyError, name);
            return -1;
        }
        return missing;
    }
    return PyLong_AsLong(item);
}

static Topic *find_topic(Topics *topics, PyObject *name, PyObject *partitions, PyObject *keyless)
{
    for (Py_ssize_t t = 0; t < topics->count; t++)
        if (topics->topics[t].name == name)
            return &topics->topics[t];
    for (Py_ssize_t t = 0; t < topics->count; t++) {
        int same = PyObject_RichCompareBool(topics->topics[t].name, name, Py_EQ);
        if (same < 0)
            return NULL;
        if (same)
            return &topics->topics[t];
    }
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "a record's topic must be a str, not %.100s", Py_TYPE(name)->tp_name);
        return NULL;
    }
    long count = dict_long(partitions, name, 0, 1);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    long chosen = keyless == Py_None ? 0 : dict_long(keyless, name, 0, 0);
    if (chosen == -1 && PyErr_Occurred())
        return NULL;
    if (count <= 0 || chosen < 0 || chosen >= count) {
        PyErr_Format(PyExc_ValueError, "topic %R: %ld partitions, key-less records to %ld", name, count, chosen);
        return NULL;
    }
    if (topics->count == topics->cap) {
        Py_ssize_t cap = topics->cap ? topics->cap * 2 : 4;
        Topic *grown = PyMem_Realloc(topics->topics, cap * sizeof(Topic));
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        topics->topics = grown;
        topics->cap = cap;
    }
    Group *groups = PyMem_Calloc((size_t)count, sizeof(Group));
    if (groups == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Topic *topic = &topics->topics[topics->count++];
    topic->name = name;
    topic->partitions = count;
    topic->keyless = chosen;
    topic->groups = groups;
    return topic;
}

/* The group's open batch as a (batch, count) entry of its list, cut to its size; none is open then. */
static int flush(Group *group)
{
    PyObject *batch = group->batch;
    group->batch = NULL;
    if (PyByteArray_Resize(batch, group->len) < 0) {
        Py_DECREF(batch);
        return -1;
    }
    PyObject *entry = Py_BuildValue("(Nl)", batch, group->count);
    if (entry == NULL)
        return -1;
    int failed = PyList_Append(group->bodies, entry);
    Py_DECREF(entry);
    group->len = group->cap = 0;
    group->count = 0;
    return failed;
}

/* Room for `more` bytes in the group's open batch (opened here, with the header's room). A batch
 * is opened at batch_size, the most it holds unless its first record is larger: growing it by
 * doubling from 4 KB copied it at every step once the classifier kept its big buffers in glibc's
 * heap (worker/stream/allocator.py; a realloc moves a heap block, where an mmapped one was
 * remapped): 1.1-1.5% of a STOP storm's busy time (perf: _int_realloc under reserve). The flush
 * cuts the block to its size in place. Grown by doubling past that (one record above batch_size). */
static int reserve(Group *group, Py_ssize_t more, Py_ssize_t batch_size)
{
    if (group->batch == NULL) {
        Py_ssize_t cap = batch_size > HEADER_SIZE + more ? batch_size : HEADER_SIZE + more;
        group->batch = PyByteArray_FromStringAndSize(NULL, cap);
        if (group->batch == NULL)
            return -1;
        group->len = HEADER_SIZE;
        group->cap = cap;
        return 0;
    }
    if (group->len + more <= group->cap)
        return 0;
    Py_ssize_t cap = group->cap;
    while (cap < group->len + more)
        cap *= 2;
    if (PyByteArray_Resize(group->batch, cap) < 0)
        return -1;
    group->cap = cap;
    return 0;
}

static int bytes_or_none(PyObject *object, const char *what, const char **data, Py_ssize_t *len)
{
    if (object == Py_None) {
        *data = NULL;
        *len = -1;
        return 0;
    }
    if (!PyBytes_Check(object)) {
        PyErr_Format(PyExc_TypeError, "a record's %s must be bytes or None, not %.100s", what,
                     Py_TYPE(object)->tp_name);
        return -1;
    }
    *data = PyBytes_AS_STRING(object);
    *len = PyBytes_GET_SIZE(object);
    return 0;
}

/* The (key, value) pair of a run, checked: a 2-tuple of bytes (or None). */
static int pair_of(PyObject *pair, const char **key, Py_ssize_t *key_len, const char **value, Py_ssize_t *value_len)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "a run's record must be a (key, value) tuple");
        return -1;
    }
    if (bytes_or_none(PyTuple_GET_ITEM(pair, 0), "key", key, key_len) < 0 ||
        bytes_or_none(PyTuple_GET_ITEM(pair, 1), "value", value, value_len) < 0)
        return -1;
    return 0;
}

static PyObject *run_of(PyObject *run, PyObject **topic)
{
    if (!PyTuple_Check(run) || PyTuple_GET_SIZE(run) != 2) {
        PyErr_SetString(PyExc_TypeError, "a run must be a (topic, records) tuple");
        return NULL;
    }
    *topic = PyTuple_GET_ITEM(run, 0);
    return PySequence_Fast(PyTuple_GET_ITEM(run, 1), "a run's records must be a sequence");
}

static PyObject *py_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "encode(runs, partitions, keyless, batch_size, max_request_size) takes 5 arguments");
        return NULL;
    }
    PyObject *partitions = args[1], *keyless = args[2];
    if (!PyDict_Check(partitions) || !(keyless == Py_None || PyDict_Check(keyless))) {
        PyErr_SetString(PyExc_TypeError, "partitions must be a dict, keyless a dict or None");
        return NULL;
    }
    Py_ssize_t batch_size = PyLong_AsSsize_t(args[3]);
    Py_ssize_t max_request = PyLong_AsSsize_t(args[4]);
    if ((batch_size == -1 || max_request == -1) && PyErr_Occurred())
        return NULL;
    PyObject *runs = PySequence_Fast(args[0], "runs must be a sequence");
    if (runs == NULL)
        return NULL;
    Py_ssize_t n_runs = PySequence_Fast_GET_SIZE(runs);
    Topics topics = {NULL, 0, 0};
    PyObject *result = NULL, *records = NULL;
    const char *key, *value;
    Py_ssize_t key_len, value_len;

    result = PyDict_New();
    if (result == NULL)
        goto done;
    Py_ssize_t index = 0; /* across the runs */
    for (Py_ssize_t r = 0; r < n_runs; r++) {
        PyObject *name;
        records = run_of(PySequence_Fast_GET_ITEM(runs, r), &name);
        if (records == NULL)
            goto failed;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(records);
        PyObject **items = PySequence_Fast_ITEMS(records);
        Topic *topic = n ? find_topic(&topics, name, partitions, keyless) : NULL;
        if (n && topic == NULL)
            goto failed;
        for (Py_ssize_t i = 0; i < n; i++, index++) {
            if (pair_of(items[i], &key, &key_len, &value, &value_len) < 0)
                goto failed;
            if (HEADER_SIZE + frame_size(key_len, value_len, 0) > max_request) {
                /* No request can hold it (aiokafka's send() checks the size at offset 0, with the
                 * batch header): the whole output is refused, and what was built is dropped. */
                Py_SETREF(result, PyLong_FromSsize_t(index));
                goto done;
            }
            long partition = key == NULL ? topic->keyless
                                         : (long)((murmur2((const unsigned char *)key, key_len) & 0x7fffffffu) %
                                                  (unsigned long)topic->partitions);
            Group *group = &topic->groups[partition];
            if (group->bodies == NULL) {
                group->bodies = PyList_New(0);
                if (group->bodies == NULL)
                    goto failed;
                PyObject *where = Py_BuildValue("(Ol)", name, partition);
                if (where == NULL || PyDict_SetItem(result, where, group->bodies) < 0) {
                    Py_XDECREF(where);
                    Py_CLEAR(group->bodies);
                    goto failed;
                }
                Py_DECREF(where);
                Py_DECREF(group->bodies); /* the result holds it */
            }
            Py_ssize_t size = frame_size(key_len, value_len, group->count);
            /* Closed at batch_size or past it: the rule of aiokafka's compiled builder, the one its
             * producer uses (its pure-Python twin closes only past it). */
            if (group->count > 0 && group->len + size >= batch_size) {
                if (flush(group) < 0)
                    goto failed;
                size = frame_size(key_len, value_len, 0);
            }
            if (reserve(group, size, batch_size) < 0)
                goto failed;
            unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(group->batch) + group->len;
            p = put_varint(p, record_size(key_len, value_len, group->count));
            *p++ = 0;                        /* attributes */
            *p++ = 0;                        /* timestamp delta: every record stamped alike */
            p = put_varint(p, group->count); /* offset delta */
            p = put_varint(p, key_len);
            if (key_len > 0) {
                memcpy(p, key, (size_t)key_len);
                p += key_len;
            }
            p = put_varint(p, value_len);
            if (value_len > 0)
                memcpy(p, value, (size_t)value_len);
            p += value_len > 0 ? value_len : 0;
            *p = 0; /* header count */
            group->len += size;
            group->count++;
        }
        Py_CLEAR(records);
    }
    for (Py_ssize_t t = 0; t < topics.count; t++)
        for (long g = 0; g < topics.topics[t].partitions; g++)
            if (topics.topics[t].groups[g].count > 0 && flush(&topics.topics[t].groups[g]) < 0)
                goto failed;
    goto done;
failed:
    Py_CLEAR(result);
done:
    Py_XDECREF(records);
    topics_free(&topics);
    Py_DECREF(runs);
    return result;
}

/* ---- finish() ---- */

static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static PyObject *py_finish(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 7 || !PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "finish(batch: bytearray, count, timestamp_ms, attributes, producer_id, "
                                         "producer_epoch, base_sequence) takes 7 arguments");
        return NULL;
    }
    long count = PyLong_AsLong(args[1]);
    long long timestamp = PyLong_AsLongLong(args[2]);
    long attributes = PyLong_AsLong(args[3]);
    long long producer_id = PyLong_AsLongLong(args[4]);
    long epoch = PyLong_AsLong(args[5]);
    long sequence = PyLong_AsLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t size = PyByteArray_GET_SIZE(args[0]);
    if (count <= 0 || size <= HEADER_SIZE) {
        PyErr_SetString(PyExc_ValueError, "a record batch holds at least one record");
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(args[0]);
    put64(p, 0);                                  /* base offset: the broker's */
    put32(p + 8, (uint32_t)(size - 12));          /* length after this field */
    put32(p + 12, 0xffffffffu);                   /* partition leader epoch: none */
    p[16] = 2;                                    /* magic */
    p[21] = (unsigned char)(attributes >> 8);
    p[22] = (unsigned char)attributes;
    put32(p + 23, (uint32_t)(count - 1));         /* last offset delta */
    put64(p + 27, (uint64_t)timestamp);           /* first timestamp */
    put64(p + 35, (uint64_t)timestamp);           /* max timestamp */
    put64(p + 43, (uint64_t)producer_id);
    p[51] = (unsigned char)((uint16_t)epoch >> 8);
    p[52] = (unsigned char)epoch;
    put32(p + 53, (uint32_t)sequence);
    put32(p + 57, (uint32_t)count);
    uint32_t crc = crc32c(0, p + ATTRIBUTES_OFFSET, (size_t)(size - ATTRIBUTES_OFFSET));
    put32(p + CRC_OFFSET, crc);
    return PyLong_FromUnsignedLong(crc);
}

static PyObject *py_crc32c(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t crc = crc32c(0, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))py_encode, METH_FASTCALL,
     "encode(runs, partitions, keyless, batch_size, max_request_size) -> {(topic, partition): "
     "[(batch, count), ...]}, or the index of a record too large for any request"},
    {"finish", (PyCFunction)(void (*)(void))py_finish, METH_FASTCALL,
     "finish(batch, count, timestamp_ms, attributes, producer_id, producer_epoch, base_sequence) -> "
     "its CRC-32C: the batch header written into the room encode() left"},
    {"crc32c", py_crc32c, METH_O, "crc32c(data) -> the CRC-32C of data"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batches", NULL, 0, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__batches(void)
{
    crc_init();
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        crc32c = crc_sse42;
#endif
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "CRC32C", crc32c == crc_soft ? "table" : "sse4.2") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
