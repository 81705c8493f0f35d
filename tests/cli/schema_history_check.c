/*
 * avk_schema_history_check: the check of schemas/history that the test
 * command runs (docs/schema-evolution.md, "Schema history"). For every
 * SCHEMAS_DIR/NAME.avsc:
 *  - SCHEMAS_DIR/history/NAME/ holds v1.avsc .. vN.avsc and nothing else;
 *  - NAME.avsc has vN.avsc's Parsing Canonical Form (its fingerprint): a
 *    change that reaches the data needs a new history entry (the version a
 *    build releases); docs and avvik's validation annotations (avk.*) do
 *    not, since readers find a writer by fingerprint and ignore both;
 *  - vN reads data written with every earlier version (backward) and every
 *    earlier version reads vN's data (forward), by avk_schema_reads(): avro-c's
 *    schema resolution with the defaults it leaves to the data.
 * and every history/NAME has its NAME.avsc.
 *
 * usage: avk_schema_history_check SCHEMAS_DIR
 * Exit 0 when all holds; 1 with every finding on stderr.
 */
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/contract/schema.h"
#include "tests/support/test_data.h"

static int findings;

__attribute__((format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("avk_schema_history_check: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        findings++;
}

/* The schema in path, its text in *text (malloc'd); NULL after a finding. */
static avk_schema_t *load(const char *path, char **text)
{
        char err[512];
        *text = test_data_read(path, err, sizeof(err));
        avk_schema_t *s = *text ? avk_schema_new(*text, err, sizeof(err)) : NULL;
        if (!s)
                finding("%s: %s", path, err);
        return s;
}

static int exists(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0;
}

/* How many entries dir holds. */
static size_t entries(const char *dir)
{
        char pattern[1024];
        glob_t g;
        snprintf(pattern, sizeof(pattern), "%s/*", dir);
        size_t n = glob(pattern, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
        globfree(&g);
        return n;
}

/* Checks NAME's history; returns its version count. */
static int check_schema(const char *schemas_dir, const char *name)
{
        char current_path[1024], dir[512], path[1024], err[512];
        snprintf(current_path, sizeof(current_path), "%s/%s.avsc", schemas_dir, name);
        snprintf(dir, sizeof(dir), "%s/history/%s", schemas_dir, name);
        int n = 0;
        for (;;) {
                snprintf(path, sizeof(path), "%s/v%d.avsc", dir, n + 1);
                if (!exists(path))
                        break;
                n++;
        }
        if (n == 0) {
                finding("%s has no history: copy it to %s/v1.avsc", current_path, dir);
                return 0;
        }
        if (entries(dir) != (size_t)n)
                finding("%s holds more than v1.avsc .. v%d.avsc: versions are numbered from 1 "
                        "without gaps",
                        dir, n);
        char *current_text = NULL, *newest_text = NULL;
        avk_schema_t *current = load(current_path, &current_text);
        snprintf(path, sizeof(path), "%s/v%d.avsc", dir, n);
        avk_schema_t *newest = load(path, &newest_text);
        if (current && newest && avk_schema_fingerprint(current) != avk_schema_fingerprint(newest))
                finding("%s differs from %s, its newest released version: add it as v%d.avsc "
                        "(docs/schema-evolution.md)",
                        current_path, path, n + 1);
        for (int v = 1; v < n && current; v++) {
                char *text = NULL;
                snprintf(path, sizeof(path), "%s/v%d.avsc", dir, v);
                avk_schema_t *earlier = load(path, &text);
                if (earlier && avk_schema_reads(current, earlier, err, sizeof(err)) != 1)
                        finding("%s is not backward compatible: it cannot read data written "
                                "with %s: %s",
                                current_path, path, err);
                if (earlier && avk_schema_reads(earlier, current, err, sizeof(err)) != 1)
                        finding("%s is not forward compatible: %s cannot read its data: %s",
                                current_path, path, err);
                avk_schema_destroy(earlier);
                free(text);
        }
        avk_schema_destroy(current);
        avk_schema_destroy(newest);
        free(current_text);
        free(newest_text);
        return n;
}

/* The file name of path without its directory and .avsc, into buf. */
static const char *base_name(const char *path, char *buf, size_t size)
{
        const char *slash = strrchr(path, '/');
        const char *start = slash ? slash + 1 : path;
        size_t len = strlen(start);
        if (len > 5 && strcmp(start + len - 5, ".avsc") == 0)
                len -= 5;
        snprintf(buf, size, "%.*s", (int)len, start);
        return buf;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: avk_schema_history_check SCHEMAS_DIR\n");
                return 1;
        }
        const char *schemas_dir = argv[1];
        char pattern[1024], name[256], path[1024];
        glob_t current, history;
        snprintf(pattern, sizeof(pattern), "%s/*.avsc", schemas_dir);
        if (glob(pattern, 0, NULL, &current) != 0) {
                fprintf(stderr, "avk_schema_history_check: no schema in %s\n", schemas_dir);
                return 1;
        }
        int versions = 0;
        for (size_t i = 0; i < current.gl_pathc; i++)
                versions +=
                    check_schema(schemas_dir, base_name(current.gl_pathv[i], name, sizeof(name)));
        snprintf(pattern, sizeof(pattern), "%s/history/*", schemas_dir);
        if (glob(pattern, 0, NULL, &history) == 0) {
                for (size_t i = 0; i < history.gl_pathc; i++) {
                        snprintf(path, sizeof(path), "%s/%s.avsc", schemas_dir,
                                 base_name(history.gl_pathv[i], name, sizeof(name)));
                        if (!exists(path))
                                finding("%s has no %s: a released schema stays readable",
                                        history.gl_pathv[i], path);
                }
                globfree(&history);
        }
        printf("%zu schemas, %d released versions: %s\n", current.gl_pathc, versions,
               findings ? "see the findings above"
                        : "each is its newest version, which reads every earlier one and is read "
                          "by it");
        globfree(&current);
        return findings ? 1 : 0;
}
