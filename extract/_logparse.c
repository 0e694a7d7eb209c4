/* The hot loop of support-site ingestion (extract.access_log): access-log lines cut into
 * Arrow column buffers, and the visitor ids of the distinct client IPs.
 *
 * parse(block, program) reads a block of lines (each ending with "\n", numbered from 0)
 * with the GIL released, so two threads parse the two halves of a block at once. A line is
 * matched against the variants of the log format token by token (extract/log_format.py
 * compiles the `program`); a line that matches none is returned as bad, with its byte span
 * and why. Quoted values honour backslash escapes (\" and \\ are unescaped); a line that is
 * not valid UTF-8 is read with each invalid byte written as \xNN (what Python's
 * "backslashreplace" gives), so nothing is lost and every string is valid UTF-8. Values
 * that repeat (IPs, user agents, referrers, ...) come back as dictionary codes.
 *
 * hmac_ids(offsets, data, offset, n, key) gives the first 16 bytes of HMAC-SHA256(key,
 * value), as 32 lowercase hex digits, of n Arrow string values (a dictionary's distinct IPs:
 * extract.visitors.Pseudonymiser.column), with the GIL released. The HMAC is OpenSSL's
 * (EVP_MAC, keyed once per call); nothing cryptographic is written here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* token kinds and fields: the positions in KINDS and FIELDS of extract/log_format.py
   (extract/access_log.py checks them at import against the constants below) */
enum { K_LITERAL, K_QUOTED, K_ANY, K_TOKEN, K_TIME, K_STATUS, K_BYTES, K_SECONDS, K_HOST,
       K_DIGITS };
enum { F_IP, F_TIME, F_REQUEST, F_STATUS, F_BYTES, F_REFERRER, F_USER_AGENT, F_REQUEST_TIME,
       F_SITE, N_FIELDS };
/* string columns of the output, in the order of STRING_COLUMNS in extract/access_log.py */
enum { C_IP, C_SITE, C_METHOD, C_PATH, C_QUERY, C_PROTOCOL, C_REFERRER, C_USER_AGENT,
       C_UTM_SOURCE, C_UTM_MEDIUM, C_UTM_CAMPAIGN, N_COLUMNS };
/* why a line is bad: the same numbers as REASONS in extract/access_log.py */
enum { R_NOT_PARSED = 1, R_UNBALANCED = 2 };

#define MAX_TOKENS 64
#define MAX_VARIANTS 8

typedef struct {
    int kind, field;
    const char *lit;
    Py_ssize_t lit_len;
    const unsigned char *scan; /* unquoted: scan[c] when the value goes on over byte c */
} Token;

typedef struct {
    Token tokens[MAX_TOKENS];
    int n;
} Variant;

typedef struct {
    Variant v[MAX_VARIANTS];
    int n;
    unsigned char (*scans)[256]; /* the tokens' scan tables */
} Program;

typedef struct {
    const char *p;
    Py_ssize_t n;
    int escaped; /* holds a backslash escape */
} Span;

/* --- growable buffers ------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_zeros(Buf *b, Py_ssize_t n) {
    if (buf_reserve(b, n)) return -1;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static inline void set_bit(Buf *bits, Py_ssize_t i) { bits->data[i >> 3] |= (char)(1 << (i & 7)); }

/* bit i of a bitmap stays addressable: zeros added as needed */
static int bits_for(Buf *bits, Py_ssize_t rows) {
    Py_ssize_t need = (rows + 7) / 8;
    return need > bits->len ? buf_zeros(bits, need - bits->len) : 0;
}

/* A string column. Plain: `index` holds the Arrow offsets (rows + 1) into `data`. Interned
 * (values that repeat: IPs, user agents, ...): `index` holds an int32 code per row, and
 * `offsets`/`data` the distinct strings, found again through a hash table, so a repeated
 * value is neither copied nor hashed again by Arrow. */
typedef struct {
    int interned;
    Buf index, valid, offsets, data, hashes, unescaped;
    uint32_t *slots; /* code + 1, 0 for an empty slot */
    Py_ssize_t slot_count, count, last; /* last: the code given last (-1: none yet) */
} Column;

/* two independent multiply-xorshift lanes (long user agents hash in half the time); the
 * last 16 bytes are read as two loads that may overlap bytes already hashed */
static uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    uint64_t a = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n, b = 0xC2B2AE3D27D4EB4FULL, w = 0, x = 0;
    const char *start = p, *end = p + n;
    for (; end - p > 16; p += 16) {
        memcpy(&w, p, 8);
        memcpy(&x, p + 8, 8);
        a = (a ^ w) * 0xBF58476D1CE4E5B9ULL;
        b = (b ^ x) * 0x94D049BB133111EBULL;
        a ^= a >> 31;
        b ^= b >> 29;
    }
    if (n >= 8) {
        memcpy(&w, n >= 16 ? end - 16 : start, 8);
        memcpy(&x, end - 8, 8);
    } else {
        for (Py_ssize_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)start[i] << (8 * i);
    }
    a = (a ^ w) * 0xBF58476D1CE4E5B9ULL;
    b = (b ^ x) * 0x94D049BB133111EBULL;
    uint64_t h = (a ^ (b >> 27) ^ (b << 37)) * 0xD6E8FEB86659FD93ULL;
    return h ^ (h >> 32);
}

static int col_init(Column *c, int interned) {
    c->interned = interned;
    c->last = -1;
    if (interned) {
        c->slot_count = 1024;
        c->slots = calloc(c->slot_count, sizeof *c->slots);
        return !c->slots || buf_zeros(&c->offsets, 4);
    }
    return buf_zeros(&c->index, 4); /* the first offset */
}

/* room for `rows` rows */
static int col_rows(Column *c, Py_ssize_t rows) {
    Py_ssize_t need = 4 * (rows + 1);
    return (need > c->index.cap && buf_reserve(&c->index, need - c->index.len)) ||
           bits_for(&c->valid, rows);
}

static int rehash(Column *c) {
    Py_ssize_t count = 2 * c->slot_count;
    uint32_t *slots = calloc(count, sizeof *slots);
    if (!slots) return -1;
    const uint64_t *hashes = (const uint64_t *)c->hashes.data;
    for (Py_ssize_t id = 0; id < c->count; id++) {
        size_t i = hashes[id] & (count - 1);
        while (slots[i]) i = (i + 1) & (count - 1);
        slots[i] = (uint32_t)id + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->slot_count = count;
    return 0;
}

/* the code of a distinct string, added when new; a value like the one before it (most
 * methods and protocols, over half the IPs and user agents) is not hashed */
static Py_ssize_t intern(Column *c, const char *p, Py_ssize_t n) {
    const int32_t *off = (const int32_t *)c->offsets.data;
    if (c->last >= 0 && off[c->last + 1] - off[c->last] == n &&
        (!n || !memcmp(c->data.data + off[c->last], p, n)))
        return c->last;
    uint64_t h = hash_bytes(p, n);
    size_t mask = c->slot_count - 1, i = h & mask;
    const uint64_t *hashes = (const uint64_t *)c->hashes.data;
    for (uint32_t slot; (slot = c->slots[i]); i = (i + 1) & mask) {
        uint32_t id = slot - 1;
        if (hashes[id] == h && off[id + 1] - off[id] == n &&
            (!n || !memcmp(c->data.data + off[id], p, n)))
            return c->last = id;
    }
    if (buf_reserve(&c->data, n) || buf_reserve(&c->offsets, 4) || buf_reserve(&c->hashes, 8))
        return -1;
    if (n) memcpy(c->data.data + c->data.len, p, n);
    c->data.len += n;
    Py_ssize_t id = c->count++;
    ((int32_t *)c->offsets.data)[id + 1] = (int32_t)c->data.len;
    c->offsets.len += 4;
    ((uint64_t *)c->hashes.data)[id] = h;
    c->hashes.len += 8;
    c->slots[i] = (uint32_t)id + 1;
    if (2 * c->count > c->slot_count && rehash(c)) return -1;
    return c->last = id;
}

static int col_put(Column *c, Py_ssize_t row, const char *p, Py_ssize_t n) {
    int32_t *index = (int32_t *)c->index.data;
    if (c->interned) {
        Py_ssize_t id = intern(c, p, n);
        if (id < 0) return -1;
        index[row] = (int32_t)id;
    } else {
        if (buf_reserve(&c->data, n)) return -1;
        if (n) memcpy(c->data.data + c->data.len, p, n);
        c->data.len += n;
        index[row + 1] = (int32_t)c->data.len;
    }
    set_bit(&c->valid, row);
    return 0;
}

/* a quoted value with \" and \\ unescaped (other backslashes are kept), into `out` */
static int unescape(const char *p, Py_ssize_t n, Buf *out) {
    out->len = 0;
    if (buf_reserve(out, n)) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n && (p[i + 1] == '"' || p[i + 1] == '\\')) i++;
        out->data[out->len++] = p[i];
    }
    return 0;
}

static int col_put_unescaped(Column *c, Py_ssize_t row, const char *p, Py_ssize_t n) {
    return unescape(p, n, &c->unescaped) ||
           col_put(c, row, c->unescaped.data, c->unescaped.len);
}

static inline void col_null(Column *c, Py_ssize_t row) {
    int32_t *index = (int32_t *)c->index.data;
    if (c->interned) index[row] = 0;
    else index[row + 1] = (int32_t)c->data.len;
}

static void col_free(Column *c) {
    Buf *bufs[] = {&c->index, &c->valid, &c->offsets, &c->data, &c->hashes, &c->unescaped};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
    free(c->slots);
    c->slots = NULL;
}

/* --- characters, UTF-8 ------------------------------------------------------------------- */

static inline int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* length of the valid UTF-8 sequence at s, 0 when none starts there */
static int utf8_length(const unsigned char *s, Py_ssize_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                       (s[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

static int is_ascii(const unsigned char *s, Py_ssize_t n) {
    uint64_t any = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        any |= w;
    }
    for (; i < n; i++) any |= s[i];
    return !(any & 0x8080808080808080ULL);
}

static int is_utf8(const unsigned char *s, Py_ssize_t n) {
    if (is_ascii(s, n)) return 1;
    for (Py_ssize_t i = 0; i < n;) {
        int k = utf8_length(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* the line with each byte that is not valid UTF-8 written as \xNN, into `out`, followed by
 * a newline (not counted: the sentinel that `match` relies on) */
static int backslash_replace(const unsigned char *s, Py_ssize_t n, Buf *out) {
    static const char hex[] = "0123456789abcdef";
    out->len = 0;
    if (buf_reserve(out, 4 * n + 1)) return -1;
    char *w = out->data;
    for (Py_ssize_t i = 0; i < n;) {
        int k = utf8_length(s + i, n - i);
        if (k) {
            memcpy(w, s + i, k);
            w += k;
            i += k;
        } else {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[s[i] >> 4];
            *w++ = hex[s[i] & 15];
            i++;
        }
    }
    out->len = w - out->data;
    *w = '\n';
    return 0;
}

/* --- matching a line --------------------------------------------------------------------- */

/* allowed[kind][c]: whether an unquoted value of that kind may hold byte c (never '"') */
static unsigned char allowed[K_DIGITS + 1][256];

static void fill_allowed(void) {
    for (int c = 0; c < 256; c++) {
        int blank = is_space(c) || c == '"';
        allowed[K_ANY][c] = allowed[K_TOKEN][c] = !blank;
        allowed[K_TIME][c] = c != ']' && c != '"';
        allowed[K_STATUS][c] = allowed[K_DIGITS][c] = is_digit(c);
        allowed[K_BYTES][c] = is_digit(c) || c == '-';
        allowed[K_SECONDS][c] = is_digit(c) || c == '.' || c == '-';
        allowed[K_HOST][c] = !blank && c != ':';
    }
}

static int all_digits(const char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (!is_digit(p[i])) return 0;
    return n > 0;
}

static int valid_value(int kind, const char *p, Py_ssize_t n) {
    switch (kind) {
    case K_ANY: return 1;
    case K_STATUS: return n == 3;
    case K_BYTES: return (n == 1 && p[0] == '-') || all_digits(p, n);
    case K_SECONDS: {
        if (n == 1 && p[0] == '-') return 1;
        const char *dot = memchr(p, '.', n);
        if (!dot) return all_digits(p, n);
        return all_digits(p, dot - p) && all_digits(dot + 1, n - (dot - p) - 1);
    }
    default: return n > 0;
    }
}

/* `end` is the line's "\n", where every scan stops; `slashes`: the line holds a backslash */
static int match(const Variant *v, const char *s, const char *end, int slashes, Span *out) {
    const char *p = s;
    for (int f = 0; f < N_FIELDS; f++) out[f].p = NULL;
    for (int i = 0; i < v->n; i++) {
        const Token *t = &v->tokens[i];
        if (t->kind == K_LITERAL) {
            if (end - p < t->lit_len || p[0] != t->lit[0] ||
                (t->lit_len > 1 && memcmp(p + 1, t->lit + 1, t->lit_len - 1)))
                return 0;
            p += t->lit_len;
            continue;
        }
        const char *value = p, *q;
        int escaped = 0;
        if (t->kind == K_QUOTED) {
            if (p >= end || *p != '"') return 0;
            value = ++p;
            if (!slashes) {
                q = memchr(p, '"', end - p);
                if (!q) return 0;
            } else { /* the closing quote is the first one not escaped */
                for (q = p; q < end && *q != '"'; q++) {
                    if (*q == '\\' && q + 1 < end) {
                        escaped = 1;
                        q++;
                    }
                }
                if (q >= end) return 0;
            }
            p = q + 1;
        } else {
            const unsigned char *scan = t->scan;
            for (q = p; scan[(unsigned char)*q]; q++) {
            }
            if (!valid_value(t->kind, p, q - p)) return 0;
            p = q;
        }
        if (t->field >= 0) {
            out[t->field].p = value;
            out[t->field].n = q - value;
            out[t->field].escaped = escaped;
        }
    }
    while (p < end && is_space(*p)) p++;
    return p == end;
}

/* a line's quotes are unbalanced when it ends inside a quoted value */
static int unbalanced(const char *s, Py_ssize_t n) {
    int open = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '"') open = !open;
        else if (open && s[i] == '\\') i++;
    }
    return open;
}

/* --- values -------------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two(const char *p) { return is_digit(p[0]) && is_digit(p[1]) ? (p[0] - '0') * 10 + p[1] - '0' : -1; }

/* "17/May/2015:10:05:03 +0000" -> microseconds since 1970 (UTC) */
static int parse_time(const char *p, Py_ssize_t n, int64_t *us) {
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    static const int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 26 || p[2] != '/' || p[6] != '/' || p[11] != ':' || p[14] != ':' ||
        p[17] != ':' || p[20] != ' ' || (p[21] != '+' && p[21] != '-'))
        return 0;
    char mon[3] = {(char)(p[3] | 0x20), (char)(p[4] | 0x20), (char)(p[5] | 0x20)};
    int month = 0;
    while (month < 12 && memcmp(months + 3 * month, mon, 3)) month++;
    int day = two(p), hi = two(p + 7), lo = two(p + 9), hour = two(p + 12);
    int minute = two(p + 15), second = two(p + 18), oh = two(p + 22), om = two(p + 24);
    if (month == 12 || day < 1 || hi < 0 || lo < 0 || hour < 0 || hour > 23 || minute < 0 ||
        minute > 59 || second < 0 || second > 59 || oh < 0 || oh > 23 || om < 0 || om > 59)
        return 0;
    int year = hi * 100 + lo;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > days_in[month] + (month == 1 && leap)) return 0;
    int64_t offset = (p[21] == '-' ? -1 : 1) * (oh * 60 + om) * 60;
    int64_t seconds = days_from_civil(year, month + 1, day) * 86400 + hour * 3600 +
                      minute * 60 + second - offset;
    if (seconds < -62135596800LL || seconds > 253402300799LL) return 0; /* 0001..9999 */
    *us = seconds * 1000000;
    return 1;
}

/* the raw value of query parameter `name` ("utm_source=") in a request target: the first one
 * right after a '?' or '&', up to the next '&' or '#' */
static const char *param(const char *p, Py_ssize_t n, const char *name, Py_ssize_t *len) {
    Py_ssize_t k = (Py_ssize_t)strlen(name);
    const char *end = p + n;
    for (const char *q = p; end - q >= k; q++) {
        q = memchr(q, name[0], end - q - k + 1);
        if (!q) return NULL;
        if (q > p && (q[-1] == '?' || q[-1] == '&') && !memcmp(q, name, k)) {
            const char *v = q + k, *e = v;
            while (e < end && *e != '&' && *e != '#') e++;
            *len = e - v;
            return v;
        }
    }
    return NULL;
}

static int is_static(const char *path, Py_ssize_t n) {
    static const char *exts[] = {"css", "js", "mjs", "png", "jpg", "jpeg", "gif", "webp",
                                 "avif", "svg", "ico", "woff", "woff2", "ttf", "eot", "map"};
    Py_ssize_t i = n;
    while (i > 0 && n - i < 6 && path[i - 1] != '.') i--;
    if (i == 0 || path[i - 1] != '.') return 0;
    Py_ssize_t k = n - i;
    char ext[6];
    for (Py_ssize_t j = 0; j < k; j++) ext[j] = (char)(path[i + j] | 0x20);
    for (size_t e = 0; e < sizeof exts / sizeof *exts; e++)
        if ((Py_ssize_t)strlen(exts[e]) == k && !memcmp(exts[e], ext, k)) return 1;
    return 0;
}

/* --- a block ------------------------------------------------------------------------------- */

/* which string columns are interned (see Column) */
static const int INTERNED[N_COLUMNS] = {
    [C_IP] = 1, [C_SITE] = 1, [C_METHOD] = 1, [C_PROTOCOL] = 1, [C_REFERRER] = 1,
    [C_USER_AGENT] = 1, [C_UTM_SOURCE] = 1, [C_UTM_MEDIUM] = 1, [C_UTM_CAMPAIGN] = 1};

typedef struct {
    Py_ssize_t rows, lines, capacity;
    Column col[N_COLUMNS];
    Buf line_no, requested_at, status, status_valid, bytes, bytes_valid, seconds,
        seconds_valid, is_static, static_valid;
    Buf bad_line_no, bad_start, bad_end, bad_reason;
    Buf scratch, request;
} Out;

static void out_free(Out *o) {
    for (int c = 0; c < N_COLUMNS; c++) col_free(&o->col[c]);
    Buf *bufs[] = {&o->line_no, &o->requested_at, &o->status, &o->status_valid, &o->bytes,
                   &o->bytes_valid, &o->seconds, &o->seconds_valid, &o->is_static,
                   &o->static_valid, &o->bad_line_no, &o->bad_start, &o->bad_end,
                   &o->bad_reason, &o->scratch, &o->request};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
}

/* room for `rows` rows in every per-row buffer (fixed-width ones are written by index and
 * get their length at the end) */
static int out_rows(Out *o, Py_ssize_t rows) {
    for (int c = 0; c < N_COLUMNS; c++)
        if (col_rows(&o->col[c], rows)) return -1;
    Buf *wide[] = {&o->line_no, &o->requested_at, &o->bytes, &o->seconds};
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        if (buf_reserve(wide[i], 8 * rows)) return -1;
    Buf *bits[] = {&o->status_valid, &o->bytes_valid, &o->seconds_valid, &o->is_static,
                   &o->static_valid};
    for (size_t i = 0; i < sizeof bits / sizeof *bits; i++)
        if (bits_for(bits[i], rows)) return -1;
    if (buf_reserve(&o->status, 2 * rows)) return -1;
    o->capacity = rows;
    return 0;
}

static int out_init(Out *o, Py_ssize_t bytes) {
    for (int c = 0; c < N_COLUMNS; c++)
        if (col_init(&o->col[c], INTERNED[c])) return -1;
    return out_rows(o, bytes / 128 + 256); /* about the lines of a block: grown if more */
}

static int put_value(Column *c, Py_ssize_t row, const Span *s) {
    return s->escaped ? col_put_unescaped(c, row, s->p, s->n) : col_put(c, row, s->p, s->n);
}

/* referrer and user agent: null when absent, empty or "-" */
static int put_optional(Column *c, Py_ssize_t row, const Span *s) {
    if (!s->p || s->n == 0 || (s->n == 1 && s->p[0] == '-')) {
        col_null(c, row);
        return 0;
    }
    return put_value(c, row, s);
}

/* method, path, query, protocol, utm parameters and static flag of a request */
static int put_request(Out *o, Py_ssize_t row, const Span *s) {
    Column *col = o->col;
    const char *r = s->p;
    Py_ssize_t n = s->n;
    if (r && s->escaped) {
        if (unescape(r, n, &o->request)) return -1;
        r = o->request.data;
        n = o->request.len;
    }
    const char *sp1 = r ? memchr(r, ' ', n) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', r + n - sp1 - 1) : NULL;
    const char *sp3 = sp2 ? memchr(sp2 + 1, ' ', r + n - sp2 - 1) : NULL;
    if (!r || sp3) { /* no request, or more than three words: none of its parts */
        int cols[] = {C_METHOD, C_PATH, C_QUERY, C_PROTOCOL, C_UTM_SOURCE, C_UTM_MEDIUM,
                      C_UTM_CAMPAIGN};
        for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) col_null(&col[cols[i]], row);
        return 0;
    }
    Py_ssize_t method_len = sp1 ? sp1 - r : n;
    if (method_len == 0 || (method_len == 1 && r[0] == '-')) col_null(&col[C_METHOD], row);
    else if (col_put(&col[C_METHOD], row, r, method_len)) return -1;
    if (!sp1) {
        int cols[] = {C_PATH, C_QUERY, C_PROTOCOL, C_UTM_SOURCE, C_UTM_MEDIUM, C_UTM_CAMPAIGN};
        for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) col_null(&col[cols[i]], row);
        return 0;
    }
    const char *target = sp1 + 1, *target_end = sp2 ? sp2 : r + n;
    Py_ssize_t target_len = target_end - target;
    const char *question = memchr(target, '?', target_len);
    Py_ssize_t path_len = question ? question - target : target_len;
    if (col_put(&col[C_PATH], row, target, path_len)) return -1;
    if (question && target_end - question > 1) {
        if (col_put(&col[C_QUERY], row, question + 1, target_end - question - 1)) return -1;
    } else {
        col_null(&col[C_QUERY], row);
    }
    if (sp2) {
        if (col_put(&col[C_PROTOCOL], row, sp2 + 1, r + n - sp2 - 1)) return -1;
    } else {
        col_null(&col[C_PROTOCOL], row);
    }
    static const char *names[] = {"utm_source=", "utm_medium=", "utm_campaign="};
    /* parameters start after a '?' or '&' */
    const char *amp = memchr(target, '&', question ? question - target : target_len);
    const char *params = amp ? amp : question;
    for (int u = 0; u < 3; u++) {
        Py_ssize_t len = 0;
        const char *v = params ? param(params, target_end - params, names[u], &len) : NULL;
        if (v && len) {
            if (col_put(&col[C_UTM_SOURCE + u], row, v, len)) return -1;
        } else {
            col_null(&col[C_UTM_SOURCE + u], row);
        }
    }
    set_bit(&o->static_valid, row);
    if (is_static(target, path_len)) set_bit(&o->is_static, row);
    return 0;
}

static int64_t to_int64(const char *p, Py_ssize_t n, int *ok) {
    int64_t v = 0;
    *ok = n > 0 && n <= 18;
    for (Py_ssize_t i = 0; *ok && i < n; i++) {
        if (!is_digit(p[i])) *ok = 0;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static int bad_line(Out *o, int64_t line_no, Py_ssize_t start, Py_ssize_t end, int reason) {
    if (buf_reserve(&o->bad_line_no, 8) || buf_reserve(&o->bad_start, 8) ||
        buf_reserve(&o->bad_end, 8) || buf_reserve(&o->bad_reason, 1))
        return -1;
    int64_t s = start, e = end;
    memcpy(o->bad_line_no.data + o->bad_line_no.len, &line_no, 8);
    memcpy(o->bad_start.data + o->bad_start.len, &s, 8);
    memcpy(o->bad_end.data + o->bad_end.len, &e, 8);
    o->bad_reason.data[o->bad_reason.len] = (char)reason;
    o->bad_line_no.len += 8;
    o->bad_start.len += 8;
    o->bad_end.len += 8;
    o->bad_reason.len += 1;
    return 0;
}

static int parse_line(Out *o, const Program *prog, const char *line, Py_ssize_t len,
                      int64_t line_no, Py_ssize_t start) {
    Py_ssize_t end = start + len; /* in the block, whatever the line becomes below */
    if (!is_utf8((const unsigned char *)line, len)) {
        if (backslash_replace((const unsigned char *)line, len, &o->scratch)) return -1;
        line = o->scratch.data;
        len = o->scratch.len;
    }
    Span f[N_FIELDS];
    int matched = 0;
    int slashes = len > 0 && memchr(line, '\\', len) != NULL;
    for (int v = 0; v < prog->n && !matched; v++)
        matched = match(&prog->v[v], line, line + len, slashes, f);
    int64_t us = 0;
    if (!matched || !f[F_IP].p || !f[F_TIME].p || !parse_time(f[F_TIME].p, f[F_TIME].n, &us))
        return bad_line(o, line_no, start, end,
                        !matched && unbalanced(line, len) ? R_UNBALANCED : R_NOT_PARSED);

    if (o->rows == o->capacity && out_rows(o, 2 * o->capacity)) return -1;
    Py_ssize_t row = o->rows++;
    Column *col = o->col;
    ((int64_t *)o->line_no.data)[row] = line_no;
    ((int64_t *)o->requested_at.data)[row] = us;
    if (put_value(&col[C_IP], row, &f[F_IP])) return -1;
    if (f[F_SITE].p) {
        if (put_value(&col[C_SITE], row, &f[F_SITE])) return -1;
    } else {
        col_null(&col[C_SITE], row);
    }
    if (put_request(o, row, &f[F_REQUEST]) || put_optional(&col[C_REFERRER], row, &f[F_REFERRER]) ||
        put_optional(&col[C_USER_AGENT], row, &f[F_USER_AGENT]))
        return -1;
    int ok = 0;
    int64_t status = f[F_STATUS].p ? to_int64(f[F_STATUS].p, f[F_STATUS].n, &ok) : 0;
    ok = ok && f[F_STATUS].n == 3; /* a quoted "$status" may hold anything */
    ((int16_t *)o->status.data)[row] = ok ? (int16_t)status : 0;
    if (ok) set_bit(&o->status_valid, row);
    int64_t bytes = f[F_BYTES].p ? to_int64(f[F_BYTES].p, f[F_BYTES].n, &ok) : 0;
    ((int64_t *)o->bytes.data)[row] = bytes;
    if (f[F_BYTES].p && ok) set_bit(&o->bytes_valid, row);
    double seconds = 0;
    Span *t = &f[F_REQUEST_TIME];
    if (t->p && t->n < 64 && !(t->n == 1 && t->p[0] == '-') &&
        valid_value(K_SECONDS, t->p, t->n)) { /* a quoted "$request_time" may hold anything */
        char text[64];
        memcpy(text, t->p, t->n);
        text[t->n] = 0;
        seconds = strtod(text, NULL);
        set_bit(&o->seconds_valid, row);
    }
    ((double *)o->seconds.data)[row] = seconds;
    return 0;
}

static int parse_block(Out *o, const Program *prog, const char *data, Py_ssize_t n) {
    /* a column holds at most 4 bytes per byte read (\xNN): its int32 offsets cannot wrap */
    if (n > INT32_MAX / 4) return -2;
    if (out_init(o, n)) return -1;
    const char *p = data, *end = data + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (!nl) break; /* the caller ends every block with a newline */
        if (parse_line(o, prog, p, nl - p, o->lines, p - data)) return -1;
        o->lines++;
        p = nl + 1;
    }
    return 0;
}

/* --- Python -------------------------------------------------------------------------------- */

/* a value of an unquoted token goes on over the bytes its kind allows, up to the first byte
 * of the literal text after it, and never over a newline (the sentinel ending every line) */
static int make_scans(Program *prog) {
    int count = 0;
    for (int v = 0; v < prog->n; v++) count += prog->v[v].n;
    prog->scans = malloc((size_t)count * 256 + 1);
    if (!prog->scans) {
        PyErr_NoMemory();
        return -1;
    }
    count = 0;
    for (int v = 0; v < prog->n; v++) {
        Variant *var = &prog->v[v];
        for (int i = 0; i < var->n; i++) {
            Token *t = &var->tokens[i];
            if (t->kind == K_LITERAL || t->kind == K_QUOTED) continue;
            unsigned char *scan = prog->scans[count++];
            memcpy(scan, allowed[t->kind], 256);
            scan['\n'] = 0;
            if (i + 1 < var->n && var->tokens[i + 1].kind == K_LITERAL)
                scan[(unsigned char)var->tokens[i + 1].lit[0]] = 0;
            t->scan = scan;
        }
    }
    return 0;
}

static int read_program(PyObject *program, Program *prog) {
    prog->scans = NULL;
    if (!PyTuple_Check(program)) { /* literals are borrowed: the tuples keep them alive */
        PyErr_SetString(PyExc_TypeError, "program must be a tuple of tuples of tokens");
        return -1;
    }
    PyObject *variants = PySequence_Fast(program, "program must be a sequence of variants");
    if (!variants) return -1;
    Py_ssize_t nv = PySequence_Fast_GET_SIZE(variants);
    if (nv < 1 || nv > MAX_VARIANTS) {
        Py_DECREF(variants);
        PyErr_SetString(PyExc_ValueError, "a log format has 1 to 8 variants");
        return -1;
    }
    prog->n = (int)nv;
    for (Py_ssize_t v = 0; v < nv; v++) {
        PyObject *item = PySequence_Fast_GET_ITEM(variants, v);
        if (!PyTuple_Check(item)) {
            Py_DECREF(variants);
            PyErr_SetString(PyExc_TypeError, "program must be a tuple of tuples of tokens");
            return -1;
        }
        PyObject *tokens = PySequence_Fast(item, "variant");
        if (!tokens) goto fail;
        Py_ssize_t nt = PySequence_Fast_GET_SIZE(tokens);
        if (nt > MAX_TOKENS) {
            Py_DECREF(tokens);
            PyErr_SetString(PyExc_ValueError, "a log format has at most 64 tokens");
            goto fail;
        }
        prog->v[v].n = (int)nt;
        for (Py_ssize_t i = 0; i < nt; i++) {
            Token *t = &prog->v[v].tokens[i];
            char *lit;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(tokens, i), "iiy#", &t->kind,
                                  &t->field, &lit, &t->lit_len) ||
                t->kind < K_LITERAL || t->kind > K_DIGITS || t->field < -1 ||
                t->field >= N_FIELDS || (t->kind == K_LITERAL && t->lit_len == 0)) {
                Py_DECREF(tokens);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad token");
                goto fail;
            }
            t->lit = lit; /* borrowed from the bytes in `program`, alive during the call */
        }
        Py_DECREF(tokens);
    }
    Py_DECREF(variants);
    return make_scans(prog);
fail:
    Py_DECREF(variants);
    return -1;
}

/* a read-only buffer that owns memory filled without the GIL (no copy into bytes) */
typedef struct {
    PyObject_HEAD char *data;
    Py_ssize_t len;
} Owned;

static int owned_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Owned *o = (Owned *)self;
    return PyBuffer_FillInfo(view, self, o->data, o->len, 1, flags);
}

static void owned_dealloc(PyObject *self) {
    free(((Owned *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs owned_buffer = {owned_getbuffer, NULL};

static PyTypeObject OwnedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_logparse.Buffer",
    .tp_basicsize = sizeof(Owned),
    .tp_dealloc = owned_dealloc,
    .tp_as_buffer = &owned_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "memory filled by parse()",
};

/* the buffer's memory, trimmed to its length, handed to a new Owned object */
static PyObject *as_bytes(Buf *b) {
    Owned *o = PyObject_New(Owned, &OwnedType);
    if (!o) return NULL;
    o->data = NULL; /* owned_dealloc frees it, also on the error path below */
    o->len = 0;
    if (buf_reserve(b, 1)) { /* never a NULL pointer, even when empty */
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    char *trimmed = b->cap - b->len > 65536 ? realloc(b->data, b->len + 1) : NULL;
    o->data = trimmed ? trimmed : b->data;
    o->len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return (PyObject *)o;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *program;
    if (!PyArg_ParseTuple(args, "y*O", &view, &program)) return NULL;
    Program prog;
    Out o;
    memset(&o, 0, sizeof o);
    PyObject *result = NULL;
    if (read_program(program, &prog)) goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = parse_block(&o, &prog, view.buf, view.len);
    Py_END_ALLOW_THREADS
    if (rc == -1) {
        PyErr_NoMemory();
        goto done;
    }
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "block too large: more than 512 MiB (a line that long?)");
        goto done;
    }
    PyObject *columns = PyList_New(N_COLUMNS);
    if (!columns) goto done;
    for (int c = 0; c < N_COLUMNS; c++) { /* (codes or None, validity, offsets, data) */
        Column *col = &o.col[c];
        col->valid.len = (o.rows + 7) / 8;
        PyObject *item;
        if (col->interned) {
            col->index.len = 4 * o.rows;
            item = Py_BuildValue("(NNNN)", as_bytes(&col->index), as_bytes(&col->valid),
                                 as_bytes(&col->offsets), as_bytes(&col->data));
        } else {
            col->index.len = 4 * (o.rows + 1);
            item = Py_BuildValue("(ONNN)", Py_None, as_bytes(&col->valid), as_bytes(&col->index),
                                 as_bytes(&col->data));
        }
        if (!item) {
            Py_DECREF(columns);
            goto done;
        }
        PyList_SET_ITEM(columns, c, item);
    }
    Py_ssize_t bits = (o.rows + 7) / 8;
    o.line_no.len = o.requested_at.len = o.bytes.len = o.seconds.len = 8 * o.rows;
    o.status.len = 2 * o.rows;
    o.status_valid.len = o.bytes_valid.len = o.seconds_valid.len = bits;
    o.is_static.len = o.static_valid.len = bits;
    result = Py_BuildValue(
        "{s:n,s:n,s:N,s:N,s:N,s:(NN),s:(NN),s:(NN),s:(NN),s:(NNNN)}", "lines", o.lines, "rows",
        o.rows, "strings", columns, "line_no", as_bytes(&o.line_no), "requested_at",
        as_bytes(&o.requested_at), "status", as_bytes(&o.status), as_bytes(&o.status_valid),
        "bytes", as_bytes(&o.bytes), as_bytes(&o.bytes_valid), "request_time",
        as_bytes(&o.seconds), as_bytes(&o.seconds_valid), "is_static_asset",
        as_bytes(&o.is_static), as_bytes(&o.static_valid), "bad", as_bytes(&o.bad_line_no),
        as_bytes(&o.bad_start), as_bytes(&o.bad_end), as_bytes(&o.bad_reason));
done:
    free(prog.scans);
    out_free(&o);
    PyBuffer_Release(&view);
    return result;
}

/* --- visitor ids: HMAC-SHA256 by OpenSSL -------------------------------------------------- */

/* OpenSSL's HMAC, fetched once (under the GIL) and shared: an EVP_MAC is read-only once
   fetched, each call keys a context of its own. Per value the context is restarted on its
   key (EVP_MAC_init with no key): about 0.2 us a value, against 0.16 us for the deprecated
   HMAC_CTX and 0.6 us for a copy of the keyed context (measured on 178,000 IPs) */
static EVP_MAC *hmac_mac;

/* the OpenSSL error at the top of this thread's queue as a Python exception */
static PyObject *openssl_error(const char *what) {
    unsigned long code = ERR_get_error();
    char reason[256] = "no reason given";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    PyErr_Format(PyExc_RuntimeError, "hmac_ids: OpenSSL %s failed: %s", what, reason);
    return NULL;
}

static PyObject *hmac_ids(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, key;
    Py_ssize_t offset, n;
    if (!PyArg_ParseTuple(args, "y*y*nny*", &offsets, &data, &offset, &n, &key)) return NULL;
    PyObject *result = NULL;
    EVP_MAC_CTX *ctx = NULL;
    Py_ssize_t count = offsets.len / 4; /* int32 offsets available */
    if (offset < 0 || n < 0 || count < 1 || offset > count - 1 || n > count - 1 - offset ||
        n > PY_SSIZE_T_MAX / 32) {
        PyErr_SetString(PyExc_ValueError, "hmac_ids: bad arguments");
        goto done;
    }
    if (key.len < 1) { /* never a visitor key (16+ bytes), and to EVP_MAC_init no key means
                          "keep the key you have": refused rather than left to chance */
        PyErr_SetString(PyExc_ValueError, "hmac_ids: the key is empty");
        goto done;
    }
    if (!hmac_mac && !(hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
        openssl_error("EVP_MAC_fetch(HMAC)");
        goto done;
    }
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    if (!(ctx = EVP_MAC_CTX_new(hmac_mac))) {
        openssl_error("EVP_MAC_CTX_new");
        goto done;
    }
    if (!EVP_MAC_init(ctx, key.buf, (size_t)key.len, params)) {
        openssl_error("EVP_MAC_init with the key");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, 32 * n);
    if (!result) goto done;
    char *hex_out = PyBytes_AS_STRING(result);
    const int32_t *off = (const int32_t *)offsets.buf + offset;
    const unsigned char *text = data.buf;
    const char *failed = NULL; /* the OpenSSL call that failed, if one did */
    int bad = 0;               /* offsets out of range */
    Py_BEGIN_ALLOW_THREADS
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    for (Py_ssize_t i = 0; i < n; i++) {
        if (off[i] < 0 || off[i + 1] < off[i] || off[i + 1] > data.len) {
            bad = 1;
            break;
        }
        size_t len = 0;
        /* i > 0: a NULL key restarts the MAC on the key given above (its pads kept) */
        if (i > 0 && !EVP_MAC_init(ctx, NULL, 0, NULL)) failed = "EVP_MAC_init";
        else if (!EVP_MAC_update(ctx, text + off[i], (size_t)(off[i + 1] - off[i])))
            failed = "EVP_MAC_update";
        else if (!EVP_MAC_final(ctx, mac, &len, sizeof mac)) failed = "EVP_MAC_final";
        else if (len != 32) failed = "EVP_MAC_final (not 32 bytes)";
        if (failed) break;
        for (int j = 0; j < 16; j++) {
            hex_out[32 * i + 2 * j] = hex[mac[j] >> 4];
            hex_out[32 * i + 2 * j + 1] = hex[mac[j] & 15];
        }
    }
    Py_END_ALLOW_THREADS
    if (bad || failed) {
        Py_CLEAR(result);
        if (bad) PyErr_SetString(PyExc_ValueError, "hmac_ids: offsets out of range");
        else openssl_error(failed);
    }
done:
    EVP_MAC_CTX_free(ctx);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return result;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS, "parse(block, program) -> dict of buffers"},
    {"hmac_ids", hmac_ids, METH_VARARGS,
     "hmac_ids(offsets, data, offset, n, key) -> 32 hex digits per value: the first 16 bytes"
     " of HMAC-SHA256(key, value) of n Arrow string values (OpenSSL)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_logparse", NULL, -1, methods};

/* the enums' numbers, as module constants: extract/access_log.py checks its tuples at import */
#define ADD_ENUM(name)                                                                    \
    if (PyModule_AddIntConstant(m, #name, name) < 0) goto fail;

PyMODINIT_FUNC PyInit__logparse(void) {
    fill_allowed();
    if (PyType_Ready(&OwnedType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    ADD_ENUM(K_LITERAL) ADD_ENUM(K_QUOTED) ADD_ENUM(K_ANY) ADD_ENUM(K_TOKEN) ADD_ENUM(K_TIME)
    ADD_ENUM(K_STATUS) ADD_ENUM(K_BYTES) ADD_ENUM(K_SECONDS) ADD_ENUM(K_HOST) ADD_ENUM(K_DIGITS)
    ADD_ENUM(F_IP) ADD_ENUM(F_TIME) ADD_ENUM(F_REQUEST) ADD_ENUM(F_STATUS) ADD_ENUM(F_BYTES)
    ADD_ENUM(F_REFERRER) ADD_ENUM(F_USER_AGENT) ADD_ENUM(F_REQUEST_TIME) ADD_ENUM(F_SITE)
    ADD_ENUM(C_IP) ADD_ENUM(C_SITE) ADD_ENUM(C_METHOD) ADD_ENUM(C_PATH) ADD_ENUM(C_QUERY)
    ADD_ENUM(C_PROTOCOL) ADD_ENUM(C_REFERRER) ADD_ENUM(C_USER_AGENT) ADD_ENUM(C_UTM_SOURCE)
    ADD_ENUM(C_UTM_MEDIUM) ADD_ENUM(C_UTM_CAMPAIGN)
    ADD_ENUM(R_NOT_PARSED) ADD_ENUM(R_UNBALANCED)
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
