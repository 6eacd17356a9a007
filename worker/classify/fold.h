/* The classifier's fold of printable ASCII text, shared by the C extensions that need it:
 * worker/classify/_fold.c (the key and words, for classify()) and worker/stream/_screen.c (the
 * batch step's chat screen). One copy of the rule, so the two can never fold a text differently.
 *
 * For printable ASCII (0x20-0x7E), worker.classify.normalize.normalize(text) is: lower-case, strip
 * spaces and punctuation at both ends, collapse runs of spaces to one; tokens() is then the runs of
 * letters and digits of that key. tests/unit/classify/test_fold.py holds C and Python equal. */
#ifndef OPTOUT_FOLD_H
#define OPTOUT_FOLD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* A word bitmap: 2^16 bits (worker.classify.normalize.word_bits). */
#define BITMAP_BYTES 8192
#define WORD_BITS 16
/* A key bitmap: 2^20 bits (worker.classify.normalize.key_bits): a whole-message bitmap holds tens
 * of thousands of mangled keywords, 16 bits would be half full. */
#define KEY_BITMAP_BYTES 131072
#define KEY_BITS 20

static inline uint32_t fnv1a(const char *data, Py_ssize_t length)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < length; i++) {
        h ^= (unsigned char)data[i];
        h *= 16777619u;
    }
    return h;
}

static inline int bit_set(const unsigned char *bits, uint32_t position)
{
    return (bits[position >> 3] >> (position & 7)) & 1;
}

/* Whether the 32-bit FNV-1a hash h may be in a bitmap of 2^width bits: both of its probes are set
 * (worker.classify.normalize.probes). Two probes instead of one: a chat word hit the default gate
 * (356 words) 1 time in 200 with one, and a chat message the key bitmap 1 time in 27. */
static inline int maybe_in(const unsigned char *bits, uint32_t h, int width)
{
    uint32_t mask = (1u << width) - 1u;
    return bit_set(bits, (h ^ (h >> width)) & mask) && bit_set(bits, (uint32_t)(h * 2654435769u) >> (32 - width));
}

static inline int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

static inline int printable_ascii(const unsigned char *chars, Py_ssize_t length)
{
    for (Py_ssize_t i = 0; i < length; i++) {
        if (chars[i] < 0x20 || chars[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* Called for each word, key[start:end]; a negative return stops the fold with that value. */
typedef int (*word_sink)(void *context, const char *key, Py_ssize_t start, Py_ssize_t end);

/* Fold chars (printable ASCII, checked by the caller) into key, which has room for length bytes,
 * calling sink for each word in order. Returns the key's size, or the sink's negative value. */
static Py_ssize_t fold_key(const unsigned char *chars, Py_ssize_t length, char *key, word_sink sink,
                           void *context)
{
    Py_ssize_t start = 0, end = length;
    while (start < end && !is_alnum(chars[start]))
        start++;
    while (end > start && !is_alnum(chars[end - 1]))
        end--;
    Py_ssize_t size = 0, word_start = -1;
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
            int failed = sink(context, key, word_start, size);
            if (failed < 0)
                return failed;
            word_start = -1;
        }
        key[size++] = (char)c;
    }
    if (word_start >= 0) {
        int failed = sink(context, key, word_start, size);
        if (failed < 0)
            return failed;
    }
    return size;
}

#endif
