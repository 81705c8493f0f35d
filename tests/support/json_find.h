/*
 * json_find: the member of a JSON array a test looks for by one string field
 * (a summary's row by its code, a topic's record by its state).
 */
#ifndef AVK_TEST_JSON_FIND_H
#define AVK_TEST_JSON_FIND_H

#include <jansson.h>

/**
 * @brief The first object of array whose key is the string value; when none
 * is, the running test fails naming both.
 */
const json_t *json_find(const json_t *array, const char *key, const char *value);

#endif
