/* avk_notify_config: see notify_config.h. */
#include "consumer/notify/notify_config.h"

static const struct avk_config_key keys[] = {
    {"notify.group.id", AVK_CONFIG_STRING, 0, 0, "avvik-notify", "consumer group of avvik notify"},
    {"notify.http.listen", AVK_CONFIG_STRING, 0, 0, NULL,
     "address of avvik notify's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"notify.http.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file avvik notify writes its /metrics port to once it listens, and removes when it stops"},
    {"notify.timeout.ms", AVK_CONFIG_INT, 100, 600000, "10000",
     "timeout of one webhook attempt, connection and answer included"},
    {"notify.connect.timeout.ms", AVK_CONFIG_INT, 100, 600000, "5000",
     "timeout of one webhook attempt's connection (TCP and TLS handshake)"},
    {"notify.retry.max", AVK_CONFIG_INT, 0, 1000000, "0",
     "attempts of one webhook delivery before it is dead-lettered, whichever of this and "
     "notify.retry.max.age.ms is spent first (set, it can end the retries before the age); "
     "0: no count, the age alone ends them"},
    {"notify.retry.max.age.ms", AVK_CONFIG_INT, 1000, 604800000, "3600000",
     "time after the first attempt past which no new attempt starts (dead letter instead)"},
    {"notify.retry.backoff.ms", AVK_CONFIG_INT, 1, 3600000, "1000",
     "base of the exponential backoff between attempts (full jitter)"},
    {"notify.retry.backoff.max.ms", AVK_CONFIG_INT, 1, 86400000, "300000",
     "cap of the backoff between attempts"},
    {"notify.max.in.flight", AVK_CONFIG_INT, 1, 100000, "1000",
     "fresh deliveries not finished at once (waiting for the deviation, first attempt in flight, "
     "inbox copies or parking unacknowledged); past it the notifier stops fetching "
     "topic.routed, topic.escalated, topic.reminder and topic.feedback. Also the most retry "
     "attempts at once"},
    {"notify.retry.max.held", AVK_CONFIG_INT, 1, 1000000, "10000",
     "records of topic.notify.retry held at once until their attempt; past it the notifier "
     "stops fetching topic.notify.retry"},
    {"notify.ssl.ca.location", AVK_CONFIG_STRING, 0, 0, NULL,
     "CA bundle that webhook certificates are verified against (default: the system's); "
     "verification is always on"},
    {"notify.cache.max.entries", AVK_CONFIG_INT, 16, 100000000, "100000",
     "deviations of topic.reported the notifier keeps for webhook bodies (oldest dropped first)"},
    {"notify.deviation.wait.ms", AVK_CONFIG_INT, 0, 3600000, "2000",
     "how long a routed record still waits for its deviation once topic.reported is read to its "
     "end; then it is dead-lettered as missing"},
};

const struct avk_config_table avk_notify_config_keys = AVK_CONFIG_TABLE(keys);
