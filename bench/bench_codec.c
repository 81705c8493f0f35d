/*
 * bench_codec: records per second through the codec layers, on one realistic
 * DeviationReported (sample 02 with a longer Swedish description, about 450
 * bytes as a single-object framed message).
 *
 * Each case runs for a fixed wall time after a short warm-up, on one thread,
 * reusing its values and buffers as the services do. The raw avro-c cases
 * (no framing, no bounds check, no fingerprint lookup) are the baseline the
 * "vs raw" column divides by: encode-side cases by the raw write, decode-side
 * cases by the raw read. Before any timing, every path is checked once to
 * round-trip the document exactly, so a fast but wrong codec cannot report.
 *
 * Run by scripts/bench.sh on a Release build; never by ctest.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>
#include <jansson.h>

#include "common/contract/avroprog.h"
#include "common/contract/codec.h"
#include "common/util/errors.h"
#include "common/contract/json.h"
#include "common/contract/jsonparse.h"
#include "common/contract/jsonstream.h"
#include "common/contract/schema.h"

#ifndef AVK_BENCH_BUILD_TYPE
#define AVK_BENCH_BUILD_TYPE ""
#endif
#ifndef AVK_BENCH_SANITIZE
#define AVK_BENCH_SANITIZE 0
#endif

#define TOPIC            "deviation.reported"
#define DEFAULT_SECONDS  2.0
#define MAX_SECONDS      3600.0
#define WARMUP_FRACTION  0.1
#define WARMUP_MAX_NS    250000000LL
#define BATCH            32 /* operations between clock reads */
#define TARGET_MIN_BYTES 440
#define TARGET_MAX_BYTES 460
#define SOE_HEADER_SIZE  10 /* 0xC3 0x01 + 8-byte fingerprint (codec.h) */
#define V2_FIELD         "language"
#define V2_FIELD_DEFAULT "sv"

/* deploy/samples/02-no-physician-reachable.json with the description
 * lengthened so that the framed message is 440-460 bytes (checked at start).
 * Compact, as a filing system's HTTP client would send it. */
static const char document_text[] =
    "{\"deviation_id\":\"9a7e4b21-55c3-4f0e-8d1a-6b2c3d4e5f60\","
    "\"occurred_at\":\"2026-11-18T02:15:00.000Z\","
    "\"discovered_at\":null,"
    "\"reported_at\":\"2026-11-18T08:30:00.000Z\","
    "\"reporter\":{\"party\":\"1490\",\"unit_hsa_id\":\"SE2120001561-SABO7\",\"role\":\"NURSE\"},"
    "\"receiver\":{\"party\":\"VGR\",\"unit_hsa_id\":null},"
    "\"location\":{\"party\":\"1490\",\"unit_hsa_id\":\"SE2120001561-SABO7\","
    "\"care_setting\":\"SPECIAL_HOUSING\"},"
    "\"municipality_code\":\"1490\","
    "\"event_class\":\"INCIDENT_WITH_HARM\","
    "\"category\":\"PHYSICIAN_AVAILABILITY\","
    "\"competence\":\"PHYSICIAN\","
    "\"home_visits\":\"NONE\","
    "\"harm\":{\"level\":\"MODERATE\",\"psychological\":true},"
    "\"patient\":{\"personal_id\":\"195306224584\",\"age_group\":\"UNKNOWN\",\"sex\":\"UNKNOWN\"},"
    "\"description\":\"Boende på särskilt boende med andningssvårigheter nattetid. Ingen läkare "
    "gick att nå via den överenskomna vägen under 90 minuter; ambulans fick tillkallas. "
    "Brukaren och anhöriga blev mycket oroliga. Bakjouren nåddes inte.\","
    "\"immediate_actions\":\"Ambulans tillkallad, patienten fördes till akutmottagning.\","
    "\"agreement\":\"PHYSICIAN_RESPONSIBILITY\","
    "\"routine\":null,"
    "\"flags\":{\"possible_lex_maria\":true,\"possible_lex_sarah\":false,"
    "\"child_involved\":false},"
    "\"source_system\":\"Lifecare\","
    "\"reply_reference\":null}";

struct bench {
        avk_catalog_t *catalog;
        const avk_schema_t *schema;        /* DeviationReported, owned by catalog */
        avk_json_plan_t *plan;             /* the single pass's plan of schema */
        struct avk_json_stream_buf stream; /* its working memory */
        avk_schema_t *schema_v2;           /* the same plus V2_FIELD, a reader only */
        avk_codec_t *codec;
        struct avk_json_opts opts;
        json_t *document;       /* document_text parsed once, for the checks */
        avro_value_t value;     /* reused by the JSON intake and decode cases */
        avro_value_t prepared;  /* the document, filled once: what encode writes */
        avro_value_t value_v2;  /* reused by the projection case */
        unsigned char *message; /* framed message, a copy (the codec's is reused) */
        size_t message_len;
        char *raw;      /* Avro binary alone, for the raw avro-c cases */
        size_t raw_len; /* message_len minus the single-object header */
        avro_writer_t raw_writer;
        avro_reader_t raw_reader;
        avk_avroprog_t *prog;       /* DeviationReported compiled */
        avk_avroprog_t *prog_v1_v2; /* its records read as schema_v2 */
        avk_avroprog_slot_t *slots; /* what the program decodes into */
        avk_avroprog_slot_t *slots_v2;
        avk_avroprog_slot_t *filled; /* the document, decoded once: what the program encodes */
        unsigned char *prog_out;     /* the program's encoding, raw_len bytes */
        char errstr[1024];
};

/* One operation of a case; 0 or -1 with the reason in b->errstr. */
typedef int (*bench_op)(struct bench *b);

enum side { SIDE_ENCODE, SIDE_DECODE };

struct bench_case {
        const char *id; /* for -c */
        const char *name;
        bench_op op;
        enum side side;
        int is_raw;  /* the baseline of its side */
        int on_body; /* works on the Avro body, not the message */
};

struct result {
        int ran;
        double ns_per_op;
};

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the operations ---- */

static int json_to_value(struct bench *b, const char *text, size_t len, avro_value_t *out)
{
        char reason[256];
        json_t *doc = avk_json_parse(text, len, reason, sizeof(reason));
        if (!doc) {
                snprintf(b->errstr, sizeof(b->errstr), "not valid JSON: %s", reason);
                return -1;
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(b->schema, doc, out, &b->opts, &errs);
        json_decref(doc);
        if (rc != 0)
                avk_errors_join(&errs, b->errstr, sizeof(b->errstr));
        return rc;
}

static int op_json_to_avro(struct bench *b)
{
        return json_to_value(b, document_text, sizeof(document_text) - 1, &b->value);
}

static int op_json_to_framed(struct bench *b)
{
        const void *out;
        size_t out_len;
        if (json_to_value(b, document_text, sizeof(document_text) - 1, &b->value) != 0)
                return -1;
        return avk_codec_encode(b->codec, TOPIC, b->schema, &b->value, &out, &out_len, b->errstr,
                                sizeof(b->errstr));
}

/* The single pass: JSON text to Avro without a tree (common/contract/jsonstream.h). */
static int stream_to_value(struct bench *b, avro_value_t *out)
{
        if (avk_json_stream_to_avro(b->plan, AVK_JSON_READER_SIMDJSON, document_text,
                                    sizeof(document_text) - 1, NULL, out, &b->opts) == 0)
                return 0;
        snprintf(b->errstr, sizeof(b->errstr), "the single pass gave up on the document");
        return -1;
}

/* The single pass as the intake takes it: the Avro binary, no avro-c value. */
static int stream_encode(struct bench *b, enum avk_json_reader reader)
{
        if (avk_json_stream_encode(b->plan, reader, document_text, sizeof(document_text) - 1, NULL,
                                   &b->opts, &b->stream) == 0)
                return 0;
        snprintf(b->errstr, sizeof(b->errstr), "the single pass gave up on the document");
        return -1;
}

static int op_stream_to_avro(struct bench *b)
{
        return stream_encode(b, AVK_JSON_READER_SIMDJSON);
}

/* The same with yajl reading the text, the reader before simdjson. */
static int op_stream_yajl_to_avro(struct bench *b)
{
        return stream_encode(b, AVK_JSON_READER_YAJL);
}

static int op_stream_to_framed(struct bench *b)
{
        const void *out;
        size_t out_len;
        if (op_stream_to_avro(b) != 0)
                return -1;
        return avk_codec_frame(b->codec, TOPIC, b->schema, 0, b->stream.avro, b->stream.avro_len,
                               &out, &out_len, b->errstr, sizeof(b->errstr));
}

static int op_encode(struct bench *b)
{
        const void *out;
        size_t out_len;
        return avk_codec_encode(b->codec, TOPIC, b->schema, &b->prepared, &out, &out_len, b->errstr,
                                sizeof(b->errstr));
}

static int op_decode(struct bench *b)
{
        return avk_codec_decode(b->codec, b->message, b->message_len, b->schema, &b->value,
                                b->errstr, sizeof(b->errstr));
}

static int op_decode_to_json(struct bench *b)
{
        if (op_decode(b) != 0)
                return -1;
        json_t *j = avk_json_from_avro(b->schema, &b->value, b->errstr, sizeof(b->errstr));
        if (!j)
                return -1;
        char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!line) {
                snprintf(b->errstr, sizeof(b->errstr), "json_dumps failed");
                return -1;
        }
        free(line);
        return 0;
}

static int op_decode_projected(struct bench *b)
{
        return avk_codec_decode(b->codec, b->message, b->message_len, b->schema_v2, &b->value_v2,
                                b->errstr, sizeof(b->errstr));
}

static int op_raw_write(struct bench *b)
{
        avro_writer_memory_set_dest(b->raw_writer, b->raw, (int64_t)b->raw_len);
        if (avro_value_write(b->raw_writer, &b->prepared) != 0) {
                snprintf(b->errstr, sizeof(b->errstr), "avro: %s", avro_strerror());
                return -1;
        }
        return 0;
}

/* Reset as avk_codec_decode does: avro-c's read appends to arrays and maps. */
static int op_raw_read(struct bench *b)
{
        avro_value_reset(&b->value);
        avro_reader_memory_set_source(b->raw_reader, b->raw, (int64_t)b->raw_len);
        if (avro_value_read(b->raw_reader, &b->value) != 0) {
                snprintf(b->errstr, sizeof(b->errstr), "avro: %s", avro_strerror());
                return -1;
        }
        return 0;
}

/* The compiled program (common/contract/avroprog.h) on the Avro body, as
 * raw avro-c and avsc's fromBuffer/toBuffer work on it: no framing. */
static const unsigned char *body(const struct bench *b)
{
        return b->message + SOE_HEADER_SIZE;
}

static int op_prog_decode(struct bench *b)
{
        return avk_avroprog_decode(b->prog, body(b), b->raw_len, b->slots, b->errstr,
                                   sizeof(b->errstr));
}

static int op_prog_encode(struct bench *b)
{
        int64_t len = avk_avroprog_encode(b->prog, b->filled, b->prog_out, b->raw_len, b->errstr,
                                          sizeof(b->errstr));
        if (len == (int64_t)b->raw_len)
                return 0;
        if (len >= 0)
                snprintf(b->errstr, sizeof(b->errstr), "encoded %lld bytes, expected %zu",
                         (long long)len, b->raw_len);
        return -1;
}

static int op_prog_decode_v2(struct bench *b)
{
        return avk_avroprog_decode(b->prog_v1_v2, body(b), b->raw_len, b->slots_v2, b->errstr,
                                   sizeof(b->errstr));
}

static const struct bench_case cases[] = {
    {"1", "JSON -> Avro (parse+validate)", op_json_to_avro, SIDE_ENCODE, 0, 0},
    {"2", "JSON -> Avro -> framed bytes", op_json_to_framed, SIDE_ENCODE, 0, 0},
    {"1s", "JSON -> Avro, single pass", op_stream_to_avro, SIDE_ENCODE, 0, 0},
    {"1y", "JSON -> Avro, single pass read by yajl", op_stream_yajl_to_avro, SIDE_ENCODE, 0, 0},
    {"2s", "JSON -> Avro -> framed, single pass", op_stream_to_framed, SIDE_ENCODE, 0, 0},
    {"3", "Avro encode (avk_codec_encode)", op_encode, SIDE_ENCODE, 0, 0},
    {"4", "Avro decode (avk_codec_decode)", op_decode, SIDE_DECODE, 0, 0},
    {"5", "Avro -> JSON (decode+dump, tail)", op_decode_to_json, SIDE_DECODE, 0, 0},
    {"6", "decode with projection v1 -> v2", op_decode_projected, SIDE_DECODE, 0, 0},
    {"7a", "raw avro-c avro_value_write", op_raw_write, SIDE_ENCODE, 1, 1},
    {"7b", "raw avro-c avro_value_read", op_raw_read, SIDE_DECODE, 1, 1},
    {"8", "avroprog decode (Avro body)", op_prog_decode, SIDE_DECODE, 0, 1},
    {"9", "avroprog encode (Avro body)", op_prog_encode, SIDE_ENCODE, 0, 1},
    {"10", "avroprog decode v1 -> v2 (body)", op_prog_decode_v2, SIDE_DECODE, 0, 1},
};
#define CASE_CNT (sizeof(cases) / sizeof(cases[0]))

/* ---- setup ---- */

/* The builtin schema plus one field with a default: what a reader one version
 * ahead of the writers holds, so that decoding projects. */
static avk_schema_t *schema_v2_new(const avk_schema_t *v1, char *errstr, size_t errstr_size)
{
        avk_schema_t *v2 = NULL;
        char *text = NULL;
        json_error_t jerr;
        json_t *j = json_loads(avk_schema_text(v1), 0, &jerr);
        json_t *fields = json_object_get(j, "fields");
        if (!json_is_array(fields)) {
                snprintf(errstr, errstr_size, "builtin schema has no fields array");
                goto out;
        }
        json_t *field =
            json_pack("{s:s,s:s,s:s,s:s}", "name", V2_FIELD, "type", "string", "default",
                      V2_FIELD_DEFAULT, "doc", "Language of the free text (ISO 639-1).");
        if (!field || json_array_append_new(fields, field) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
        }
        v2 = avk_schema_new(text, errstr, errstr_size);
out:
        free(text);
        json_decref(j);
        return v2;
}

/* Checks that value (of schema) holds expected, field for field. */
static int check_json(const char *what, const avk_schema_t *schema, avro_value_t *value,
                      const json_t *expected)
{
        char errstr[512];
        json_t *got = avk_json_from_avro(schema, value, errstr, sizeof(errstr));
        if (!got) {
                fprintf(stderr, "bench_codec: %s: %s\n", what, errstr);
                return -1;
        }
        int same = json_equal(got, expected);
        if (!same) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
                char *e = json_dumps(expected, JSON_COMPACT | JSON_PRESERVE_ORDER);
                fprintf(stderr, "bench_codec: %s: JSON differs\n  got      %s\n  expected %s\n",
                        what, g ? g : "?", e ? e : "?");
                free(g);
                free(e);
        }
        json_decref(got);
        return same ? 0 : -1;
}

/* The compiled program's cases, checked: decoding the body and encoding it
 * again gives the body; the v1 -> v2 program reads what avk_codec's projection
 * read (both encoded as v2 give the same bytes). Called after prepare() set
 * up the message and value_v2. */
static int prepare_prog(struct bench *b)
{
        char err[512];
        b->errstr[0] = '\0';
        avk_avroprog_t *prog_v2 = avk_avroprog_new(b->schema_v2, err, sizeof(err));
        b->prog = prog_v2 ? avk_avroprog_new(b->schema, err, sizeof(err)) : NULL;
        b->prog_v1_v2 =
            b->prog ? avk_avroprog_resolve(b->schema, b->schema_v2, err, sizeof(err)) : NULL;
        if (!b->prog_v1_v2) {
                fprintf(stderr, "bench_codec: avroprog: %s\n", err);
                avk_avroprog_destroy(prog_v2);
                return -1;
        }
        size_t n = avk_avroprog_slot_count(b->prog), n2 = avk_avroprog_slot_count(b->prog_v1_v2);
        b->slots = calloc(n, sizeof(*b->slots));
        b->filled = calloc(n, sizeof(*b->filled));
        b->slots_v2 = calloc(n2, sizeof(*b->slots_v2));
        b->prog_out = malloc(b->raw_len);
        size_t v2_len = 0;
        unsigned char *ours_v2 = NULL, *theirs_v2 = NULL;
        int rc = -1;
        if (!b->slots || !b->filled || !b->slots_v2 || !b->prog_out ||
            avro_value_sizeof(&b->value_v2, &v2_len) != 0 || !(ours_v2 = malloc(v2_len)) ||
            !(theirs_v2 = malloc(v2_len))) {
                fprintf(stderr, "bench_codec: out of memory\n");
                goto out;
        }
        if (avk_avroprog_decode(b->prog, body(b), b->raw_len, b->filled, b->errstr,
                                sizeof(b->errstr)) != 0 ||
            op_prog_decode(b) != 0 || op_prog_encode(b) != 0 ||
            memcmp(b->prog_out, body(b), b->raw_len) != 0) {
                fprintf(stderr, "bench_codec: avroprog round trip: %s\n",
                        b->errstr[0] ? b->errstr : "bytes differ from the body");
                goto out;
        }
        avro_writer_t w = avro_writer_memory((char *)theirs_v2, (int64_t)v2_len);
        int written = w && avro_value_write(w, &b->value_v2) == 0;
        if (w)
                avro_writer_free(w);
        if (!written || op_prog_decode_v2(b) != 0 ||
            avk_avroprog_encode(prog_v2, b->slots_v2, ours_v2, v2_len, b->errstr,
                                sizeof(b->errstr)) != (int64_t)v2_len ||
            memcmp(ours_v2, theirs_v2, v2_len) != 0) {
                fprintf(stderr, "bench_codec: avroprog v1 -> v2 differs from the projection: %s\n",
                        b->errstr);
                goto out;
        }
        rc = 0;
out:
        free(ours_v2);
        free(theirs_v2);
        avk_avroprog_destroy(prog_v2);
        return rc;
}

/* Builds the message and checks every path once; 0, or -1 after saying why. */
static int prepare(struct bench *b)
{
        char err[512];
        json_error_t jerr;
        b->opts = (struct avk_json_opts){.flags = AVK_JSON_VALIDATE, .skew_ms = 300000};
        b->catalog = avk_catalog_new_builtin(err, sizeof(err));
        if (!b->catalog) {
                fprintf(stderr, "bench_codec: %s\n", err);
                return -1;
        }
        b->schema = avk_catalog_by_name(b->catalog, "DeviationReported");
        b->schema_v2 = b->schema ? schema_v2_new(b->schema, err, sizeof(err)) : NULL;
        if (!b->schema_v2) {
                fprintf(stderr, "bench_codec: v2 reader schema: %s\n",
                        b->schema ? err : "no DeviationReported in the catalog");
                return -1;
        }
        b->codec = avk_codec_new(b->catalog, NULL);
        b->plan = avk_json_plan_new(b->schema, err, sizeof(err));
        if (!b->plan) {
                fprintf(stderr, "bench_codec: plan: %s\n", err);
                return -1;
        }
        b->raw_writer = avro_writer_memory(NULL, 0);
        b->raw_reader = avro_reader_memory(NULL, 0);
        b->document = json_loadb(document_text, sizeof(document_text) - 1, 0, &jerr);
        if (!b->codec || !b->raw_writer || !b->raw_reader || !b->document ||
            avro_generic_value_new(avk_schema_iface(b->schema), &b->value) != 0 ||
            avro_generic_value_new(avk_schema_iface(b->schema), &b->prepared) != 0 ||
            avro_generic_value_new(avk_schema_iface(b->schema_v2), &b->value_v2) != 0) {
                fprintf(stderr, "bench_codec: setup failed: %s\n",
                        b->document ? avro_strerror() : jerr.text);
                return -1;
        }

        /* Intake and encode, as cases 1-3 do. */
        const void *out;
        size_t out_len;
        if (json_to_value(b, document_text, sizeof(document_text) - 1, &b->prepared) != 0 ||
            avk_codec_encode(b->codec, TOPIC, b->schema, &b->prepared, &out, &out_len, b->errstr,
                             sizeof(b->errstr)) != 0) {
                fprintf(stderr, "bench_codec: intake of the document: %s\n", b->errstr);
                return -1;
        }
        b->message = malloc(out_len);
        b->raw_len = out_len - SOE_HEADER_SIZE;
        b->raw = malloc(b->raw_len);
        if (!b->message || !b->raw) {
                fprintf(stderr, "bench_codec: out of memory\n");
                return -1;
        }
        memcpy(b->message, out, out_len);
        b->message_len = out_len;
        if (b->message_len < TARGET_MIN_BYTES || b->message_len > TARGET_MAX_BYTES) {
                fprintf(stderr,
                        "bench_codec: framed message is %zu bytes, outside %d-%d: "
                        "retune the description\n",
                        b->message_len, TARGET_MIN_BYTES, TARGET_MAX_BYTES);
                return -1;
        }
        /* Encoding again, from the JSON (tree or single pass) or the value,
         * gives the same bytes. */
        for (int from_json = 0; from_json < 3; from_json++) {
                if ((from_json == 1 &&
                     json_to_value(b, document_text, sizeof(document_text) - 1, &b->value) != 0) ||
                    (from_json == 2 && stream_to_value(b, &b->value) != 0) ||
                    avk_codec_encode(b->codec, TOPIC, b->schema,
                                     from_json ? &b->value : &b->prepared, &out, &out_len,
                                     b->errstr, sizeof(b->errstr)) != 0) {
                        fprintf(stderr, "bench_codec: encode: %s\n", b->errstr);
                        return -1;
                }
                if (out_len != b->message_len || memcmp(out, b->message, out_len) != 0) {
                        fprintf(stderr, "bench_codec: encode: bytes differ from the first\n");
                        return -1;
                }
        }

        /* Raw avro-c writes the same bytes as our body, and reads them back. */
        b->errstr[0] = '\0';
        if (op_raw_write(b) != 0 || memcmp(b->raw, b->message + SOE_HEADER_SIZE, b->raw_len) != 0) {
                fprintf(stderr, "bench_codec: raw write: %s\n",
                        b->errstr[0] ? b->errstr : "bytes differ from the codec's body");
                return -1;
        }
        if (op_raw_read(b) != 0) {
                fprintf(stderr, "bench_codec: raw read: %s\n", b->errstr);
                return -1;
        }
        if (check_json("raw read", b->schema, &b->value, b->document) != 0)
                return -1;

        /* Decode, the tail path, and projection onto v2. */
        if (op_decode(b) != 0) {
                fprintf(stderr, "bench_codec: decode: %s\n", b->errstr);
                return -1;
        }
        if (check_json("decode", b->schema, &b->value, b->document) != 0)
                return -1;
        if (op_decode_to_json(b) != 0) {
                fprintf(stderr, "bench_codec: decode to JSON: %s\n", b->errstr);
                return -1;
        }
        if (op_decode_projected(b) != 0) {
                fprintf(stderr, "bench_codec: projected decode: %s\n", b->errstr);
                return -1;
        }
        json_t *expected_v2 = json_deep_copy(b->document);
        int rc = -1;
        if (expected_v2 &&
            json_object_set_new(expected_v2, V2_FIELD, json_string(V2_FIELD_DEFAULT)) == 0)
                rc = check_json("projected decode", b->schema_v2, &b->value_v2, expected_v2);
        json_decref(expected_v2);
        return rc == 0 ? prepare_prog(b) : -1;
}

static void teardown(struct bench *b)
{
        if (b->value.self)
                avro_value_decref(&b->value);
        if (b->prepared.self)
                avro_value_decref(&b->prepared);
        if (b->value_v2.self)
                avro_value_decref(&b->value_v2);
        if (b->raw_writer)
                avro_writer_free(b->raw_writer);
        if (b->raw_reader)
                avro_reader_free(b->raw_reader);
        avk_codec_destroy(b->codec);
        avk_avroprog_destroy(b->prog);
        avk_avroprog_destroy(b->prog_v1_v2);
        free(b->slots);
        free(b->slots_v2);
        free(b->filled);
        free(b->prog_out);
        avk_json_stream_buf_free(&b->stream);
        avk_json_plan_destroy(b->plan);
        avk_schema_destroy(b->schema_v2);
        avk_catalog_destroy(b->catalog);
        json_decref(b->document);
        free(b->message);
        free(b->raw);
}

/* The Avro body (-o) or the JSON document (-j), for a peer to work on the
 * same record. */
static int write_file(const char *opt, const char *path, const void *data, size_t len)
{
        FILE *f = fopen(path, "wb");
        int ok = f && fwrite(data, 1, len, f) == len;
        if (f && fclose(f) != 0)
                ok = 0;
        if (!ok)
                fprintf(stderr, "bench_codec: %s %s: %s\n", opt, path, strerror(errno));
        return ok ? 0 : -1;
}

/* ---- timing ---- */

/* Runs op in batches until budget_ns has passed (at least one batch).
 * Returns the operations done, or -1 after the op failed. */
static long long run_for(struct bench *b, bench_op op, int64_t budget_ns, int64_t *elapsed_ns)
{
        long long done = 0;
        int64_t start = now_ns(), now;
        do {
                for (int i = 0; i < BATCH; i++) {
                        if (op(b) != 0)
                                return -1;
                }
                done += BATCH;
                now = now_ns();
        } while (now - start < budget_ns);
        *elapsed_ns = now - start;
        return done;
}

static int measure(struct bench *b, const struct bench_case *c, double seconds, struct result *r)
{
        int64_t budget = (int64_t)(seconds * 1e9), elapsed;
        int64_t warmup = (int64_t)(seconds * 1e9 * WARMUP_FRACTION);
        if (warmup > WARMUP_MAX_NS)
                warmup = WARMUP_MAX_NS;
        long long done = run_for(b, c->op, warmup, &elapsed);
        if (done >= 0)
                done = run_for(b, c->op, budget, &elapsed);
        if (done < 0) {
                fprintf(stderr, "bench_codec: case %s: %s\n", c->id, b->errstr);
                return -1;
        }
        r->ran = 1;
        r->ns_per_op = (double)elapsed / (double)done;
        return 0;
}

static void print_table(const struct bench *b, const struct result *results)
{
        double raw_ns[2] = {0, 0};
        for (size_t i = 0; i < CASE_CNT; i++) {
                if (cases[i].is_raw && results[i].ran)
                        raw_ns[cases[i].side] = results[i].ns_per_op;
        }
        printf("%-3s %-36s %12s %10s %8s %7s\n", "", "case", "records/s", "ns/record", "MB/s",
               "vs raw");
        for (size_t i = 0; i < CASE_CNT; i++) {
                if (!results[i].ran)
                        continue;
                const struct bench_case *c = &cases[i];
                double ns = results[i].ns_per_op, base = raw_ns[c->side];
                size_t bytes = c->on_body ? b->raw_len : b->message_len;
                printf("%-3s %-36s %12.0f %10.0f %8.1f", c->id, c->name, 1e9 / ns, ns,
                       (double)bytes * 1e3 / ns);
                if (base > 0)
                        printf(" %6.2fx\n", ns / base);
                else
                        printf(" %7s\n", "-");
        }
}

/* Marks the cases named in a comma-separated list of ids; -1 on an unknown id. */
static int select_cases(char *list, int *selected)
{
        memset(selected, 0, CASE_CNT * sizeof(*selected));
        for (char *save = NULL, *id = strtok_r(list, ",", &save); id;
             id = strtok_r(NULL, ",", &save)) {
                size_t i = 0;
                while (i < CASE_CNT && strcmp(cases[i].id, id) != 0)
                        i++;
                if (i == CASE_CNT) {
                        fprintf(stderr, "bench_codec: -c: no case \"%s\"\n", id);
                        return -1;
                }
                selected[i] = 1;
        }
        return 0;
}

static void usage(FILE *to)
{
        fprintf(to,
                "usage: bench_codec [-t SECONDS] [-c ID[,ID...]] [-o FILE] [-j FILE]\n"
                "Measures codec throughput on one ~450-byte DeviationReported.\n"
                "  -t SECONDS  wall time per case after warm-up (default %.0f)\n"
                "  -c IDS      run only these cases (1, 2, 1s, 1y, 2s, 3-10, 7a, 7b; default all)\n"
                "  -o FILE     also write the record's Avro body to FILE, for peers\n"
                "              (bench/codec_avsc.js)\n"
                "  -j FILE     also write the JSON document to FILE, for the same peers\n",
                DEFAULT_SECONDS);
}

int main(int argc, char **argv)
{
        double seconds = DEFAULT_SECONDS;
        int selected[CASE_CNT];
        int opt;
        for (size_t i = 0; i < CASE_CNT; i++)
                selected[i] = 1;
        const char *body_file = NULL, *json_file = NULL;
        while ((opt = getopt(argc, argv, "t:c:o:j:h")) != -1) {
                if (opt == 't') {
                        char *end;
                        errno = 0;
                        seconds = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !isfinite(seconds) || seconds < 0 ||
                            seconds > MAX_SECONDS) {
                                fprintf(stderr,
                                        "bench_codec: -t %s: expected seconds from 0 to %.0f\n",
                                        optarg, MAX_SECONDS);
                                return 2;
                        }
                } else if (opt == 'o') {
                        body_file = optarg;
                } else if (opt == 'j') {
                        json_file = optarg;
                } else if (opt == 'c') {
                        if (select_cases(optarg, selected) != 0)
                                return 2;
                } else if (opt == 'h') {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }

        struct bench b = {0};
        struct result results[CASE_CNT] = {{0}};
        int rc = 1;
        if (prepare(&b) != 0 ||
            (body_file && write_file("-o", body_file, body(&b), b.raw_len) != 0) ||
            (json_file &&
             write_file("-j", json_file, document_text, sizeof(document_text) - 1) != 0))
                goto out;
        printf("bench_codec: DeviationReported, framed message %zu bytes (single-object: "
               "%d-byte header + %zu bytes Avro), JSON document %zu bytes\n",
               b.message_len, SOE_HEADER_SIZE, b.raw_len, sizeof(document_text) - 1);
        printf("machine: nproc %ld; build: %s%s; %.2f s per case after warm-up; one thread\n",
               sysconf(_SC_NPROCESSORS_ONLN),
               AVK_BENCH_BUILD_TYPE[0] ? AVK_BENCH_BUILD_TYPE : "(no CMAKE_BUILD_TYPE)",
               AVK_BENCH_SANITIZE ? " with ASan+UBSan (timings not representative)" : "", seconds);
        printf("check: JSON -> Avro (tree and single pass) -> framed -> decode -> JSON equals "
               "the document; projection adds %s=\"%s\"\n\n",
               V2_FIELD, V2_FIELD_DEFAULT);
        fflush(stdout);
        for (size_t i = 0; i < CASE_CNT; i++) {
                if (selected[i] && measure(&b, &cases[i], seconds, &results[i]) != 0)
                        goto out;
        }
        print_table(&b, results);
        printf("\nMB/s: Avro bytes per record (framed message; Avro body for 7a, 7b, 8-10) x "
               "records/s, in 10^6 B.\n"
               "vs raw: ns/record over 7a (cases 1-3, 1s, 2s, 9) or 7b (cases 4-6, 8, 10).\n");
        rc = 0;
out:
        teardown(&b);
        return rc;
}
