/* avk_intake_config: see intake_config.h. */
#include "producer/intake/intake_config.h"

static const struct avk_config_key keys[] = {
    {"intake.clock.skew.ms", AVK_CONFIG_INT, 0, 86400000, "300000",
     "how far in the future an event timestamp may lie (clock skew between systems)"},
    {"intake.ack.timeout.ms", AVK_CONFIG_INT, 1000, 3600000, "10000",
     "how long intake waits for Kafka to acknowledge a document before answering unavailable"},
    {"intake.spool.dir", AVK_CONFIG_STRING, 0, 0, NULL,
     "directory of the intake spool: documents Kafka did not acknowledge are kept there "
     "(fsync'd) and produced in order when Kafka is back; unset means no spool"},
    {"intake.spool.max.bytes", AVK_CONFIG_INT, 4096, INT64_MAX, "1073741824",
     "size limit of the spool file; past it intake answers unavailable"},
};

const struct avk_config_table avk_intake_config_keys = AVK_CONFIG_TABLE(keys);
