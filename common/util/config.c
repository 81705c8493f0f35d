/*
 * avk_config: see config.h. The known keys live in one table with their
 * kind, bounds, default and meaning, so validation, defaults and --help all
 * come from the same place.
 */
#include "common/util/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/util/errors.h"
#include "common/util/log.h"

enum kind { KIND_STRING, KIND_INT, KIND_URL, KIND_LOG_LEVEL };

struct key_def {
        const char *key;
        enum kind kind;
        int64_t min, max;
        const char *dflt;
        const char *doc;
};

static const struct key_def keys[] = {
    {"bootstrap.file", KIND_STRING, 0, 0, NULL,
     "file holding the embedded broker's bootstrap servers, read when "
     "kafka.bootstrap.servers is unset (default /tmp/avvik-<uid>/bootstrap.servers)"},
    {"schema.registry.url", KIND_URL, 0, 0, NULL,
     "Schema Registry base URL; unset means Avro single-object encoding"},
    {"schema.registry.basic.auth.user.info", KIND_STRING, 0, 0, NULL,
     "user:password for the Schema Registry"},
    {"schema.registry.ssl.ca.location", KIND_STRING, 0, 0, NULL,
     "CA bundle for an https Schema Registry (default: the system's)"},
    {"schema.registry.timeout.ms", KIND_INT, 1, 600000, "10000",
     "timeout of one Schema Registry request"},
    {"consumer.close.timeout.ms", KIND_INT, 100, 600000, "10000",
     "longest wait of a group consumer's close at shutdown (revoke, commit, leaving the group) "
     "before it gives up, offsets not committed left to the partitions' next owner"},
    {"topic.reported", KIND_STRING, 0, 0, "deviation.reported", "topic of DeviationReported"},
    {"topic.routed", KIND_STRING, 0, 0, "deviation.routed", "topic of DeviationRouted"},
    {"topic.response", KIND_STRING, 0, 0, "deviation.response", "topic of DeviationResponse"},
    {"topic.escalated", KIND_STRING, 0, 0, "deviation.escalated", "topic of DeviationEscalated"},
    {"topic.analysis", KIND_STRING, 0, 0, "deviation.analysis", "topic of AnalysisRecord"},
    {"topic.status", KIND_STRING, 0, 0, "deviation.status",
     "topic of DeviationStatus (the tracker's changelog; compacted in production)"},
    {"topic.reminder", KIND_STRING, 0, 0, "deviation.reminder", "topic of DeadlineReminder"},
    {"topic.delivery.failed", KIND_STRING, 0, 0, "deviation.delivery.failed",
     "topic of DeliveryFailed (a notification not delivered within its retry budget)"},
    {"topic.notify.retry", KIND_STRING, 0, 0, "deviation.notify.retry",
     "the notifier's retry topic: webhook deliveries parked until their next attempt (bodies "
     "included: read by the notifier only)"},
    {"topic.deadletter", KIND_STRING, 0, 0, "deviation.deadletter",
     "dead-letter topic for records that cannot be processed"},
    {"topic.partitions", KIND_INT, 1, 1000, "6",
     "partition count shared by the lifecycle topics (embedded broker and deploy/)"},
    {"notify.group.id", KIND_STRING, 0, 0, "avvik-notify", "consumer group of avvik notify"},
    {"notify.http.listen", KIND_STRING, 0, 0, NULL,
     "address of avvik notify's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"notify.http.port.file", KIND_STRING, 0, 0, NULL,
     "file avvik notify writes its /metrics port to once it listens, and removes when it stops"},
    {"notify.timeout.ms", KIND_INT, 100, 600000, "10000",
     "timeout of one webhook attempt, connection and answer included"},
    {"notify.connect.timeout.ms", KIND_INT, 100, 600000, "5000",
     "timeout of one webhook attempt's connection (TCP and TLS handshake)"},
    {"notify.retry.max", KIND_INT, 0, 1000000, "0",
     "attempts of one webhook delivery before it is dead-lettered; 0: no count, "
     "notify.retry.max.age.ms alone ends the retries"},
    {"notify.retry.max.age.ms", KIND_INT, 1000, 604800000, "3600000",
     "time after the first attempt past which no new attempt starts (dead letter instead)"},
    {"notify.retry.backoff.ms", KIND_INT, 1, 3600000, "1000",
     "base of the exponential backoff between attempts (full jitter)"},
    {"notify.retry.backoff.max.ms", KIND_INT, 1, 86400000, "300000",
     "cap of the backoff between attempts"},
    {"notify.max.in.flight", KIND_INT, 1, 100000, "1000",
     "fresh deliveries not finished at once (waiting for the deviation, first attempt in flight, "
     "inbox copies or parking unacknowledged); past it the notifier stops fetching "
     "topic.routed, topic.escalated and topic.reminder. Also the most retry attempts at once"},
    {"notify.retry.max.held", KIND_INT, 1, 1000000, "10000",
     "records of topic.notify.retry held at once until their attempt; past it the notifier "
     "stops fetching topic.notify.retry"},
    {"notify.ssl.ca.location", KIND_STRING, 0, 0, NULL,
     "CA bundle that webhook certificates are verified against (default: the system's); "
     "verification is always on"},
    {"notify.cache.max.entries", KIND_INT, 16, 100000000, "100000",
     "deviations of topic.reported the notifier keeps for webhook bodies (oldest dropped first)"},
    {"notify.deviation.wait.ms", KIND_INT, 0, 3600000, "2000",
     "how long a routed record still waits for its deviation once topic.reported is read to its "
     "end; then it is dead-lettered as missing"},
    {"directory.file", KIND_STRING, 0, 0, NULL,
     "the party directory (docs/routing.md), e.g. data/directory.json"},
    {"routing.rules.file", KIND_STRING, 0, 0, NULL,
     "the routing rules (docs/routing.md), e.g. data/routing-rules.json; required by avvik route"},
    {"deadlines.file", KIND_STRING, 0, 0, NULL,
     "the deadline policy (docs/deadlines.md), e.g. data/deadlines.json; required by avvik track"},
    {"router.group.id", KIND_STRING, 0, 0, "avvik-router", "consumer group of avvik route"},
    {"router.http.listen", KIND_STRING, 0, 0, NULL,
     "address of avvik route's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"router.http.port.file", KIND_STRING, 0, 0, NULL,
     "file avvik route writes its /metrics port to once it listens, and removes when it stops"},
    {"tracker.group.id", KIND_STRING, 0, 0, "avvik-tracker", "consumer group of avvik track"},
    {"tracker.http.listen", KIND_STRING, 0, 0, NULL,
     "address of avvik track's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"tracker.tick.ms", KIND_INT, 10, 60000, "1000",
     "how often avvik track looks for due reminders and deadlines (processing time)"},
    {"tracker.kept.max", KIND_INT, 1, 10000000, "10000",
     "responses avvik track keeps while their routing has not arrived"},
    {"tracker.kept.max.ms", KIND_INT, 1000, 86400000, "600000",
     "how long a response waits for its routing before it is dead-lettered"},
    {"tracker.clock.file", KIND_STRING, 0, 0, NULL,
     "FOR TESTS ONLY: a file holding the tracker's processing time (ms since the epoch), "
     "read at every tick instead of the system clock; unset in production"},
    {"analysis.group.id", KIND_STRING, 0, 0, "avvik-analysis", "consumer group of avvik analyse"},
    {"analysis.http.listen", KIND_STRING, 0, 0, NULL,
     "address of avvik analyse's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"analysis.http.port.file", KIND_STRING, 0, 0, NULL,
     "file avvik analyse writes the port of analysis.http.listen to, and removes when it stops"},
    {"analysis.pseudonym.key.file", KIND_STRING, 0, 0, NULL,
     "key of the patient pseudonym (HMAC-SHA256), at least 32 bytes, readable by its owner only; "
     "required by avvik analyse (docs/analysis.md)"},
    {"analysis.cache.max.entries", KIND_INT, 16, 100000000, "1000000",
     "deviations avvik analyse keeps for their later state changes (oldest dropped first)"},
    {"analysis.deviation.wait.ms", KIND_INT, 0, 3600000, "2000",
     "how long a DeviationStatus still waits for its deviation once topic.reported is read to "
     "its end; then it is dead-lettered as missing"},
    {"analysis.max.in.flight", KIND_INT, 1, 1000000, "10000",
     "input records avvik analyse holds per input topic before it pauses that topic"},
    {"analysis.sink.url", KIND_STRING, 0, 0, NULL,
     "HTTP endpoint that takes the analysis stream as NDJSON batches; unset means the topic only"},
    {"analysis.sink.allow.http", KIND_INT, 0, 1, "0",
     "1 allows an http:// analysis.sink.url (tests, a sidecar on loopback); https otherwise"},
    {"analysis.sink.secret.file", KIND_STRING, 0, 0, NULL,
     "key that signs every sink batch (X-Avvik-Signature, HMAC-SHA256), at least 32 bytes"},
    {"analysis.sink.ssl.ca.location", KIND_STRING, 0, 0, NULL,
     "CA bundle the sink's certificate is verified against (default: the system's)"},
    {"analysis.sink.batch.max", KIND_INT, 1, 100000, "500", "records in one sink batch at most"},
    {"analysis.sink.linger.ms", KIND_INT, 0, 600000, "200",
     "how long a batch short of analysis.sink.batch.max waits for more records"},
    {"analysis.sink.max.in.flight", KIND_INT, 1, 64, "4", "sink batches posted at once"},
    {"analysis.sink.timeout.ms", KIND_INT, 100, 600000, "10000",
     "timeout of one sink attempt, connection and answer included"},
    {"analysis.sink.connect.timeout.ms", KIND_INT, 100, 600000, "5000",
     "timeout of one sink attempt's connection (TCP and TLS handshake)"},
    {"analysis.sink.retry.max", KIND_INT, 1, 1000, "10",
     "attempts of one sink batch before its records are dead-lettered"},
    {"analysis.sink.retry.backoff.ms", KIND_INT, 1, 3600000, "1000",
     "base of the exponential backoff between sink attempts (full jitter)"},
    {"analysis.sink.retry.backoff.max.ms", KIND_INT, 1, 86400000, "60000",
     "cap of the backoff between sink attempts"},
    {"intake.clock.skew.ms", KIND_INT, 0, 86400000, "300000",
     "how far in the future an event timestamp may lie (clock skew between systems)"},
    {"intake.ack.timeout.ms", KIND_INT, 1000, 3600000, "10000",
     "how long intake waits for Kafka to acknowledge a document before answering unavailable"},
    {"intake.spool.dir", KIND_STRING, 0, 0, NULL,
     "directory of the intake spool: documents Kafka did not acknowledge are kept there "
     "(fsync'd) and produced in order when Kafka is back; unset means no spool"},
    {"intake.spool.max.bytes", KIND_INT, 4096, INT64_MAX, "1073741824",
     "size limit of the spool file; past it intake answers unavailable"},
    {"gateway.listen", KIND_STRING, 0, 0, "127.0.0.1:8080",
     "address the HTTP gateway listens on: host:port or [address]:port; port 0 picks a free "
     "one"},
    {"gateway.port.file", KIND_STRING, 0, 0, NULL,
     "file the gateway writes its port to once it listens, and removes when it stops"},
    {"gateway.tokens.file", KIND_STRING, 0, 0, NULL,
     "the gateway's bearer tokens, one a line: <sha256-hex-of-token> <party> [label] "
     "('avvik token' makes them); required by avvik gateway"},
    {"gateway.tls.cert.file", KIND_STRING, 0, 0, NULL,
     "PEM certificate (chain) of the gateway; with gateway.tls.key.file it serves HTTPS only"},
    {"gateway.tls.key.file", KIND_STRING, 0, 0, NULL, "PEM private key of gateway.tls.cert.file"},
    {"gateway.max.body.bytes", KIND_INT, 1024, 16777216, "65536",
     "largest request body the gateway takes; a larger one is answered 413"},
    {"gateway.max.in.flight", KIND_INT, 1, 1000000, "1000",
     "documents waiting for Kafka at once; past it the gateway answers 503 with Retry-After"},
    {"gateway.threads", KIND_INT, 1, 256, "4", "HTTP server threads of the gateway"},
    {"gateway.max.connections", KIND_INT, 16, 1000000, "4096",
     "connections the gateway holds open at once; past it new ones are closed at once"},
    {"gateway.max.connections.per.client", KIND_INT, 1, 1000000, "256",
     "connections the gateway holds open from one client address; past it that address's new "
     "ones are closed at once, and other clients are still served"},
    {"gateway.header.timeout.s", KIND_INT, 1, 3600, "10",
     "seconds a new connection may be idle until its first request's headers are in"},
    {"gateway.body.timeout.s", KIND_INT, 1, 3600, "30",
     "seconds a connection may be idle after its first request's headers: while a body comes, "
     "and between requests"},
    {"gateway.idempotency.max.entries", KIND_INT, 16, 100000000, "100000",
     "idempotency keys the gateway remembers (Idempotency-Key and document ids)"},
    {"gateway.idempotency.ttl.s", KIND_INT, 1, 2592000, "86400",
     "seconds an accepted request's answer is kept for its retries"},
    {"gateway.cursor.key.file", KIND_STRING, 0, 0, NULL,
     "file holding the key (at least 32 bytes) that signs the list's paging cursors; every "
     "gateway instance behind one address needs the same; unset, each start makes its own"},
    {"gateway.cursor.ttl.s", KIND_INT, 1, 604800, "3600",
     "seconds a paging cursor of GET /v1/deviations stays valid"},
    {"dashboard.listen", KIND_STRING, 0, 0, "127.0.0.1:8090",
     "address avvik dashboard serves its page, API, report, /metrics and probes on: host:port "
     "or [address]:port; port 0 picks a free one"},
    {"dashboard.port.file", KIND_STRING, 0, 0, NULL,
     "file the dashboard writes its port to once it listens, and removes when it stops"},
    {"dashboard.clock.file", KIND_STRING, 0, 0, NULL,
     "FOR TESTS AND THE LOCAL STACK'S DEMO ONLY: a file holding the dashboard's processing time "
     "(ms since the epoch) for the overdue list; unset in production"},
    {"dashboard.overdue.max", KIND_INT, 1, 100000, "500",
     "overdue deviations listed at most by /api/forsenade.json (the total is always given)"},
    {"log.level", KIND_LOG_LEVEL, 0, 0, "info", "debug, info, warn or error"},
};

#define KEY_CNT (sizeof(keys) / sizeof(keys[0]))

struct avk_config {
        char *values[KEY_CNT]; /* NULL = default */
        char **kafka_names;
        char **kafka_values;
        size_t kafka_cnt;
        rd_kafka_conf_t *kafka_probe; /* validates kafka.* values as they are set */
};

avk_config_t *avk_config_new(void)
{
        avk_config_t *cfg = calloc(1, sizeof(*cfg));
        if (!cfg)
                return NULL;
        cfg->kafka_probe = rd_kafka_conf_new();
        return cfg;
}

void avk_config_destroy(avk_config_t *cfg)
{
        if (!cfg)
                return;
        for (size_t i = 0; i < KEY_CNT; i++)
                free(cfg->values[i]);
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

static const struct key_def *find_key(const char *key, size_t *index)
{
        for (size_t i = 0; i < KEY_CNT; i++) {
                if (strcmp(keys[i].key, key) == 0) {
                        *index = i;
                        return &keys[i];
                }
        }
        return NULL;
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

static int check_value(const struct key_def *def, const char *value, char *errstr,
                       size_t errstr_size)
{
        switch (def->kind) {
        case KIND_INT: {
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
        case KIND_URL:
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
        case KIND_LOG_LEVEL: {
                enum avk_log_level level;
                if (avk_log_level_parse(value, &level) != 0) {
                        snprintf(errstr, errstr_size,
                                 "%s: \"%s\" is not one of debug, info, warn, error", def->key,
                                 value);
                        return -1;
                }
                return 0;
        }
        case KIND_STRING:
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
        size_t i;
        const struct key_def *def = find_key(key, &i);
        if (!def) {
                snprintf(errstr, errstr_size, "%s: unknown configuration key", key);
                return -1;
        }
        if (check_value(def, value, errstr, errstr_size) != 0)
                return -1;
        char *copy = strdup(value);
        if (!copy) {
                snprintf(errstr, errstr_size, "%s: out of memory", key);
                return -1;
        }
        free(cfg->values[i]);
        cfg->values[i] = copy;
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
        size_t i;
        if (!find_key(key, &i)) {
                /* A programming error, not a user's: the key table is ours. */
                avk_log(AVK_LOG_ERROR, "config", "no configuration key %s", key);
                abort();
        }
        return cfg->values[i] ? cfg->values[i] : keys[i].dflt;
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

void avk_config_describe(FILE *out)
{
        for (size_t i = 0; i < KEY_CNT; i++)
                fprintf(out, "  %-38s %s%s%s%s\n", keys[i].key, keys[i].doc,
                        keys[i].dflt ? " [" : "", keys[i].dflt ? keys[i].dflt : "",
                        keys[i].dflt ? "]" : "");
        fprintf(out, "  %-38s %s\n", "kafka.<property>",
                "any librdkafka property, passed through (e.g. kafka.bootstrap.servers)");
}
