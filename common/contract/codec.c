/*
 * avk_codec: see codec.h.
 *
 * Hot path (writer == reader): check bounds, then avro-c reads straight into
 * the caller's value through one reused memory reader; encode reuses one
 * growing buffer. Between versions, a program compiled once per writer and
 * reader (common/contract/avroprog.h) reads the writer's binary into the
 * reader's slots, checking it in the same pass, and the reader's program
 * writes them out as the reader's binary for avro-c to read. A pair the
 * program does not compile (arrays, maps, recursive types) is projected
 * through the JSON form instead (writer value -> JSON -> reader value), the
 * schema-driven walk that knows defaults and enum symbols too.
 */
#include "common/contract/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avroprog.h"
#include "common/contract/binary.h"
#include "common/util/errors.h"
#include "common/contract/json.h"

#define CONFLUENT_MAGIC    0x00
#define CONFLUENT_HDR_SIZE 5
#define SOE_MAGIC0         0xC3
#define SOE_MAGIC1         0x01
#define SOE_HDR_SIZE       10

struct id_entry { /* registry id <-> schema, both directions */
        int32_t id;
        const avk_schema_t *schema;
        char *topic; /* NULL for ids learnt by decoding */
};

struct scratch { /* a reusable value of a writer schema, for projection */
        const avk_schema_t *schema;
        avro_value_t value;
};

struct resolution { /* how one writer's data is read as one reader's */
        const avk_schema_t *writer, *reader;
        avk_avroprog_t *resolve;     /* NULL when the pair is not compiled */
        avk_avroprog_t *reader_prog; /* writes the slots as the reader's binary */
        avk_avroprog_slot_t *slots;
};

struct program { /* a reader schema's own program: the slots its data is decoded into */
        const avk_schema_t *schema;
        avk_avroprog_t *prog; /* NULL when the schema is not compiled */
        avk_avroprog_slot_t *slots;
};

struct avk_codec {
        const avk_catalog_t *catalog;
        avk_registry_t *registry;
        avk_catalog_t *fetched; /* schemas learnt from the registry */
        struct id_entry *ids;
        size_t ids_cnt;
        struct scratch *scratch;
        size_t scratch_cnt;
        struct resolution *resolutions;
        size_t resolutions_cnt;
        struct program *programs;
        size_t programs_cnt;
        unsigned char *buf;
        size_t cap;
        unsigned char *resolved; /* a datum re-encoded as its reader's binary */
        size_t resolved_cap;
        avro_reader_t reader;
        avro_writer_t writer;
};

avk_codec_t *avk_codec_new(const avk_catalog_t *catalog, avk_registry_t *registry)
{
        avk_codec_t *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->catalog = catalog;
        c->registry = registry;
        c->fetched = avk_catalog_new();
        c->reader = avro_reader_memory(NULL, 0);
        c->writer = avro_writer_memory(NULL, 0);
        if (!c->fetched || !c->reader || !c->writer) {
                avk_codec_destroy(c);
                return NULL;
        }
        return c;
}

void avk_codec_destroy(avk_codec_t *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->ids_cnt; i++)
                free(c->ids[i].topic);
        free(c->ids);
        for (size_t i = 0; i < c->scratch_cnt; i++)
                avro_value_decref(&c->scratch[i].value);
        free(c->scratch);
        for (size_t i = 0; i < c->resolutions_cnt; i++) {
                avk_avroprog_destroy(c->resolutions[i].resolve);
                avk_avroprog_destroy(c->resolutions[i].reader_prog);
                free(c->resolutions[i].slots);
        }
        free(c->resolutions);
        for (size_t i = 0; i < c->programs_cnt; i++) {
                avk_avroprog_destroy(c->programs[i].prog);
                free(c->programs[i].slots);
        }
        free(c->programs);
        free(c->resolved);
        avk_catalog_destroy(c->fetched);
        if (c->reader)
                avro_reader_free(c->reader);
        if (c->writer)
                avro_writer_free(c->writer);
        free(c->buf);
        free(c);
}

static int remember_id(avk_codec_t *c, int32_t id, const avk_schema_t *schema, const char *topic)
{
        struct id_entry *grown = realloc(c->ids, (c->ids_cnt + 1) * sizeof(*grown));
        if (!grown)
                return -1;
        c->ids = grown;
        c->ids[c->ids_cnt] = (struct id_entry){id, schema, topic ? strdup(topic) : NULL};
        c->ids_cnt++;
        return 0;
}

/* The registry id under which schema is written to topic. */
static int writer_id(avk_codec_t *c, const char *topic, const avk_schema_t *schema, int32_t *id,
                     char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < c->ids_cnt; i++) {
                if (c->ids[i].schema == schema && c->ids[i].topic &&
                    strcmp(c->ids[i].topic, topic) == 0) {
                        *id = c->ids[i].id;
                        return 0;
                }
        }
        char subject[300];
        snprintf(subject, sizeof(subject), "%s-value", topic);
        int rc = avk_registry_register(c->registry, subject, avk_schema_text(schema), id, errstr,
                                       errstr_size);
        if (rc != 0)
                return rc;
        if (remember_id(c, *id, schema, topic) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
        if (need <= *cap)
                return 0;
        size_t grown_cap = *cap ? *cap : 1024;
        while (grown_cap < need)
                grown_cap *= 2;
        unsigned char *grown = realloc(*buf, grown_cap);
        if (!grown)
                return -1;
        *buf = grown;
        *cap = grown_cap;
        return 0;
}

static void soe_header(unsigned char *p, const avk_schema_t *schema)
{
        uint64_t fp = avk_schema_fingerprint(schema);
        p[0] = SOE_MAGIC0;
        p[1] = SOE_MAGIC1;
        for (int i = 0; i < 8; i++)
                p[2 + i] = (unsigned char)(fp >> (8 * i));
}

/* Writes the Confluent header for schema on topic to p. */
static int confluent_header(avk_codec_t *c, unsigned char *p, const char *topic,
                            const avk_schema_t *schema, char *errstr, size_t errstr_size)
{
        int32_t id;
        int rc = writer_id(c, topic, schema, &id, errstr, errstr_size);
        if (rc != 0)
                return rc;
        p[0] = CONFLUENT_MAGIC;
        for (int i = 0; i < 4; i++)
                p[1 + i] = (unsigned char)((uint32_t)id >> (24 - 8 * i));
        return 0;
}

/* Reserves room for a message of body bytes, writes its header and
 * returns the header's size in *hdr. */
static int begin_message(avk_codec_t *c, int confluent, const char *topic,
                         const avk_schema_t *schema, size_t body, size_t *hdr, char *errstr,
                         size_t errstr_size)
{
        *hdr = confluent ? CONFLUENT_HDR_SIZE : SOE_HDR_SIZE;
        if (reserve(&c->buf, &c->cap, *hdr + body) != 0) {
                snprintf(errstr, errstr_size, "out of memory for a %zu-byte message", *hdr + body);
                return -1;
        }
        if (confluent)
                return confluent_header(c, c->buf, topic, schema, errstr, errstr_size);
        soe_header(c->buf, schema);
        return 0;
}

static int encode(avk_codec_t *c, int confluent, const char *topic, const avk_schema_t *schema,
                  avro_value_t *value, const void **out, size_t *out_len, char *errstr,
                  size_t errstr_size)
{
        size_t hdr, body;
        if (avro_value_sizeof(value, &body) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return -1;
        }
        int rc = begin_message(c, confluent, topic, schema, body, &hdr, errstr, errstr_size);
        if (rc != 0)
                return rc;
        avro_writer_memory_set_dest(c->writer, (const char *)c->buf + hdr, (int64_t)body);
        if (avro_value_write(c->writer, value) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return -1;
        }
        *out = c->buf;
        *out_len = hdr + body;
        return 0;
}

int avk_codec_frame(avk_codec_t *c, const char *topic, const avk_schema_t *schema, int local,
                    const void *body, size_t body_len, const void **out, size_t *out_len,
                    char *errstr, size_t errstr_size)
{
        size_t hdr;
        int rc = begin_message(c, c->registry != NULL && !local, topic, schema, body_len, &hdr,
                               errstr, errstr_size);
        if (rc != 0)
                return rc;
        memcpy(c->buf + hdr, body, body_len);
        *out = c->buf;
        *out_len = hdr + body_len;
        return 0;
}

int avk_codec_encode(avk_codec_t *c, const char *topic, const avk_schema_t *schema,
                     avro_value_t *value, const void **out, size_t *out_len, char *errstr,
                     size_t errstr_size)
{
        return encode(c, c->registry != NULL, topic, schema, value, out, out_len, errstr,
                      errstr_size);
}

int avk_codec_encode_local(avk_codec_t *c, const avk_schema_t *schema, avro_value_t *value,
                           const void **out, size_t *out_len, char *errstr, size_t errstr_size)
{
        return encode(c, 0, NULL, schema, value, out, out_len, errstr, errstr_size);
}

static const avk_schema_t *schema_by_id(avk_codec_t *c, int32_t id, int *rc, char *errstr,
                                        size_t errstr_size)
{
        for (size_t i = 0; i < c->ids_cnt; i++) {
                if (c->ids[i].id == id)
                        return c->ids[i].schema;
        }
        if (!c->registry) {
                snprintf(errstr, errstr_size,
                         "message is in Confluent framing (schema id %d) but no "
                         "schema.registry.url is configured",
                         id);
                return NULL;
        }
        const char *text;
        *rc = avk_registry_fetch(c->registry, id, &text, errstr, errstr_size);
        if (*rc != 0)
                return NULL;
        *rc = -1;
        char reason[256];
        avk_schema_t *fresh = avk_schema_new(text, reason, sizeof(reason));
        if (!fresh) {
                snprintf(errstr, errstr_size, "schema id %d from the registry: %s", id, reason);
                return NULL;
        }
        /* Prefer the catalog's copy: the same schema under another id or subject. */
        uint64_t fp = avk_schema_fingerprint(fresh);
        const avk_schema_t *known = avk_catalog_by_fingerprint(c->catalog, fp);
        if (!known)
                known = avk_catalog_by_fingerprint(c->fetched, fp);
        if (known) {
                avk_schema_destroy(fresh);
        } else if (avk_catalog_add(c->fetched, fresh, reason, sizeof(reason)) == 0) {
                known = fresh;
        } else {
                avk_schema_destroy(fresh);
                snprintf(errstr, errstr_size, "schema id %d: %s", id, reason);
                return NULL;
        }
        if (remember_id(c, id, known, NULL) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        return known;
}

/* The writer schema of a framed payload; NULL with *rc -1 (a bad record) or
 * AVK_CODEC_UNAVAILABLE. */
static const avk_schema_t *writer_schema(avk_codec_t *c, const unsigned char *p, size_t len,
                                         size_t *hdr, int *rc, char *errstr, size_t errstr_size)
{
        *rc = -1;
        if (len == 0) {
                snprintf(errstr, errstr_size, "empty message");
                return NULL;
        }
        if (p[0] == CONFLUENT_MAGIC) {
                if (len < CONFLUENT_HDR_SIZE) {
                        snprintf(errstr, errstr_size,
                                 "truncated Confluent header: %zu bytes, need %d", len,
                                 CONFLUENT_HDR_SIZE);
                        return NULL;
                }
                *hdr = CONFLUENT_HDR_SIZE;
                int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                                       (uint32_t)p[3] << 8 | p[4]);
                return schema_by_id(c, id, rc, errstr, errstr_size);
        }
        if (p[0] == SOE_MAGIC0 && (len < 2 || p[1] == SOE_MAGIC1)) {
                if (len < SOE_HDR_SIZE) {
                        snprintf(errstr, errstr_size,
                                 "truncated single-object header: %zu bytes, need %d", len,
                                 SOE_HDR_SIZE);
                        return NULL;
                }
                *hdr = SOE_HDR_SIZE;
                uint64_t fp = 0;
                for (int i = 0; i < 8; i++)
                        fp |= (uint64_t)p[2 + i] << (8 * i);
                const avk_schema_t *s = avk_catalog_by_fingerprint(c->catalog, fp);
                if (!s)
                        s = avk_catalog_by_fingerprint(c->fetched, fp);
                if (!s)
                        snprintf(errstr, errstr_size,
                                 "unknown schema fingerprint %016llx: not a schema this "
                                 "build knows",
                                 (unsigned long long)fp);
                return s;
        }
        snprintf(errstr, errstr_size,
                 "unknown framing: first bytes %02x %02x, expected 00 (Confluent) or c3 01 "
                 "(single-object)",
                 p[0], len > 1 ? p[1] : 0);
        return NULL;
}

int avk_codec_reframe(avk_codec_t *c, const char *topic, const void *in, size_t in_len,
                      const void **out, size_t *out_len, char *errstr, size_t errstr_size)
{
        const unsigned char *p = in;
        *out = in;
        *out_len = in_len;
        if (!c->registry || in_len < SOE_HDR_SIZE || p[0] != SOE_MAGIC0 || p[1] != SOE_MAGIC1)
                return 0;
        size_t hdr;
        int rc;
        const avk_schema_t *schema = writer_schema(c, p, in_len, &hdr, &rc, errstr, errstr_size);
        if (!schema)
                return rc;
        size_t body = in_len - SOE_HDR_SIZE;
        if (reserve(&c->buf, &c->cap, CONFLUENT_HDR_SIZE + body) != 0) {
                snprintf(errstr, errstr_size, "out of memory for a %zu-byte message",
                         CONFLUENT_HDR_SIZE + body);
                return -1;
        }
        rc = confluent_header(c, c->buf, topic, schema, errstr, errstr_size);
        if (rc != 0)
                return rc;
        memcpy(c->buf + CONFLUENT_HDR_SIZE, p + SOE_HDR_SIZE, body);
        *out = c->buf;
        *out_len = CONFLUENT_HDR_SIZE + body;
        return 0;
}

static avro_value_t *scratch_value(avk_codec_t *c, const avk_schema_t *schema)
{
        for (size_t i = 0; i < c->scratch_cnt; i++) {
                if (c->scratch[i].schema == schema)
                        return &c->scratch[i].value;
        }
        struct scratch *grown = realloc(c->scratch, (c->scratch_cnt + 1) * sizeof(*grown));
        if (!grown)
                return NULL;
        c->scratch = grown;
        struct scratch *s = &c->scratch[c->scratch_cnt];
        if (avro_generic_value_new(avk_schema_iface(schema), &s->value) != 0)
                return NULL;
        s->schema = schema;
        c->scratch_cnt++;
        return &s->value;
}

static int project(const avk_schema_t *writer, avro_value_t *from, const avk_schema_t *reader,
                   avro_value_t *to, char *errstr, size_t errstr_size)
{
        json_t *j = avk_json_from_avro(writer, from, errstr, errstr_size);
        if (!j)
                return -1;
        struct avk_json_opts opts = {.flags = AVK_JSON_IGNORE_UNKNOWN | AVK_JSON_ENUM_FALLBACK};
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(reader, j, to, &opts, &errs);
        json_decref(j);
        if (rc != 0) {
                char joined[512];
                snprintf(errstr, errstr_size, "cannot read %s data as %s: %s",
                         avk_schema_fullname(writer), avk_schema_fullname(reader),
                         avk_errors_join(&errs, joined, sizeof(joined)));
        }
        return rc;
}

/* The compiled reading of writer's data as reader's, made at first use;
 * resolve is NULL when the pair is not compiled. NULL when out of memory. */
static const struct resolution *resolution(avk_codec_t *c, const avk_schema_t *writer,
                                           const avk_schema_t *reader)
{
        for (size_t i = 0; i < c->resolutions_cnt; i++) {
                if (c->resolutions[i].writer == writer && c->resolutions[i].reader == reader)
                        return &c->resolutions[i];
        }
        struct resolution *grown =
            realloc(c->resolutions, (c->resolutions_cnt + 1) * sizeof(*grown));
        if (!grown)
                return NULL;
        c->resolutions = grown;
        struct resolution *r = &c->resolutions[c->resolutions_cnt];
        *r = (struct resolution){.writer = writer, .reader = reader};
        char reason[256];
        r->resolve = avk_avroprog_resolve(writer, reader, reason, sizeof(reason));
        r->reader_prog = r->resolve ? avk_avroprog_new(reader, reason, sizeof(reason)) : NULL;
        r->slots = r->reader_prog
                       ? calloc(avk_avroprog_slot_count(r->reader_prog) + 1, sizeof(*r->slots))
                       : NULL;
        if (!r->slots) { /* not compiled: the JSON projection reads this pair */
                avk_avroprog_destroy(r->resolve);
                avk_avroprog_destroy(r->reader_prog);
                r->resolve = r->reader_prog = NULL;
        }
        c->resolutions_cnt++;
        return r;
}

/* Writer's body as reader's binary, through the compiled pair, then avro-c. */
static int read_resolved(avk_codec_t *c, const struct resolution *r, const char *body,
                         size_t body_len, avro_value_t *out, char *errstr, size_t errstr_size)
{
        char reason[384];
        if (avk_avroprog_decode(r->resolve, body, body_len, r->slots, reason, sizeof(reason)) !=
            0) {
                snprintf(errstr, errstr_size, "%s", reason);
                return -1;
        }
        int64_t len = avk_avroprog_encode(r->reader_prog, r->slots, c->resolved, c->resolved_cap,
                                          reason, sizeof(reason));
        if (len > (int64_t)c->resolved_cap) {
                if (reserve(&c->resolved, &c->resolved_cap, (size_t)len) != 0) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                len = avk_avroprog_encode(r->reader_prog, r->slots, c->resolved, c->resolved_cap,
                                          reason, sizeof(reason));
        }
        if (len < 0) {
                snprintf(errstr, errstr_size, "cannot read %s data as %s: %s",
                         avk_schema_fullname(r->writer), avk_schema_fullname(r->reader), reason);
                return -1;
        }
        avro_value_reset(out);
        avro_reader_memory_set_source(c->reader, (const char *)c->resolved, len);
        if (avro_value_read(c->reader, out) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return -1;
        }
        return 0;
}

/* A framed payload to be read as a reader schema. */
struct framed {
        const avk_schema_t
            *writer;      /* the same record type as the reader, perhaps another version */
        const char *body; /* the Avro binary */
        size_t body_len;
};

/* Unframes buf for reader into f. @returns 0, or as writer_schema() leaves *rc. */
static int unframe(avk_codec_t *c, const void *buf, size_t len, const avk_schema_t *reader,
                   struct framed *f, char *errstr, size_t errstr_size)
{
        size_t hdr = 0;
        int rc = -1;
        *f = (struct framed){.writer = writer_schema(c, buf, len, &hdr, &rc, errstr, errstr_size)};
        if (!f->writer)
                return rc ? rc : -1;
        if (strcmp(avk_schema_fullname(f->writer), avk_schema_fullname(reader)) != 0) {
                snprintf(errstr, errstr_size, "message holds %s, expected %s",
                         avk_schema_fullname(f->writer), avk_schema_fullname(reader));
                return -1;
        }
        f->body = (const char *)buf + hdr;
        f->body_len = len - hdr;
        return 0;
}

int avk_codec_decode(avk_codec_t *c, const void *buf, size_t len, const avk_schema_t *reader,
                     avro_value_t *out, char *errstr, size_t errstr_size)
{
        struct framed f;
        int rc = unframe(c, buf, len, reader, &f, errstr, errstr_size);
        if (rc != 0)
                return rc;
        const avk_schema_t *writer = f.writer;
        const char *body = f.body;
        size_t body_len = f.body_len;
        avro_value_t *target = out;
        if (avk_schema_fingerprint(writer) != avk_schema_fingerprint(reader)) {
                const struct resolution *r = resolution(c, writer, reader);
                if (!r) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
                if (r->resolve) /* checks the body as it reads it */
                        return read_resolved(c, r, body, body_len, out, errstr, errstr_size);
                target = scratch_value(c, writer);
                if (!target) {
                        snprintf(errstr, errstr_size, "out of memory");
                        return -1;
                }
        }
        if (avk_binary_check(avk_schema_avro(writer), body, body_len, errstr, errstr_size) != 0)
                return -1;
        avro_value_reset(target);
        avro_reader_memory_set_source(c->reader, body, (int64_t)body_len);
        if (avro_value_read(c->reader, target) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return -1;
        }
        if (target == out)
                return 0;
        return project(writer, target, reader, out, errstr, errstr_size);
}

/* The compiled program of schema, made at first use; its prog is NULL when
 * the schema is not compiled. NULL when out of memory. */
static const struct program *program(avk_codec_t *c, const avk_schema_t *schema)
{
        for (size_t i = 0; i < c->programs_cnt; i++) {
                if (c->programs[i].schema == schema)
                        return &c->programs[i];
        }
        struct program *grown = realloc(c->programs, (c->programs_cnt + 1) * sizeof(*grown));
        if (!grown)
                return NULL;
        c->programs = grown;
        struct program *p = &c->programs[c->programs_cnt];
        *p = (struct program){.schema = schema};
        char reason[256];
        p->prog = avk_avroprog_new(schema, reason, sizeof(reason));
        p->slots = p->prog ? calloc(avk_avroprog_slot_count(p->prog) + 1, sizeof(*p->slots)) : NULL;
        if (!p->slots) {
                avk_avroprog_destroy(p->prog);
                p->prog = NULL;
        }
        c->programs_cnt++;
        return p;
}

const avk_avroprog_t *avk_codec_program(avk_codec_t *c, const avk_schema_t *schema)
{
        const struct program *p = program(c, schema);
        return p ? p->prog : NULL;
}

/* A writer/reader pair the program does not compile: decoded and projected
 * by avk_codec_decode(), written as the reader's binary, read into slots. */
static int decode_projected(avk_codec_t *c, const struct program *own, const void *buf, size_t len,
                            char *errstr, size_t errstr_size)
{
        avro_value_t *scratch = scratch_value(c, own->schema);
        if (!scratch) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        avro_value_t value = *scratch; /* a handle: scratch moves as the list grows */
        int rc = avk_codec_decode(c, buf, len, own->schema, &value, errstr, errstr_size);
        size_t size;
        if (rc != 0)
                return rc;
        if (avro_value_sizeof(&value, &size) != 0 ||
            reserve(&c->resolved, &c->resolved_cap, size) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        avro_writer_memory_set_dest(c->writer, (const char *)c->resolved, (int64_t)size);
        if (avro_value_write(c->writer, &value) != 0) {
                snprintf(errstr, errstr_size, "avro: %s", avro_strerror());
                return -1;
        }
        return avk_avroprog_decode(own->prog, c->resolved, size, own->slots, errstr, errstr_size);
}

int avk_codec_decode_slots(avk_codec_t *c, const void *buf, size_t len, const avk_schema_t *reader,
                           const avk_avroprog_slot_t **slots, char *errstr, size_t errstr_size)
{
        struct framed f;
        int rc = unframe(c, buf, len, reader, &f, errstr, errstr_size);
        if (rc != 0)
                return rc;
        const struct program *own = program(c, reader);
        if (!own || !own->prog) {
                snprintf(errstr, errstr_size, own ? "%s is not compiled" : "out of memory",
                         avk_schema_fullname(reader));
                return -1;
        }
        *slots = own->slots;
        if (avk_schema_fingerprint(f.writer) == avk_schema_fingerprint(reader))
                return avk_avroprog_decode(own->prog, f.body, f.body_len, own->slots, errstr,
                                           errstr_size);
        const struct resolution *r = resolution(c, f.writer, reader);
        if (!r) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        if (!r->resolve)
                return decode_projected(c, own, buf, len, errstr, errstr_size);
        *slots = r->slots;
        return avk_avroprog_decode(r->resolve, f.body, f.body_len, r->slots, errstr, errstr_size);
}

const void *avk_codec_body(const void *buf, size_t len, size_t *body_len)
{
        const unsigned char *p = buf;
        size_t hdr = 0;
        if (len >= CONFLUENT_HDR_SIZE && p[0] == CONFLUENT_MAGIC)
                hdr = CONFLUENT_HDR_SIZE;
        else if (len >= SOE_HDR_SIZE && p[0] == SOE_MAGIC0 && p[1] == SOE_MAGIC1)
                hdr = SOE_HDR_SIZE;
        else
                return NULL;
        *body_len = len - hdr;
        return p + hdr;
}
