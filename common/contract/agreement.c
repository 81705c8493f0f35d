/* avk_agreement: see agreement.h. */
#include "common/contract/agreement.h"

#include <stddef.h>
#include <string.h>

/* The sub-agreement a category belongs to (from_2027 NULL: the same in both
 * periods). From 2027 the discharge process is in the county-wide routines,
 * no longer in the payment sub-agreement. */
static const struct {
        const char *category, *until_2026, *from_2027;
} by_category[] = {
    {"PHYSICIAN_AVAILABILITY", "PHYSICIAN_RESPONSIBILITY", NULL},
    {"ORAL_HEALTH", "ORAL_HEALTH", NULL},
    {"MENTAL_HEALTH_ADDICTION", "MENTAL_HEALTH_ADDICTION", NULL},
    {"DISCHARGE_PLANNING", "DISCHARGE_PAYMENT", "COUNTY_GUIDELINE"},
    {"SIP", "COUNTY_GUIDELINE", NULL},
};

const char *avk_agreement_of(const char *agreement, const char *category, int64_t occurred_at_ms,
                             int *derived)
{
        *derived = 0;
        if (agreement != NULL && strcmp(agreement, "UNKNOWN") != 0)
                return agreement;
        for (size_t i = 0; category && i < sizeof(by_category) / sizeof(by_category[0]); i++) {
                if (strcmp(by_category[i].category, category) == 0) {
                        *derived = 1;
                        return occurred_at_ms >= AVK_AGREEMENT_2027_FROM_MS &&
                                       by_category[i].from_2027
                                   ? by_category[i].from_2027
                                   : by_category[i].until_2026;
                }
        }
        return agreement;
}
