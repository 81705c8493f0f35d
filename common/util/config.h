/*
 * avk_config: avvik's configuration, a properties file in librdkafka's style
 * (key=value, '#' comments) overridden by command-line -X key=value.
 *
 * Every key is validated when it is set, as librdkafka does: an unknown key
 * or a bad value is an error naming the key (and the file and line), never a
 * silent default. kafka.* keys pass to librdkafka unchanged, without the
 * prefix, and are checked against librdkafka's own property table when set.
 */
#ifndef AVK_CONFIG_H
#define AVK_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct avk_config avk_config_t;

/** @brief A configuration holding every key's default. */
avk_config_t *avk_config_new(void);

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

/** @brief Prints every known key with its default and meaning (for --help). */
void avk_config_describe(FILE *out);

#endif
