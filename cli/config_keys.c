/* avk_cli_config_new: see config_keys.h. */
#include "cli/config_keys.h"

#include <stddef.h>

#include "consumer/analyse/analysis_config.h"
#include "consumer/dashboard/dashboard_config.h"
#include "consumer/notify/notify_config.h"
#include "consumer/route/router_config.h"
#include "consumer/track/tracker_config.h"
#include "producer/gateway/gateway_config.h"
#include "producer/intake/intake_config.h"

/* The services' keys, listed in pipeline order after the shared ones. */
static const struct avk_config_table *const service_keys[] = {
    &avk_intake_config_keys,    &avk_gateway_config_keys, &avk_router_config_keys,
    &avk_notify_config_keys,    &avk_tracker_config_keys, &avk_analysis_config_keys,
    &avk_dashboard_config_keys,
};

avk_config_t *avk_cli_config_new(void)
{
        avk_config_t *cfg = avk_config_new();
        char errstr[256];

        for (size_t i = 0; cfg && i < sizeof(service_keys) / sizeof(service_keys[0]); i++) {
                if (avk_config_add_keys(cfg, service_keys[i], errstr, sizeof(errstr)) != 0) {
                        avk_config_destroy(cfg);
                        cfg = NULL;
                }
        }
        return cfg;
}
