/*
 * The single pass from JSON text to Avro (avk_json_stream_to_avro), with
 * each of its readers (simdjson and yajl), against the tree path it stands
 * in for (avk_json_parse + avk_json_to_avro): on a
 * large corpus - the samples, the fixtures in tests/data, the documents of
 * the parser's tests, and thousands of mutations of the samples (every field
 * removed or of every wrong type, identifiers and timestamps right and
 * wrong, keys reordered and duplicated, invalid UTF-8, escapes, overlong
 * strings, unknown symbols and fields, deep nesting, every truncation) - the
 * single pass accepts exactly the documents the tree path accepts, with the
 * same Avro bytes. What it gives up on, the tree path answers, so errors
 * are the tree path's by construction; a few kinds of document are the tree
 * path's alone (arrays, unknown fields when skipping them; surrogate
 * escapes when yajl reads), and there the single pass must give up.
 */
#include "common/contract/jsonstream.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/json_int.h"
#include "common/contract/jsonparse.h"
#include "tests/support/contract.h"
#include "tests/support/test_data.h"

#define FILL_ID "0f0e0d0c-0b0a-4908-8706-050403020100"

/* Options to run every document under: intake, a projection's, and none. */
static const struct avk_json_opts projecting = {.flags = AVK_JSON_ENUM_FALLBACK |
                                                         AVK_JSON_IGNORE_UNKNOWN,
                                                .now_ms = CONTRACT_NOW_MS,
                                                .today_ymd = 20261123};
static const struct avk_json_opts no_rules = {.now_ms = CONTRACT_NOW_MS, .today_ymd = 20261123};

struct subject { /* one schema under test, with a value per path */
        const avk_schema_t *schema;
        avk_json_plan_t *plan;
        avro_value_t tree, stream;
        const char *id_field; /* filled when absent, as the reporter does */
};

struct tally {
        size_t docs, both_accept, tree_only;
};

static avk_catalog_t *catalog;
static struct subject reported, response;
static struct tally tally;
/* Set while the documents use arrays or maps, which are the tree path's. */
static int containers_in_use;

static void fill_id(char *buf, size_t size)
{
        snprintf(buf, size, "%s", FILL_ID);
}

static void subject_open(struct subject *s, const char *name, const char *id_field)
{
        char err[256];
        s->schema = avk_catalog_by_name(catalog, name);
        ck_assert_ptr_nonnull(s->schema);
        s->plan = avk_json_plan_new(s->schema, err, sizeof(err));
        ck_assert_msg(s->plan != NULL, "%s", err);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(s->schema), &s->tree), 0);
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(s->schema), &s->stream), 0);
        s->id_field = id_field;
}

static void subject_close(struct subject *s)
{
        avro_value_decref(&s->tree);
        avro_value_decref(&s->stream);
        avk_json_plan_destroy(s->plan);
}

static void setup(void)
{
        char err[256];
        catalog = avk_catalog_new_builtin(err, sizeof(err));
        ck_assert_msg(catalog != NULL, "%s", err);
        subject_open(&reported, "DeviationReported", "deviation_id");
        subject_open(&response, "DeviationResponse", "response_id");
        tally = (struct tally){0};
}

static void teardown(void)
{
        subject_close(&reported);
        subject_close(&response);
        avk_catalog_destroy(catalog);
}

/* The Avro binary of value, malloc'd. */
static char *binary_of(avro_value_t *value, size_t *len)
{
        ck_assert_int_eq(avro_value_sizeof(value, len), 0);
        char *buf = malloc(*len ? *len : 1);
        avro_writer_t w = avro_writer_memory(buf, (int64_t)*len);
        ck_assert_int_eq(avro_value_write(w, value), 0);
        avro_writer_free(w);
        return buf;
}

/* The tree path as the reporter takes it: parse, add the id when absent,
 * validate and fill. 1 when it accepts. */
static int tree_path(struct subject *s, const char *text, size_t len,
                     const struct avk_json_opts *opts, int fill)
{
        char reason[256];
        json_t *doc = avk_json_parse(text, len, reason, sizeof(reason));
        if (!doc)
                return 0;
        if (fill && json_is_object(doc) && !json_object_get(doc, s->id_field))
                json_object_set_new(doc, s->id_field, json_string(FILL_ID));
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(s->schema, doc, &s->tree, opts, &errs);
        json_decref(doc);
        ck_assert_int_eq(rc != 0, avk_errors_total(&errs) != 0);
        return rc == 0;
}

/* Whether text holds a form feed or vertical tab: yajl reads them as
 * whitespace between tokens, simdjson (as JSON's grammar) does not; raw in
 * a string they are an error on every path. */
static int yajl_whitespace(const char *text, size_t len)
{
        return memchr(text, '\f', len) || memchr(text, '\v', len);
}

/* The single pass with reader against the tree path's verdict tree_ok
 * (its value in s->tree): the same verdict and, when both accept, the same
 * Avro bytes. 1 when the single pass accepts. */
static int compare_reader(struct subject *s, enum avk_json_reader reader, int tree_ok,
                          const char *text, size_t len, const struct avk_json_opts *opts, int fill,
                          const char *what)
{
        const char *name = reader == AVK_JSON_READER_SIMDJSON ? "simdjson" : "yajl";
        struct avk_json_fill id = {s->id_field, fill_id};
        int stream_ok = avk_json_stream_to_avro(s->plan, reader, text, len, fill ? &id : NULL,
                                                &s->stream, opts) == 0;
        ck_assert_msg(!stream_ok || tree_ok,
                      "%s: the single pass (%s) accepts what the tree rejects: %.*s", what, name,
                      (int)(len < 300 ? len : 300), text);
        /* Skipping unknown fields and surrogate escapes may be the tree's
         * alone (simdjson reads most surrogate escapes itself); so, read by
         * simdjson, is yajl's leniency (yajl_whitespace()). */
        int tree_only = (opts->flags & AVK_JSON_IGNORE_UNKNOWN) || containers_in_use ||
                        avk_json_has_surrogate_escape(text, len) ||
                        (reader == AVK_JSON_READER_SIMDJSON && yajl_whitespace(text, len));
        ck_assert_msg(!tree_ok || stream_ok || tree_only,
                      "%s: the single pass (%s) gave up on an accepted document: %.*s", what, name,
                      (int)(len < 300 ? len : 300), text);
        if (!stream_ok)
                return 0;
        size_t tree_len, stream_len;
        char *t = binary_of(&s->tree, &tree_len);
        char *b = binary_of(&s->stream, &stream_len);
        ck_assert_msg(tree_len == stream_len && memcmp(t, b, tree_len) == 0,
                      "%s: different Avro bytes (%zu and %zu, %s) for %.*s", what, tree_len,
                      stream_len, name, (int)(len < 300 ? len : 300), text);
        free(t);
        free(b);
        return 1;
}

/* Runs text through the tree path and the single pass with each reader
 * (simdjson and yajl) and requires the same verdict and, when accepted, the
 * same Avro bytes. */
static void compare_one(struct subject *s, const char *text, size_t len,
                        const struct avk_json_opts *opts, int fill, const char *what)
{
        int tree_ok = tree_path(s, text, len, opts, fill);
        int simd_ok =
            compare_reader(s, AVK_JSON_READER_SIMDJSON, tree_ok, text, len, opts, fill, what);
        int yajl_ok = compare_reader(s, AVK_JSON_READER_YAJL, tree_ok, text, len, opts, fill, what);
        ck_assert_msg(simd_ok == yajl_ok || (yajl_ok && yajl_whitespace(text, len)) ||
                          (simd_ok && avk_json_has_surrogate_escape(text, len)),
                      "%s: simdjson %s, yajl %s: %.*s", what, simd_ok ? "accepts" : "gives up",
                      yajl_ok ? "accepts" : "gives up", (int)(len < 300 ? len : 300), text);
        tally.docs++;
        if (tree_ok && !simd_ok)
                tally.tree_only++;
        else if (tree_ok)
                tally.both_accept++;
}

static void compare_text(struct subject *s, const char *text, size_t len, const char *what)
{
        static const struct avk_json_opts *const all_opts[] = {&contract_intake, &projecting,
                                                               &no_rules};
        for (size_t i = 0; i < sizeof(all_opts) / sizeof(all_opts[0]); i++)
                for (int fill = 0; fill < 2; fill++)
                        compare_one(s, text, len, all_opts[i], fill, what);
}

#define COMPARE_LITERAL(s, literal) compare_text((s), literal, sizeof(literal) - 1, literal)

/* A document in the ways a sender may write it: compact in its order,
 * indented with sorted keys, and ASCII-only with \u escapes. */
static void compare_tree(struct subject *s, const json_t *doc, const char *what)
{
        static const size_t flags[] = {JSON_COMPACT | JSON_PRESERVE_ORDER,
                                       JSON_INDENT(2) | JSON_SORT_KEYS,
                                       JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER};
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                char *text = json_dumps(doc, flags[i] | JSON_ENCODE_ANY);
                ck_assert_ptr_nonnull(text);
                compare_text(s, text, strlen(text), what);
                free(text);
        }
}

static json_t *load(const char *path)
{
        char err[512];
        json_t *doc = test_data_load_json(path, err, sizeof(err));
        ck_assert_msg(doc != NULL, "%s", err);
        return doc;
}

/* A response a receiving unit files (the fields test_reporter files, and
 * the optional ones). */
static json_t *response_doc(void)
{
        json_error_t jerr;
        json_t *doc =
            json_loads("{\"response_id\":\"5b0c9c1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d\","
                       "\"deviation_id\":\"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
                       "\"responded_at\":\"2026-11-20T09:00:00.000Z\",\"party\":\"VGR\","
                       "\"unit_hsa_id\":\"SE2321000131-E000000012345\",\"kind\":\"ANSWERED\","
                       "\"analysis\":\"Rutinen för utskrivning följdes inte.\","
                       "\"action_plan\":\"Ny checklista.\",\"suggested_receiver\":null,"
                       "\"comment\":null}",
                       0, &jerr);
        ck_assert_msg(doc != NULL, "%s", jerr.text);
        return doc;
}

/* ---- mutations of a document tree ---- */

static const char *const wrong_values[] = {
    "null", "true",  "false",       "0",  "-1", "1.5",       "1e2", "1099511627776",
    "\"\"", "\"x\"", "\"WEATHER\"", "{}", "[]", "{\"a\":1}", "[1]", "-9223372036854775808",
};

/* String values with a meaning to some field: identifiers right, wrong and
 * to be normalised; timestamps; symbols; lengths at and past the limits. */
static const char *const string_values[] = {
    "VGR",
    "vgr",
    "1480",
    "0180",
    "Stockholm",
    "3F1C2A9E-8B7D-4C1E-9A65-0D2F4B6C8E10",
    "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e1",
    "not-a-uuid",
    "400314-1233",
    "194003141233",
    "19400314-1233",
    "194003141234",
    "SE2321000131-E000000012345",
    "SE2321000132-X",
    "SE2120001215-HSK0042",
    "2026-11-16T16:40:00+01:00",
    "2026-11-23T12:04:59Z",
    "2026-11-23T12:05:01Z",
    "2026-02-30T10:00:00Z",
    "2026-11-20T13:05:00.123456Z",
    "2026-11-20T13:05:00",
    "yesterday",
    "NURSE",
    "nurse",
    "OTHER",
    "UNKNOWN",
    "NONE",
    "PHYSICIAN",
    "INPATIENT",
    "Åäö – 漢字 😀",
    "tab\there \"quoted\" back\\slash / \xe2\x82\xac",
};

/* Strings of n copies of unit (1-4 bytes): lengths around the limits. */
static json_t *repeated(const char *unit, size_t n)
{
        size_t u = strlen(unit);
        char *buf = malloc(n * u + 1);
        for (size_t i = 0; i < n; i++)
                memcpy(buf + i * u, unit, u);
        buf[n * u] = '\0';
        json_t *j = json_string(buf);
        free(buf);
        return j;
}

static void mutate_object(struct subject *s, json_t *root, json_t *obj, const char *path)
{
        /* The keys first: the object changes while we go. */
        size_t n = json_object_size(obj), i = 0;
        char **keys = calloc(n ? n : 1, sizeof(*keys));
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) keys[i++] = strdup(key);
        for (i = 0; i < n; i++) {
                char what[256];
                json_t *orig = json_incref(json_object_get(obj, keys[i]));
                snprintf(what, sizeof(what), "%s.%s removed", path, keys[i]);
                json_object_del(obj, keys[i]);
                compare_tree(s, root, what);
                for (size_t w = 0; w < sizeof(wrong_values) / sizeof(wrong_values[0]); w++) {
                        json_error_t jerr;
                        json_object_set_new(obj, keys[i],
                                            json_loads(wrong_values[w], JSON_DECODE_ANY, &jerr));
                        snprintf(what, sizeof(what), "%s.%s = %s", path, keys[i], wrong_values[w]);
                        compare_tree(s, root, what);
                }
                for (size_t w = 0; w < sizeof(string_values) / sizeof(string_values[0]); w++) {
                        json_object_set_new(obj, keys[i], json_string(string_values[w]));
                        snprintf(what, sizeof(what), "%s.%s = \"%s\"", path, keys[i],
                                 string_values[w]);
                        compare_tree(s, root, what);
                }
                static const struct {
                        const char *unit;
                        size_t n;
                } lengths[] = {{"a", 100},
                               {"a", 101},
                               {"a", 200},
                               {"a", 201},
                               {"a", 256},
                               {"a", 257},
                               {"\xc3\xb6", 4000},
                               {"\xc3\xb6", 4001},
                               {"a", 8000},
                               {"a", 8001},
                               {"\xf0\x9f\x98\x80", 8000}};
                for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
                        json_object_set_new(obj, keys[i], repeated(lengths[l].unit, lengths[l].n));
                        snprintf(what, sizeof(what), "%s.%s = %zu x '%s'", path, keys[i],
                                 lengths[l].n, lengths[l].unit);
                        compare_tree(s, root, what);
                }
                json_object_set(obj, keys[i], orig);
                if (json_is_object(orig)) {
                        snprintf(what, sizeof(what), "%s.%s", path, keys[i]);
                        mutate_object(s, root, orig, what);
                }
                json_decref(orig);
                free(keys[i]);
        }
        free(keys);
        char what[256];
        snprintf(what, sizeof(what), "%s: unknown field", path);
        json_object_set_new(obj, "unknown_field", json_true());
        compare_tree(s, root, what);
        json_object_set_new(obj, "unknown_field", json_pack("{s:[i]}", "deep", 1));
        compare_tree(s, root, what);
        json_object_del(obj, "unknown_field");
}

/* ---- mutations of a document's text ---- */

/* text with insert put at offset at, run through both paths. */
static void compare_spliced(struct subject *s, const char *text, size_t at, const char *insert,
                            size_t insert_len, size_t cut, const char *what)
{
        size_t len = strlen(text);
        char *buf = malloc(len + insert_len + 1);
        memcpy(buf, text, at);
        memcpy(buf + at, insert, insert_len);
        memcpy(buf + at + insert_len, text + at + cut, len - at - cut);
        compare_text(s, buf, len + insert_len - cut, what);
        free(buf);
}

static void mutate_text(struct subject *s, const json_t *doc)
{
        char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t len = strlen(text);

        /* Every truncation. */
        for (size_t cut = 0; cut < len; cut++)
                compare_one(s, text, cut, &contract_intake, 1, "truncated");

        /* A key again, or an unknown one, at the start and the end of
         * every object. */
        static const char *const keys[] = {
            "deviation_id", "response_id", "party", "unit_hsa_id",    "role", "level",
            "personal_id",  "description", "flags", "child_involved", "kind", "comment"};
        for (size_t at = 0; at < len; at++) {
                if (text[at] != '{' && text[at] != '}')
                        continue;
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                        char insert[64];
                        int n = text[at] == '{'
                                    ? snprintf(insert, sizeof(insert), "\"%s\":null,", keys[k])
                                    : snprintf(insert, sizeof(insert), ",\"%s\":\"VGR\"", keys[k]);
                        compare_spliced(s, text, at + (text[at] == '{'), insert, (size_t)n, 0,
                                        "key inserted");
                }
        }

        /* Bytes and escapes inside the first string value, and after it. */
        static const char *const inserts[] = {
            "\xff",
            "\xc0\xaf",
            "\xc3",
            "\x80",
            "\xed\xa0\x80",
            "\xf4\x90\x80\x80",
            "\xf0\x9f\x98\x80",
            "\xe2\x82\xac",
            "\\u00f6",
            "\\n",
            "\\\"",
            "\\/",
            "\\u0000",
            "\\ud83d\\ude00",
            "\\udc00",
            "\\uD83D",
            "\\u20ac",
            "\\x",
            "\t",
            "\x01",
        };
        const char *colon = strstr(text, "\":\"");
        ck_assert_ptr_nonnull(colon);
        size_t in_string = (size_t)(colon - text) + 4;
        /* And in free text, where no identifier rule would catch them. */
        const char *free_text = strstr(text, "\"description\":\"");
        if (!free_text)
                free_text = strstr(text, "\"analysis\":\"");
        ck_assert_ptr_nonnull(free_text);
        size_t in_free_text = (size_t)(strchr(free_text, ':') - text) + 5;
        for (size_t i = 0; i < sizeof(inserts) / sizeof(inserts[0]); i++) {
                compare_spliced(s, text, in_string, inserts[i], strlen(inserts[i]), 0,
                                "bytes in a string");
                compare_spliced(s, text, in_free_text, inserts[i], strlen(inserts[i]), 0,
                                "bytes in free text");
                compare_spliced(s, text, 2, inserts[i], strlen(inserts[i]), 0, "bytes in a key");
        }

        /* After the document. */
        static const char *const trailers[] = {" ",  "\n",      "\r\n\t", " x", "{}",
                                               "[]", "/* c */", "\n{}",   ",",  "0"};
        for (size_t i = 0; i < sizeof(trailers) / sizeof(trailers[0]); i++)
                compare_spliced(s, text, len, trailers[i], strlen(trailers[i]), 0, "trailing");
        /* Bytes around it that are not JSON whitespace, which one parser
         * might skip and another not: a NUL, a byte-order mark, form feed,
         * vertical tab, DEL, Ctrl-Z; before and after. */
        static const struct {
                const char *bytes;
                size_t len;
        } strays[] = {{"\0", 1},   {" \0", 2},  {"\xef\xbb\xbf", 3}, {"\f", 1},          {"\v", 1},
                      {"\x7f", 1}, {"\x1a", 1}, {"\xc2\xa0", 2},     {"\xe2\x80\xa8", 3}};
        for (size_t i = 0; i < sizeof(strays) / sizeof(strays[0]); i++) {
                compare_spliced(s, text, 0, strays[i].bytes, strays[i].len, 0, "stray before");
                compare_spliced(s, text, len, strays[i].bytes, strays[i].len, 0, "stray after");
                compare_spliced(s, text, 1, strays[i].bytes, strays[i].len, 0, "stray inside");
        }

        /* Reordered keys: the members backwards. */
        json_t *reversed = json_object();
        const char **order = calloc(json_object_size(doc), sizeof(*order));
        size_t n = 0;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)doc, key, v) order[n++] = key;
        while (n > 0) {
                n--;
                json_object_set(reversed, order[n], json_object_get(doc, order[n]));
        }
        compare_tree(s, reversed, "keys reversed");
        free(order);
        json_decref(reversed);
        free(text);
}

static void mutate_all(struct subject *s, json_t *doc)
{
        compare_tree(s, doc, "as is");
        mutate_text(s, doc);
        mutate_object(s, doc, doc, "");
}

/* ---- tests ---- */

START_TEST(samples_and_fixtures_give_the_same_verdict_and_bytes)
{
        char **paths;
        size_t n = test_data_sample_paths(&paths);
        ck_assert_uint_ge(n, 3);
        for (size_t i = 0; i < n; i++) {
                char err[512];
                char *text = test_data_read(paths[i], err, sizeof(err));
                ck_assert_msg(text != NULL, "%s", err);
                compare_text(&reported, text, strlen(text), paths[i]);
                free(text);
        }
        test_data_free_paths(paths);
        /* Every sample is accepted by both, unchanged and with its id left out. */
        ck_assert_uint_eq(tally.both_accept, n * 6);
        static const char *const fixtures[] = {
            "fhir/adverse-event-discharge.json",
            "fhir/adverse-event-near-miss.json",
            "fhir/adverse-event-minimal.json",
            "rules/long-texts.json",
            "rules/syntax-error.json",
            "rules/conditions.json",
            "directory/partial.json",
            "directory/notify.json",
            "deadlines/conditions.json",
            "deviation_reported_v2.avsc",
        };
        for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
                char path[1024], err[512];
                char *text = test_data_read(test_data_path(fixtures[i], path, sizeof(path)), err,
                                            sizeof(err));
                ck_assert_msg(text != NULL, "%s", err);
                compare_text(&reported, text, strlen(text), fixtures[i]);
                compare_text(&response, text, strlen(text), fixtures[i]);
                free(text);
        }
}
END_TEST

START_TEST(every_mutation_of_the_samples_gives_the_same_verdict_and_bytes)
{
        char **paths;
        size_t n = test_data_sample_paths(&paths);
        for (size_t i = 0; i < n; i++) {
                json_t *doc = load(paths[i]);
                mutate_all(&reported, doc);
                json_decref(doc);
        }
        test_data_free_paths(paths);
        /* The corpus is large, and both verdicts are well represented. */
        ck_assert_uint_gt(tally.docs, 100000);
        ck_assert_uint_gt(tally.both_accept, 5000);
        ck_assert_uint_gt(tally.docs - tally.both_accept - tally.tree_only, 50000);
}
END_TEST

/* text with every occurrence of from replaced by to; free it. */
static char *replace_all(const char *text, const char *from, const char *to)
{
        size_t from_len = strlen(from), to_len = strlen(to), n = 0;
        for (const char *at = text; (at = strstr(at, from)) != NULL; at += from_len)
                n++;
        char *out = malloc(strlen(text) + n * to_len + 1), *w = out;
        ck_assert_ptr_nonnull(out);
        for (const char *at = text, *hit; *at; at = hit + from_len) {
                hit = strstr(at, from);
                if (!hit) {
                        strcpy(w, at);
                        return out;
                }
                memcpy(w, at, (size_t)(hit - at));
                w += hit - at;
                memcpy(w, to, to_len);
                w += to_len;
        }
        *w = '\0';
        return out;
}

/* simdjson's reader hands strings and keys over from where they stand in
 * the text, and unescapes only those with a backslash (jsonsimd.h): keys
 * and symbols written with escapes, and white space on either side of a
 * colon, take none of the tree's documents from the single pass. */
START_TEST(escaped_keys_and_symbols_and_spaced_colons_give_the_same_verdict_and_bytes)
{
        char **paths;
        size_t n = test_data_sample_paths(&paths);
        ck_assert_uint_ge(n, 3);
        for (size_t i = 0; i < n; i++) {
                json_t *doc = load(paths[i]);
                char *compact = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
                char *indented = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
                char *variants[] = {
                    /* In keys ("deviation_id") and symbols ("SPECIAL_HOUSING") alike. */
                    replace_all(compact, "_", "\\u005f"),
                    replace_all(compact, "A", "\\u0041"),
                    replace_all(indented, "\": ", "\" \t\r\n: \n"),
                    /* A string's token ends in white space before the comma or brace. */
                    replace_all(indented, ",", "  ,"),
                };
                for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                        size_t before = tally.both_accept;
                        compare_text(&reported, variants[v], strlen(variants[v]), paths[i]);
                        ck_assert_msg(tally.both_accept == before + 6,
                                      "%s, variant %zu: %zu of 6 accepted", paths[i], v,
                                      tally.both_accept - before);
                        free(variants[v]);
                }
                free(compact);
                free(indented);
                json_decref(doc);
        }
        test_data_free_paths(paths);
}
END_TEST

START_TEST(every_mutation_of_a_response_gives_the_same_verdict_and_bytes)
{
        json_t *doc = response_doc();
        mutate_all(&response, doc);
        json_decref(doc);
        ck_assert_uint_gt(tally.both_accept, 1000);
}
END_TEST

START_TEST(parser_test_documents_give_the_same_verdict)
{
        COMPARE_LITERAL(&reported, "{\"a\":null,\"b\":true,\"c\":false,\"d\":0,\"e\":-12,"
                                   "\"f\":1.5,\"g\":-2e-3,\"h\":\"text\",\"i\":[],\"j\":{},"
                                   "\"k\":[1,[2,[3]],{\"x\":\"y\"}]}");
        COMPARE_LITERAL(&reported, "[9223372036854775807,-9223372036854775808,1E300,0.0]");
        COMPARE_LITERAL(&reported, "\"\\u00e5\\u00e4\\u00f6 \\ud83d\\ude00 \\\"\\\\\\/\\b\"");
        COMPARE_LITERAL(&reported, "\"Åäö – 漢字 😀\"");
        COMPARE_LITERAL(&reported, "  \n {\"padded\" : [ 1 , 2 ] }  \n");
        COMPARE_LITERAL(&reported, "42");
        COMPARE_LITERAL(&reported, "\"\xc0\xaf\"");
        COMPARE_LITERAL(&reported, "{\"k\xff\":1}");
        COMPARE_LITERAL(&reported, "\"\\ud800\"");
        COMPARE_LITERAL(&reported, "{\"x\":\"\\ud83d\", y}");
        COMPARE_LITERAL(&reported, "\"a\\u0000b\"");
        COMPARE_LITERAL(&reported, "{\"a\":1,\"a\":2}");
        COMPARE_LITERAL(&reported, "9223372036854775808");
        COMPARE_LITERAL(&reported, "1e999");
        COMPARE_LITERAL(&reported, "{\n  \"a\": 1,\n  \"b\": x\n}");
        COMPARE_LITERAL(&reported, "");
        COMPARE_LITERAL(&reported, "   ");
        COMPARE_LITERAL(&reported, "{}");
        COMPARE_LITERAL(&reported, "null");
        COMPARE_LITERAL(&reported, "{'a':1}");
        COMPARE_LITERAL(&reported, "{\"a\":01}");
        COMPARE_LITERAL(&reported, "/* comment */ {}");
        COMPARE_LITERAL(&reported, "{\"patient\":{\"personal_id\":\"19121212-1212\" x}}");
        COMPARE_LITERAL(&response, "{\"response_id\":1}");
        /* Past every depth limit, in an object the schema has. */
        char deep[4 * AVK_JSON_MAX_DEPTH * 12];
        size_t n = 0;
        for (int i = 0; i < 2 * AVK_JSON_MAX_DEPTH; i++)
                n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"harm\":");
        deep[n++] = '1';
        for (int i = 0; i < 2 * AVK_JSON_MAX_DEPTH; i++)
                deep[n++] = '}';
        compare_text(&reported, deep, n, "deep");
        ck_assert_uint_eq(tally.both_accept, 0);
}
END_TEST

START_TEST(number_forms_give_the_same_verdict_and_bytes)
{
        /* Numbers only go where the schema has booleans and enums here: a
         * made-up schema with every scalar type puts them to use. */
        static const char schema_text[] =
            "{\"type\":\"record\",\"name\":\"Every\",\"fields\":["
            "{\"name\":\"i\",\"type\":\"int\"},"
            "{\"name\":\"l\",\"type\":[\"null\",\"long\"],\"default\":null},"
            "{\"name\":\"d\",\"type\":\"double\",\"default\":0.5},"
            "{\"name\":\"f\",\"type\":\"float\",\"default\":1},"
            "{\"name\":\"b\",\"type\":\"boolean\",\"default\":true},"
            "{\"name\":\"n\",\"type\":\"null\",\"default\":null},"
            "{\"name\":\"s\",\"type\":[\"null\",\"string\",\"long\"],\"default\":null},"
            "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],"
            "\"default\":\"A\"},\"default\":\"B\"},"
            "{\"name\":\"r\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Inner\","
            "\"fields\":[{\"name\":\"x\",\"type\":\"long\",\"default\":7},"
            "{\"name\":\"next\",\"type\":[\"null\",\"Inner\"],\"default\":null}]}],"
            "\"default\":null},"
            "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"},\"default\":[]},"
            "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"},\"default\":{}}]}";
        char err[256];
        struct subject every = {.id_field = "s"};
        every.schema = avk_schema_new(schema_text, err, sizeof(err));
        ck_assert_msg(every.schema != NULL, "%s", err);
        every.plan = avk_json_plan_new(every.schema, err, sizeof(err));
        ck_assert_ptr_nonnull(every.plan);
        avro_generic_value_new(avk_schema_iface(every.schema), &every.tree);
        avro_generic_value_new(avk_schema_iface(every.schema), &every.stream);
        static const char *const numbers[] = {
            "0",
            "-0",
            "1",
            "-1",
            "2147483647",
            "2147483648",
            "-2147483649",
            "1.0",
            "1e2",
            "-2.5E-3",
            "1e400",
            "9223372036854775807",
            "9223372036854775808",
            "01",
            "1.",
            ".5",
            "0.1e1",
            "123456789012345678901234567890123456789012345678901234567890123456",
        };
        static const char *const fields[] = {"i", "l", "d", "f", "b", "n", "s", "e", "r"};
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
                for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
                        char text[256];
                        int len = snprintf(text, sizeof(text), "{\"i\":3,\"%s\":%s}", fields[f],
                                           numbers[i]);
                        compare_text(&every, text, (size_t)len, "number");
                }
        }
        COMPARE_LITERAL(&every, "{\"i\":1,\"r\":{\"x\":1,\"next\":{\"x\":2,\"next\":{}}}}");
        COMPARE_LITERAL(&every, "{\"i\":1,\"r\":{\"next\":{\"next\":null}},\"e\":\"A\"}");
        COMPARE_LITERAL(&every, "{\"i\":1,\"e\":\"C\",\"b\":false,\"n\":null,\"s\":\"x\"}");
        COMPARE_LITERAL(&every, "{\"i\":1,\"s\":\"2026-01-01T00:00:00Z\",\"l\":5}");
        ck_assert_uint_gt(tally.both_accept, 100);
        ck_assert_uint_eq(tally.tree_only, 0);
        /* Arrays and maps are the tree path's: the single pass gives up. */
        containers_in_use = 1;
        COMPARE_LITERAL(&every, "{\"i\":1,\"a\":[1,2]}");
        COMPARE_LITERAL(&every, "{\"i\":1,\"m\":{\"x\":1}}");
        containers_in_use = 0;
        ck_assert_uint_eq(tally.tree_only, 12);
        avro_value_decref(&every.tree);
        avro_value_decref(&every.stream);
        avk_json_plan_destroy(every.plan);
        avk_schema_destroy((avk_schema_t *)every.schema);
}
END_TEST

START_TEST(absent_id_is_filled_and_checked_like_a_present_one)
{
        /* Through the single pass alone: the fill takes the field's rules. */
        char **paths;
        test_data_sample_paths(&paths);
        json_t *doc = load(paths[0]);
        test_data_free_paths(paths);
        json_object_del(doc, "deviation_id");
        char *text = json_dumps(doc, JSON_COMPACT);
        struct avk_json_fill id = {"deviation_id", fill_id};
        ck_assert_int_eq(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON, text,
                                                 strlen(text), &id, &reported.stream,
                                                 &contract_intake),
                         0);
        avro_value_t field;
        const char *got;
        size_t size;
        ck_assert_int_eq(avro_value_get_by_name(&reported.stream, "deviation_id", &field, NULL), 0);
        ck_assert_int_eq(avro_value_get_string(&field, &got, &size), 0);
        ck_assert_str_eq(got, FILL_ID);
        /* Without a fill the id is required: the single pass gives up. */
        ck_assert_int_eq(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON, text,
                                                 strlen(text), NULL, &reported.stream,
                                                 &contract_intake),
                         -1);
        free(text);
        json_decref(doc);
}
END_TEST

/* The single pass refuses a deviation naming its reporter's party as
 * receiver, as the tree path does, whether the receiver comes before the
 * reporter in the text (sorted keys) or after it. */
START_TEST(naming_oneself_as_receiver_is_refused_in_any_key_order)
{
        char **paths;
        test_data_sample_paths(&paths);
        json_t *doc = load(paths[0]);
        test_data_free_paths(paths);
        const char *reporter =
            json_string_value(json_object_get(json_object_get(doc, "reporter"), "party"));
        json_object_set_new(json_object_get(doc, "receiver"), "party", json_string(reporter));
        static const size_t orders[] = {JSON_COMPACT | JSON_PRESERVE_ORDER,
                                        JSON_COMPACT | JSON_SORT_KEYS};
        for (size_t i = 0; i < 2; i++) {
                char *text = json_dumps(doc, orders[i]);
                ck_assert_int_eq(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON,
                                                         text, strlen(text), NULL, &reported.stream,
                                                         &contract_intake),
                                 -1);
                ck_assert_int_eq(tree_path(&reported, text, strlen(text), &contract_intake, 0), 0);
                /* A projection applies no intake rule, on either path. */
                ck_assert_int_eq(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON,
                                                         text, strlen(text), NULL, &reported.stream,
                                                         &projecting),
                                 0);
                free(text);
        }
        compare_tree(&reported, doc, "receiver.party is reporter.party");
        json_decref(doc);
}
END_TEST

/* The single pass finds an enum's symbol by a hash of its length and end
 * bytes: each symbol is found, and a string that is none of them - a prefix
 * or an extension of one, another with the same length and ends, its lower
 * case, the empty string - is found as none, which the tree refuses at
 * intake and takes the default for in a projection. */
START_TEST(a_symbol_is_found_only_when_it_is_one_whole)
{
        static const char *const symbols[] = {"NURSE",           "ASSISTANT_NURSE",
                                              "PHYSICIAN",       "OCCUPATIONAL_THERAPIST",
                                              "PHYSIOTHERAPIST", "CARE_STAFF",
                                              "SOCIAL_WORKER",   "COORDINATOR",
                                              "MANAGER",         "OTHER"};
        static const char *const none[] = {"NURS",
                                           "NURSEE",
                                           "N",
                                           "",
                                           "NUSSE",
                                           "nurse",
                                           "OTHERS",
                                           "ASSISTANT_NURSE_"
                                           "AND_PHYSIOTHERAPIST"};
        char **paths;
        test_data_sample_paths(&paths);
        json_t *doc = load(paths[0]);
        test_data_free_paths(paths);
        json_t *reporter = json_object_get(doc, "reporter");
        for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
                json_object_set_new(reporter, "role", json_string(symbols[i]));
                size_t before = tally.both_accept;
                compare_tree(&reported, doc, symbols[i]);
                ck_assert_msg(tally.both_accept == before + 18, "%s", symbols[i]);
        }
        for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
                json_object_set_new(reporter, "role", json_string(none[i]));
                char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
                ck_assert_msg(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON, text,
                                                      strlen(text), NULL, &reported.stream,
                                                      &contract_intake) == -1,
                              "%s", none[i]);
                ck_assert_msg(avk_json_stream_to_avro(reported.plan, AVK_JSON_READER_SIMDJSON, text,
                                                      strlen(text), NULL, &reported.stream,
                                                      &projecting) == 0,
                              "%s", none[i]);
                free(text);
                compare_tree(&reported, doc, none[i]);
        }
        json_decref(doc);
}
END_TEST

/* The triage desk answers in its record_party's name and may pass a deviation on to that
 * party; a party (responder PARTY, or none) may not name itself. Both readers of the single
 * pass decide as the tree does, whether the responder comes before the suggestion in the text
 * (sorted keys) or after it. */
START_TEST(only_the_desk_may_suggest_the_party_it_answers_for_in_any_key_order)
{
        json_t *doc = response_doc();
        json_object_set_new(doc, "kind", json_string("REJECTED_WRONG_RECEIVER"));
        json_object_set_new(doc, "suggested_receiver", json_string("VGR"));
        static const size_t orders[] = {JSON_COMPACT | JSON_PRESERVE_ORDER,
                                        JSON_COMPACT | JSON_SORT_KEYS};
        static const enum avk_json_reader readers[] = {AVK_JSON_READER_SIMDJSON,
                                                       AVK_JSON_READER_YAJL};
        static const char *const responders[] = {"TRIAGE_DESK", "PARTY", NULL};
        for (size_t r = 0; r < 3; r++) {
                int desk = r == 0;
                if (responders[r])
                        json_object_set_new(doc, "responder", json_string(responders[r]));
                else
                        json_object_del(doc, "responder");
                for (size_t i = 0; i < 2; i++) {
                        char *text = json_dumps(doc, orders[i]);
                        for (size_t k = 0; k < 2; k++)
                                ck_assert_int_eq(avk_json_stream_to_avro(
                                                     response.plan, readers[k], text, strlen(text),
                                                     NULL, &response.stream, &contract_intake),
                                                 desk ? 0 : -1);
                        ck_assert_int_eq(
                            tree_path(&response, text, strlen(text), &contract_intake, 0), desk);
                        free(text);
                }
                compare_tree(&response, doc, responders[r] ? responders[r] : "no responder");
        }
        json_decref(doc);
}
END_TEST

/* An avk.differsFrom that says too little (here an exception without its value) is the
 * schema's error on both paths: the single pass has no plan, the tree refuses every document
 * and names the field; neither checks half a rule. */
START_TEST(a_malformed_differs_from_is_refused_on_both_paths)
{
        char err[256];
        avk_schema_t *schema = avk_schema_new(
            "{\"type\":\"record\",\"name\":\"Pair\",\"fields\":[{\"name\":\"a\",\"type\":"
            "\"string\"},{\"name\":\"b\",\"type\":\"string\",\"avk.differsFrom\":{\"field\":"
            "\"a\",\"reason\":\"two\",\"unless\":{\"field\":\"a\"}}}]}",
            err, sizeof(err));
        ck_assert_msg(schema != NULL, "%s", err);
        ck_assert_ptr_null(avk_json_plan_new(schema, err, sizeof(err)));
        ck_assert_str_eq(err, "an avk.differsFrom is malformed or names no single field");
        avro_value_t v;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(schema), &v), 0);
        json_t *doc = json_pack("{s:s, s:s}", "a", "x", "b", "y");
        struct avk_errors errs;
        char joined[256];
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(schema, doc, &v, &contract_intake, &errs), -1);
        ck_assert_str_eq(avk_errors_join(&errs, joined, sizeof(joined)),
                         "b: the schema's avk.differsFrom is malformed");
        json_decref(doc);
        avro_value_decref(&v);
        avk_schema_destroy(schema);
}
END_TEST

/* A record of more fields than one word of the pass's "fields met" bits holds: every word is
 * cleared for each object, so a document met after one that had them all is read again in
 * full (a bit left over would stop it as a duplicate), a field of the last word left out
 * takes its default, and a duplicate in a later word still stops the pass. */
#define WIDE_FIELDS 130

/* The document of the wide record: fields f0.. in order, without skip (-1: none), with dup
 * twice (-1: none); malloc'd. */
static char *wide_document(int skip, int dup)
{
        size_t cap = WIDE_FIELDS * 16 + 64, used = 0;
        char *text = malloc(cap);
        used += (size_t)snprintf(text + used, cap - used, "{");
        for (int i = 0; i < WIDE_FIELDS; i++) {
                for (int times = i == dup ? 2 : 1; i != skip && times > 0; times--)
                        used += (size_t)snprintf(text + used, cap - used, "%s\"f%d\":\"v\"",
                                                 used > 1 ? "," : "", i);
        }
        snprintf(text + used, cap - used, "}");
        return text;
}

static int wide_encode(const avk_json_plan_t *plan, enum avk_json_reader reader, const char *text,
                       struct avk_json_stream_buf *out)
{
        return avk_json_stream_encode(plan, reader, text, strlen(text), NULL, &contract_intake,
                                      out);
}

START_TEST(every_word_of_a_wide_record_is_read_afresh_for_each_object)
{
        char err[256];
        size_t cap = WIDE_FIELDS * 48 + 128, used = 0;
        char *schema_text = malloc(cap);
        used += (size_t)snprintf(schema_text, cap,
                                 "{\"type\":\"record\",\"name\":\"Wide\",\"fields\":[");
        for (int i = 0; i < WIDE_FIELDS; i++)
                used += (size_t)snprintf(schema_text + used, cap - used,
                                         "%s{\"name\":\"f%d\",\"type\":\"string\"%s}", i ? "," : "",
                                         i, i == WIDE_FIELDS - 1 ? ",\"default\":\"v\"" : "");
        snprintf(schema_text + used, cap - used, "]}");
        avk_schema_t *schema = avk_schema_new(schema_text, err, sizeof(err));
        ck_assert_msg(schema != NULL, "%s", err);
        avk_json_plan_t *plan = avk_json_plan_new(schema, err, sizeof(err));
        ck_assert_msg(plan != NULL, "%s", err);
        char *whole = wide_document(-1, -1), *last_left_out = wide_document(WIDE_FIELDS - 1, -1),
             *duplicate = wide_document(-1, WIDE_FIELDS - 2);
        static const enum avk_json_reader readers[] = {AVK_JSON_READER_SIMDJSON,
                                                       AVK_JSON_READER_YAJL};
        for (size_t r = 0; r < sizeof(readers) / sizeof(readers[0]); r++) {
                struct avk_json_stream_buf out = {0};
                ck_assert_int_eq(wide_encode(plan, readers[r], whole, &out), 0);
                unsigned char expected[WIDE_FIELDS * 2];
                ck_assert_uint_eq(out.avro_len, sizeof(expected));
                memcpy(expected, out.avro, sizeof(expected));
                ck_assert_int_eq(wide_encode(plan, readers[r], whole, &out), 0);
                ck_assert_int_eq(wide_encode(plan, readers[r], last_left_out, &out), 0);
                ck_assert_uint_eq(out.avro_len, sizeof(expected));
                ck_assert_mem_eq(out.avro, expected, sizeof(expected));
                ck_assert_int_eq(wide_encode(plan, readers[r], duplicate, &out), -1);
                ck_assert_int_eq(wide_encode(plan, readers[r], whole, &out), 0);
                avk_json_stream_buf_free(&out);
        }
        free(whole);
        free(last_left_out);
        free(duplicate);
        avk_json_plan_destroy(plan);
        avk_schema_destroy(schema);
        free(schema_text);
}
END_TEST

static Suite *json_stream_suite(void)
{
        Suite *s = suite_create("json_stream");
        TCase *tc = tcase_create("equivalence");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, samples_and_fixtures_give_the_same_verdict_and_bytes);
        tcase_add_test(tc, every_mutation_of_the_samples_gives_the_same_verdict_and_bytes);
        tcase_add_test(tc, every_mutation_of_a_response_gives_the_same_verdict_and_bytes);
        tcase_add_test(tc,
                       escaped_keys_and_symbols_and_spaced_colons_give_the_same_verdict_and_bytes);
        tcase_add_test(tc, parser_test_documents_give_the_same_verdict);
        tcase_add_test(tc, number_forms_give_the_same_verdict_and_bytes);
        tcase_add_test(tc, absent_id_is_filled_and_checked_like_a_present_one);
        tcase_add_test(tc, naming_oneself_as_receiver_is_refused_in_any_key_order);
        tcase_add_test(tc, a_symbol_is_found_only_when_it_is_one_whole);
        tcase_add_test(tc, only_the_desk_may_suggest_the_party_it_answers_for_in_any_key_order);
        tcase_add_test(tc, a_malformed_differs_from_is_refused_on_both_paths);
        tcase_add_test(tc, every_word_of_a_wide_record_is_read_afresh_for_each_object);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(json_stream_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
