/* The classifier's first step for printable ASCII text, in C: the matching key, its words and
 * whether any word may be in a word set (a bitmap of the set's FNV-1a hashes), in one pass. The reference, and the fallback when this extension was not built, is Python:
 * worker.classify.normalize.normalize(text) and tokens(key); tests/unit/classify/test_fold.py
 * checks that both give the same result on any printable ASCII text.
 *
 * For printable ASCII (0x20-0x7E) normalize() is: lower-case, strip spaces and punctuation at both
 * ends, collapse runs of spaces to one; tokens() is then the runs of letters and digits. Any other
 * text (non-ASCII, tabs, newlines) returns None and takes the Python path, which handles Unicode. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define STACK_CHARS 512
/* The bitmap: one bit per 16-bit hash. Python builds it (worker.classify.normalize.word_bits). */
#define BITMAP_BYTES 8192

/* 32-bit FNV-1a, folded to 16 bits: the same function as word_hash() in normalize.py. */
static unsigned int word_hash(const char *word, Py_ssize_t length)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < length; i++) {
        h ^= (unsigned char)word[i];
        h *= 16777619u;
    }
    return (unsigned int)((h ^ (h >> 16)) & 0xffffu);
}

static int in_bitmap(const unsigned char *bits, const char *word, Py_ssize_t length)
{
    unsigned int h = word_hash(word, length);
    return (bits[h >> 3] >> (h & 7)) & 1;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* Append key[start:end] to words as bytes; note in *maybe whether its bit is set. -1 on error. */
static int append_word(PyObject *words, const unsigned char *bits, const char *key, Py_ssize_t start,
                       Py_ssize_t end, int *maybe)
{
    *maybe = *maybe || in_bitmap(bits, key + start, end - start);
    PyObject *word = PyBytes_FromStringAndSize(key + start, end - start);
    if (word == NULL)
        return -1;
    int failed = PyList_Append(words, word);
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
    const unsigned char *bits = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    int maybe = 0;
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const unsigned char *chars = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (chars[i] < 0x20 || chars[i] > 0x7e)
            Py_RETURN_NONE; /* not printable: the Python path folds its whitespace */
    }
    Py_ssize_t start = 0, end = length;
    while (start < end && !is_alnum(chars[start]))
        start++;
    while (end > start && !is_alnum(chars[end - 1]))
        end--;

    char stack[STACK_CHARS];
    char *key = end - start <= STACK_CHARS ? stack : PyMem_Malloc((size_t)(end - start));
    if (key == NULL)
        return PyErr_NoMemory();
    Py_ssize_t size = 0;
    PyObject *words = PyList_New(0);
    PyObject *result = NULL;
    if (words == NULL)
        goto done;
    Py_ssize_t word_start = -1;
    for (Py_ssize_t i = start; i < end; i++) {
        unsigned char c = chars[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c == ' ' && size > 0 && key[size - 1] == ' ')
            continue; /* a run of spaces folds to one */
        if (is_alnum(c)) {
            if (word_start < 0)
                word_start = size;
        } else if (word_start >= 0) {
            if (append_word(words, bits, key, word_start, size, &maybe) < 0)
                goto done;
            word_start = -1;
        }
        key[size++] = (char)c;
    }
    if (word_start >= 0 && append_word(words, bits, key, word_start, size, &maybe) < 0)
        goto done;
    PyObject *folded = PyUnicode_DecodeASCII(key, size, NULL);
    if (folded == NULL)
        goto done;
    result = PyTuple_Pack(3, folded, words, maybe ? Py_True : Py_False);
    Py_DECREF(folded);
done:
    Py_XDECREF(words);
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
