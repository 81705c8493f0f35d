/*
 * avk_config: see config.h. Each known key is defined once, in a table with
 * its kind, bounds, default and meaning, so validation, defaults and the
 * listing all come from the same place: the shared keys here, a service's
 * keys beside the service.
 */
#include "common/util/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/util/errors.h"
#include "common/util/log.h"

/* The keys every command shares: Kafka and its topics, the Schema Registry,
 * the party directory and logging. A service's own keys are in its folder
 * (e.g. consumer/route/router_config.c) and join a configuration through
 * avk_config_add_keys(). */
static const struct avk_config_key shared_keys[] = {
    {"bootstrap.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file holding the embedded broker's bootstrap servers, read when "
     "kafka.bootstrap.servers is unset (default /tmp/avvik-<uid>/bootstrap.servers)"},
    {"schema.registry.url", AVK_CONFIG_URL, 0, 0, NULL,
     "Schema Registry base URL; unset means Avro single-object encoding"},
    {"schema.registry.basic.auth.user.info", AVK_CONFIG_STRING, 0, 0, NULL,
     "user:password for the Schema Registry"},
    {"schema.registry.ssl.ca.location", AVK_CONFIG_STRING, 0, 0, NULL,
     "CA bundle for an https Schema Registry (default: the system's)"},
    {"schema.registry.timeout.ms", AVK_CONFIG_INT, 1, 600000, "10000",
     "timeout of one Schema Registry request"},
    {"instance.name", AVK_CONFIG_STRING, 0, 0, NULL,
     "this instance's name in its service's consumer group (group.instance.id: static "
     "membership, so that a restarted instance gets its partitions back at once); default "
     "<hostname>-<service>. Also names a gateway's transactional producer when it has no "
     "spool. Two running instances of one service must not share one: the broker fences the "
     "older, which stops"},
    {"consumer.close.timeout.ms", AVK_CONFIG_INT, 100, 600000, "10000",
     "longest wait of a group consumer's close at shutdown (revoke, commit, leaving the group) "
     "before it gives up, offsets not committed left to the partitions' next owner"},
    {"topic.reported", AVK_CONFIG_STRING, 0, 0, "deviation.reported", "topic of DeviationReported"},
    {"topic.routed", AVK_CONFIG_STRING, 0, 0, "deviation.routed", "topic of DeviationRouted"},
    {"topic.response", AVK_CONFIG_STRING, 0, 0, "deviation.response", "topic of DeviationResponse"},
    {"topic.escalated", AVK_CONFIG_STRING, 0, 0, "deviation.escalated",
     "topic of DeviationEscalated"},
    {"topic.analysis", AVK_CONFIG_STRING, 0, 0, "deviation.analysis", "topic of AnalysisRecord"},
    {"topic.status", AVK_CONFIG_STRING, 0, 0, "deviation.status",
     "topic of DeviationStatus (the tracker's changelog; compacted in production)"},
    {"topic.reminder", AVK_CONFIG_STRING, 0, 0, "deviation.reminder", "topic of DeadlineReminder"},
    {"topic.feedback", AVK_CONFIG_STRING, 0, 0, "deviation.feedback",
     "topic of DeviationFeedback (each change of a deviation's course, for its reporting party)"},
    {"topic.delivery.failed", AVK_CONFIG_STRING, 0, 0, "deviation.delivery.failed",
     "topic of DeliveryFailed (a notification not delivered within its retry budget)"},
    {"topic.notify.retry", AVK_CONFIG_STRING, 0, 0, "deviation.notify.retry",
     "the notifier's retry topic: webhook deliveries parked until their next attempt (bodies "
     "included: read by the notifier only)"},
    {"topic.intake.receipts", AVK_CONFIG_STRING, 0, 0, "deviation.intake.receipts",
     "the intake's receipts: one record per stored document, its id only, written in the same "
     "Kafka transaction as the document (docs/intake.md, \"Receipts\")"},
    {"topic.deadletter", AVK_CONFIG_STRING, 0, 0, "deviation.deadletter",
     "dead-letter topic for records that cannot be processed"},
    {"topic.partitions", AVK_CONFIG_INT, 1, 1000, "6",
     "partition count shared by the lifecycle topics (embedded broker and deploy/)"},
    {"directory.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "the party directory (docs/routing.md), e.g. data/directory.json"},
    {"log.level", AVK_CONFIG_LOG_LEVEL, 0, 0, "info", "debug, info, warn or error"},
};

/* A key a configuration knows, and its value. */
struct known {
        const struct avk_config_key *def;
        char *value; /* NULL = the default */
};

struct avk_config {
        struct known *known; /* in the order the tables were added */
        size_t known_cnt;
        char **kafka_names;
        char **kafka_values;
        size_t kafka_cnt;
        rd_kafka_conf_t *kafka_probe; /* validates kafka.* values as they are set */
};

static struct known *find_key(const avk_config_t *cfg, const char *key)
{
        for (size_t i = 0; i < cfg->known_cnt; i++) {
                if (strcmp(cfg->known[i].def->key, key) == 0)
                        return &cfg->known[i];
        }
        return NULL;
}

int avk_config_add_keys(avk_config_t *cfg, const struct avk_config_table *table, char *errstr,
                        size_t errstr_size)
{
        struct known *grown;

        for (size_t i = 0; i < table->cnt; i++) {
                if (find_key(cfg, table->keys[i].key) != NULL) {
                        snprintf(errstr, errstr_size, "%s: defined twice", table->keys[i].key);
                        return -1;
                }
        }
        grown = realloc(cfg->known, (cfg->known_cnt + table->cnt) * sizeof(*grown));
        if (grown == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        cfg->known = grown;
        for (size_t i = 0; i < table->cnt; i++)
                cfg->known[cfg->known_cnt++] = (struct known){&table->keys[i], NULL};
        return 0;
}

avk_config_t *avk_config_new(void)
{
        static const struct avk_config_table shared = AVK_CONFIG_TABLE(shared_keys);
        avk_config_t *cfg = calloc(1, sizeof(*cfg));
        char errstr[64];

        if (!cfg)
                return NULL;
        cfg->kafka_probe = rd_kafka_conf_new();
        if (!cfg->kafka_probe || avk_config_add_keys(cfg, &shared, errstr, sizeof(errstr)) != 0) {
                avk_config_destroy(cfg);
                return NULL;
        }
        return cfg;
}

void avk_config_destroy(avk_config_t *cfg)
{
        if (!cfg)
                return;
        for (size_t i = 0; i < cfg->known_cnt; i++)
                free(cfg->known[i].value);
        free(cfg->known);
        for (size_t i = 0; i < cfg->kafka_cnt; i++) {
                free(cfg->kafka_names[i]);
                free(cfg->kafka_values[i]);
        }
        free(cfg->kafka_names);
        free(cfg->kafka_values);
        if (cfg->kafka_probe)
                rd_kafka_conf_destroy(cfg->kafka_probe);
        free(cfg);
}

static int set_kafka(avk_config_t *cfg, const char *name, const char *value, char *errstr,
                     size_t errstr_size)
{
        char reason[256];
        if (rd_kafka_conf_set(cfg->kafka_probe, name, value, reason, sizeof(reason)) !=
            RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "kafka.%s: %s", name, reason);
                return -1;
        }
        for (size_t i = 0; i < cfg->kafka_cnt; i++) {
                if (strcmp(cfg->kafka_names[i], name) == 0) {
                        char *v = strdup(value);
                        if (!v)
                                goto oom;
                        free(cfg->kafka_values[i]);
                        cfg->kafka_values[i] = v;
                        return 0;
                }
        }
        char **names = realloc(cfg->kafka_names, (cfg->kafka_cnt + 1) * sizeof(*names));
        if (!names)
                goto oom;
        cfg->kafka_names = names;
        char **values = realloc(cfg->kafka_values, (cfg->kafka_cnt + 1) * sizeof(*values));
        if (!values)
                goto oom;
        cfg->kafka_values = values;
        names[cfg->kafka_cnt] = strdup(name);
        values[cfg->kafka_cnt] = strdup(value);
        if (!names[cfg->kafka_cnt] || !values[cfg->kafka_cnt]) {
                free(names[cfg->kafka_cnt]);
                free(values[cfg->kafka_cnt]);
                goto oom;
        }
        cfg->kafka_cnt++;
        return 0;
oom:
        snprintf(errstr, errstr_size, "kafka.%s: out of memory", name);
        return -1;
}

static int check_value(const struct avk_config_key *def, const char *value, char *errstr,
                       size_t errstr_size)
{
        switch (def->kind) {
        case AVK_CONFIG_INT: {
                char *end;
                errno = 0;
                long long v = strtoll(value, &end, 10);
                if (errno || end == value || *end != '\0') {
                        snprintf(errstr, errstr_size, "%s: \"%s\" is not an integer", def->key,
                                 value);
                        return -1;
                }
                if (v < def->min || v > def->max) {
                        snprintf(errstr, errstr_size, "%s: %lld is outside %lld..%lld", def->key, v,
                                 (long long)def->min, (long long)def->max);
                        return -1;
                }
                return 0;
        }
        case AVK_CONFIG_URL:
                if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: \"%s\" is not an http:// or https:// URL", def->key, value);
                        return -1;
                }
                /* Errors and logs name the URL: credentials must not be part of it. */
                const char *authority = strstr(value, "://") + 3;
                if (memchr(authority, '@', strcspn(authority, "/?#"))) {
                        snprintf(errstr, errstr_size,
                                 "%s: the URL holds credentials; set them in "
                                 "schema.registry.basic.auth.user.info instead",
                                 def->key);
                        return -1;
                }
                return 0;
        case AVK_CONFIG_LOG_LEVEL: {
                enum avk_log_level level;
                if (avk_log_level_parse(value, &level) != 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: \"%s\" is not one of debug, info, warn, error", def->key,
                                 value);
                        return -1;
                }
                return 0;
        }
        case AVK_CONFIG_STRING:
                if (*value == '\0') {
                        snprintf(errstr, errstr_size, "%s: empty value", def->key);
                        return -1;
                }
                return 0;
        }
        return 0;
}

int avk_config_set(avk_config_t *cfg, const char *key, const char *value, char *errstr,
                   size_t errstr_size)
{
        if (strncmp(key, "kafka.", 6) == 0 && key[6] != '\0')
                return set_kafka(cfg, key + 6, value, errstr, errstr_size);
        struct known *known = find_key(cfg, key);
        if (!known) {
                snprintf(errstr, errstr_size, "%s: unknown configuration key", key);
                return -1;
        }
        if (check_value(known->def, value, errstr, errstr_size) != 0)
                return -1;
        char *copy = strdup(value);
        if (!copy) {
                snprintf(errstr, errstr_size, "%s: out of memory", key);
                return -1;
        }
        free(known->value);
        known->value = copy;
        return 0;
}

int avk_config_set_pair(avk_config_t *cfg, const char *pair, char *errstr, size_t errstr_size)
{
        const char *eq = strchr(pair, '=');
        if (!eq || eq == pair) {
                snprintf(errstr, errstr_size, "\"%s\": expected key=value", pair);
                return -1;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - pair), pair);
        return avk_config_set(cfg, key, eq + 1, errstr, errstr_size);
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

int avk_config_load_all(avk_config_t *cfg, const char *path, struct avk_errors *errs)
{
        size_t before = avk_errors_total(errs);
        FILE *f = fopen(path, "r");
        if (!f) {
                avk_errors_add(errs, path, "%s", strerror(errno));
                return -1;
        }
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0;
        /* Every line is tried, so that one look at the errors shows what a
         * file lacks or has too much (e.g. keys a newer binary would know). */
        while (getline(&line, &cap, f) != -1) {
                lineno++;
                char *s = trim(line);
                if (*s == '\0' || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        avk_errors_add(errs, NULL, "%s:%d: expected key=value", path, lineno);
                        continue;
                }
                *eq = '\0';
                char reason[AVK_ERROR_MSG_SIZE - 64];
                if (avk_config_set(cfg, trim(s), trim(eq + 1), reason, sizeof(reason)) != 0)
                        avk_errors_add(errs, NULL, "%s:%d: %s", path, lineno, reason);
        }
        free(line);
        fclose(f);
        return avk_errors_total(errs) == before ? 0 : -1;
}

int avk_config_load(avk_config_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
        struct avk_errors errs;
        avk_errors_init(&errs);
        if (avk_config_load_all(cfg, path, &errs) == 0)
                return 0;
        /* The first bad line: a service names it and stops. */
        snprintf(errstr, errstr_size, "%s", errs.msg[0]);
        return -1;
}

const char *avk_config_get(const avk_config_t *cfg, const char *key)
{
        const struct known *known = find_key(cfg, key);
        if (!known) {
                /* A programming error, not a user's: the key tables are ours. */
                avk_log(AVK_LOG_ERROR, "config", "no configuration key %s", key);
                abort();
        }
        return known->value ? known->value : known->def->dflt;
}

int64_t avk_config_get_int(const avk_config_t *cfg, const char *key)
{
        return strtoll(avk_config_get(cfg, key), NULL, 10);
}

size_t avk_config_kafka_cnt(const avk_config_t *cfg)
{
        return cfg->kafka_cnt;
}

void avk_config_kafka_get(const avk_config_t *cfg, size_t i, const char **name, const char **value)
{
        *name = cfg->kafka_names[i];
        *value = cfg->kafka_values[i];
}

void avk_config_describe(const avk_config_t *cfg, FILE *out)
{
        for (size_t i = 0; i < cfg->known_cnt; i++) {
                const struct avk_config_key *def = cfg->known[i].def;

                fprintf(out, "  %-38s %s%s%s%s\n", def->key, def->doc, def->dflt ? " [" : "",
                        def->dflt ? def->dflt : "", def->dflt ? "]" : "");
        }
        fprintf(out, "  %-38s %s\n", "kafka.<property>",
                "any librdkafka property, passed through (e.g. kafka.bootstrap.servers)");
}
