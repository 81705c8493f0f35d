/*
 * avvik report: files deviations or responses from JSON through the intake
 * library - one document (pretty-printed or not), or NDJSON, one document a
 * line; with -k fhir, HL7 FHIR R4 AdverseEvent resources mapped to deviations.
 * The first line decides: if it is a whole JSON document, the input is
 * NDJSON.
 *
 * NDJSON lines are submitted without waiting for Kafka, so a stream moves at
 * Kafka's pace; results still come out in input order, one per line:
 *   LINE <TAB> accepted <TAB> ID
 *   LINE <TAB> rejected <TAB> path: reason; path: reason ...
 *   LINE <TAB> unavailable <TAB> ID: reason
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "producer/fhir.h"
#include "producer/reporter.h"

#define MAX_DOCUMENT_BYTES (1 << 20)
#define WINDOW             4096 /* results in flight before the reader waits */

static const char usage_text[] =
    "usage: avvik report [-c FILE] [-X KEY=VALUE] [-k deviation|response] [FILE|-]\n"
    "Files the JSON document, or NDJSON documents (one a line), in FILE or stdin.\n"
    "Prints one result a line, in input order: LINE, TAB, then 'accepted', TAB, the id\n"
    "(once Kafka acknowledged it) - or 'rejected', TAB, every field error - or\n"
    "'unavailable', TAB, the id and the reason Kafka did not acknowledge it.\n"
    "Exit: 0 all accepted, 1 some rejected, 2 usage or configuration error,\n"
    "3 Kafka did not acknowledge some (unreachable).\n"
    "  -k KIND        deviation (default), response, or fhir: HL7 FHIR R4 AdverseEvent\n"
    "                 resources filed as deviations (docs/fhir-mapping.md)\n" AVK_CLI_CONFIG_HELP;

struct slot {
        int ready;
        long line;
        enum avk_result result;
        char *text; /* id, or errors, or "id: reason" */
};

struct results { /* in-order printing of out-of-order outcomes */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct slot slot[WINDOW];
        unsigned long next_seq, printed;
        int rejected, unavailable;
};

static struct slot *claim(struct results *rs, long line)
{
        pthread_mutex_lock(&rs->lock);
        while (rs->next_seq - rs->printed >= WINDOW)
                pthread_cond_wait(&rs->cond, &rs->lock);
        struct slot *s = &rs->slot[rs->next_seq++ % WINDOW];
        *s = (struct slot){.line = line};
        pthread_mutex_unlock(&rs->lock);
        return s;
}

static void resolve(struct results *rs, struct slot *s, enum avk_result result, char *text)
{
        pthread_mutex_lock(&rs->lock);
        s->result = result;
        s->text = text;
        s->ready = 1;
        rs->rejected += result == AVK_REJECTED;
        rs->unavailable += result == AVK_UNAVAILABLE;
        pthread_cond_broadcast(&rs->cond);
        pthread_mutex_unlock(&rs->lock);
}

/* Prints the ready results at the head of the window; with all, waits for
 * every outstanding one. */
static void print_ready(struct results *rs, int all)
{
        static const char *const status[] = {"accepted", "rejected", "", "unavailable"};
        pthread_mutex_lock(&rs->lock);
        while (rs->printed < rs->next_seq) {
                struct slot *s = &rs->slot[rs->printed % WINDOW];
                if (!s->ready) {
                        if (!all)
                                break;
                        pthread_cond_wait(&rs->cond, &rs->lock);
                        continue;
                }
                printf("%ld\t%s\t%s\n", s->line, status[s->result], s->text ? s->text : "");
                free(s->text);
                rs->printed++;
                pthread_cond_broadcast(&rs->cond);
        }
        pthread_mutex_unlock(&rs->lock);
        fflush(stdout);
}

/* A malloc'd formatted string (NULL when out of memory). */
__attribute__((format(printf, 1, 2))) static char *format(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (out) {
                va_start(ap, fmt);
                vsnprintf(out, (size_t)n + 1, fmt, ap);
                va_end(ap);
        }
        return out;
}

struct delivery_ctx {
        struct results *rs;
        struct slot *slot;
};

static void on_done(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        struct delivery_ctx *ctx = opaque;
        char *text = result == AVK_FILED
                         ? strdup(id)
                         : format("%s: %s", id, reason ? reason : "not acknowledged");
        resolve(ctx->rs, ctx->slot, result, text);
        free(ctx);
}

/* What the input documents are: a kind of the contract, or FHIR resources
 * that map to deviations. */
struct input {
        enum avk_kind kind;
        int fhir;
};

static void file_one(avk_reporter_t *r, const struct input *input, struct results *rs, long line,
                     const char *text, size_t len)
{
        struct slot *s = claim(rs, line);
        struct avk_errors errs;
        json_error_t jerr;
        json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                resolve(rs, s, AVK_REJECTED,
                        format("not valid JSON at line %d column %d: %s", jerr.line, jerr.column,
                               jerr.text));
                return;
        }
        enum avk_result result = AVK_REJECTED;
        struct delivery_ctx *ctx = NULL;
        if (input->fhir) {
                avk_errors_init(&errs);
                json_t *mapped = avk_fhir_to_deviation(doc, &errs);
                json_decref(doc);
                doc = mapped;
        }
        if (doc) {
                ctx = malloc(sizeof(*ctx));
                *ctx = (struct delivery_ctx){rs, s};
                char id[AVK_ID_SIZE];
                result = avk_reporter_submit(r, input->kind, doc, id, &errs, on_done, ctx);
                json_decref(doc);
        }
        if (result == AVK_FILED)
                return;
        free(ctx);
        char *detail = malloc(8192);
        if (detail)
                avk_errors_join(&errs, detail, 8192);
        resolve(rs, s, result, detail);
}

/* Reads one line of at most MAX_DOCUMENT_BYTES into buf (NUL-terminated,
 * newline removed); a longer line is consumed and reported as too long.
 * Returns 1 for a line, 0 at end of input. */
static int read_line(FILE *in, char *buf, size_t *len, int *too_long)
{
        *too_long = 0;
        if (!fgets(buf, MAX_DOCUMENT_BYTES + 2, in))
                return 0;
        *len = strlen(buf);
        if (*len > 0 && buf[*len - 1] == '\n') {
                buf[--*len] = '\0';
                return 1;
        }
        if (*len <= MAX_DOCUMENT_BYTES)
                return 1; /* last line without a newline */
        *too_long = 1;
        int c;
        while ((c = getc(in)) != EOF && c != '\n')
                ;
        return 1;
}

static int is_blank(const char *s)
{
        return s[strspn(s, " \t\r")] == '\0';
}

static void file_stream(avk_reporter_t *r, const struct input *input, FILE *in, struct results *rs)
{
        char *buf = malloc(MAX_DOCUMENT_BYTES + 2);
        size_t len;
        int too_long;
        long line = 0;
        if (!buf)
                return;
        if (!read_line(in, buf, &len, &too_long))
                goto out;
        line = 1;
        json_t *first = too_long ? NULL : json_loadb(buf, len, 0, NULL);
        if (!first && !too_long && !is_blank(buf)) {
                /* Not a document on its own line: one document over many lines. */
                buf[len++] = '\n';
                len += fread(buf + len, 1, MAX_DOCUMENT_BYTES + 1 - len, in);
                if (len > MAX_DOCUMENT_BYTES)
                        resolve(rs, claim(rs, 1), AVK_REJECTED,
                                strdup("document is larger than 1048576 bytes"));
                else
                        file_one(r, input, rs, 1, buf, len);
                goto out;
        }
        json_decref(first);
        do {
                if (too_long)
                        resolve(rs, claim(rs, line), AVK_REJECTED,
                                strdup("line is longer than 1048576 bytes"));
                else if (!is_blank(buf))
                        file_one(r, input, rs, line, buf, len);
                print_ready(rs, 0);
                line++;
        } while (read_line(in, buf, &len, &too_long));
out:
        free(buf);
}

int avk_cmd_report(int argc, char **argv)
{
        avk_config_t *cfg = avk_config_new();
        avk_reporter_t *r = NULL;
        struct input input = {AVK_KIND_DEVIATION, 0};
        int rc = AVK_EXIT_USAGE, opt;
        char err[1024];
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        while ((opt = getopt_long(argc, argv, "c:X:k:h", longopts, NULL)) != -1) {
                int handled = avk_cli_config_opt(cfg, opt, optarg);
                if (handled < 0)
                        goto out;
                if (handled)
                        continue;
                if (opt == 'k' && strcmp(optarg, "deviation") == 0) {
                        input = (struct input){AVK_KIND_DEVIATION, 0};
                } else if (opt == 'k' && strcmp(optarg, "response") == 0) {
                        input = (struct input){AVK_KIND_RESPONSE, 0};
                } else if (opt == 'k' && strcmp(optarg, "fhir") == 0) {
                        input = (struct input){AVK_KIND_DEVIATION, 1};
                } else if (opt == 'h') {
                        fputs(usage_text, stdout);
                        rc = AVK_EXIT_OK;
                        goto out;
                } else {
                        fputs(usage_text, stderr);
                        goto out;
                }
        }
        const char *path = optind < argc ? argv[optind] : "-";
        FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
        if (!in) {
                fprintf(stderr, "avvik report: %s: %s\n", path, strerror(errno));
                goto out;
        }
        r = avk_reporter_new(cfg, err, sizeof(err));
        if (!r) {
                fprintf(stderr, "avvik report: %s\n", err);
                if (in != stdin)
                        fclose(in);
                goto out;
        }
        static struct results rs = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                    .cond = PTHREAD_COND_INITIALIZER};
        file_stream(r, &input, in, &rs);
        if (in != stdin)
                fclose(in);
        print_ready(&rs, 1);
        rc = rs.unavailable ? AVK_EXIT_KAFKA : rs.rejected ? AVK_EXIT_REJECTED : AVK_EXIT_OK;
out:
        avk_reporter_destroy(r);
        avk_config_destroy(cfg);
        return rc;
}
