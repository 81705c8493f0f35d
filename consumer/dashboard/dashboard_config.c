/* avk_dashboard_config: see dashboard_config.h. */
#include "consumer/dashboard/dashboard_config.h"

static const struct avk_config_key keys[] = {
    {"dashboard.listen", AVK_CONFIG_STRING, 0, 0, "127.0.0.1:8090",
     "address avvik dashboard serves its page, API, report, /metrics and probes on: host:port "
     "or [address]:port; port 0 picks a free one"},
    {"dashboard.tokens.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "the dashboard's bearer tokens, one a line: <sha256-hex-of-token> <role> [label], role "
     "analyst (everything) or figures (/api/sammanstallning.json alone) ('avvik token --role' "
     "makes them); required by avvik dashboard"},
    {"dashboard.tls.cert.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "PEM certificate (chain) of the dashboard; with dashboard.tls.key.file it serves HTTPS "
     "only"},
    {"dashboard.tls.key.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "PEM private key of dashboard.tls.cert.file"},
    {"dashboard.hosts", AVK_CONFIG_STRING, 0, 0, "localhost,127.0.0.1,[::1]",
     "Host names the dashboard answers for, separated by commas (the port aside); any other "
     "Host is answered 421, against DNS rebinding"},
    {"dashboard.session.ttl.s", AVK_CONFIG_INT, 1, 604800, "28800",
     "seconds a browser's session (POST /api/session) lasts before the token is asked again"},
    {"dashboard.sessions.max", AVK_CONFIG_INT, 1, 1000000, "1000",
     "sessions the dashboard holds; past it the one that ends first gives way"},
    {"dashboard.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file the dashboard writes its port to once it listens, and removes when it stops"},
    {"dashboard.clock.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "FOR TESTS AND THE LOCAL STACK'S DEMO ONLY: a file holding the dashboard's processing time "
     "(ms since the epoch) for the overdue list; unset in production"},
    {"dashboard.overdue.max", AVK_CONFIG_INT, 1, 100000, "500",
     "overdue deviations listed at most by /api/forsenade.json (the total is always given)"},
};

const struct avk_config_table avk_dashboard_config_keys = AVK_CONFIG_TABLE(keys);
