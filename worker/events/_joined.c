/* A keyword MO's change events and reply, joined in C: the twin of python_join() in
 * worker/events/joined.py, which is the reference (and the fallback when this was not built).
 *
 * join(changes, replies, change_head, reply_head, account, subaccount, message_id, address, sender,
 *      channel, received_at, topic, partition, offset, emitted, scopes, categories, reply_parties,
 *      text, reply_match) appends the same (key, value) records, byte for byte:
 *   - strings are written as orjson writes them: '"' and '\' escaped, \b \t \n \f \r, other
 *     bytes below 0x20 as \u00xx (lower-case hex); everything else as its UTF-8;
 *   - ids are blake2b with a 16-byte digest (RFC 7693, no key), as hex: hashlib's
 *     blake2b(digest_size=16).hexdigest() of "change\x1f<account>\x1f<message id>\x1f<key>" and
 *     of "reply\x1f<account>\x1f<message id>" (worker.events.outgoing.derive_id). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- blake2b (RFC 7693), unkeyed, 16-byte digest ---- */

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define G(a, b, c, d, x, y)                                                                        \
    do {                                                                                           \
        v[a] = v[a] + v[b] + (x);                                                                  \
        v[d] = ROTR64(v[d] ^ v[a], 32);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = ROTR64(v[b] ^ v[c], 24);                                                            \
        v[a] = v[a] + v[b] + (y);                                                                  \
        v[d] = ROTR64(v[d] ^ v[a], 16);                                                            \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = ROTR64(v[b] ^ v[c], 63);                                                            \
    } while (0)

typedef struct {
    uint64_t h[8];
    uint64_t t; /* bytes compressed so far (messages here are far below 2^64 bytes) */
    uint8_t block[128];
    size_t filled;
} Blake2b;

static void compress(Blake2b *s, int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= s->t;
    if (last)
        v[14] = ~v[14];
    for (int i = 0; i < 16; i++) {
        const uint8_t *p = s->block + 8 * i;
        m[i] = (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
               ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
    }
    for (int r = 0; r < 12; r++) {
        const uint8_t *z = SIGMA[r];
        G(0, 4, 8, 12, m[z[0]], m[z[1]]);
        G(1, 5, 9, 13, m[z[2]], m[z[3]]);
        G(2, 6, 10, 14, m[z[4]], m[z[5]]);
        G(3, 7, 11, 15, m[z[6]], m[z[7]]);
        G(0, 5, 10, 15, m[z[8]], m[z[9]]);
        G(1, 6, 11, 12, m[z[10]], m[z[11]]);
        G(2, 7, 8, 13, m[z[12]], m[z[13]]);
        G(3, 4, 9, 14, m[z[14]], m[z[15]]);
    }
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void b2_init(Blake2b *s)
{
    memcpy(s->h, IV, sizeof IV);
    s->h[0] ^= 0x01010000ULL ^ 16; /* fanout 1, depth 1, no key, 16-byte digest */
    s->t = 0;
    s->filled = 0;
}

static void b2_update(Blake2b *s, const uint8_t *data, size_t n)
{
    while (n > 0) {
        if (s->filled == 128) { /* a full block is compressed only once more input follows */
            s->t += 128;
            compress(s, 0);
            s->filled = 0;
        }
        size_t take = 128 - s->filled;
        if (take > n)
            take = n;
        memcpy(s->block + s->filled, data, take);
        s->filled += take;
        data += take;
        n -= take;
    }
}

/* The 16-byte digest as 32 lower-case hex digits at out. */
static void b2_hex(Blake2b *s, char *out)
{
    static const char HEX[] = "0123456789abcdef";
    s->t += s->filled;
    memset(s->block + s->filled, 0, 128 - s->filled);
    compress(s, 1);
    for (int i = 0; i < 16; i++) {
        uint8_t byte = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
        out[2 * i] = HEX[byte >> 4];
        out[2 * i + 1] = HEX[byte & 15];
    }
}

/* ---- JSON pieces, as orjson writes them ---- */

/* The escaped length of a JSON string's UTF-8 bytes, quotes included. */
static Py_ssize_t quoted_size(const uint8_t *s, Py_ssize_t n)
{
    Py_ssize_t size = n + 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r')
            size += 1;
        else if (c < 0x20)
            size += 5;
    }
    return size;
}

/* A JSON string's body (no quotes) as orjson writes it. */
static char *write_escaped(char *out, const uint8_t *s, Py_ssize_t n)
{
    static const char HEX[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\t': *out++ = 't'; break;
        case '\n': *out++ = 'n'; break;
        case '\f': *out++ = 'f'; break;
        case '\r': *out++ = 'r'; break;
        default:
            memcpy(out, "u00", 3);
            out[3] = HEX[c >> 4];
            out[4] = HEX[c & 15];
            out += 5;
        }
    }
    return out;
}

static char *write_quoted(char *out, const uint8_t *s, Py_ssize_t n)
{
    *out++ = '"';
    out = write_escaped(out, s, n);
    *out++ = '"';
    return out;
}

typedef struct {
    const uint8_t *s;
    Py_ssize_t n;
} Span;

static int utf8_of(PyObject *o, Span *span, const char *what)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be str", what);
        return -1;
    }
    span->s = (const uint8_t *)PyUnicode_AsUTF8AndSize(o, &span->n);
    return span->s == NULL ? -1 : 0;
}

static int bytes_of(PyObject *o, Span *span, const char *what)
{
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes", what);
        return -1;
    }
    span->s = (const uint8_t *)PyBytes_AS_STRING(o);
    span->n = PyBytes_GET_SIZE(o);
    return 0;
}

static char *put(char *out, Span span)
{
    memcpy(out, span.s, (size_t)span.n);
    return out + span.n;
}

#define LIT(out, text) (memcpy((out), (text), sizeof(text) - 1), (out) + sizeof(text) - 1)

/* Two bytes objects from the tuple pairs of scopes and categories. */
static int pair_of(PyObject *pair, Span *first, Span *second)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "scopes and categories hold (bytes, bytes) pairs");
        return -1;
    }
    if (bytes_of(PyTuple_GET_ITEM(pair, 0), first, "a scope or category part") < 0)
        return -1;
    return bytes_of(PyTuple_GET_ITEM(pair, 1), second, "a scope or category part");
}

/* ---- a plan's pieces that hold the MO's own account, subaccount, sender or channel ----
 *
 * A shape plan (worker.classify.decide._shape) is made once per match and rule set, not per MO
 * context: where its pieces hold the MO's account, subaccount, sender or channel they hold a
 * marker instead, 0x01 and one of "asnc", which the join fills with the value as JSON (a null
 * subaccount is null). orjson escapes every byte below 0x20, so no piece of JSON holds a 0x01
 * of its own; a 0x01 followed by any other byte is copied as it is. */

enum { FILL_ACCOUNT, FILL_SUB, FILL_SENDER, FILL_CHANNEL, NFILLS };

static int fill_index(uint8_t c)
{
    switch (c) {
    case 'a': return FILL_ACCOUNT;
    case 's': return FILL_SUB;
    case 'n': return FILL_SENDER;
    case 'c': return FILL_CHANNEL;
    default: return -1;
    }
}

/* A shape plan's reply text, given as (text,), holds markers for the sender and the account its
 * template names only: 0x01 and "n" or "a", written escaped inside the text's JSON string. Only
 * there: a text given as a str may hold any character, a 0x01 of a sender's own too. */
static int text_fill_index(uint8_t c)
{
    return c == 'a' ? FILL_ACCOUNT : c == 'n' ? FILL_SENDER : -1;
}

/* The next marker in [p, end), or NULL; *fill its fill. A lone 0x01 is no marker: passed over. */
static const uint8_t *next_mark(const uint8_t *p, const uint8_t *end, int in_text, int *fill)
{
    const uint8_t *mark;
    while (p < end && (mark = memchr(p, 0x01, (size_t)(end - p))) != NULL) {
        *fill = mark + 1 == end ? -1 : in_text ? text_fill_index(mark[1]) : fill_index(mark[1]);
        if (*fill >= 0)
            return mark;
        p = mark + 1;
    }
    return NULL;
}

/* The size of piece once filled: base (its own size, or a text's quoted size) and, per marker, the
 * fill's size for the marker's: 2 bytes in a piece; in a text 7 escaped ("\u0001" and the
 * letter), and the fill written without its quotes. */
static Py_ssize_t filled_size(Span piece, Py_ssize_t base, const Span *fills, int in_text)
{
    const uint8_t *p = piece.s, *end = piece.s + piece.n, *mark;
    int i;
    while ((mark = next_mark(p, end, in_text, &i)) != NULL) {
        base += fills[i].n - (in_text ? 7 + 2 : 2);
        p = mark + 2;
    }
    return base;
}

static char *put_filled(char *out, Span piece, const Span *fills)
{
    const uint8_t *p = piece.s, *end = piece.s + piece.n, *mark;
    int i;
    while ((mark = next_mark(p, end, 0, &i)) != NULL) {
        memcpy(out, p, (size_t)(mark - p));
        out = put(out + (mark - p), fills[i]);
        p = mark + 2;
    }
    memcpy(out, p, (size_t)(end - p));
    return out + (end - p);
}

static char *write_quoted_filled(char *out, Span text, const Span *raw)
{
    const uint8_t *p = text.s, *end = text.s + text.n, *mark;
    int i;
    *out++ = '"';
    while ((mark = next_mark(p, end, 1, &i)) != NULL) {
        out = write_escaped(write_escaped(out, p, mark - p), raw[i].s, raw[i].n);
        p = mark + 2;
    }
    out = write_escaped(out, p, end - p);
    *out++ = '"';
    return out;
}

/* A decimal integer, as JSON and sprintf("%lld") write it; sprintf was 0.3% of a STOP storm's
 * samples (perf) for the two numbers of each keyword MO's source. */
static char *write_int(char *out, long long value)
{
    char digits[20];
    int n = 0;
    unsigned long long rest = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[n++] = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    if (value < 0)
        *out++ = '-';
    while (n)
        *out++ = digits[--n];
    return out;
}

/* Appends (key, value) to list, taking both references. The pair holds two bytes objects, which
 * can make no cycle: it is untracked at once, so the collector's young-generation passes do not
 * walk a STOP storm's hundreds of thousands of them until it finds that for itself. Small but
 * free: the batch step on 200,000 storm MOs in process (gc.callbacks) spent 6-7 ms collecting
 * per run before, 2-3 ms after, of about 1.7 s. */
static int append_pair(PyObject *list, PyObject *key, PyObject *value)
{
    if (key == NULL || value == NULL) {
        Py_XDECREF(key);
        Py_XDECREF(value);
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    if (pair == NULL)
        return -1;
    PyObject_GC_UnTrack(pair);
    int failed = PyList_Append(list, pair);
    Py_DECREF(pair);
    return failed;
}

enum { CHANGES, REPLIES, CHANGE_HEAD, REPLY_HEAD, ACCOUNT, SUBACCOUNT, MESSAGE_ID, ADDRESS, SENDER, CHANNEL,
       RECEIVED_AT, TOPIC, PARTITION, OFFSET, EMITTED, SCOPES, CATEGORIES, REPLY_PARTIES, TEXT, REPLY_MATCH,
       NARGS };

static PyObject *join(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != NARGS) {
        PyErr_Format(PyExc_TypeError, "join() takes %d arguments (%zd given)", NARGS, nargs);
        return NULL;
    }
    PyObject *changes = args[CHANGES], *replies = args[REPLIES];
    PyObject *scopes = args[SCOPES], *categories = args[CATEGORIES], *parties = args[REPLY_PARTIES];
    if (!PyList_Check(changes) || !PyList_Check(replies) || !PyTuple_Check(scopes) || !PyTuple_Check(categories)) {
        PyErr_SetString(PyExc_TypeError, "join(): changes and replies are lists, scopes and categories tuples");
        return NULL;
    }
    Span change_head, reply_head, account, message_id, address, sender, channel, received, topic, emitted;
    Span subaccount = {(const uint8_t *)"", 0};
    if ((args[SUBACCOUNT] != Py_None && utf8_of(args[SUBACCOUNT], &subaccount, "subaccount") < 0) ||
        utf8_of(args[CHANNEL], &channel, "channel") < 0 ||
        bytes_of(args[CHANGE_HEAD], &change_head, "change_head") < 0 ||
        bytes_of(args[REPLY_HEAD], &reply_head, "reply_head") < 0 ||
        utf8_of(args[ACCOUNT], &account, "account") < 0 ||
        utf8_of(args[MESSAGE_ID], &message_id, "message_id") < 0 ||
        utf8_of(args[ADDRESS], &address, "address") < 0 || utf8_of(args[SENDER], &sender, "sender") < 0 ||
        utf8_of(args[RECEIVED_AT], &received, "received_at") < 0 || utf8_of(args[TOPIC], &topic, "topic") < 0 ||
        bytes_of(args[EMITTED], &emitted, "emitted") < 0)
        return NULL;
    long long partition = PyLong_AsLongLong(args[PARTITION]);
    long long offset = PyLong_AsLongLong(args[OFFSET]);
    if ((partition == -1 || offset == -1) && PyErr_Occurred())
        return NULL;

    /* The address as JSON and the shared tail of every document: its source and times. */
    char quoted_buf[256], *quoted_heap = NULL;
    Py_ssize_t quoted_n = quoted_size(address.s, address.n);
    char *quoted_s = quoted_n <= (Py_ssize_t)sizeof quoted_buf ? quoted_buf : (quoted_heap = PyMem_Malloc(quoted_n));
    char rest_buf[512], *rest_heap = NULL;
    Py_ssize_t rest_cap = 160 + /* the literals and two 20-digit numbers */ quoted_size(topic.s, topic.n) + quoted_size(message_id.s, message_id.n) +
                          quoted_size(received.s, received.n) + emitted.n;
    char *rest_s = rest_cap <= (Py_ssize_t)sizeof rest_buf ? rest_buf : (rest_heap = PyMem_Malloc(rest_cap));
    /* What a shape plan's markers stand for: the account, subaccount, sender and channel as JSON. */
    int no_sub = args[SUBACCOUNT] == Py_None;
    Py_ssize_t fills_n = quoted_size(account.s, account.n) + (no_sub ? 4 : quoted_size(subaccount.s, subaccount.n)) +
                         quoted_size(sender.s, sender.n) + quoted_size(channel.s, channel.n);
    char fills_buf[512], *fills_heap = NULL;
    char *fills_s = fills_n <= (Py_ssize_t)sizeof fills_buf ? fills_buf : (fills_heap = PyMem_Malloc(fills_n));
    PyObject *result = NULL;
    if (quoted_s == NULL || rest_s == NULL || fills_s == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Span fills[NFILLS];
    char *f = fills_s;
    fills[FILL_ACCOUNT] = (Span){(const uint8_t *)f, 0};
    f = write_quoted(f, account.s, account.n);
    fills[FILL_ACCOUNT].n = f - (const char *)fills[FILL_ACCOUNT].s;
    fills[FILL_SUB] = (Span){(const uint8_t *)f, 0};
    f = no_sub ? LIT(f, "null") : write_quoted(f, subaccount.s, subaccount.n);
    fills[FILL_SUB].n = f - (const char *)fills[FILL_SUB].s;
    fills[FILL_SENDER] = (Span){(const uint8_t *)f, 0};
    f = write_quoted(f, sender.s, sender.n);
    fills[FILL_SENDER].n = f - (const char *)fills[FILL_SENDER].s;
    fills[FILL_CHANNEL] = (Span){(const uint8_t *)f, 0};
    f = write_quoted(f, channel.s, channel.n);
    fills[FILL_CHANNEL].n = f - (const char *)fills[FILL_CHANNEL].s;
    Span raw[NFILLS] = {account, subaccount, sender, channel}; /* a reply text's fills, escaped in it */
    write_quoted(quoted_s, address.s, address.n);
    Span quoted = {(const uint8_t *)quoted_s, quoted_n};
    char *w = LIT(rest_s, "{\"topic\":");
    w = write_quoted(w, topic.s, topic.n);
    w = LIT(w, ",\"partition\":");
    w = write_int(w, partition);
    w = LIT(w, ",\"offset\":");
    w = write_int(w, offset);
    w = LIT(w, ",\"message_id\":");
    w = write_quoted(w, message_id.s, message_id.n);
    w = LIT(w, "},\"occurred_at\":");
    w = write_quoted(w, received.s, received.n);
    w = LIT(w, ",\"emitted_at\":");
    w = put(w, emitted);
    *w++ = '}';
    Span rest = {(const uint8_t *)rest_s, w - rest_s};

    Py_ssize_t nscopes = PyTuple_GET_SIZE(scopes);
    for (Py_ssize_t c = 0; c < PyTuple_GET_SIZE(categories); c++) {
        Span tail, middle;
        if (pair_of(PyTuple_GET_ITEM(categories, c), &tail, &middle) < 0)
            goto done;
        for (Py_ssize_t i = 0; i < nscopes; i++) {
            Span key_head, event_head;
            if (pair_of(PyTuple_GET_ITEM(scopes, i), &key_head, &event_head) < 0)
                goto done;
            PyObject *key = PyBytes_FromStringAndSize(NULL, filled_size(key_head, key_head.n, fills, 0) + quoted.n + tail.n);
            if (key == NULL)
                goto done;
            put(put(put_filled(PyBytes_AS_STRING(key), key_head, fills), quoted), tail);
            Blake2b id;
            b2_init(&id);
            b2_update(&id, (const uint8_t *)"change\x1f", 7);
            b2_update(&id, account.s, (size_t)account.n);
            b2_update(&id, (const uint8_t *)"\x1f", 1);
            b2_update(&id, message_id.s, (size_t)message_id.n);
            b2_update(&id, (const uint8_t *)"\x1f", 1);
            b2_update(&id, (const uint8_t *)PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
            PyObject *value = PyBytes_FromStringAndSize(
                NULL, change_head.n + 32 + filled_size(event_head, event_head.n, fills, 0) + quoted.n + middle.n + rest.n);
            if (value != NULL) {
                char *v = put(PyBytes_AS_STRING(value), change_head);
                b2_hex(&id, v);
                put(put(put(put_filled(v + 32, event_head, fills), quoted), middle), rest);
            }
            if (append_pair(changes, key, value) < 0)
                goto done;
        }
    }
    if (parties != Py_None) {
        Span reply_parties, text, reply_match;
        /* A shape plan's text comes as (text,): its markers are filled; a str is written as it is. */
        PyObject *text_arg = args[TEXT];
        int marked = PyTuple_Check(text_arg) && PyTuple_GET_SIZE(text_arg) == 1;
        if (bytes_of(parties, &reply_parties, "reply_parties") < 0 ||
            utf8_of(marked ? PyTuple_GET_ITEM(text_arg, 0) : text_arg, &text, "text") < 0 ||
            bytes_of(args[REPLY_MATCH], &reply_match, "reply_match") < 0)
            goto done;
        Blake2b id;
        b2_init(&id);
        b2_update(&id, (const uint8_t *)"reply\x1f", 6);
        b2_update(&id, account.s, (size_t)account.n);
        b2_update(&id, (const uint8_t *)"\x1f", 1);
        b2_update(&id, message_id.s, (size_t)message_id.n);
        Py_ssize_t text_n = quoted_size(text.s, text.n);
        Py_ssize_t size = reply_head.n + 32 + filled_size(reply_parties, reply_parties.n, fills, 0) + quoted.n + 8 +
                          fills[FILL_SENDER].n + 8 + (marked ? filled_size(text, text_n, fills, 1) : text_n) +
                          reply_match.n +
                          quoted_size(message_id.s, message_id.n) + 10 + rest.n;
        PyObject *value = PyBytes_FromStringAndSize(NULL, size);
        if (value != NULL) {
            char *v = put(PyBytes_AS_STRING(value), reply_head);
            b2_hex(&id, v);
            v = put(put_filled(v + 32, reply_parties, fills), quoted);
            v = LIT(v, ",\"from\":");
            v = put(v, fills[FILL_SENDER]); /* the sender as JSON, written once above */
            v = LIT(v, ",\"text\":");
            v = marked ? write_quoted_filled(v, text, raw) : write_quoted(v, text.s, text.n);
            v = put(v, reply_match);
            v = write_quoted(v, message_id.s, message_id.n);
            v = LIT(v, ",\"source\":");
            put(v, rest);
        }
        PyObject *key = PyBytes_FromStringAndSize((const char *)address.s, address.n);
        if (append_pair(replies, key, value) < 0)
            goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(quoted_heap);
    PyMem_Free(rest_heap);
    PyMem_Free(fills_heap);
    return result;
}

/* ---- join_planned: the whole of a keyword MO's decide_encoded() when it needs no Python ---- */

static PyObject *K_ACCOUNT, *K_SUB, *K_MESSAGE, *K_TO, *K_FROM, *K_CHANNEL;

/* Whether s is "+" and 8 to 15 ASCII digits: worker.events.address.match_e164. */
static int is_e164(const uint8_t *s, Py_ssize_t n)
{
    if (n < 9 || n > 16 || s[0] != '+')
        return 0;
    for (Py_ssize_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* doc[key] as a str, NULL without an error when it is absent or not a str. */
static PyObject *text_item(PyObject *doc, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(doc, key);
    return value != NULL && PyUnicode_Check(value) ? value : NULL;
}

/* canonical_instant() of worker/events/inbound.py for the forms it takes without parsing: a
 * validated "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DDTHH:MM:SS.fZ" (1 to 6 digits) as
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ" in out (27 bytes); 0 for any other form (Python parses it). */
static int canonical_stamp(const uint8_t *s, Py_ssize_t n, char *out)
{
    if (n < 20 || n > 27 || s[n - 1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return 0;
    if (n == 20) {
        memcpy(out, s, 19);
        memcpy(out + 19, ".000000Z", 8);
        return 1;
    }
    if (n < 22 || s[19] != '.')
        return 0;
    memcpy(out, s, (size_t)(n - 1)); /* the digits of the fraction, then padded with zeros */
    memset(out + n - 1, '0', (size_t)(26 - (n - 1)));
    out[26] = 'Z';
    return 1;
}

enum { P_CHANGES, P_REPLIES, P_CHANGE_HEAD, P_REPLY_HEAD, P_DOC, P_RECEIVED_AT, P_MATCH, P_PLANS, P_TOPIC,
       P_PARTITION, P_OFFSET, P_EMITTED, P_PHONE_CHANNELS, P_NARGS };

static PyObject *join_planned(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != P_NARGS) {
        PyErr_Format(PyExc_TypeError, "join_planned() takes %d arguments (%zd given)", P_NARGS, nargs);
        return NULL;
    }
    PyObject *doc = args[P_DOC], *plans = args[P_PLANS];
    if (!PyDict_Check(doc) || !PyDict_Check(plans) || !PyAnySet_Check(args[P_PHONE_CHANNELS])) {
        PyErr_SetString(PyExc_TypeError, "join_planned(): doc and plans are dicts, phone_channels a set");
        return NULL;
    }
    PyObject *account = text_item(doc, K_ACCOUNT), *message_id = text_item(doc, K_MESSAGE);
    PyObject *sender = text_item(doc, K_TO), *address = text_item(doc, K_FROM), *channel = text_item(doc, K_CHANNEL);
    PyObject *sub = PyDict_GetItemWithError(doc, K_SUB);
    if (PyErr_Occurred())
        return NULL;
    if (account == NULL || message_id == NULL || sender == NULL || address == NULL || channel == NULL)
        Py_RETURN_FALSE; /* not the common shape: Python decides */
    if (sub == NULL)
        sub = Py_None;
    /* already_canonical(address, sender, channel), and the received time in a form read as is */
    Span a, snd, rcv;
    if (utf8_of(address, &a, "address") < 0 || utf8_of(sender, &snd, "sender") < 0 ||
        utf8_of(args[P_RECEIVED_AT], &rcv, "received_at") < 0)
        return NULL;
    char stamp[27];
    if (!canonical_stamp(rcv.s, rcv.n, stamp))
        Py_RETURN_FALSE; /* an offset, a lower-case t or z...: parsed in Python */
    int phone = PySet_Contains(args[P_PHONE_CHANNELS], channel);
    if (phone < 0)
        return NULL;
    if (!phone || !is_e164(a.s, a.n) || memchr(snd.s, ':', (size_t)snd.n) != NULL ||
        (snd.n > 0 && snd.s[0] == '+' && !is_e164(snd.s, snd.n)))
        Py_RETURN_FALSE; /* canonicalized in Python */
    if (sub != Py_None && !PyUnicode_Check(sub))
        Py_RETURN_FALSE;
    PyObject *id = PyLong_FromVoidPtr(args[P_MATCH]); /* id(match) */
    if (id == NULL)
        return NULL;
    /* The match's shape plan, (id(match), no subaccount): its pieces hold markers for the MO's
     * own values. None: its reply's template holds a 0x01 of its own, so its plans are per
     * context, as Python files them. */
    PyObject *key = PyTuple_Pack(2, id, sub == Py_None ? Py_True : Py_False);
    PyObject *plan = key == NULL ? NULL : PyDict_GetItemWithError(plans, key);
    Py_XDECREF(key);
    if (plan == Py_None) {
        key = PyTuple_Pack(5, id, account, sub, sender, channel);
        plan = key == NULL ? NULL : PyDict_GetItemWithError(plans, key);
        Py_XDECREF(key);
    }
    Py_DECREF(id);
    if (plan == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_FALSE; /* no plan yet: Python makes it */
    }
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 6 || PyTuple_GET_ITEM(plan, 0) != args[P_MATCH]) {
        PyErr_SetString(PyExc_TypeError, "join_planned(): a plan is (match, scopes, categories, parties, text, match part)");
        return NULL;
    }
    if (PyTuple_GET_ITEM(plan, 1) == Py_None)
        Py_RETURN_TRUE; /* nothing to write: help without a reply */
    PyObject *received = PyUnicode_FromStringAndSize(stamp, 27);
    if (received == NULL)
        return NULL;
    PyObject *joined[NARGS] = {
        args[P_CHANGES], args[P_REPLIES], args[P_CHANGE_HEAD], args[P_REPLY_HEAD], account, sub, message_id, address,
        sender, channel, received, args[P_TOPIC], args[P_PARTITION], args[P_OFFSET], args[P_EMITTED],
        PyTuple_GET_ITEM(plan, 1), PyTuple_GET_ITEM(plan, 2), PyTuple_GET_ITEM(plan, 3), PyTuple_GET_ITEM(plan, 4),
        PyTuple_GET_ITEM(plan, 5),
    };
    PyObject *done = join(module, joined, NARGS);
    Py_DECREF(received);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"join_planned", (PyCFunction)(void (*)(void))join_planned, METH_FASTCALL,
     "join_planned(changes, replies, change_head, reply_head, doc, received_at, match, plans, topic, "
     "partition, offset, emitted, phone_channels) -> bool: decide_encoded() of a keyword MO whose parties "
     "are canonical, whose received_at (as validated, not yet canonical) is in a common UTC form and whose "
     "plan is in plans; False (nothing written) when it is not so."},
    {"join", (PyCFunction)(void (*)(void))join, METH_FASTCALL,
     "join(changes, replies, change_head, reply_head, account, subaccount, message_id, address, sender, "
     "channel, received_at, topic, partition, offset, emitted, scopes, categories, reply_parties, text, "
     "reply_match): "
     "python_join() of worker/events/joined.py, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_joined", NULL, -1, methods};

PyMODINIT_FUNC PyInit__joined(void)
{
    K_ACCOUNT = PyUnicode_InternFromString("account_id");
    K_SUB = PyUnicode_InternFromString("subaccount_id");
    K_MESSAGE = PyUnicode_InternFromString("message_id");
    K_TO = PyUnicode_InternFromString("to");
    K_FROM = PyUnicode_InternFromString("from");
    K_CHANNEL = PyUnicode_InternFromString("channel");
    if (!K_ACCOUNT || !K_SUB || !K_MESSAGE || !K_TO || !K_FROM || !K_CHANNEL)
        return NULL;
    return PyModule_Create(&module);
}
