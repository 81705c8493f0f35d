/* avk_dashboard_config: see dashboard_config.h. */
#include "consumer/dashboard/dashboard_config.h"

static const struct avk_config_key keys[] = {
    {"dashboard.listen", AVK_CONFIG_STRING, 0, 0, "127.0.0.1:8090",
     "address avvik dashboard serves its page, API, report, /metrics and probes on: host:port "
     "or [address]:port; port 0 picks a free one"},
    {"dashboard.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file the dashboard writes its port to once it listens, and removes when it stops"},
    {"dashboard.clock.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "FOR TESTS AND THE LOCAL STACK'S DEMO ONLY: a file holding the dashboard's processing time "
     "(ms since the epoch) for the overdue list; unset in production"},
    {"dashboard.overdue.max", AVK_CONFIG_INT, 1, 100000, "500",
     "overdue deviations listed at most by /api/forsenade.json (the total is always given)"},
};

const struct avk_config_table avk_dashboard_config_keys = AVK_CONFIG_TABLE(keys);
