/*
 * avk_config: avvik's configuration, a properties file in librdkafka's style
 * (key=value, '#' comments) overridden by command-line -X key=value.
 *
 * Every key is validated when it is set, as librdkafka does: an unknown key
 * or a bad value is an error naming the key (and the file and line), never a
 * silent default. kafka.* keys pass to librdkafka unchanged, without the
 * prefix, and are checked against librdkafka's own property table when set.
 *
 * The keys every service shares are defined here; a service's own keys are
 * defined in a table beside it (consumer/route/router_config.c, ...) and added
 * with avk_config_add_keys(), so this module names no service.
 */
#ifndef AVK_CONFIG_H
#define AVK_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct avk_config avk_config_t;

/** What a key's values are, and how they are checked when set. */
enum avk_config_kind {
        AVK_CONFIG_STRING,    /**< any non-empty text */
        AVK_CONFIG_INT,       /**< an integer from min to max */
        AVK_CONFIG_URL,       /**< an http:// or https:// URL without credentials */
        AVK_CONFIG_LOG_LEVEL, /**< debug, info, warn or error */
};

/** A configuration key. */
struct avk_config_key {
        const char *key; /**< "router.group.id" */
        enum avk_config_kind kind;
        int64_t min, max; /**< AVK_CONFIG_INT: the bounds */
        const char *dflt; /**< the default, or NULL for none */
        const char *doc;  /**< its meaning, for the listing */
};

/** A table of keys: the keys one service reads, kept beside the service. */
struct avk_config_table {
        const struct avk_config_key *keys;
        size_t cnt;
};

/** A table over a static array of keys. */
#define AVK_CONFIG_TABLE(array)                                                                    \
        {                                                                                          \
                (array), sizeof(array) / sizeof((array)[0])                                        \
        }

/**
 * @brief A configuration that knows the shared keys (Kafka topics, the
 * Schema Registry, the party directory, logging), each at its default.
 * A service's keys are added with avk_config_add_keys().
 */
avk_config_t *avk_config_new(void);

/**
 * @brief Adds a table of keys, each at its default, to the keys cfg knows:
 * set, got and listed from then on. The table must outlive cfg.
 * @returns 0, or -1 with the reason in errstr (a key cfg already knows).
 */
int avk_config_add_keys(avk_config_t *cfg, const struct avk_config_table *table, char *errstr,
                        size_t errstr_size);

void avk_config_destroy(avk_config_t *cfg);

/** @brief Sets one key. @returns 0, or -1 with "key: reason" in errstr. */
int avk_config_set(avk_config_t *cfg, const char *key, const char *value, char *errstr,
                   size_t errstr_size);

/** @brief Sets "key=value" (the form of -X). */
int avk_config_set_pair(avk_config_t *cfg, const char *pair, char *errstr, size_t errstr_size);

/** @brief Loads a properties file. @returns 0, or -1 with "path:line: reason". */
int avk_config_load(avk_config_t *cfg, const char *path, char *errstr, size_t errstr_size);

struct avk_errors;

/**
 * @brief Loads a properties file, trying every line: each bad one adds
 * "path:line: reason" to errs (a file that cannot be read, "path: reason").
 * Good lines are applied either way. @returns 0, or -1 when any line failed.
 */
int avk_config_load_all(avk_config_t *cfg, const char *path, struct avk_errors *errs);

/**
 * @brief The value of a known non-kafka key (its default when unset; NULL
 * when it has none). The string is owned by cfg and valid until it changes.
 */
const char *avk_config_get(const avk_config_t *cfg, const char *key);

/** @brief The value of a known integer key. */
int64_t avk_config_get_int(const avk_config_t *cfg, const char *key);

/** @brief Number of kafka.* keys set, and the i-th (name without "kafka."). */
size_t avk_config_kafka_cnt(const avk_config_t *cfg);
void avk_config_kafka_get(const avk_config_t *cfg, size_t i, const char **name, const char **value);

/** @brief Prints every key cfg knows with its default and meaning, in the order added. */
void avk_config_describe(const avk_config_t *cfg, FILE *out);

#endif
