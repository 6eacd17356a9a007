/* The classifier's chat screen, in C: which records of a batch need Python at all.
 *
 * Most inbound records are chat in the common shape: a JSON object with the required fields as
 * short printable-ASCII strings, a "YYYY-MM-DDThh:mm:ss[.f]Z" timestamp and a text with no word of
 * the rules' word sets where classify() would look for one, in printable ASCII or in characters
 * the fold table folds alone (quiet_chars below), written as UTF-8 with no escape. For those, the
 * full path (worker.events.inbound.decode, then worker.classify.decide.classify) only confirms
 * "valid, and nothing to do", at about 5 µs a record; this screen confirms the same on the
 * record's bytes, without parsing it into objects (common_form below). A record that is valid in
 * the common shape but whose text needs classify() is handed on as its parsed document, so Python
 * neither parses nor validates it again.
 *
 * The screen is one-sided on purpose: it passes over a record only when every check below holds,
 * and each check is a sufficient condition for the Python path's own answer (valid, and chat with
 * no doubt for the review queue); it hands on a document only when decode() would accept it as
 * it is. Anything else, from a bad record to a provider's signal, takes the full path, which
 * decides it exactly as before. The checks on the text are bitmaps of the rules' word sets
 * (worker.classify.screen builds them), so a rare hash collision only sends a chat message to
 * classify(). tests/unit/stream/test_screen.py holds both properties on random records and on
 * every corpus, and the batch step's output with and without the screen equal.
 *
 * The text's fold is the classifier's (fold.h), so the key and words screened are those classify()
 * would look up. */
#include "../classify/fold.h"

#include <string.h>

#define STACK_CHARS 512

/* The bitmaps of the rules (see worker.classify.screen.build_chat_bitmaps), in this order. */
enum { KEYS, LEADERS, PREFIXES, COURTESY, TRIGGERS, COMMANDS, OBJECTS, N_BITMAPS };

/* Word hashes kept per text: the leading and set-apart looks read at most this many words (a
 * longer look is taken as a maybe). */
#define HASHES 16

struct rules {
    const unsigned char *bits[N_BITMAPS];
    /* classify()'s limits (worker.classify.decide.SCREEN_LIMITS): the words of a leading match,
     * the words and characters of a short message's second look, the words of a split keyword. */
    Py_ssize_t leading_words, short_words, short_chars, split_words;
    /* worker.classify.screen.fold_table: native 32-bit entries, one per code point below
     * fold_limit (0: texts beyond ASCII all go to classify()). */
    const unsigned char *fold_entries;
    Py_ssize_t fold_limit;
};

/* What the steps of classify() read of a text's words, gathered in the fold's one pass. */
struct text_words {
    const struct rules *rules;
    Py_ssize_t count;
    uint32_t hashes[HASHES]; /* FNV-1a of the first HASHES words */
    uint32_t last, before_last; /* of the last two words */
    uint32_t joined; /* FNV-1a of all the words run together: a split keyword ("S top") */
    Py_ssize_t first_end, last_start; /* in the key */
    int commands; /* some word may be an opt-out command */
    int triggers; /* some word may be a phrase's trigger */
    int plain_after_first; /* a word after the first is surely no courtesy word, number or symbol */
};

static inline uint32_t fnv1a_more(uint32_t h, const char *data, Py_ssize_t length)
{
    for (Py_ssize_t i = 0; i < length; i++) {
        h ^= (unsigned char)data[i];
        h *= 16777619u;
    }
    return h;
}

static int note_word(void *context, const char *key, Py_ssize_t start, Py_ssize_t end)
{
    struct text_words *words = context;
    const unsigned char *const *bits = words->rules->bits;
    uint32_t h = fnv1a(key + start, end - start);
    if (words->count < HASHES)
        words->hashes[words->count] = h;
    /* The split and short looks read a text of a few words only (maybe_short): past those, the
     * joined hash and the courtesy test would be work for nothing on every longer text. */
    if (words->count == 0) {
        words->first_end = end;
        words->joined = h;
    } else if (words->count < words->rules->short_words) {
        if (words->count < words->rules->split_words)
            words->joined = fnv1a_more(words->joined, key + start, end - start);
        if (!words->plain_after_first && !maybe_in(bits[COURTESY], h, WORD_BITS)) {
            /* _only_courtesy(): a number, or a word beyond ASCII (maybe an emoji), may follow */
            int other = 1;
            for (Py_ssize_t i = start; i < end && other; i++)
                other = (key[i] >= '0' && key[i] <= '9') || (unsigned char)key[i] >= 0x80;
            words->plain_after_first = !other;
        }
    }
    words->before_last = words->last;
    words->last = h;
    words->last_start = start;
    words->count++;
    words->commands = words->commands || maybe_in(bits[COMMANDS], h, WORD_BITS);
    words->triggers = words->triggers || maybe_in(bits[TRIGGERS], h, WORD_BITS);
    return 0;
}

/* _leading(): courtesy words, then a leading keyword's first word. Each word up to the first that
 * is surely no courtesy word may be where that keyword starts. */
static int maybe_leading(const struct text_words *words, const struct rules *rules)
{
    for (Py_ssize_t i = 0; i < words->count; i++) {
        if (i >= HASHES)
            return 1;
        if (maybe_in(rules->bits[LEADERS], words->hashes[i], WORD_BITS))
            return 1;
        if (!maybe_in(rules->bits[COURTESY], words->hashes[i], WORD_BITS))
            return 0;
    }
    return 0;
}

/* worker.classify.decide._SEPARATORS: what sets an opt-out command apart from its sentence. */
static int separator(char c)
{
    return c == ',' || c == '.' || c == ';' || c == ':' || c == '!' || c == '\n';
}

/* _set_apart() on a printable-ASCII key with no command in capitals in its text: whether an
 * opt-out command may stand apart from the sentence (then _complaint() reads it). */
static int maybe_set_apart(const char *key, Py_ssize_t size, const struct text_words *words,
                           const struct rules *rules)
{
    const unsigned char *const *bits = rules->bits;
    Py_ssize_t n = words->count;
    uint32_t first = words->hashes[0];
    if (maybe_in(bits[COMMANDS], first, WORD_BITS)) { /* "stop it", "stop, who gave you..." */
        if (n > 1 && maybe_in(bits[OBJECTS], words->hashes[1], WORD_BITS))
            return 1;
        if (words->first_end < size && separator(key[words->first_end]))
            return 1;
    }
    if (n > 1 && maybe_in(bits[COMMANDS], words->last, WORD_BITS)) { /* "..., pls remove", "ok. stop" */
        if (maybe_in(bits[COURTESY], words->before_last, WORD_BITS))
            return 1;
        Py_ssize_t before = words->last_start - 1; /* past the one space a key may have there */
        if (before >= 0 && key[before] == ' ')
            before--;
        if (before >= 0 && separator(key[before]))
            return 1;
    }
    if (maybe_in(bits[COURTESY], first, WORD_BITS)) { /* "please just stop, I'm begging you" */
        for (Py_ssize_t i = 1; i < n && i < rules->leading_words; i++) {
            if (i >= HASHES || maybe_in(bits[COMMANDS], words->hashes[i], WORD_BITS))
                return 1;
            if (!maybe_in(bits[COURTESY], words->hashes[i], WORD_BITS))
                return 0;
        }
    }
    return 0;
}

/* _short_look(): a split keyword ("S top": the words joined are a key) or a mangled first word
 * before courtesy words only ("sotp svp": the first word is a key). */
static int maybe_short(const struct text_words *words, const struct rules *rules)
{
    if (words->count <= rules->split_words && maybe_in(rules->bits[PREFIXES], words->hashes[0], WORD_BITS)
        && maybe_in(rules->bits[KEYS], words->joined, KEY_BITS))
        return 1;
    return !words->plain_after_first && maybe_in(rules->bits[KEYS], words->hashes[0], KEY_BITS);
}

/* classify()'s steps on a folded key: 1 when it surely returns None with no doubt, 0 when the
 * text needs it. size: the key's bytes (UTF-8), chars: its characters (classify() measures
 * those), question: whether the text has a '?', capitals: whether an opt-out command may be
 * written in capitals in it (_set_apart() and the keyword_in_text doubt look for those; texts
 * beyond ASCII always may). Each step mirrors one of classify()'s, in order, and each bitmap test
 * is a superset of the set classify() tests, so a hash collision only costs a maybe. */
static int quiet_key(const char *key, Py_ssize_t size, Py_ssize_t chars, const struct text_words *words,
                     int question, int capitals, const struct rules *rules)
{
    if (size == 0)
        return 1; /* no letter or digit: nothing to match */
    if (maybe_in(rules->bits[KEYS], fnv1a(key, size), KEY_BITS))
        return 0; /* maybe a keyword, exact or mangled */
    Py_ssize_t n = words->count;
    if (chars <= 2 * n - 1)
        return 0; /* every word one letter: maybe a spelled-out keyword */
    if (n <= rules->leading_words && !question && maybe_leading(words, rules))
        return 0; /* maybe a leading keyword (a question never is one) */
    if (words->triggers)
        return 0; /* maybe a phrase */
    if (words->commands && (capitals || maybe_set_apart(key, size, words, rules)))
        return 0; /* maybe a complaint, or a command in capitals to doubt */
    if (n > 1 && n <= rules->short_words && chars <= rules->short_chars && maybe_short(words, rules))
        return 0; /* maybe a split or mangled keyword before courtesy words */
    return 1;
}

/* Whether a printable-ASCII text has two capital letters in a row: where an opt-out command in
 * capitals would be (worker.classify.screen.build_chat_bitmaps makes sure each has two). */
static int capital_pair(const unsigned char *chars, Py_ssize_t length)
{
    for (Py_ssize_t i = 1; i < length; i++) {
        if (chars[i] >= 'A' && chars[i] <= 'Z' && chars[i - 1] >= 'A' && chars[i - 1] <= 'Z')
            return 1;
    }
    return 0;
}

/* 1 when classify() surely returns None with no doubt for this printable-ASCII text, 0 when the
 * text needs it, -1 on a memory error. */
static int quiet_text(const unsigned char *chars, Py_ssize_t length, const struct rules *rules)
{
    char stack[STACK_CHARS];
    char *key = length <= STACK_CHARS ? stack : PyMem_Malloc((size_t)length);
    if (key == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    struct text_words words = {.rules = rules};
    Py_ssize_t size = fold_key(chars, length, key, note_word, &words);
    int capitals = words.commands && capital_pair(chars, length); /* read only with a command */
    int quiet = quiet_key(key, size, size, &words, memchr(chars, '?', (size_t)length) != NULL, capitals,
                          rules);
    if (key != stack)
        PyMem_Free(key);
    return quiet;
}

/* A text with characters beyond ASCII, folded as normalize() folds it when every character is
 * printable ASCII or one the fold table folds (worker.classify.screen.fold_table: NFKC leaves such
 * a text as it is and case folding maps each character alone): lower-cased, trimmed of all but
 * letters and digits at both ends, runs of spaces collapsed; words are runs of ASCII letters and
 * digits and of other characters, as tokens() splits the key's UTF-8. */
#define FOLD_ALNUM 0x80000000u

/* The folded code point of c (ASCII: lower-cased) with FOLD_ALNUM when it is a letter or a digit;
 * 0 when it cannot be folded alone (a control character, anything the table does not fold). */
static uint32_t folded(Py_UCS4 c, const struct rules *rules)
{
    if (c < 0x80) {
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        return c | (is_alnum((unsigned char)c) ? FOLD_ALNUM : 0);
    }
    if ((Py_ssize_t)c >= rules->fold_limit)
        return 0;
    uint32_t entry;
    memcpy(&entry, rules->fold_entries + 4 * (size_t)c, 4);
    return entry;
}

static Py_ssize_t put_utf8(char *key, Py_ssize_t at, uint32_t c)
{
    if (c < 0x80) {
        key[at++] = (char)c;
    } else if (c < 0x800) {
        key[at++] = (char)(0xc0 | (c >> 6));
        key[at++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        key[at++] = (char)(0xe0 | (c >> 12));
        key[at++] = (char)(0x80 | ((c >> 6) & 0x3f));
        key[at++] = (char)(0x80 | (c & 0x3f));
    } else {
        key[at++] = (char)(0xf0 | (c >> 18));
        key[at++] = (char)(0x80 | ((c >> 12) & 0x3f));
        key[at++] = (char)(0x80 | ((c >> 6) & 0x3f));
        key[at++] = (char)(0x80 | (c & 0x3f));
    }
    return at;
}

/* 1 when classify() surely returns None with no doubt for the text of n characters of the given
 * kind at data (a str's, or an array of Py_UCS4 with PyUnicode_4BYTE_KIND), 0 when it needs
 * classify() (a character the table does not fold included), -1 on a memory error. */
static int quiet_chars(int kind, const void *data, Py_ssize_t n, const struct rules *rules)
{
    Py_ssize_t start = -1, end = -1;
    int question = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* every character foldable; the letters at both ends */
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint32_t f = folded(c, rules);
        if (f == 0)
            return 0;
        question = question || c == '?';
        if (f & FOLD_ALNUM) {
            if (start < 0)
                start = i;
            end = i + 1;
        }
    }
    if (start < 0)
        return 1; /* no letter or digit: the key is empty, nothing to match */
    char stack[4 * STACK_CHARS];
    Py_ssize_t room = 4 * (end - start);
    char *key = room <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)room);
    if (key == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    struct text_words words = {.rules = rules};
    Py_ssize_t size = 0, chars = 0, word_start = -1;
    for (Py_ssize_t i = start; i < end; i++) {
        uint32_t c = folded(PyUnicode_READ(kind, data, i), rules) & ~FOLD_ALNUM;
        if (c == ' ' && size > 0 && key[size - 1] == ' ')
            continue; /* a run of spaces folds to one */
        int word_char = c >= 0x80 || is_alnum((unsigned char)c);
        if (word_char && word_start < 0)
            word_start = size;
        else if (!word_char && word_start >= 0) {
            note_word(&words, key, word_start, size);
            word_start = -1;
        }
        size = put_utf8(key, size, c);
        chars++;
    }
    if (word_start >= 0)
        note_word(&words, key, word_start, size);
    int quiet = quiet_key(key, size, chars, &words, question, 1, rules);
    if (key != stack)
        PyMem_Free(key);
    return quiet;
}

static int quiet_unicode(PyObject *text, const struct rules *rules)
{
    return quiet_chars(PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text), rules);
}

/* The code points of s[0:n] into out (room for n), or -1 unless s is well-formed UTF-8 (Unicode's
 * table 3-7: no overlong form, no surrogate, nothing past U+10FFFF), which is what orjson and
 * Python's decoder accept. */
static Py_ssize_t utf8_decode(const unsigned char *s, Py_ssize_t n, Py_UCS4 *out)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n;) {
        unsigned char c = s[i], low = 0x80, high = 0xbf;
        Py_UCS4 code;
        int more;
        if (c < 0x80) {
            out[count++] = c;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            code = c & 0x1f;
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            code = c & 0x0f;
            more = 2;
            if (c == 0xe0)
                low = 0xa0; /* overlong */
            else if (c == 0xed)
                high = 0x9f; /* a surrogate */
        } else if (c >= 0xf0 && c <= 0xf4) {
            code = c & 0x07;
            more = 3;
            if (c == 0xf0)
                low = 0x90; /* overlong */
            else if (c == 0xf4)
                high = 0x8f; /* past U+10FFFF */
        } else {
            return -1;
        }
        if (n - i - 1 < more)
            return -1;
        for (int k = 1; k <= more; k++) {
            unsigned char b = s[i + k];
            if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xbf))
                return -1;
            code = (code << 6) | (b & 0x3f);
        }
        out[count++] = code;
        i += more + 1;
    }
    return count;
}

/* quiet_chars() for a text in the common form with bytes beyond ASCII (UTF-8, not yet checked):
 * -2 when it is not well-formed UTF-8 (orjson refuses it; decode() words the dead letter). Read on
 * the bytes, such chat costs no orjson parse either: the screen on the normal mix's records with
 * text beyond ASCII (a quarter of them) 4.5-4.6 -> 2.0-3.0 µs a record in process (best of five,
 * two alternated runs each on a noisy box). */
static int quiet_utf8(const unsigned char *s, Py_ssize_t n, const struct rules *rules)
{
    Py_UCS4 stack[STACK_CHARS];
    Py_UCS4 *chars = n <= STACK_CHARS ? stack : PyMem_Malloc(sizeof(Py_UCS4) * (size_t)n);
    if (chars == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t count = utf8_decode(s, n, chars);
    int quiet = count < 0 ? -2 : quiet_chars(PyUnicode_4BYTE_KIND, chars, count, rules);
    if (chars != stack)
        PyMem_Free(chars);
    return quiet;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int digits(const unsigned char *s, int count)
{
    int value = 0;
    for (int i = 0; i < count; i++) {
        if (!is_digit(s[i]))
            return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

/* "YYYY-MM-DDThh:mm:ssZ" or with a fraction of 1-6 digits, a real date and time: what decode()
 * takes through datetime.fromisoformat(). Years 0001 and 9999 (whose conversion to UTC can
 * overflow) and every other form go to the full path. */
static int common_instant(const unsigned char *s, Py_ssize_t length)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (length < 20 || length > 27 || length == 21 || s[length - 1] != 'Z' || s[4] != '-'
        || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return 0;
    if (length > 20 && (s[19] != '.' || digits(s + 20, (int)length - 21) < 0))
        return 0;
    int year = digits(s, 4), month = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), minute = digits(s + 14, 2), second = digits(s + 17, 2);
    if (year <= 1 || year == 9999 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23
        || minute < 0 || minute > 59 || second < 0 || second > 59)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= month_days[month - 1] + (month == 2 && leap);
}

static PyObject *names[8]; /* the required string fields, interned at import */
enum { RECEIVED_AT = 5, TEXT = 6, SUBACCOUNT = 7 };
static PyObject *intent_name, *category_name, *value_name;

/* A field that is a non-empty printable-ASCII str; adds its length to *total. */
static int identifier(PyObject *value, Py_ssize_t *total)
{
    if (value == NULL || !PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value))
        return 0;
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    *total += length;
    return length > 0 && printable_ascii(PyUnicode_1BYTE_DATA(value), length);
}

/* The common form of a record, read in place: a flat JSON object whose values are strings of
 * printable ASCII with no escape, or null (JSON whitespace anywhere between tokens). orjson reads
 * such a document into a dict of exactly these strings, so the checks of screen_record() can be
 * made on the bytes: a record found to be chat costs no parse and no object at all (measured on
 * the campaign mix in process: the screen 1.86 -> 1.51 µs a record). Anything else (an escape,
 * a non-ASCII byte, a number, a nested value, a field twice, a signal) is NOT_COMMON and takes
 * the dict path below, which decides it as before. */
enum form { FORM_FAILED = -1, NOT_COMMON = 0, COMMON_CHAT = 1, COMMON_LOUD = 2 };

struct span {
    const char *chars;
    Py_ssize_t length;
    int state; /* 0 absent, 1 a string, 2 null */
    int wide;  /* a string with bytes beyond ASCII (the text only) */
};

static const char *const field_names[8] = {"account_id", "channel",     "from", "message_id",
                                           "to",         "received_at", "text", "subaccount_id"};
/* strlen() of each, set at import: comparing keys by strlen() of every name, for every key of
 * every record, was a third of the screen's work on ASCII chat (callgrind, the normal mix's ASCII
 * chat in process: 9,925 -> 6,877 instructions a record, the Python loop around it included). */
static Py_ssize_t field_lengths[8];

static int json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The string opening at s[*at]: its content, *at moved past it. 0 unless it is printable ASCII
 * with no escape, or, when wide, printable ASCII and bytes beyond ASCII (checked as UTF-8 later). */
static int plain_string(const char *s, Py_ssize_t n, Py_ssize_t *at, struct span *out, int wide)
{
    int beyond = 0;
    for (Py_ssize_t j = *at + 1; j < n; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"') {
            out->chars = s + *at + 1;
            out->length = j - *at - 1;
            out->state = 1;
            out->wide = beyond;
            *at = j + 1;
            return 1;
        }
        if (c >= 0x80 && wide)
            beyond = 1;
        else if (c < 0x20 || c > 0x7e || c == '\\')
            return 0;
    }
    return 0;
}

/* Whether a key is the string literal name (its length known at compile time). */
#define IS_LITERAL(key, name)                                                                      \
    ((key)->length == (Py_ssize_t)sizeof(name) - 1 && memcmp((key)->chars, name, sizeof(name) - 1) == 0)

/* The fields of a document in the common form (state 0 where absent), or 0 if it is not in it. */
static int common_fields(const char *s, Py_ssize_t n, struct span fields[8])
{
    Py_ssize_t i = 0;
    while (i < n && json_space(s[i]))
        i++;
    if (i >= n || s[i] != '{')
        return 0;
    i++;
    for (;;) {
        while (i < n && json_space(s[i]))
            i++;
        struct span key, value = {NULL, 0, 2, 0};
        if (i >= n || s[i] != '"' || !plain_string(s, n, &i, &key, 0))
            return 0; /* also "{}" and a trailing comma: not the common form */
        while (i < n && json_space(s[i]))
            i++;
        if (i >= n || s[i] != ':')
            return 0;
        i++;
        while (i < n && json_space(s[i]))
            i++;
        if (i < n && s[i] == '"') {
            if (!plain_string(s, n, &i, &value, IS_LITERAL(&key, "text")))
                return 0;
        } else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
        } else {
            return 0;
        }
        if (IS_LITERAL(&key, "intent") || IS_LITERAL(&key, "category"))
            return 0; /* a provider's own signal: decode() checks it */
        for (int f = 0; f < 8; f++) {
            if (key.length == field_lengths[f] && memcmp(key.chars, field_names[f], (size_t)key.length) == 0) {
                if (fields[f].state != 0)
                    return 0; /* twice: orjson keeps the last, the dict path sees it */
                fields[f] = value;
                break;
            }
        }
        while (i < n && json_space(s[i]))
            i++;
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '}')
            break;
        return 0;
    }
    i++;
    while (i < n && json_space(s[i]))
        i++;
    return i == n;
}

/* screen_record()'s checks on a document in the common form: COMMON_CHAT, COMMON_LOUD (valid in
 * the common shape, its text needs classify()), NOT_COMMON (anything the dict path must see). */
static enum form common_form(const char *s, Py_ssize_t n, PyObject *overridden, Py_ssize_t max_fields,
                             Py_ssize_t max_text, const struct rules *rules)
{
    struct span fields[8] = {{NULL, 0, 0, 0}};
    if (!common_fields(s, n, fields))
        return NOT_COMMON;
    Py_ssize_t total = 0;
    for (int f = 0; f <= RECEIVED_AT; f++) { /* the identifiers and the timestamp */
        if (fields[f].state != 1 || fields[f].length == 0)
            return NOT_COMMON;
        total += fields[f].length;
    }
    const struct span *stamp = &fields[RECEIVED_AT], *sub = &fields[SUBACCOUNT], *text = &fields[TEXT];
    if (!common_instant((const unsigned char *)stamp->chars, stamp->length))
        return NOT_COMMON;
    if (sub->state == 1) {
        if (sub->length == 0)
            return NOT_COMMON;
        total += sub->length;
    }
    if (total > max_fields || text->state != 1 || text->length > max_text / 4)
        return NOT_COMMON;
    if (PySet_GET_SIZE(overridden) > 0) {
        PyObject *account = PyUnicode_DecodeASCII(fields[0].chars, fields[0].length, NULL);
        if (account == NULL)
            return FORM_FAILED;
        int own = PySet_Contains(overridden, account);
        Py_DECREF(account);
        if (own != 0) /* an account with rules of its own: classify() with those */
            return own < 0 ? FORM_FAILED : COMMON_LOUD;
    }
    const unsigned char *chars = (const unsigned char *)text->chars;
    int quiet = text->wide ? quiet_utf8(chars, text->length, rules) : quiet_text(chars, text->length, rules);
    if (quiet == -2)
        return NOT_COMMON; /* not UTF-8: orjson refuses it, decode() words the dead letter */
    return quiet < 0 ? FORM_FAILED : quiet ? COMMON_CHAT : COMMON_LOUD;
}

/* What the screen found of one record. */
enum verdict { FAILED = -1, FULL_PATH = 0, CHAT = 1, VALID = 2 };

/* CHAT: valid chat in the common shape, nothing to do. VALID: valid in the common shape, its text
 * needs classify(); *valid is the parsed document (a new reference). FULL_PATH: anything else,
 * from a bad record to an unusual one, for decode(). FAILED: an error that is not the record's
 * (memory). */
static enum verdict screen_record(PyObject *raw, PyObject *loads, PyObject *overridden,
                                  Py_ssize_t max_fields, Py_ssize_t max_text,
                                  const struct rules *rules, PyObject **valid)
{
    if (!PyBytes_CheckExact(raw) || PyBytes_GET_SIZE(raw) == 0)
        return FULL_PATH;
    enum form form = common_form(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), overridden, max_fields,
                                 max_text, rules);
    if (form == FORM_FAILED)
        return FAILED;
    if (form == COMMON_CHAT)
        return CHAT;
    PyObject *doc = PyObject_CallOneArg(loads, raw);
    if (doc == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return FAILED;
        PyErr_Clear(); /* not JSON: decode() words the dead letter */
        return FULL_PATH;
    }
    enum verdict verdict = FULL_PATH;
    Py_ssize_t total = 0;
    if (!PyDict_CheckExact(doc))
        goto done;
    if (form == COMMON_LOUD) { /* checked on the bytes already */
        verdict = VALID;
        goto done;
    }
    for (int i = 0; i < RECEIVED_AT; i++) { /* the identifiers */
        if (!identifier(PyDict_GetItemWithError(doc, names[i]), &total))
            goto done;
    }
    PyObject *stamp = PyDict_GetItemWithError(doc, names[RECEIVED_AT]);
    if (!identifier(stamp, &total)
        || !common_instant(PyUnicode_1BYTE_DATA(stamp), PyUnicode_GET_LENGTH(stamp)))
        goto done;
    PyObject *sub = PyDict_GetItemWithError(doc, names[SUBACCOUNT]);
    if (sub != NULL && sub != Py_None && !identifier(sub, &total))
        goto done;
    if (total > max_fields || PyDict_Contains(doc, intent_name) || PyDict_Contains(doc, category_name))
        goto done; /* long identifiers, or a provider's own signal: decode() checks them */
    PyObject *text = PyDict_GetItemWithError(doc, names[TEXT]);
    if (text == NULL || !PyUnicode_CheckExact(text))
        goto done;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length > max_text / 4) /* may be over the byte limit: decode() measures it */
        goto done;
    verdict = VALID;
    if (PySet_GET_SIZE(overridden) > 0) {
        int own = PySet_Contains(overridden, PyDict_GetItemWithError(doc, names[0]));
        if (own != 0) { /* an account with rules of its own: classify() with those */
            verdict = own < 0 ? FAILED : VALID;
            goto done;
        }
    }
    int quiet;
    if (PyUnicode_IS_ASCII(text))
        quiet = printable_ascii(PyUnicode_1BYTE_DATA(text), length)
                    ? quiet_text(PyUnicode_1BYTE_DATA(text), length, rules)
                    : 0; /* a tab, a newline: classify() folds those */
    else
        quiet = quiet_unicode(text, rules);
    verdict = quiet < 0 ? FAILED : quiet ? CHAT : VALID;
done:
    if (PyErr_Occurred())
        verdict = FAILED;
    if (verdict == VALID)
        *valid = doc;
    else
        Py_DECREF(doc);
    return verdict;
}

static int append_index(PyObject *list, Py_ssize_t i)
{
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL)
        return -1;
    int failed = PyList_Append(list, index);
    Py_DECREF(index);
    return failed;
}

static PyObject *screen(PyObject *self, PyObject *args)
{
    PyObject *records, *loads, *bitmaps, *overridden, *fold_table;
    Py_ssize_t max_fields, max_text;
    struct rules rules;
    if (!PyArg_ParseTuple(args, "OOO!(nnnn)O!nnO!:screen", &records, &loads, &PyTuple_Type, &bitmaps,
                          &rules.leading_words, &rules.short_words, &rules.short_chars, &rules.split_words,
                          &PyFrozenSet_Type, &overridden, &max_fields, &max_text, &PyBytes_Type,
                          &fold_table))
        return NULL;
    if (PyBytes_GET_SIZE(fold_table) % 4 != 0) {
        PyErr_SetString(PyExc_TypeError, "screen(): the fold table holds 4-byte entries");
        return NULL;
    }
    rules.fold_entries = (const unsigned char *)PyBytes_AS_STRING(fold_table);
    rules.fold_limit = PyBytes_GET_SIZE(fold_table) / 4;
    if (PyTuple_GET_SIZE(bitmaps) != N_BITMAPS) {
        PyErr_SetString(PyExc_TypeError, "screen() takes 7 bitmaps");
        return NULL;
    }
    for (int i = 0; i < N_BITMAPS; i++) {
        PyObject *bits = PyTuple_GET_ITEM(bitmaps, i);
        Py_ssize_t size = i == KEYS ? KEY_BITMAP_BYTES : BITMAP_BYTES;
        if (!PyBytes_Check(bits) || PyBytes_GET_SIZE(bits) != size) {
            PyErr_Format(PyExc_TypeError, "screen(): bitmap %d must be %zd bytes", i, size);
            return NULL;
        }
        rules.bits[i] = (const unsigned char *)PyBytes_AS_STRING(bits);
    }
    PyObject *sequence = PySequence_Fast(records, "screen() takes a sequence of records");
    if (sequence == NULL)
        return NULL;
    PyObject *loud = PyList_New(0), *docs = PyList_New(0);
    Py_ssize_t last_chat = -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    int failed = loud == NULL || docs == NULL;
    for (Py_ssize_t i = 0; !failed && i < count; i++) {
        PyObject *raw = PyObject_GetAttr(PySequence_Fast_GET_ITEM(sequence, i), value_name);
        if (raw == NULL) {
            failed = 1;
            break;
        }
        PyObject *doc = NULL;
        enum verdict verdict = screen_record(raw, loads, overridden, max_fields, max_text, &rules, &doc);
        Py_DECREF(raw);
        if (verdict == FAILED)
            failed = 1;
        else if (verdict == CHAT)
            last_chat = i;
        else
            failed = append_index(loud, i) < 0 || PyList_Append(docs, doc ? doc : Py_None) < 0;
        Py_XDECREF(doc);
    }
    Py_DECREF(sequence);
    if (failed) {
        Py_XDECREF(loud);
        Py_XDECREF(docs);
        return NULL;
    }
    return Py_BuildValue("(NNn)", loud, docs, last_chat);
}

static PyMethodDef methods[] = {
    {"screen", screen, METH_VARARGS,
     "screen(records, loads, bitmaps, limits, overridden, max_fields, max_text, fold_table) -> "
     "(loud, docs, last_chat): "
     "the indexes of the records that are not surely chat, in order; for each, its parsed document "
     "when it is valid in the common shape, else None; the index of the last record passed over "
     "as chat (-1 if none)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "worker.stream._screen",
    "The classifier's chat screen: which records of a batch need the full path, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__screen(void)
{
    for (int i = 0; i < 8; i++) {
        field_lengths[i] = (Py_ssize_t)strlen(field_names[i]);
        names[i] = PyUnicode_InternFromString(field_names[i]);
        if (names[i] == NULL)
            return NULL;
    }
    intent_name = PyUnicode_InternFromString("intent");
    category_name = PyUnicode_InternFromString("category");
    value_name = PyUnicode_InternFromString("value");
    if (intent_name == NULL || category_name == NULL || value_name == NULL)
        return NULL;
    return PyModule_Create(&module);
}
