/* avk_tracker_config: see tracker_config.h. */
#include "consumer/track/tracker_config.h"

static const struct avk_config_key keys[] = {
    {"deadlines.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "the deadline policy (docs/deadlines.md), e.g. data/deadlines.json; required by avvik track"},
    {"tracker.group.id", AVK_CONFIG_STRING, 0, 0, "avvik-tracker", "consumer group of avvik track"},
    {"tracker.http.listen", AVK_CONFIG_STRING, 0, 0, NULL,
     "address of avvik track's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"tracker.tick.ms", AVK_CONFIG_INT, 10, 60000, "1000",
     "how often avvik track looks for due reminders and deadlines (processing time)"},
    {"tracker.kept.max", AVK_CONFIG_INT, 1, 10000000, "10000",
     "responses avvik track keeps while their routing has not arrived"},
    {"tracker.kept.max.ms", AVK_CONFIG_INT, 1000, 86400000, "600000",
     "how long a response waits for its routing before it is dead-lettered"},
    {"tracker.feedback.check.ms", AVK_CONFIG_INT, 60000, 2000000000, "604800000",
     "how far back (by record time) a rebuild looks for status records whose feedback a crash "
     "left unwritten; the retention of topic.feedback must be longer"},
    {"tracker.clock.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "FOR TESTS ONLY: a file holding the tracker's processing time (ms since the epoch), "
     "read at every tick instead of the system clock; unset in production"},
};

const struct avk_config_table avk_tracker_config_keys = AVK_CONFIG_TABLE(keys);
