/*
 * avvik report: files deviations or responses from JSON through the intake
 * library - one document (pretty-printed or not), or NDJSON, one document a
 * line; with -k fhir, HL7 FHIR R4 AdverseEvent resources mapped to deviations.
 * The first line decides: if it is a whole JSON document, the input is
 * NDJSON.
 *
 * NDJSON is a pipeline, so a stream moves at Kafka's pace on every core:
 * the main thread reads lines into a window; worker threads parse,
 * validate and encode them in parallel (avk_reporter_prepare_json); a
 * sender thread hands the prepared documents at the head of the window to
 * the reporter in input order (avk_reporter_send) and serves their delivery
 * reports (avk_reporter_serve), so librdkafka's messages are made and freed
 * on one thread; the main thread prints the results in input order, one
 * per line, once known:
 *   LINE <TAB> accepted <TAB> ID        (Kafka acknowledged it)
 *   LINE <TAB> spooled <TAB> ID         (Kafka unreachable; in the spool)
 *   LINE <TAB> rejected <TAB> path: reason; path: reason ...
 *   LINE <TAB> unavailable <TAB> ID: reason
 */
#define _GNU_SOURCE /* SCHED_BATCH (sched.h) */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/contract/jsonparse.h"
#include "common/util/clock.h"
#include "producer/intake/fhir.h"
#include "producer/intake/reporter.h"

#define MAX_DOCUMENT_BYTES (1 << 20)
#define WINDOW             16384 /* documents between reading and printing (below) */
#define MAX_WORKERS        16
#define CHUNK              16        /* documents a worker takes at once */
#define PRINT_BATCH        256       /* results that wake the printer */
#define SEND_BATCH         256       /* documents prepared that wake the sender */
#define PRINT_WAIT_MS      2         /* or 2 ms, whichever comes first */
#define IDLE_WAIT_MS       100       /* the sender with nothing to send or to hear of */
#define KEEP_BYTES         65536     /* a slot's document buffer kept for the next */
#define INPUT_BLOCK_BYTES  (1 << 20) /* read(2) at most this much at once */
#define RESULT_POLL_MS     5         /* results are printed this often while the input is quiet */
#define RESULT_BUF_BYTES   (1 << 16) /* stdout's buffer for results: one write(2) per ~1000 */
/* WINDOW bounds the documents in flight from reading to their delivery
 * reports. At 4096 the workers sat idle on a full window, waiting for
 * acknowledgements (linger.ms 5, a produce round trip and the printer's
 * wake-up: a few milliseconds, hundreds on a loaded broker): 0.2-1.5 s of
 * the two workers' time in a 200,000-document run (docs/intake.md). */

static const char usage_text[] =
    "usage: avvik report [-c FILE] [-X KEY=VALUE] [-k deviation|response|fhir] [FILE|-]\n"
    "Files the JSON document, or NDJSON documents (one a line), in FILE or stdin.\n"
    "Prints one result a line, in input order: LINE, TAB, then 'accepted', TAB, the id\n"
    "(once Kafka acknowledged it) - or 'spooled', TAB, the id (Kafka unreachable; kept in\n"
    "intake.spool.dir and produced when Kafka is back) - or 'rejected', TAB, every field\n"
    "error - or 'unavailable', TAB, the id and why it was not stored.\n"
    "Exit: 0 all accepted or spooled, 1 some rejected, 2 usage or configuration error,\n"
    "3 Kafka did not acknowledge some and they could not be spooled.\n"
    "  -k KIND        deviation (default), response, or fhir: HL7 FHIR R4 AdverseEvent\n"
    "                 resources filed as deviations (docs/fhir-mapping.md)\n" AVK_CLI_CONFIG_HELP;

/* What the input documents are: a kind of the contract, or FHIR resources
 * that map to deviations. */
struct input {
        enum avk_kind kind;
        int fhir;
};

enum stage { READ, PREPARED, RESOLVED };

struct pipeline;

/* A slot keeps its document buffer from one document to the next (up to
 * KEEP_BYTES), and a sent document's id: documents pass between threads
 * without an allocation made on one and freed on another, which cost the
 * delivery thread a third of its time in free(). */
struct slot {
        /* enum stage. Set without the lock by the thread that moves the
         * slot on (a worker: PREPARED; the sender or a delivery report:
         * RESOLVED): the fields it makes valid are written before it. */
        atomic_int stage;
        long line;
        struct pipeline *pl;    /* for the delivery report */
        char *document;         /* READ: the document, NUL-terminated */
        size_t len, cap;        /* of the document and of its buffer */
        char *text;             /* RESOLVED: errors or "id: reason"; NULL: id */
        char id[AVK_ID_SIZE];   /* RESOLVED: accepted or spooled */
        avk_prepared_t *doc;    /* PREPARED and valid: to send */
        enum avk_result result; /* PREPARED without doc, or RESOLVED */
};

/* The window: documents numbered from 0 in input order; claimed, read,
 * prepared, sent and printed each advance through it in that order. The
 * reader fills slots up to claimed and publishes them (read) a CHUNK at a
 * time, or before it waits: a lock per chunk, not per document. */
struct pipeline {
        avk_reporter_t *r;
        struct input input;
        pthread_mutex_t lock;
        /* One condition per waiter, signalled only when it can move on:
         * a broadcast per document would wake every thread every time. */
        pthread_cond_t work;     /* workers: documents to prepare */
        pthread_cond_t resolved; /* reader and printer: results to print */
        pthread_cond_t to_send;  /* the sender, without pl->served: documents prepared */
        struct slot slot[WINDOW];
        unsigned long claimed; /* the reader's own */
        unsigned long read, prepare_next, printed;
        unsigned long sent; /* the sender's own */
        int served;         /* the sender serves the delivery reports (avk_reporter_serve()) */
        int eof;
        atomic_int rejected, unavailable;
        atomic_uint unseen;        /* results since the printer last woke */
        atomic_uint unsent;        /* documents prepared since the sender last woke */
        atomic_ulong resolved_cnt; /* documents resolved */
};

static struct slot *at(struct pipeline *pl, unsigned long seq)
{
        return &pl->slot[seq % WINDOW];
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

/* Prints the result at the head of the window if it is resolved; the
 * caller holds the lock, and only the reader prints. Returns 1 when it
 * printed one. The line is put together by hand and written with stdio's
 * unlocked calls: printf's format parsing and stdout's lock cost more than
 * the rest of the line (a result a document, hundreds of thousands a run). */
static int print_head(struct pipeline *pl)
{
        static const char *const status[] = {"accepted\t", "rejected\t", "", "unavailable\t",
                                             "spooled\t"};
        struct slot *s = at(pl, pl->printed);
        if (pl->printed == pl->read || atomic_load(&s->stage) != RESOLVED)
                return 0;
        char head[64]; /* LINE TAB STATUS TAB */
        char *end = head + sizeof(head) - 16, *p = end;
        for (long line = s->line; p == end || line > 0; line /= 10)
                *--p = (char)('0' + line % 10);
        *end++ = '\t';
        size_t status_len = strlen(status[s->result]);
        memcpy(end, status[s->result], status_len);
        end += status_len;
        const char *text = s->text ? s->text : s->id;
        fwrite_unlocked(p, 1, (size_t)(end - p), stdout);
        fwrite_unlocked(text, 1, strlen(text), stdout);
        putchar_unlocked('\n');
        free(s->text);
        pl->printed++;
        return 1;
}

/* Wakes the sender if it waits; the caller holds the lock. */
static void wake_sender(struct pipeline *pl)
{
        if (pl->served)
                avk_reporter_wake(pl->r);
        else
                pthread_cond_signal(&pl->to_send);
}

/* Counts n documents prepared: the sender is woken once a SEND_BATCH of
 * them came in (or finds them within PRINT_WAIT_MS). The caller does not
 * hold the lock. */
static void note_prepared(struct pipeline *pl, unsigned n)
{
        unsigned before = atomic_fetch_add(&pl->unsent, n);
        if (before >= SEND_BATCH || before + n < SEND_BATCH)
                return;
        pthread_mutex_lock(&pl->lock);
        wake_sender(pl);
        pthread_mutex_unlock(&pl->lock);
}

/* Waits until a batch of results came in, or briefly: waking the printer
 * for every result costs more than printing (results arrive in bursts).
 * The caller holds the lock. */
static void wait_for_results(struct pipeline *pl)
{
        struct timespec until = avk_clock_deadline(PRINT_WAIT_MS);
        pthread_cond_timedwait(&pl->resolved, &pl->lock, &until);
        atomic_store(&pl->unseen, 0);
}

/* Resolves slot s: from the delivery report, or from the sender for a
 * document that was not sent; without the lock. The printer is woken
 * once a PRINT_BATCH of results came in (or finds them within
 * PRINT_WAIT_MS). */
static void resolve(struct pipeline *pl, struct slot *s, enum avk_result result, char *text)
{
        s->result = result;
        s->text = text;
        if (result == AVK_REJECTED)
                atomic_fetch_add(&pl->rejected, 1);
        else if (result == AVK_UNAVAILABLE)
                atomic_fetch_add(&pl->unavailable, 1);
        atomic_store(&s->stage, RESOLVED);
        atomic_fetch_add(&pl->resolved_cnt, 1);
        if (atomic_fetch_add(&pl->unseen, 1) + 1 == PRINT_BATCH) {
                pthread_mutex_lock(&pl->lock);
                pthread_cond_signal(&pl->resolved);
                pthread_mutex_unlock(&pl->lock);
        }
}

static void on_done(void *opaque, const char *id, enum avk_result result, const char *reason)
{
        struct slot *s = opaque;
        char *text = NULL;
        if (result == AVK_FILED || result == AVK_SPOOLED) {
                size_t id_len = strnlen(id, sizeof(s->id) - 1);
                memcpy(s->id, id, id_len);
                s->id[id_len] = '\0';
        } else {
                text = format("%s: %s", id, reason ? reason : "not acknowledged");
        }
        resolve(s->pl, s, result, text);
}

/* Sends the prepared documents at the head of the window up to read, in
 * input order. */
static void send_ready(struct pipeline *pl, unsigned long read)
{
        while (pl->sent < read) {
                struct slot *s = at(pl, pl->sent);
                if (atomic_load(&s->stage) == READ)
                        return;
                pl->sent++;
                if (s->doc) {
                        avk_prepared_t *doc = s->doc;
                        s->doc = NULL;
                        avk_reporter_send(pl->r, doc, on_done, s);
                } else {
                        resolve(pl, s, s->result, s->text);
                }
        }
}

/* The sender: sends the prepared documents in input order and, where the
 * reporter lets it (pl->served), serves their delivery reports, so that
 * librdkafka's messages are made and freed on one thread (docs/intake.md).
 * It waits in serving them, or on to_send, until a SEND_BATCH of documents
 * was prepared, a worker ran out of documents, or PRINT_WAIT_MS. With
 * nothing sent and unheard of (a slow input stream), it waits up to
 * IDLE_WAIT_MS: the workers and the end of the input wake it, and a wake
 * is not lost (a queue keeps a yield; to_send's waiter looks at the head
 * under the lock first), so it does not poll every PRINT_WAIT_MS. */
static void *sender(void *arg)
{
        struct pipeline *pl = arg;
        for (;;) {
                pthread_mutex_lock(&pl->lock);
                unsigned long read = pl->read;
                int eof = pl->eof;
                pthread_mutex_unlock(&pl->lock);
                send_ready(pl, read);
                if (eof && pl->sent == read &&
                    (!pl->served || atomic_load(&pl->resolved_cnt) == read))
                        break; /* without pl->served, the reporter's thread resolves */
                int idle =
                    pl->sent == read && (!pl->served || atomic_load(&pl->resolved_cnt) == read);
                int wait_ms = idle ? IDLE_WAIT_MS : PRINT_WAIT_MS;
                if (pl->served) {
                        avk_reporter_serve(pl->r, wait_ms);
                } else {
                        struct timespec until = avk_clock_deadline(wait_ms);
                        pthread_mutex_lock(&pl->lock);
                        if (atomic_load(&pl->unsent) < SEND_BATCH && !pl->eof &&
                            (pl->sent == pl->read || atomic_load(&at(pl, pl->sent)->stage) == READ))
                                pthread_cond_timedwait(&pl->to_send, &pl->lock, &until);
                        pthread_mutex_unlock(&pl->lock);
                }
                atomic_store(&pl->unsent, 0);
        }
        return NULL;
}

/* Prints the resolved results at the head of the window; with all, waits
 * for every outstanding one. Returns how many are still to be printed. */
static unsigned long print_ready(struct pipeline *pl, int all)
{
        pthread_mutex_lock(&pl->lock);
        while (pl->printed < pl->read) {
                if (!print_head(pl)) {
                        if (!all)
                                break;
                        wait_for_results(pl);
                }
        }
        unsigned long outstanding = pl->read - pl->printed;
        pthread_mutex_unlock(&pl->lock);
        fflush(stdout);
        return outstanding;
}

/* Publishes the claimed slots to the workers; the caller does not hold
 * the lock. */
static void publish(struct pipeline *pl)
{
        if (pl->read == pl->claimed)
                return;
        pthread_mutex_lock(&pl->lock);
        pl->read = pl->claimed;
        if (pl->prepare_next < pl->read)
                pthread_cond_signal(&pl->work); /* a worker wakes the next if more wait */
        pthread_mutex_unlock(&pl->lock);
}

/* Reader side: makes room by printing what is resolved, waiting when the
 * head is not, then starts a slot for the next document. Only the reader
 * moves claimed, read and printed, so it needs the lock only when the window
 * is full; a printed slot is no other thread's. */
static struct slot *claim(struct pipeline *pl, long line)
{
        if (pl->claimed - pl->printed >= WINDOW) {
                publish(pl);
                pthread_mutex_lock(&pl->lock);
                while (pl->claimed - pl->printed >= WINDOW) {
                        if (!print_head(pl)) {
                                fflush(stdout);
                                wait_for_results(pl);
                        }
                }
                pthread_mutex_unlock(&pl->lock);
        }
        struct slot *s = at(pl, pl->claimed);
        char *document = s->document;
        size_t cap = s->cap;
        memset(s, 0, sizeof(*s));
        atomic_init(&s->stage, READ);
        s->line = line;
        s->pl = pl;
        s->document = document;
        s->cap = cap;
        return s;
}

/* Ends the slot claim() started; a chunk of them is published at once. */
static void claimed(struct pipeline *pl)
{
        if (++pl->claimed - pl->read >= CHUNK)
                publish(pl);
}

static void add_document(struct pipeline *pl, long line, const char *text, size_t len)
{
        struct slot *s = claim(pl, line);
        if (len + 1 > s->cap) {
                free(s->document);
                s->cap = len + 1;
                s->document = malloc(s->cap);
        }
        if (s->document) {
                memcpy(s->document, text, len);
                s->document[len] = '\0';
                s->len = len;
        } else {
                s->cap = 0;
                atomic_store(&s->stage, PREPARED);
                s->result = AVK_UNAVAILABLE;
        }
        claimed(pl);
}

/* A document rejected before parsing (too long): prepared with its reason. */
static void add_rejected(struct pipeline *pl, long line, const char *reason)
{
        struct slot *s = claim(pl, line);
        atomic_store(&s->stage, PREPARED);
        s->result = AVK_REJECTED;
        s->text = strdup(reason);
        claimed(pl);
}

/* Parses, maps and prepares one document; the slot gets the prepared
 * document, or the result and its text. */
static void prepare(struct pipeline *pl, struct slot *s, struct avk_errors *errs)
{
        char id[AVK_ID_SIZE], reason[256];
        if (!pl->input.fhir) {
                s->result = avk_reporter_prepare_json(pl->r, pl->input.kind, s->document, s->len,
                                                      id, errs, &s->doc);
        } else {
                json_t *doc = avk_json_parse(s->document, s->len, reason, sizeof(reason));
                if (!doc) {
                        s->result = AVK_REJECTED;
                        s->text = format("not valid JSON at %s", reason);
                        return;
                }
                avk_errors_init(errs);
                json_t *mapped = avk_fhir_to_deviation(doc, errs);
                json_decref(doc);
                s->result =
                    mapped ? avk_reporter_prepare(pl->r, pl->input.kind, mapped, id, errs, &s->doc)
                           : AVK_REJECTED;
                json_decref(mapped);
        }
        if (s->result != AVK_FILED && (s->text = malloc(8192)))
                avk_errors_join(errs, s->text, 8192);
}

static void *worker(void *arg)
{
        struct pipeline *pl = arg;
        struct avk_errors *errs = malloc(sizeof(*errs));
        pthread_mutex_lock(&pl->lock);
        for (;;) {
                if (pl->prepare_next == pl->read && !pl->eof)
                        wake_sender(pl); /* it may be waiting for the last ones */
                while (pl->prepare_next == pl->read && !pl->eof)
                        pthread_cond_wait(&pl->work, &pl->lock);
                if (pl->prepare_next == pl->read)
                        break;
                unsigned long first = pl->prepare_next, n = pl->read - first;
                n = n > CHUNK ? CHUNK : n;
                pl->prepare_next += n;
                if (pl->prepare_next < pl->read)
                        pthread_cond_signal(&pl->work); /* more for another worker */
                pthread_mutex_unlock(&pl->lock);
                for (unsigned long i = 0; i < n; i++) {
                        struct slot *s = at(pl, first + i);
                        if (atomic_load(&s->stage) != READ)
                                continue;
                        if (errs)
                                prepare(pl, s, errs);
                        else
                                s->result = AVK_UNAVAILABLE;
                        if (s->cap > KEEP_BYTES) { /* a rare large document: not kept */
                                free(s->document);
                                s->document = NULL;
                                s->cap = 0;
                        }
                        atomic_store(&s->stage, PREPARED);
                }
                note_prepared(pl, (unsigned)n);
                pthread_mutex_lock(&pl->lock);
        }
        wake_sender(pl);
        pthread_mutex_unlock(&pl->lock);
        free(errs);
        return NULL;
}

/* The input, read with read(2) into one buffer: the reader knows when it
 * is about to wait for input, and only then hands over what it has (the
 * workers are woken per CHUNK documents otherwise, not per document). */
struct input_buffer {
        int fd;
        char *data;
        size_t begin, end, cap; /* unread: data[begin, end); data has cap + 1 bytes */
        int eof;
};

/* Reads more after the unread bytes, moved to the front first; the
 * pipeline (NULL while the first document is sought) gets what was read so
 * far before a read that may wait. */
static void refill(struct input_buffer *b, struct pipeline *pl)
{
        if (pl) {
                publish(pl);
                /* A system that writes a line and waits for its result
                 * before the next must get it while the input is quiet. */
                struct pollfd in = {.fd = b->fd, .events = POLLIN};
                while (print_ready(pl, 0) > 0 && poll(&in, 1, RESULT_POLL_MS) == 0)
                        ;
        }
        memmove(b->data, b->data + b->begin, b->end - b->begin);
        b->end -= b->begin;
        b->begin = 0;
        ssize_t n;
        do
                n = read(b->fd, b->data + b->end, b->cap - b->end);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                b->eof = 1; /* a read error ends the input as the end would */
        else
                b->end += (size_t)n;
}

/* The next line, its newline replaced by a NUL, valid until the next call;
 * a line longer than MAX_DOCUMENT_BYTES is consumed and reported with
 * too_long. Returns 1 for a line, 0 at the end of the input. */
static int next_line(struct input_buffer *b, struct pipeline *pl, char **line, size_t *len,
                     int *too_long)
{
        *too_long = 0;
        for (;;) {
                char *from = b->data + b->begin;
                char *nl = memchr(from, '\n', b->end - b->begin);
                if (nl || (b->eof && (b->end > b->begin || *too_long))) {
                        size_t n = nl ? (size_t)(nl - from) : b->end - b->begin;
                        from[n] = '\0'; /* room for it: cap + 1 */
                        b->begin += nl ? n + 1 : n;
                        *line = from;
                        *len = n;
                        *too_long = *too_long || n > MAX_DOCUMENT_BYTES;
                        return 1;
                }
                if (b->eof)
                        return 0;
                if (b->end - b->begin > MAX_DOCUMENT_BYTES) {
                        *too_long = 1; /* dropped up to its newline */
                        b->begin = b->end;
                }
                refill(b, pl);
        }
}

static int is_blank(const char *s)
{
        return s[strspn(s, " \t\r")] == '\0';
}

static void read_stream(struct pipeline *pl, int fd)
{
        struct input_buffer b = {.fd = fd, .cap = MAX_DOCUMENT_BYTES + 2 + INPUT_BLOCK_BYTES};
        char *text, reason[256];
        size_t len;
        int too_long;
        long line = 1;
        if (!(b.data = malloc(b.cap + 1)) || !next_line(&b, NULL, &text, &len, &too_long))
                goto out;
        json_t *first = too_long ? NULL : avk_json_parse(text, len, reason, sizeof(reason));
        if (!first && !too_long && !is_blank(text)) {
                /* Not a document on its own line: one document over many
                 * lines, the whole input. */
                size_t at = (size_t)(text - b.data);
                if (b.begin > at + len)
                        text[len] = '\n';
                b.begin = at;
                while (!b.eof && b.end - b.begin <= MAX_DOCUMENT_BYTES)
                        refill(&b, NULL);
                if (b.end - b.begin > MAX_DOCUMENT_BYTES)
                        add_rejected(pl, 1, "document is larger than 1048576 bytes");
                else
                        add_document(pl, 1, b.data + b.begin, b.end - b.begin);
                goto out;
        }
        json_decref(first);
        do {
                if (too_long)
                        add_rejected(pl, line, "line is longer than 1048576 bytes");
                else if (!is_blank(text))
                        add_document(pl, line, text, len);
                line++;
        } while (next_line(&b, pl, &text, &len, &too_long));
out:
        free(b.data);
}

static void end_of_input(struct pipeline *pl)
{
        publish(pl);
        pthread_mutex_lock(&pl->lock);
        pl->eof = 1;
        pthread_cond_broadcast(&pl->work);
        wake_sender(pl);
        pthread_mutex_unlock(&pl->lock);
}

/* Runs the pipeline over in; returns the exit code. */
static int file_stream(avk_reporter_t *r, struct input input, int fd)
{
        static struct pipeline pl = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                     .work = PTHREAD_COND_INITIALIZER,
                                     .resolved = PTHREAD_COND_INITIALIZER,
                                     .to_send = PTHREAD_COND_INITIALIZER};
        pl.r = r;
        pl.input = input;
        pl.served = avk_reporter_serve(r, 0) == 0;
        /* stdio would write a file or pipe 4 KB at a time; results are
         * flushed whenever the reader is about to wait anyway. */
        static char result_buf[RESULT_BUF_BYTES];
        if (!isatty(STDOUT_FILENO))
                setvbuf(stdout, result_buf, _IOFBF, sizeof(result_buf));
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int workers = cores < 1 ? 1 : cores > MAX_WORKERS ? MAX_WORKERS : (int)cores;
        pthread_t sender_tid, worker_tid[MAX_WORKERS];
        int sending = pthread_create(&sender_tid, NULL, sender, &pl) == 0, started = 0;
        for (; sending && started < workers; started++)
                if (pthread_create(&worker_tid[started], NULL, worker, &pl) != 0)
                        break;
        if (started == 0) {
                fprintf(stderr, "avvik report: cannot start threads\n");
                end_of_input(&pl);
        } else {
                read_stream(&pl, fd);
                end_of_input(&pl);
                print_ready(&pl, 1);
        }
        for (int i = 0; i < started; i++)
                pthread_join(worker_tid[i], NULL);
        if (sending)
                pthread_join(sender_tid, NULL);
        for (size_t i = 0; i < WINDOW; i++) {
                free(pl.slot[i].document);
                pl.slot[i].document = NULL;
                pl.slot[i].cap = 0;
        }
        if (started == 0)
                return AVK_EXIT_USAGE;
        return pl.unavailable ? AVK_EXIT_KAFKA : pl.rejected ? AVK_EXIT_REJECTED : AVK_EXIT_OK;
}

/* A bulk command's threads - the reader, the workers, the sender and
 * librdkafka's - wake each other for every batch of documents, and a
 * woken thread that preempts the running one costs two context switches.
 * Under SCHED_BATCH a woken thread waits for the running one's slice (or a
 * free core) instead; the threads started later inherit it. In 44
 * alternating pairs of 200,000 documents it took a median 3.5 % off the
 * CPU a document and added 7.3 % to the rate (docs/intake.md). */
static void schedule_for_throughput(void)
{
        struct sched_param param = {0};
        if (sched_setscheduler(0, SCHED_BATCH, &param) != 0)
                fprintf(stderr, "avvik report: SCHED_BATCH: %s; the default scheduling stays\n",
                        strerror(errno));
}

int avk_cmd_report(int argc, char **argv)
{
        avk_config_t *cfg = avk_cli_config_new();
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
        int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
        if (fd < 0) {
                fprintf(stderr, "avvik report: %s: %s\n", path, strerror(errno));
                goto out;
        }
        schedule_for_throughput();
        r = avk_reporter_new_mode(cfg, AVK_REPORTER_SERVED, err, sizeof(err));
        if (!r) {
                fprintf(stderr, "avvik report: %s\n", err);
                if (fd != STDIN_FILENO)
                        close(fd);
                goto out;
        }
        rc = file_stream(r, input, fd);
        if (fd != STDIN_FILENO)
                close(fd);
out:
        avk_reporter_destroy(r);
        avk_config_destroy(cfg);
        return rc;
}
