/*
 * avk_ident: validation of the identifiers a deviation carries - Swedish
 * personal identity numbers (personnummer) and coordination numbers
 * (samordningsnummer), HSA-ids of units, municipality codes and parties, and
 * event timestamps - and of the names its delivery uses (Kafka topics,
 * webhook URLs). Rules: docs/domain.md, "Identifiers".
 *
 * Every validator returns 0 when the input is valid and -1 otherwise, writing
 * one sentence naming the reason into errstr (librdkafka's errstr convention);
 * the caller prefixes the field path. The sentence never repeats the whole
 * input: a personal identity number must not reach a log through an error.
 */
#ifndef AVK_IDENT_H
#define AVK_IDENT_H

#include <stddef.h>
#include <stdint.h>

enum avk_sex { AVK_SEX_FEMALE, AVK_SEX_MALE };

/** A parsed personnummer or samordningsnummer. */
struct avk_personal_id {
        char normalized[13]; /**< 12 digits YYYYMMDDNNNC, NUL-terminated */
        int birth_year;      /**< four digits */
        int birth_month;     /**< 1..12 */
        int birth_day;       /**< 1..31, the real day (60 already taken off) */
        int is_coordination; /**< 1 for a samordningsnummer (day + 60) */
        enum avk_sex sex;    /**< odd third birth digit (N of NNNC... the 9th digit) = male */
};

/**
 * @brief Validates a personnummer or samordningsnummer.
 *
 * Accepts YYMMDD-NNNC, YYMMDD+NNNC ('+' from the year the person turns 100),
 * YYMMDDNNNC, YYYYMMDDNNNC and YYYYMMDD-NNNC. The century of the short forms is
 * resolved against today_ymd (e.g. 20261123), as the Tax Agency does. Checks
 * the Luhn check digit, that the birth date exists (leap years included) and
 * is not after today_ymd.
 *
 * @param out receives the parsed number; may be NULL.
 */
int avk_ident_personal_id(const char *s, int today_ymd, struct avk_personal_id *out, char *errstr,
                          size_t errstr_size);

/**
 * @brief Validates an HSA-id: "SE", the 10-digit organisation number of the
 * directory owner (Luhn check digit), '-', then one or more [A-Za-z0-9];
 * at most 31 characters in all.
 */
int avk_ident_hsa_id(const char *s, char *errstr, size_t errstr_size);

/** @brief Validates a municipality code: one of the county's 49 (SCB kommunkod). */
int avk_ident_municipality_code(const char *s, char *errstr, size_t errstr_size);

/** @brief Validates a party: "VGR" or one of the county's 49 municipality codes. */
int avk_ident_party(const char *s, char *errstr, size_t errstr_size);

/**
 * @brief Validates a Kafka topic name: 1 to 249 characters of [a-zA-Z0-9._-],
 * neither "." nor "..", as the broker requires.
 */
int avk_ident_kafka_topic(const char *s, char *errstr, size_t errstr_size);

/**
 * @brief Validates an endpoint URL: "https://" (or "http://" when allow_http
 * is set) and a host, no credentials before the host, no spaces or control
 * characters. The sentence never repeats the URL: a webhook URL may carry a
 * token in its path or query.
 */
int avk_ident_http_url(const char *s, int allow_http, char *errstr, size_t errstr_size);

/**
 * @brief Checks that a timestamp (ms since the epoch, UTC) is not later than
 * now_ms + skew_ms: events are reported after they happen.
 */
int avk_ident_not_future(int64_t ts_ms, int64_t now_ms, int64_t skew_ms, char *errstr,
                         size_t errstr_size);

/** @brief Today's date in local time as YYYYMMDD. */
int avk_ident_today_ymd(void);

/** A UUID in text (8-4-4-4-12 hex digits) and its NUL. */
#define AVK_IDENT_UUID_SIZE 37

/**
 * @brief Whether s[0..len) is a UUID in text: 8-4-4-4-12 hex digits of
 * either case, what uuid_parse() accepts, without its strtoul per group.
 * @returns 1 or 0.
 */
int avk_ident_is_uuid(const char *s, size_t len);

/**
 * @brief A name-based UUID (version 5, SHA-1; RFC 4122 section 4.3) of name
 * in the namespace ns (a UUID in text), written in lower case to out.
 * Output ids derived from input ids this way make a replay recognisable.
 * @returns 0, or -1 when ns is not a UUID.
 */
int avk_ident_uuid5(const char *ns, const char *name, size_t name_len,
                    char out[AVK_IDENT_UUID_SIZE]);

#endif
