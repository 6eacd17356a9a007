/* One confirmation per opt-out, the batch step's part in C: the twin of
 * RecentChanges.confirm_in_python() in worker/classify/confirmations.py, which is the reference
 * (and the fallback when this was not built). tests/unit/classify/test_confirm_c.py runs both on
 * random sequences of batches, tail records and copies, and compares every answer and the map.
 *
 * change_facts(value, head): the facts of a change event the classifier encoded itself, read at
 *   fixed positions (layout_facts() in confirmations.py is its reference).
 * confirm(entries, now, window, changes, first, replies, reply_mark, opt_out, head, known, parse,
 *   decide): RecentChanges.confirm(). The map's values are tuples (last, before, timestamp); the
 *   facts are compared as Python compares them (PyObject_RichCompareBool). What C does not read
 *   is handed to the Python it came from: a stored tail record (bytes) to known (the map's
 *   cache), an own event not in the layout to parse (known_change), a time not in the canonical
 *   form to decide (decide_repeat). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char F_OCCURRED[] = ",\"occurred_at\":\"";
static const char F_EMITTED[] = "\",\"emitted_at\":\"";
static const char F_ACTION[] = "\",\"action\":\"";
#define SLEN(s) (sizeof(s) - 1)
#define TIME_LEN 27
#define TAIL_LEN (SLEN(F_OCCURRED) + TIME_LEN + SLEN(F_EMITTED) + TIME_LEN + 2)
#define MOST_CHANGES 16 /* a keyword MO's changes kept on the stack (a START lifts up to a dozen); more on the heap */

static int canonical_time(const char *t)
{
    static const char FORM[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    for (int i = 0; i < TIME_LEN; i++) {
        if (FORM[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != FORM[i])
            return 0;
    }
    return 1;
}

/* ``tuple`` out of the cyclic collector's sight when nothing in it can be part of a cycle, as the
 * collector itself does for such tuples, only later: at its next pass over their generation. The
 * map keeps a STOP storm's 100,000 identities as tuples of facts (strings, numbers) for two
 * windows, and until they were untracked every collection walked them: in a replay of a storm's
 * confirm() calls the collector was about a sixth of the time (perf). Takes and returns a
 * reference (NULL passes through). */
static PyObject *untracked(PyObject *tuple)
{
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (PyObject_IS_GC(item) && PyObject_GC_IsTracked(item))
            return tuple;
    }
    PyObject_GC_UnTrack(tuple);
    return tuple;
}

/* The layout: head (the JSON up to the event id), 32 id characters, "\",\"action\":\"" then
 * block" or unblock", and at the end ,"occurred_at":"<27>","emitted_at":"<27>"} with both times
 * canonical (digits checked). A new reference: the facts, Py_None when not in the layout, NULL on
 * error. */
static PyObject *facts_of(PyObject *value, PyObject *head)
{
    const char *v = PyBytes_AS_STRING(value), *hd = PyBytes_AS_STRING(head);
    Py_ssize_t n = PyBytes_GET_SIZE(value), h = PyBytes_GET_SIZE(head);
    Py_ssize_t id_end = h + 32, action = id_end + (Py_ssize_t)SLEN(F_ACTION), end = n - (Py_ssize_t)TAIL_LEN;
    if (end < action + 8 || memcmp(v, hd, (size_t)h) != 0 || memcmp(v + id_end, F_ACTION, SLEN(F_ACTION)) != 0 ||
        memcmp(v + end, F_OCCURRED, SLEN(F_OCCURRED)) != 0 ||
        memcmp(v + end + SLEN(F_OCCURRED) + TIME_LEN, F_EMITTED, SLEN(F_EMITTED)) != 0 || v[n - 2] != '"' || v[n - 1] != '}')
        Py_RETURN_NONE;
    const char *occurred = v + end + SLEN(F_OCCURRED);
    if (!canonical_time(occurred) || !canonical_time(occurred + TIME_LEN + SLEN(F_EMITTED)))
        Py_RETURN_NONE;
    for (Py_ssize_t i = h; i < id_end; i++) { /* an id in plain printable ASCII: no escape to undo */
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\')
            Py_RETURN_NONE;
    }
    int blocked;
    if (memcmp(v + action, "block\"", 6) == 0)
        blocked = 1;
    else if (memcmp(v + action, "unblock\"", 8) == 0)
        blocked = 0;
    else
        Py_RETURN_NONE;
    /* ASCII checked above: the strings are made without decoding, the tuple without a format */
    PyObject *at = PyUnicode_New(TIME_LEN, 127), *id = PyUnicode_New(32, 127), *facts = PyTuple_New(4);
    if (at == NULL || id == NULL || facts == NULL) {
        Py_XDECREF(at);
        Py_XDECREF(id);
        Py_XDECREF(facts);
        return NULL;
    }
    memcpy(PyUnicode_DATA(at), occurred, TIME_LEN);
    memcpy(PyUnicode_DATA(id), v + h, 32);
    PyTuple_SET_ITEM(facts, 0, at);
    PyTuple_SET_ITEM(facts, 1, PyLong_FromLong(blocked)); /* a small int: cached, never NULL */
    PyTuple_SET_ITEM(facts, 2, id);
    PyTuple_SET_ITEM(facts, 3, Py_NewRef(blocked && v[end - 1] == '}' ? Py_True : Py_False));
    return untracked(facts);
}

static PyObject *change_facts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "change_facts(value: bytes, head: bytes)");
        return NULL;
    }
    return facts_of(args[0], args[1]);
}

typedef struct {
    PyObject *entries, *now, *head, *known, *parse, *decide;
    long long window;
} Memory;

/* own_change(): the facts of an own event, parsed when not in the layout. New reference. */
static PyObject *own_change(Memory *m, PyObject *value)
{
    if (!PyBytes_Check(value))
        return PyObject_CallOneArg(m->parse, value);
    PyObject *facts = facts_of(value, m->head);
    if (facts != Py_None)
        return facts;
    Py_DECREF(facts);
    return PyObject_CallOneArg(m->parse, value);
}

/* RecentChanges._known(): facts as they are, a tail record through the map's cache. New reference. */
static PyObject *known(Memory *m, PyObject *stored)
{
    if (PyTuple_CheckExact(stored))
        return Py_NewRef(stored);
    return PyObject_CallOneArg(m->known, stored);
}

/* RecentChanges._same(). -1 on error. */
static int same(Memory *m, PyObject *change, PyObject *stored)
{
    if (stored == Py_None)
        return 0;
    if (Py_TYPE(change) == Py_TYPE(stored))
        return PyObject_RichCompareBool(change, stored, Py_EQ);
    PyObject *a = known(m, change);
    if (a == NULL)
        return -1;
    PyObject *b = known(m, stored);
    if (b == NULL) {
        Py_DECREF(a);
        return -1;
    }
    int equal = PyObject_RichCompareBool(a, b, Py_EQ);
    Py_DECREF(a);
    Py_DECREF(b);
    return equal;
}

static int store(Memory *m, PyObject *key, PyObject *last, PyObject *before)
{
    PyObject *entry = untracked(PyTuple_Pack(3, last, before, m->now));
    if (entry == NULL)
        return -1;
    int done = PyDict_SetItem(m->entries, key, entry);
    Py_DECREF(entry);
    return done;
}

static PyObject *stored_entry(Memory *m, PyObject *key)
{
    PyObject *entry = PyDict_GetItemWithError(m->entries, key);
    if (entry == NULL)
        return NULL;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
        PyErr_SetString(PyExc_TypeError, "the map's entries are (last, before, timestamp) tuples");
        return NULL;
    }
    return Py_NewRef(entry);
}

/* RecentChanges._put(): the identity's latest, unless it is one of the two kept already. */
static int put(Memory *m, PyObject *key, PyObject *change)
{
    PyObject *before = stored_entry(m, key);
    if (before == NULL)
        return PyErr_Occurred() ? -1 : store(m, key, change, Py_None);
    PyObject *last = PyTuple_GET_ITEM(before, 0);
    int kept = same(m, change, last);
    if (kept == 0)
        kept = same(m, change, PyTuple_GET_ITEM(before, 1));
    int done = kept < 0 ? -1 : kept ? 0 : store(m, key, change, last);
    Py_DECREF(before);
    return done;
}

static int digits(const char *s, int n)
{
    int value = 0;
    for (int i = 0; i < n; i++)
        value = value * 10 + (s[i] - '0');
    return value;
}

/* A canonical time (checked: the form, and a real date and time) as microseconds since the
 * epoch; 0 and *ok = 0 otherwise (micros_of() decides, or raises, as it does). */
static long long canonical_micros(PyObject *text, int *ok)
{
    *ok = 0;
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text) || PyUnicode_GET_LENGTH(text) != TIME_LEN)
        return 0;
    const char *t = (const char *)PyUnicode_DATA(text);
    if (!canonical_time(t))
        return 0;
    int y = digits(t, 4), mo = digits(t + 5, 2), d = digits(t + 8, 2);
    int h = digits(t + 11, 2), mi = digits(t + 14, 2), s = digits(t + 17, 2), us = digits(t + 20, 6);
    static const int DAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DAYS[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || s > 59)
        return 0;
    /* days from civil (H. Hinnant): proleptic Gregorian, 1970-01-01 is day 0 */
    int yy = mo <= 2 ? y - 1 : y;
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    *ok = 1;
    return ((days * 24 + h) * 60 + mi) * 60 * 1000000LL + s * 1000000LL + us;
}

static int is_facts(PyObject *o)
{
    return PyTuple_CheckExact(o) && PyTuple_GET_SIZE(o) == 4;
}

/* decide_repeat() on the one or two known changes of the identity. -1 on error. */
static int decide_repeat(Memory *m, PyObject *own, PyObject **others, int count)
{
    PyObject *before = NULL;
    for (int i = 0; i < count; i++) {
        PyObject *change = others[i];
        int equal = PyObject_RichCompareBool(change, own, Py_EQ);
        if (equal < 0)
            return -1;
        if (equal)
            continue;
        int newer = PyObject_RichCompareBool(change, own, Py_GT);
        if (newer != 0)
            return newer;
        int later = before == NULL ? 1 : PyObject_RichCompareBool(change, before, Py_GT);
        if (later < 0)
            return -1;
        if (later)
            before = change;
    }
    if (before == NULL)
        return 0;
    if (!is_facts(before) || !is_facts(own))
        goto in_python;
    int block = PyObject_IsTrue(PyTuple_GET_ITEM(before, 1));
    int by_mo = block > 0 ? PyObject_IsTrue(PyTuple_GET_ITEM(before, 3)) : block;
    if (by_mo <= 0)
        return by_mo;
    int ok_own, ok_before;
    long long at = canonical_micros(PyTuple_GET_ITEM(own, 0), &ok_own);
    long long then = canonical_micros(PyTuple_GET_ITEM(before, 0), &ok_before);
    if (ok_own && ok_before)
        return at - then <= m->window;
in_python:;
    PyObject *list = PyList_New(count);
    if (list == NULL)
        return -1;
    for (int i = 0; i < count; i++)
        PyList_SET_ITEM(list, i, Py_NewRef(others[i]));
    PyObject *window = PyLong_FromLongLong(m->window);
    PyObject *answer = window == NULL ? NULL : PyObject_CallFunctionObjArgs(m->decide, own, list, window, NULL);
    Py_DECREF(list);
    Py_XDECREF(window);
    if (answer == NULL)
        return -1;
    int repeated = PyObject_IsTrue(answer);
    Py_DECREF(answer);
    return repeated;
}

/* RecentChanges._repeats(): the identity is known (checked by the caller). -1 on error. */
static int repeats(Memory *m, PyObject *key, PyObject *mine)
{
    PyObject *entry = stored_entry(m, key);
    if (entry == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *others[2];
    int count = 0, answer = 0;
    for (int i = 0; i < 2; i++) {
        PyObject *value = PyTuple_GET_ITEM(entry, i);
        if (value == Py_None)
            continue;
        PyObject *facts = known(m, value);
        if (facts == NULL) {
            answer = -1;
            goto done;
        }
        if (facts == Py_None)
            Py_DECREF(facts);
        else
            others[count++] = facts;
    }
    answer = decide_repeat(m, mine, others, count);
done:
    for (int i = 0; i < count; i++)
        Py_DECREF(others[i]);
    Py_DECREF(entry);
    return answer;
}

/* The (key, value) of changes[index], as new references. -1 on error. */
static int pair_of(PyObject *changes, Py_ssize_t index, PyObject **key, PyObject **value)
{
    PyObject *pair = PyList_GET_ITEM(changes, index);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "changes holds (key, value) tuples");
        return -1;
    }
    *key = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
    *value = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    return 0;
}

/* The opt-out's changes, when its identity is known or it blocks more than one. -1 on error. */
static int opt_out(Memory *m, PyObject *changes, Py_ssize_t first, PyObject *replies, Py_ssize_t reply_mark)
{
    Py_ssize_t count = PyList_GET_SIZE(changes) - first, made = 0;
    PyObject *on_stack[2 * MOST_CHANGES];
    PyObject **keys = count <= MOST_CHANGES ? on_stack : PyMem_New(PyObject *, 2 * (size_t)count);
    if (keys == NULL)
        return PyErr_NoMemory(), -1;
    PyObject **mine = keys + count;
    int dropped = PyList_GET_SIZE(replies) > reply_mark, failed = 0;
    for (; made < count; made++) {
        PyObject *value;
        if (pair_of(changes, first + made, &keys[made], &value) < 0) {
            failed = 1;
            break;
        }
        mine[made] = own_change(m, value);
        Py_DECREF(value);
        if (mine[made] == NULL) {
            Py_DECREF(keys[made]);
            failed = 1;
            break;
        }
    }
    for (Py_ssize_t i = 0; !failed && dropped && i < made; i++) {
        int known_key = mine[i] == Py_None ? 0 : PyDict_Contains(m->entries, keys[i]);
        int repeated = known_key > 0 ? repeats(m, keys[i], mine[i]) : known_key;
        if (repeated < 0)
            failed = 1;
        dropped = repeated > 0;
    }
    Py_ssize_t last = PyList_GET_SIZE(replies);
    if (!failed && dropped && PyList_SetSlice(replies, last - 1, last, NULL) < 0)
        failed = 1;
    for (Py_ssize_t i = 0; !failed && i < made; i++) {
        if (mine[i] != Py_None && put(m, keys[i], mine[i]) < 0)
            failed = 1;
    }
    for (Py_ssize_t i = 0; i < made; i++) {
        Py_DECREF(keys[i]);
        Py_DECREF(mine[i]);
    }
    if (keys != on_stack)
        PyMem_Free(keys);
    return failed ? -1 : dropped;
}

/* Notes the change value of the identity key only when the map knows that identity exactly as
 * when_known says: an opt-in's changes (1) for identities already known, kept as
 * RecentChanges._put() keeps them; an opt-out's one block (0) for an identity nothing is known
 * of, stored as its first. 1 when it was as wanted (noted, or not a change of ours), 0 when not
 * (nothing done), -1 on error. One function for both: they were near-twins. */
static int note_if(Memory *m, PyObject *key, PyObject *value, int when_known)
{
    int found = PyDict_Contains(m->entries, key);
    if (found < 0)
        return -1;
    if (found != when_known)
        return 0;
    PyObject *change = own_change(m, value);
    if (change == NULL)
        return -1;
    int done = change == Py_None ? 0 : when_known ? put(m, key, change) : store(m, key, change, Py_None);
    Py_DECREF(change);
    return done < 0 ? -1 : 1;
}

static PyObject *confirm(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 12 || !PyDict_CheckExact(args[0]) || !PyLong_Check(args[1]) || !PyLong_Check(args[2]) ||
        !PyList_CheckExact(args[3]) || !PyList_CheckExact(args[5]) || !PyBytes_Check(args[8])) {
        PyErr_SetString(PyExc_TypeError,
                        "confirm(entries: dict, now: int, window: int, changes: list, first: int, replies: list, "
                        "reply_mark: int, opt_out: bool, head: bytes, known, parse, decide)");
        return NULL;
    }
    Memory m = {args[0], args[1], args[8], args[9], args[10], args[11], PyLong_AsLongLong(args[2])};
    Py_ssize_t first = PyLong_AsSsize_t(args[4]), reply_mark = PyLong_AsSsize_t(args[6]);
    int is_opt_out = PyObject_IsTrue(args[7]);
    if (PyErr_Occurred() || is_opt_out < 0)
        return NULL;
    PyObject *changes = args[3], *key, *value;
    Py_ssize_t end = PyList_GET_SIZE(changes);
    if (first < 0 || first > end) {
        PyErr_SetString(PyExc_IndexError, "confirm: first is not an index of changes");
        return NULL;
    }
    if (is_opt_out) {
        if (end == first + 1) { /* nearly every STOP: one identity, nothing known of it */
            if (pair_of(changes, first, &key, &value) < 0)
                return NULL;
            int noted = note_if(&m, key, value, 0); /* 0: known, the caller goes on */
            Py_DECREF(key);
            Py_DECREF(value);
            if (noted != 0)
                return noted < 0 ? NULL : Py_NewRef(Py_False);
        }
        int dropped = opt_out(&m, changes, first, args[5], reply_mark);
        return dropped < 0 ? NULL : PyBool_FromLong(dropped);
    }
    for (Py_ssize_t index = first; index < end && index < PyList_GET_SIZE(changes); index++) {
        if (pair_of(changes, index, &key, &value) < 0)
            return NULL;
        int done = note_if(&m, key, value, 1);
        Py_DECREF(key);
        Py_DECREF(value);
        if (done < 0)
            return NULL;
    }
    Py_RETURN_FALSE;
}

/* forget_older(entries, horizon): delete the entries whose timestamp (the third item) is below
 * horizon; how many. RecentChanges.prune()'s walk: in Python (a list comprehension over the
 * items) it was 2-3% of a STOP storm's busy time (perf: dictiter_iternextitem 1.3%, py-spy: the
 * comprehension 1.2-1.6%), the map holding about 100,000 identities when it is walked. */
static PyObject *forget_older(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "forget_older(entries: dict, horizon: int)");
        return NULL;
    }
    PyObject *entries = args[0], *horizon = args[1], *key, *entry, *old = PyList_New(0);
    Py_ssize_t position = 0;
    if (old == NULL)
        return NULL;
    while (PyDict_Next(entries, &position, &key, &entry)) {
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
            PyErr_SetString(PyExc_TypeError, "the map's entries are (last, before, timestamp) tuples");
            goto failed;
        }
        int below = PyObject_RichCompareBool(PyTuple_GET_ITEM(entry, 2), horizon, Py_LT);
        if (below < 0 || (below && PyList_Append(old, key) < 0))
            goto failed;
    }
    Py_ssize_t count = PyList_GET_SIZE(old);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyDict_DelItem(entries, PyList_GET_ITEM(old, i)) < 0)
            goto failed;
    }
    Py_DECREF(old);
    return PyLong_FromSsize_t(count);
failed:
    Py_DECREF(old);
    return NULL;
}

static PyMethodDef methods[] = {
    {"forget_older", (PyCFunction)(void (*)(void))forget_older, METH_FASTCALL,
     "forget_older(entries, horizon) -> int: delete the entries written before horizon; how many."},
    {"change_facts", (PyCFunction)(void (*)(void))change_facts, METH_FASTCALL,
     "change_facts(value, head) -> (occurred_at, block, event_id, mo_block) | None: the facts of a change "
     "event in the classifier's own layout, read at fixed positions; None when it is not in that layout."},
    {"confirm", (PyCFunction)(void (*)(void))confirm, METH_FASTCALL,
     "confirm(entries, now, window, changes, first, replies, reply_mark, opt_out, head, known, parse, decide) "
     "-> bool: RecentChanges.confirm() on the map's entries; True when the reply was dropped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_confirm", NULL, -1, methods};

PyMODINIT_FUNC PyInit__confirm(void)
{
    return PyModule_Create(&module);
}
