/*
 * avk_json: JSON <-> Avro for every avvik schema, by one schema-driven walk.
 *
 * The JSON is shaped like the schema: a record is an object, a nullable union
 * is the value or null (no {"type": value} wrapper), an enum is its symbol, a
 * timestamp-millis is an RFC 3339 string ("2026-11-20T13:05:00.000Z").
 *
 * With AVK_JSON_VALIDATE the walk also applies the contract's field rules
 * from the schema's avk.* attributes: avk.format (uuid, party, hsa-id,
 * municipality, personal-id, past) and avk.minLength / avk.maxLength in
 * characters (a string without avk.maxLength may hold 256). Values are
 * normalised on the way in: uuids to lower case, personal ids to 12 digits.
 *
 * avk_json_stream_to_avro() (jsonstream.h) takes JSON text to Avro in one
 * pass under the same rules, for the intake's hot path.
 */
#ifndef AVK_JSON_H
#define AVK_JSON_H

#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "common/util/errors.h"
#include "common/contract/schema.h"

enum {
        AVK_JSON_VALIDATE = 1 << 0,       /**< apply avk.* rules: intake of new data */
        AVK_JSON_IGNORE_UNKNOWN = 1 << 1, /**< skip fields the schema lacks (newer writer) */
        AVK_JSON_ENUM_FALLBACK = 1 << 2,  /**< unknown symbol -> the enum's default */
};

struct avk_json_opts {
        unsigned flags;
        int64_t now_ms;  /**< for avk.format "past"; 0 = the real clock */
        int64_t skew_ms; /**< allowed clock skew for "past" */
        int today_ymd;   /**< for personal ids; 0 = today */
};

/**
 * @brief Fills out (a value of schema's class, reset first) from in.
 * @returns 0, or -1 with every field error added to errs as "path: reason".
 */
int avk_json_to_avro(const avk_schema_t *schema, const json_t *in, avro_value_t *out,
                     const struct avk_json_opts *opts, struct avk_errors *errs);

/**
 * @brief The JSON for a value of schema.
 * @returns a new reference, or NULL with the reason in errstr.
 */
json_t *avk_json_from_avro(const avk_schema_t *schema, avro_value_t *in, char *errstr,
                           size_t errstr_size);

/** @brief "an object", "a string", "null"...: a JSON value's type for error messages. */
const char *avk_json_type_name(const json_t *value);

/** @brief Parses an RFC 3339 timestamp to ms since the epoch; -1 when malformed. */
int avk_json_parse_time(const char *s, int64_t *ms);

/** @brief Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes with NUL). */
void avk_json_format_time(int64_t ms, char buf[32]);

#endif
