/* The classifier's first step for printable ASCII text, in C: the matching key, its words and
 * whether any word may be in a word set (a bitmap of the set's FNV-1a hashes), in one pass. The
 * reference, and the fallback when this extension was not built, is Python:
 * worker.classify.normalize.normalize(text) and tokens(key); tests/unit/classify/test_fold.py
 * checks that both give the same result on any printable ASCII text. The fold itself is in
 * fold.h, shared with the batch step's chat screen (worker/stream/_screen.c).
 *
 * Any other text (non-ASCII, tabs, newlines) returns None and takes the Python path, which
 * handles Unicode. */
#include "fold.h"

#define STACK_CHARS 512

struct words {
    PyObject *list;
    const unsigned char *bits;
    int maybe;
};

/* Append key[start:end] to the list as bytes; note whether its bit is set. -1 on error. */
static int append_word(void *context, const char *key, Py_ssize_t start, Py_ssize_t end)
{
    struct words *words = context;
    words->maybe = words->maybe || maybe_in(words->bits, fnv1a(key + start, end - start), WORD_BITS);
    PyObject *word = PyBytes_FromStringAndSize(key + start, end - start);
    if (word == NULL)
        return -1;
    int failed = PyList_Append(words->list, word);
    Py_DECREF(word);
    return failed;
}

static PyObject *fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyBytes_Check(args[1])
        || PyBytes_GET_SIZE(args[1]) != BITMAP_BYTES) {
        PyErr_SetString(PyExc_TypeError, "fold(text, bits) takes a str and a bitmap of 8192 bytes");
        return NULL;
    }
    PyObject *text = args[0];
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const unsigned char *chars = PyUnicode_1BYTE_DATA(text);
    if (!printable_ascii(chars, length))
        Py_RETURN_NONE; /* the Python path folds its whitespace */

    char stack[STACK_CHARS];
    char *key = length <= STACK_CHARS ? stack : PyMem_Malloc((size_t)length);
    if (key == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    struct words words = {PyList_New(0), (const unsigned char *)PyBytes_AS_STRING(args[1]), 0};
    if (words.list == NULL)
        goto done;
    Py_ssize_t size = fold_key(chars, length, key, append_word, &words);
    if (size < 0)
        goto done;
    PyObject *folded = PyUnicode_DecodeASCII(key, size, NULL);
    if (folded == NULL)
        goto done;
    result = PyTuple_Pack(3, folded, words.list, words.maybe ? Py_True : Py_False);
    Py_DECREF(folded);
done:
    Py_XDECREF(words.list);
    if (key != stack)
        PyMem_Free(key);
    return result;
}

static PyMethodDef methods[] = {
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "fold(text, bits) -> (key, words, maybe) for printable ASCII text, key and words as normalize() "
     "and tokens() give them, maybe: some word's hash is set in bits; None for any other text"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "worker.classify._fold",
    "The classifier's key and words for printable ASCII text, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__fold(void)
{
    return PyModule_Create(&module);
}
