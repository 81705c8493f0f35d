/* avk_analysis_config: see analysis_config.h. */
#include "consumer/analyse/analysis_config.h"

static const struct avk_config_key keys[] = {
    {"analysis.group.id", AVK_CONFIG_STRING, 0, 0, "avvik-analysis",
     "consumer group of avvik analyse"},
    {"analysis.http.listen", AVK_CONFIG_STRING, 0, 0, NULL,
     "address of avvik analyse's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"analysis.http.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file avvik analyse writes the port of analysis.http.listen to, and removes when it stops"},
    {"analysis.pseudonym.key.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "key of the patient pseudonym (HMAC-SHA256), at least 32 bytes, readable by its owner only; "
     "required by avvik analyse (docs/analysis.md)"},
    {"analysis.cache.max.entries", AVK_CONFIG_INT, 16, 100000000, "1000000",
     "deviations avvik analyse keeps for their later state changes (oldest dropped first)"},
    {"analysis.deviation.wait.ms", AVK_CONFIG_INT, 0, 3600000, "2000",
     "how long a DeviationStatus still waits for its deviation once topic.reported is read to "
     "its end; then it is dead-lettered as missing"},
    {"analysis.max.in.flight", AVK_CONFIG_INT, 1, 1000000, "10000",
     "input records avvik analyse holds per input topic before it pauses that topic"},
    {"analysis.sink.url", AVK_CONFIG_STRING, 0, 0, NULL,
     "HTTP endpoint that takes the analysis stream as NDJSON batches; unset means the topic only"},
    {"analysis.sink.allow.http", AVK_CONFIG_INT, 0, 1, "0",
     "1 allows an http:// analysis.sink.url (tests, a sidecar on loopback); https otherwise"},
    {"analysis.sink.secret.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "key that signs every sink batch (X-Avvik-Signature, HMAC-SHA256), at least 32 bytes, "
     "readable by its owner only"},
    {"analysis.sink.ssl.ca.location", AVK_CONFIG_STRING, 0, 0, NULL,
     "CA bundle the sink's certificate is verified against (default: the system's)"},
    {"analysis.sink.batch.max", AVK_CONFIG_INT, 1, 100000, "500",
     "records in one sink batch at most"},
    {"analysis.sink.linger.ms", AVK_CONFIG_INT, 0, 600000, "200",
     "how long a batch short of analysis.sink.batch.max waits for more records"},
    {"analysis.sink.max.in.flight", AVK_CONFIG_INT, 1, 64, "4", "sink batches posted at once"},
    {"analysis.sink.timeout.ms", AVK_CONFIG_INT, 100, 600000, "10000",
     "timeout of one sink attempt, connection and answer included"},
    {"analysis.sink.connect.timeout.ms", AVK_CONFIG_INT, 100, 600000, "5000",
     "timeout of one sink attempt's connection (TCP and TLS handshake)"},
    {"analysis.sink.retry.max", AVK_CONFIG_INT, 1, 1000, "10",
     "attempts of one sink batch before its records are dead-lettered"},
    {"analysis.sink.retry.backoff.ms", AVK_CONFIG_INT, 1, 3600000, "1000",
     "base of the exponential backoff between sink attempts (full jitter)"},
    {"analysis.sink.retry.backoff.max.ms", AVK_CONFIG_INT, 1, 86400000, "60000",
     "cap of the backoff between sink attempts"},
};

const struct avk_config_table avk_analysis_config_keys = AVK_CONFIG_TABLE(keys);
