/* test_data: see test_data.h. */
#include "tests/support/test_data.h"

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AVK_SOURCE_DIR
#error "AVK_SOURCE_DIR must name the repository root"
#endif
#ifndef AVK_TEST_DATA
#error "AVK_TEST_DATA must name tests/data"
#endif

char *test_data_read(const char *path, char *errstr, size_t errstr_size)
{
        char *text = NULL;
        FILE *f = fopen(path, "rb");
        if (!f) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return NULL;
        }
        if (fseek(f, 0, SEEK_END) != 0)
                goto io_error;
        long size = ftell(f);
        if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
                goto io_error;
        text = malloc((size_t)size + 1);
        if (!text) {
                snprintf(errstr, errstr_size, "%s: out of memory for %ld bytes", path, size);
                goto out;
        }
        if (fread(text, 1, (size_t)size, f) != (size_t)size) {
                free(text);
                text = NULL;
                goto io_error;
        }
        text[size] = '\0';
        goto out;
io_error:
        snprintf(errstr, errstr_size, "%s: read failed: %s", path, strerror(errno));
out:
        fclose(f);
        return text;
}

json_t *test_data_load_json(const char *path, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *j = json_load_file(path, 0, &jerr);
        if (!j)
                snprintf(errstr, errstr_size, "%s: line %d column %d: %s", path, jerr.line,
                         jerr.column, jerr.text);
        return j;
}

size_t test_data_sample_paths(char ***paths)
{
        glob_t g;
        size_t cnt = 0;
        *paths = NULL;
        if (glob(AVK_SOURCE_DIR "/deploy/samples/*.json", 0, NULL, &g) != 0)
                return 0;
        char **out = calloc(g.gl_pathc + 1, sizeof(*out));
        if (out) {
                for (; cnt < g.gl_pathc; cnt++) {
                        out[cnt] = strdup(g.gl_pathv[cnt]);
                        if (!out[cnt])
                                break;
                }
        }
        globfree(&g);
        *paths = out;
        return cnt;
}

void test_data_free_paths(char **paths)
{
        if (!paths)
                return;
        for (size_t i = 0; paths[i]; i++)
                free(paths[i]);
        free(paths);
}

const char *test_data_path(const char *name, char *buf, size_t size)
{
        snprintf(buf, size, "%s/%s", AVK_TEST_DATA, name);
        return buf;
}

char *test_data_temp_dir(const char *prefix, char *buf, size_t size)
{
        /* mkdtemp() replaces the last six characters of its template. */
        int n = snprintf(buf, size, "/tmp/%s-......", prefix);
        if (n < 0 || (size_t)n >= size) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        memset(buf + n - 6, 'X', 6);
        return mkdtemp(buf);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

int test_data_remove_dir(const char *dir)
{
        return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
