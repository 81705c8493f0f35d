/*
 * avk_json internals: what the two ways from JSON to Avro share, so that
 * both apply one set of rules.
 *
 * The tree walk (json.c, avk_json_to_avro) and the single pass over the JSON
 * text (jsonstream.c, avk_json_stream_to_avro) meet here: both describe a
 * JSON value as a kind plus its scalar, pick union branches, apply the
 * avk.* field rules and fill Avro values through the same functions; the
 * single pass fills absent fields through the tree walk itself, from the
 * defaults in the schema's JSON. jsonparse.c lends its number conversion
 * and its test for surrogate escapes, so both parsers accept the same
 * documents. Not a public interface: only the JSON modules include it.
 */
#ifndef AVK_JSON_INT_H
#define AVK_JSON_INT_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "common/contract/avroprog.h"
#include "common/contract/json.h"
#include "common/util/errors.h"
#include "common/util/path.h"
#include "common/contract/schema.h"

/** How deep the walk goes (records, unions, arrays and maps each count). */
#define AVK_JSON_WALK_MAX_DEPTH 64

/** What a JSON value is, as the rules see it. */
enum avk_json_kind {
        AVK_JSON_KIND_NULL,
        AVK_JSON_KIND_BOOLEAN,
        AVK_JSON_KIND_INTEGER,
        AVK_JSON_KIND_REAL,
        AVK_JSON_KIND_STRING,
        AVK_JSON_KIND_OBJECT,
        AVK_JSON_KIND_ARRAY,
};

/** A JSON value without its children: enough for every scalar rule. */
struct avk_json_scalar {
        enum avk_json_kind kind;
        int boolean;
        int64_t integer;
        double real;
        const char *string; /**< NUL-terminated; may hold a NUL before len (a rule rejects it) */
        size_t len;
        int nul_free; /**< string is known to hold no NUL before len: not looked for again */
};

/** avk.format as a number: read once per field, not compared by name for every value. */
enum avk_json_format {
        AVK_JSON_FORMAT_NONE, /**< no avk.format, or one no rule knows */
        AVK_JSON_FORMAT_UUID,
        AVK_JSON_FORMAT_PARTY,
        AVK_JSON_FORMAT_HSA_ID,
        AVK_JSON_FORMAT_MUNICIPALITY,
        AVK_JSON_FORMAT_PERSONAL_ID,
        AVK_JSON_FORMAT_PAST,
        /** A party as a reporter names it: "VGR" or 4 digits; the router checks the code. */
        AVK_JSON_FORMAT_NAMED_PARTY,
        AVK_JSON_FORMAT_REFERENCE, /**< an opaque reference: printable, not identity-shaped */
};

/** The rules a field's JSON sets for its values (read once per field). */
struct avk_json_rules {
        long long min_chars; /**< avk.minLength, 0 when unset */
        long long max_chars; /**< avk.maxLength, 0 when unset (the default applies) */
        enum avk_json_format format;
        int timestamp; /**< the type's logicalType is timestamp-millis */
};

/** One conversion: its options, clock, where errors go and the path so far. */
struct avk_json_walk {
        const avk_schema_t *schema;
        const struct avk_json_opts *opts;
        struct avk_errors *errs; /**< NULL: errors are not recorded, only returned */
        int64_t now_ms;
        int today_ymd;
        struct avk_path path;
};

/** @brief Starts a walk: the clock and today's date from opts or the system. */
void avk_json_walk_init(struct avk_json_walk *w, const avk_schema_t *schema,
                        const struct avk_json_opts *opts, struct avk_errors *errs);

/** @brief s without its link: the named type a link refers to. */
avro_schema_t avk_json_deref(avro_schema_t s);

/** @brief The JSON definition that describes s (dereferenced) where node stands. */
const json_t *avk_json_resolve_node(const avk_schema_t *schema, avro_schema_t s,
                                    const json_t *node);

/**
 * @brief The rules of field (a record field's JSON, or NULL) for a value of
 * s (dereferenced) described by node: lengths for strings, the timestamp for
 * longs, avk.format for both; none for other types.
 */
void avk_json_rules_of(avro_schema_t s, const json_t *field, const json_t *node,
                       struct avk_json_rules *rules);

/** @brief "an object", "a string", "null"...: a kind's name for error messages. */
const char *avk_json_kind_name(enum avk_json_kind kind);

/**
 * @brief The union branch of s for a value of kind: null for null, otherwise
 * the first branch whose Avro type matches, or the one non-null branch.
 * @returns the branch index, or -1 when none fits.
 */
int avk_json_union_branch(avro_schema_t s, enum avk_json_kind kind);

/** Room for a string a rule rewrites (a UUID in lower case, a normalised personal id). */
#define AVK_JSON_NORM_SIZE 64

/**
 * @brief The value of a scalar under rules for the dereferenced type s
 * (described by node), as an avk_avroprog slot holds it: a string (in->string
 * itself, or its normalised form written into norm), a long or timestamp,
 * an int, a boolean, floating point, null (nothing) or an enum symbol's
 * index. Records, unions, arrays and maps are the caller's.
 * @returns 0, or -1 after adding the error to w's list.
 */
int avk_json_convert_scalar(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                            const struct avk_json_rules *rules, const struct avk_json_scalar *in,
                            char norm[AVK_JSON_NORM_SIZE], avk_avroprog_slot_t *out);

/**
 * @brief Fills out (of the dereferenced type s, described by node) from a
 * scalar under rules: strings, longs and timestamps, ints, booleans,
 * floating point, null and enum symbols. Records, unions, arrays and maps
 * are the caller's.
 * @returns 0, or -1 after adding the error to w's list.
 */
int avk_json_set_scalar(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                        const struct avk_json_rules *rules, const struct avk_json_scalar *in,
                        avro_value_t *out);

/** @brief The scalar of a jansson value (containers: their kind alone); strings stay v's. */
void avk_json_scalar_of(const json_t *v, struct avk_json_scalar *out);

/**
 * @brief The tree walk at one place: fills out (of type s, node its JSON
 * type, field its record field's JSON or NULL) from in, depth levels down.
 * @returns 0, or -1 after adding every error under it.
 */
int avk_json_walk_value(struct avk_json_walk *w, avro_schema_t s, const json_t *node,
                        const json_t *field, const json_t *in, avro_value_t *out, int depth);

/**
 * @brief Converts a JSON number's text as avk_json_parse() does: an integer
 * in int64, or a real when it has a fraction or exponent.
 * @returns 0, or -1 with the reason in *problem.
 */
int avk_json_number(const char *text, size_t len, struct avk_json_scalar *out,
                    const char **problem);

/**
 * @brief Whether buf holds a \\uD800-\\uDFFF escape: yajl would turn a lone
 * one into '?', so such documents go to jansson's parser.
 */
int avk_json_has_surrogate_escape(const char *buf, size_t len);

/**
 * An "avk.differsFrom" of a field, as both ways read it (docs/architecture.md, "The contract"):
 * the field must not hold the string at other, a dotted path from the record's root
 * ("reporter.party"), unless the field at unless_field holds unless_is (a string or an enum
 * symbol) - a response's suggested_receiver may be its party when the triage desk speaks,
 * {"field": "party", "unless": {"field": "responder", "is": "TRIAGE_DESK"}, "reason": "..."}.
 * The strings are the schema's.
 */
struct avk_json_differs {
        const char *other;
        const char *reason;
        const char *unless_field; /**< NULL: the rule has no exception */
        const char *unless_is;
};

/**
 * @brief Reads the avk.differsFrom of fdef, a field of the schema's JSON, into out.
 * @returns 1 when the field has one, 0 when it has none, -1 when it is malformed (no "field",
 * no "reason", or an "unless" without both "field" and "is").
 */
int avk_json_differs_of(const json_t *fdef, struct avk_json_differs *out);

/**
 * @brief The rules between fields of the complete record out, once the walk
 * filled it (with AVK_JSON_VALIDATE only): each avk.differsFrom, e.g. a
 * deviation's receiver.party that is its reporter.party.
 * @returns 0, or -1 after adding each error to w's list.
 */
int avk_json_check_relations(struct avk_json_walk *w, avro_value_t *out);

#endif
