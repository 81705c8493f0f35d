/*
 * test_data: the files tests read - the sample deviations in deploy/samples/
 * and the fixtures in tests/data/ - found through the AVK_SOURCE_DIR and
 * AVK_TEST_DATA paths the build compiles in, so a test runs from any
 * directory.
 */
#ifndef AVK_TEST_TEST_DATA_H
#define AVK_TEST_TEST_DATA_H

#include <stddef.h>

#include <jansson.h>

/**
 * @brief Reads a whole file.
 * @returns a malloc'd, NUL-terminated copy for the caller to free, or NULL
 * with the path and reason in errstr.
 */
char *test_data_read(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief Parses a JSON file. @returns a new reference, or NULL with the path
 * and jansson's reason (line, column) in errstr.
 */
json_t *test_data_load_json(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief The paths of deploy/samples/ *.json, sorted.
 * @returns how many, with *paths a NULL-terminated array for
 * test_data_free_paths(); 0 with *paths NULL when there are none.
 */
size_t test_data_sample_paths(char ***paths);

void test_data_free_paths(char **paths);

/** @brief Path of a file under tests/data (AVK_TEST_DATA), into buf. @returns buf. */
const char *test_data_path(const char *name, char *buf, size_t size);

/**
 * @brief Makes a new directory /tmp/PREFIX-<random> (mkdtemp) and writes its
 * path into buf. @returns buf, or NULL with errno set.
 */
char *test_data_temp_dir(const char *prefix, char *buf, size_t size);

/** @brief Removes dir and everything under it. @returns 0, or -1 with errno set. */
int test_data_remove_dir(const char *dir);

#endif
