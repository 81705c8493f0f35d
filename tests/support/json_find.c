/* json_find: see json_find.h. */
#include "tests/support/json_find.h"

#include <check.h>
#include <string.h>

const json_t *json_find(const json_t *array, const char *key, const char *value)
{
        size_t i;
        const json_t *item;
        json_array_foreach(array, i, item)
        {
                const char *s = json_string_value(json_object_get(item, key));
                if (s && strcmp(s, value) == 0)
                        return item;
        }
        ck_abort_msg("no %s %s", key, value);
        return NULL;
}
