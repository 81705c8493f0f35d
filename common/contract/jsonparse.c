/*
 * avk_json_parse: see jsonparse.h. yajl reports each value as an event; a
 * stack of open containers turns the events into a jansson tree. A
 * callback that finds a problem records it and stops the parse.
 */
#include "common/contract/jsonparse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "common/contract/json_int.h"

struct builder {
        json_t *root;
        json_t *open[AVK_JSON_MAX_DEPTH]; /* containers not yet closed */
        char *key;                        /* the pending key of open[depth - 1] */
        size_t key_len, key_cap;
        int depth;
        const char *problem; /* why a callback stopped the parse */
};

static int fail(struct builder *b, const char *problem)
{
        b->problem = problem;
        return 0;
}

/* Adds v (a new reference) where the parse is: the root, the next array
 * element, or the pending object key's value. */
static int add(struct builder *b, json_t *v)
{
        if (!v)
                return fail(b, "out of memory");
        if (b->depth == 0) {
                b->root = v;
                return 1;
        }
        json_t *top = b->open[b->depth - 1];
        if (json_is_array(top))
                return json_array_append_new(top, v) == 0 ? 1 : fail(b, "out of memory");
        /* jansson checks the key's UTF-8 in full here (and steals v either way). */
        return json_object_setn_new(top, b->key, b->key_len, v) == 0
                   ? 1
                   : fail(b, "object key is not valid UTF-8");
}

static int on_null(void *ctx)
{
        return add(ctx, json_null());
}

static int on_boolean(void *ctx, int value)
{
        return add(ctx, json_boolean(value));
}

int avk_json_number(const char *text, size_t len, struct avk_json_scalar *out, const char **problem)
{
        char digits[64];
        if (len >= sizeof(digits)) {
                *problem = "number too long";
                return -1;
        }
        memcpy(digits, text, len);
        digits[len] = '\0';
        char *end;
        errno = 0;
        if (strpbrk(digits, ".eE")) {
                double d = strtod(digits, &end);
                if (errno == ERANGE || *end) {
                        *problem = "real number out of range";
                        return -1;
                }
                *out = (struct avk_json_scalar){.kind = AVK_JSON_KIND_REAL, .real = d};
                return 0;
        }
        long long i = strtoll(digits, &end, 10);
        if (errno == ERANGE || *end) {
                *problem = "integer out of range";
                return -1;
        }
        *out = (struct avk_json_scalar){.kind = AVK_JSON_KIND_INTEGER, .integer = i};
        return 0;
}

static int on_number(void *ctx, const char *text, size_t len)
{
        struct builder *b = ctx;
        struct avk_json_scalar n;
        const char *problem;
        if (avk_json_number(text, len, &n, &problem) != 0)
                return fail(b, problem);
        return add(b, n.kind == AVK_JSON_KIND_REAL ? json_real(n.real)
                                                   : json_integer((json_int_t)n.integer));
}

/* A jansson string from yajl's bytes; jansson checks the UTF-8 in full. */
static json_t *string(struct builder *b, const unsigned char *s, size_t len)
{
        if (memchr(s, '\0', len)) {
                fail(b, "\\u0000 is not allowed in strings");
                return NULL;
        }
        json_t *v = json_stringn((const char *)s, len);
        if (!v)
                fail(b, "invalid UTF-8 in string");
        return v;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
        json_t *v = string(ctx, s, len);
        return v ? add(ctx, v) : 0;
}

static int open_container(struct builder *b, json_t *c)
{
        if (b->depth == AVK_JSON_MAX_DEPTH) {
                json_decref(c);
                return fail(b, "nested too deeply");
        }
        json_incref(c);
        if (!add(b, c)) {
                json_decref(c);
                return 0;
        }
        b->open[b->depth++] = c;
        return 1;
}

static int on_start_map(void *ctx)
{
        return open_container(ctx, json_object());
}

/* The key is kept as bytes until its value comes: a jansson string per key
 * would cost an allocation for nothing. */
static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
        struct builder *b = ctx;
        if (memchr(s, '\0', len))
                return fail(b, "\\u0000 is not allowed in object keys");
        if (json_object_getn(b->open[b->depth - 1], (const char *)s, len))
                return fail(b, "duplicate object key");
        if (len + 1 > b->key_cap) {
                char *key = realloc(b->key, len + 1);
                if (!key)
                        return fail(b, "out of memory");
                b->key = key;
                b->key_cap = len + 1;
        }
        memcpy(b->key, s, len);
        b->key[len] = '\0';
        b->key_len = len;
        return 1;
}

static int on_end(void *ctx)
{
        struct builder *b = ctx;
        json_decref(b->open[--b->depth]);
        return 1;
}

static int on_start_array(void *ctx)
{
        return open_container(ctx, json_array());
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* Line and column (from 1) of byte offset at in buf. */
static void position(const char *buf, size_t at, int *line, int *column)
{
        *line = 1;
        *column = 1;
        for (size_t i = 0; i < at; i++) {
                if (buf[i] == '\n') {
                        ++*line;
                        *column = 1;
                } else {
                        ++*column;
                }
        }
}

/* yajl turns a lone surrogate escape (\ud800) into '?' silently, where
 * jansson rejects it; documents with surrogate escapes (rare: most senders
 * write UTF-8, not escapes) go to jansson's parser instead. */
int avk_json_has_surrogate_escape(const char *buf, size_t len)
{
        for (const char *p = buf; (p = memchr(p, '\\', len - (size_t)(p - buf))) != NULL; p++) {
                if ((size_t)(buf + len - p) >= 3 && p[1] == 'u' && (p[2] == 'd' || p[2] == 'D'))
                        return 1;
        }
        return 0;
}

static json_t *parse_with_jansson(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!v) /* jansson quotes the token "near" the error: never the input */
                snprintf(errstr, errstr_size, "line %d column %d: %.*s", jerr.line, jerr.column,
                         (int)(strstr(jerr.text, " near '")
                                   ? strstr(jerr.text, " near '") - jerr.text
                                   : (long)strlen(jerr.text)),
                         jerr.text);
        return v;
}

json_t *avk_json_parse(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
        if (avk_json_has_surrogate_escape(buf, len))
                return parse_with_jansson(buf, len, errstr, errstr_size);
        struct builder b = {0};
        yajl_handle h = yajl_alloc(&callbacks, NULL, &b);
        if (!h) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
        size_t at = yajl_get_bytes_consumed(h);
        if (st == yajl_status_ok) {
                st = yajl_complete_parse(h);
                at = len;
        }
        if (st == yajl_status_ok && b.root) {
                yajl_free(h);
                free(b.key);
                return b.root;
        }
        int line, column;
        position(buf, at < len ? at : len, &line, &column);
        if (b.problem) {
                snprintf(errstr, errstr_size, "line %d column %d: %s", line, column, b.problem);
        } else if (st == yajl_status_ok) {
                snprintf(errstr, errstr_size, "line %d column %d: no JSON document", line, column);
        } else {
                /* Not verbose: the message must not quote the input. */
                unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
                const char *text = msg ? (const char *)msg : "syntax error";
                snprintf(errstr, errstr_size, "line %d column %d: %.*s", line, column,
                         (int)strcspn(text, "\n"), text);
                if (msg)
                        yajl_free_error(h, msg);
        }
        while (b.depth > 0)
                json_decref(b.open[--b.depth]);
        free(b.key);
        json_decref(b.root);
        yajl_free(h);
        return NULL;
}
