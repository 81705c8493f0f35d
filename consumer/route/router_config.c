/* avk_router_config: see router_config.h. */
#include "consumer/route/router_config.h"

static const struct avk_config_key keys[] = {
    {"routing.rules.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "the routing rules (docs/routing.md), e.g. data/routing-rules.json; required by avvik route"},
    {"router.group.id", AVK_CONFIG_STRING, 0, 0, "avvik-router", "consumer group of avvik route"},
    {"router.http.listen", AVK_CONFIG_STRING, 0, 0, NULL,
     "address of avvik route's /metrics, /healthz and /readyz (host:port; port 0 picks one); "
     "unset means none"},
    {"router.http.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file avvik route writes its /metrics port to once it listens, and removes when it stops"},
};

const struct avk_config_table avk_router_config_keys = AVK_CONFIG_TABLE(keys);
