/*
 * avk_spool: see spool.h.
 *
 * Record layout (little-endian): u32 body length, u32 CRC-32 of the body,
 * body. The body starts with a type byte:
 *   ENTRY: u64 seq, i32 partition, i64 scan_from, u16+bytes topic,
 *          u16+bytes key, u16+bytes id, u32+bytes value
 *   MAYBE: u64 seq, i32 partition, i64 scan_from
 *   DONE:  u64 seq
 * Entries live in memory too, in a list sorted by seq: appends nearly always
 * arrive in send order, so insertion looks from the tail.
 */
#include "producer/intake/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "common/util/log.h"

enum { REC_ENTRY = 1, REC_MAYBE = 2, REC_DONE = 3 };

#define HEADER_SIZE   8
#define MAX_BODY_SIZE (64u << 20) /* far above any document; guards recovery */

struct node {
        struct avk_spool_entry e; /* first: batch pointers convert back */
        TAILQ_ENTRY(node) link;   /* in seq order */
        int done;                 /* while replaying: a DONE record named it */
        size_t rec_len;           /* the ENTRY record's encoded size */
        unsigned char rec[];
};

struct append {
        struct node *node;
        avk_spool_done_cb *done;
        void *opaque;
        struct append *next;
};

struct avk_spool {
        int fd;
        char path[4096];
        uint64_t max_bytes;

        pthread_mutex_t io_lock; /* serialises writes to the file */
        pthread_mutex_t lock;    /* the list, the queue and the counters */
        pthread_cond_t cond;
        TAILQ_HEAD(node_list, node) nodes;
        size_t listed;
        struct append *queue, **queue_tail;
        size_t queued;
        uint64_t file_size;
        uint64_t max_seq;
        int closing;
        pthread_t writer;
};

/* Little-endian encoding into a record buffer. */
struct buf {
        unsigned char *p;
        size_t len;
};

static void put_u(struct buf *b, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++)
                b->p[b->len++] = (unsigned char)(v >> (8 * i));
}

static void put_bytes(struct buf *b, const void *data, size_t len, int len_bytes)
{
        put_u(b, len, len_bytes);
        if (len)
                memcpy(b->p + b->len, data, len);
        b->len += len;
}

/* Writes the header of the record whose body is b->p[HEADER_SIZE..len). */
static void seal(struct buf *b)
{
        size_t body = b->len - HEADER_SIZE;
        uint32_t crc = (uint32_t)crc32(0L, b->p + HEADER_SIZE, (uInt)body);
        struct buf h = {b->p, 0};
        put_u(&h, body, 4);
        put_u(&h, crc, 4);
}

/* Reading a body with bounds checks: a failed read leaves ok at 0. */
struct reader {
        const unsigned char *p;
        size_t len, pos;
        int ok;
};

static uint64_t get_u(struct reader *r, int bytes)
{
        uint64_t v = 0;
        if (!r->ok || r->len - r->pos < (size_t)bytes) {
                r->ok = 0;
                return 0;
        }
        for (int i = 0; i < bytes; i++)
                v |= (uint64_t)r->p[r->pos++] << (8 * i);
        return v;
}

static const unsigned char *get_bytes(struct reader *r, int len_bytes, size_t *len)
{
        *len = (size_t)get_u(r, len_bytes);
        if (!r->ok || r->len - r->pos < *len) {
                r->ok = 0;
                return NULL;
        }
        const unsigned char *p = r->p + r->pos;
        r->pos += *len;
        return p;
}

struct field {
        const void *p;
        size_t len;
};

/* A node holding an entry's ENTRY record, with NUL-terminated copies of its
 * strings in the same block; the entry's pointers point into the block. */
static struct node *node_build(const struct avk_spool_entry *e, struct field topic,
                               struct field key, struct field id)
{
        if (topic.len > UINT16_MAX || key.len > UINT16_MAX || id.len > UINT16_MAX ||
            e->value_len > MAX_BODY_SIZE)
                return NULL;
        size_t rec_len = HEADER_SIZE + 1 + 8 + 4 + 8 + 2 + topic.len + 2 + key.len + 2 + id.len +
                         4 + e->value_len;
        struct node *n = calloc(1, sizeof(*n) + rec_len + topic.len + key.len + id.len + 3);
        if (!n)
                return NULL;
        struct buf b = {n->rec, HEADER_SIZE};
        put_u(&b, REC_ENTRY, 1);
        put_u(&b, e->seq, 8);
        put_u(&b, (uint32_t)e->partition, 4);
        put_u(&b, (uint64_t)e->scan_from, 8);
        put_bytes(&b, topic.p, topic.len, 2);
        put_bytes(&b, key.p, key.len, 2);
        put_bytes(&b, id.p, id.len, 2);
        size_t value_at = b.len + 4;
        put_bytes(&b, e->value, e->value_len, 4);
        seal(&b);
        n->rec_len = rec_len;
        n->e = *e;
        char *str = (char *)n->rec + rec_len; /* calloc'd: each copy ends in NUL */
        n->e.topic = memcpy(str, topic.p, topic.len);
        n->e.key = memcpy(str + topic.len + 1, key.p, key.len);
        n->e.id = memcpy(str + topic.len + key.len + 2, id.p, id.len);
        n->e.value = n->rec + value_at;
        return n;
}

static struct node *node_new(const struct avk_spool_entry *e)
{
        return node_build(e, (struct field){e->topic, strlen(e->topic)},
                          (struct field){e->key, strlen(e->key)},
                          (struct field){e->id, strlen(e->id)});
}

/* Parses an ENTRY body (after its type byte) back into a node. */
static struct node *node_parse(const unsigned char *body, size_t len)
{
        struct reader r = {body, len, 0, 1};
        struct avk_spool_entry e = {0};
        struct field topic, key, id;
        e.seq = get_u(&r, 8);
        e.partition = (int32_t)(uint32_t)get_u(&r, 4);
        e.scan_from = (int64_t)get_u(&r, 8);
        topic.p = get_bytes(&r, 2, &topic.len);
        key.p = get_bytes(&r, 2, &key.len);
        id.p = get_bytes(&r, 2, &id.len);
        e.value = get_bytes(&r, 4, &e.value_len);
        if (!r.ok || r.pos != len)
                return NULL;
        return node_build(&e, topic, key, id);
}

/* Inserts n in seq order; the caller holds lock. */
static void list_insert(avk_spool_t *s, struct node *n)
{
        struct node *after = TAILQ_LAST(&s->nodes, node_list);
        while (after && after->e.seq > n->e.seq)
                after = TAILQ_PREV(after, node_list, link);
        if (after)
                TAILQ_INSERT_AFTER(&s->nodes, after, n, link);
        else
                TAILQ_INSERT_HEAD(&s->nodes, n, link);
        s->listed++;
        if (n->e.seq > s->max_seq)
                s->max_seq = n->e.seq;
}

static void list_remove(avk_spool_t *s, struct node *n)
{
        TAILQ_REMOVE(&s->nodes, n, link);
        s->listed--;
        free(n);
}

/* A later MAYBE for the same partition can only widen the range to scan. */
static void note_maybe(struct avk_spool_entry *e, int32_t partition, int64_t scan_from)
{
        if (e->partition == partition && e->scan_from >= 0 && e->scan_from < scan_from)
                return;
        e->partition = partition;
        e->scan_from = scan_from;
}

/* Writes all of data at the end of the file and makes it durable; on failure
 * cuts the file back so that no half record stays behind. */
static int write_durably(avk_spool_t *s, const void *data, size_t len, char *errstr,
                         size_t errstr_size)
{
        const unsigned char *p = data;
        size_t done = 0;
        while (done < len) {
                ssize_t n = write(s->fd, p + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        goto fail;
                done += (size_t)n;
        }
        if (fdatasync(s->fd) != 0)
                goto fail;
        s->file_size += len;
        return 0;
fail:
        snprintf(errstr, errstr_size, "%s: %s", s->path, strerror(errno));
        if (ftruncate(s->fd, (off_t)s->file_size) != 0)
                avk_log(AVK_LOG_ERROR, "spool", "%s: cannot cut back a failed write: %s", s->path,
                        strerror(errno));
        return -1;
}

static void *writer_loop(void *arg)
{
        avk_spool_t *s = arg;
        for (;;) {
                pthread_mutex_lock(&s->lock);
                while (!s->queue && !s->closing)
                        pthread_cond_wait(&s->cond, &s->lock);
                struct append *batch = s->queue;
                s->queue = NULL;
                s->queue_tail = &s->queue;
                pthread_mutex_unlock(&s->lock);
                if (!batch)
                        return NULL; /* closing, nothing queued */

                pthread_mutex_lock(&s->io_lock);
                /* One buffer, one write, one fsync for the whole batch; what
                 * would pass max_bytes is refused before writing. */
                size_t total = 0;
                for (struct append *a = batch; a; a = a->next)
                        total += a->node->rec_len;
                unsigned char *out = malloc(total ? total : 1);
                size_t len = 0;
                char reason[256] = "out of memory";
                for (struct append *a = batch; a && out; a = a->next) {
                        if (s->file_size + len + a->node->rec_len > s->max_bytes) {
                                a->node->rec_len = 0; /* marks it refused */
                                continue;
                        }
                        memcpy(out + len, a->node->rec, a->node->rec_len);
                        len += a->node->rec_len;
                }
                int ok = out && write_durably(s, out, len, reason, sizeof(reason)) == 0;
                free(out);
                pthread_mutex_lock(&s->lock);
                for (struct append *a = batch; a; a = a->next) {
                        s->queued--;
                        if (ok && a->node->rec_len) {
                                list_insert(s, a->node);
                                a->node = NULL;
                        }
                }
                pthread_mutex_unlock(&s->lock);
                pthread_mutex_unlock(&s->io_lock);

                while (batch) {
                        struct append *a = batch;
                        batch = a->next;
                        if (!a->node)
                                a->done(a->opaque, 1, NULL);
                        else
                                a->done(a->opaque, 0, ok ? "the spool is full" : reason);
                        free(a->node);
                        free(a);
                }
        }
}

void avk_spool_append(avk_spool_t *s, const struct avk_spool_entry *entry, avk_spool_done_cb *done,
                      void *opaque)
{
        struct append *a = calloc(1, sizeof(*a));
        struct node *n = a ? node_new(entry) : NULL;
        if (!n) {
                free(a);
                done(opaque, 0, "out of memory or document too large for the spool");
                return;
        }
        *a = (struct append){.node = n, .done = done, .opaque = opaque};
        pthread_mutex_lock(&s->lock);
        *s->queue_tail = a;
        s->queue_tail = &a->next;
        s->queued++;
        if (entry->seq > s->max_seq)
                s->max_seq = entry->seq;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

struct mark_op { /* a MAYBE or DONE record met while replaying */
        int type;
        uint64_t seq;
        int32_t partition;
        int64_t scan_from;
};

static int by_seq(const void *a, const void *b)
{
        uint64_t x = (*(struct node *const *)a)->e.seq, y = (*(struct node *const *)b)->e.seq;
        return (x > y) - (x < y);
}

/* The body length a record header at p declares. */
static size_t record_length(const unsigned char *p)
{
        struct reader h = {p, HEADER_SIZE, 0, 1};
        return (size_t)get_u(&h, 4);
}

/* The body length of the record at p when it is whole and its checksum
 * matches; 0 otherwise. */
static size_t intact(const unsigned char *p, size_t avail)
{
        if (avail < HEADER_SIZE)
                return 0;
        struct reader h = {p, HEADER_SIZE, 0, 1};
        size_t body = (size_t)get_u(&h, 4);
        uint32_t crc = (uint32_t)get_u(&h, 4);
        if (body == 0 || body > MAX_BODY_SIZE || avail - HEADER_SIZE < body ||
            crc != (uint32_t)crc32(0L, p + HEADER_SIZE, (uInt)body))
                return 0;
        return body;
}

/* Grows *arr to hold one more element of size elem. */
static int grow(void *arr, size_t *cap, size_t cnt, size_t elem)
{
        if (cnt < *cap)
                return 0;
        size_t new_cap = *cap * 2 + 64;
        void *p = realloc(*(void **)arr, new_cap * elem);
        if (!p)
                return -1;
        *(void **)arr = p;
        *cap = new_cap;
        return 0;
}

/* Replays the file: entries, then their MAYBE and DONE records in file
 * order; cuts off a torn tail. */
static int recover(avk_spool_t *s, char *errstr, size_t errstr_size)
{
        struct node **nodes = NULL;
        struct mark_op *ops = NULL;
        size_t node_cnt = 0, node_cap = 0, op_cnt = 0, op_cap = 0, pos = 0, size = 0;
        unsigned char *data = NULL;
        int rc = -1;
        struct stat st;
        if (fstat(s->fd, &st) != 0)
                goto io_error;
        size = (size_t)st.st_size;
        if (size && !(data = malloc(size))) {
                snprintf(errstr, errstr_size, "%s: out of memory reading %zu bytes", s->path, size);
                goto out;
        }
        for (size_t got = 0; got < size;) {
                ssize_t n = pread(s->fd, data + got, size - got, (off_t)got);
                if (n <= 0)
                        goto io_error;
                got += (size_t)n;
        }
        while (size - pos >= HEADER_SIZE) {
                size_t body = intact(data + pos, size - pos);
                if (!body) {
                        /* A torn tail is what a crash mid-write leaves; an
                         * intact record after a damaged one is not. */
                        size_t next = pos + HEADER_SIZE + record_length(data + pos);
                        if (next < size && intact(data + next, size - next)) {
                                snprintf(errstr, errstr_size,
                                         "%s: damaged record at offset %zu followed by intact "
                                         "ones; not cutting acknowledged documents (move the "
                                         "file aside to start empty)",
                                         s->path, pos);
                                goto out;
                        }
                        break;
                }
                const unsigned char *b = data + pos + HEADER_SIZE;
                struct reader r = {b + 1, body - 1, 0, 1};
                if (b[0] == REC_ENTRY) {
                        struct node *n = node_parse(b + 1, body - 1);
                        if (!n || grow(&nodes, &node_cap, node_cnt, sizeof(*nodes)) != 0) {
                                free(n);
                                snprintf(errstr, errstr_size, "%s: unreadable entry at offset %zu",
                                         s->path, pos);
                                goto out;
                        }
                        nodes[node_cnt++] = n;
                } else if (b[0] == REC_MAYBE || b[0] == REC_DONE) {
                        struct mark_op op = {.type = b[0], .seq = get_u(&r, 8)};
                        if (b[0] == REC_MAYBE) {
                                op.partition = (int32_t)(uint32_t)get_u(&r, 4);
                                op.scan_from = (int64_t)get_u(&r, 8);
                        }
                        if (!r.ok || grow(&ops, &op_cap, op_cnt, sizeof(*ops)) != 0) {
                                snprintf(errstr, errstr_size, "%s: unreadable record at offset %zu",
                                         s->path, pos);
                                goto out;
                        }
                        ops[op_cnt++] = op;
                } else {
                        snprintf(errstr, errstr_size, "%s: unknown record type %d at offset %zu",
                                 s->path, b[0], pos);
                        goto out;
                }
                pos += HEADER_SIZE + body;
        }
        if (pos < size) {
                avk_log(AVK_LOG_WARN, "spool",
                        "%s: cut off %zu bytes of an unfinished write at offset %zu", s->path,
                        size - pos, pos);
                if (ftruncate(s->fd, (off_t)pos) != 0 || fsync(s->fd) != 0)
                        goto io_error;
        }
        s->file_size = pos;
        if (node_cnt)
                qsort(nodes, node_cnt, sizeof(*nodes), by_seq);
        for (size_t i = 0; i < op_cnt; i++) {
                struct node key_node = {.e.seq = ops[i].seq}, *key = &key_node;
                struct node **found =
                    node_cnt ? bsearch(&key, nodes, node_cnt, sizeof(*nodes), by_seq) : NULL;
                if (!found)
                        continue; /* its entry was done in an earlier life of the file */
                if (ops[i].type == REC_MAYBE)
                        note_maybe(&(*found)->e, ops[i].partition, ops[i].scan_from);
                else
                        (*found)->done = 1;
        }
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < node_cnt; i++) {
                if (!nodes[i]->done) {
                        list_insert(s, nodes[i]);
                        nodes[i] = NULL;
                }
        }
        pthread_mutex_unlock(&s->lock);
        rc = 0;
        goto out;
io_error:
        snprintf(errstr, errstr_size, "%s: %s", s->path, strerror(errno));
out:
        for (size_t i = 0; i < node_cnt; i++)
                free(nodes[i]);
        free(nodes);
        free(ops);
        free(data);
        return rc;
}

avk_spool_t *avk_spool_open(const char *dir, uint64_t max_bytes, char *errstr, size_t errstr_size)
{
        avk_spool_t *s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        s->fd = -1;
        s->max_bytes = max_bytes;
        TAILQ_INIT(&s->nodes);
        s->queue_tail = &s->queue;
        pthread_mutex_init(&s->io_lock, NULL);
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                snprintf(errstr, errstr_size, "intake.spool.dir: %s: %s", dir, strerror(errno));
                goto fail;
        }
        snprintf(s->path, sizeof(s->path), "%s/spool.log", dir);
        s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s->fd < 0) {
                snprintf(errstr, errstr_size, "intake.spool.dir: %s: %s", s->path, strerror(errno));
                goto fail;
        }
        /* Two processes draining one spool would double documents. */
        if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
                snprintf(errstr, errstr_size, "intake.spool.dir: %s is in use by another process",
                         s->path);
                goto fail;
        }
        if (recover(s, errstr, errstr_size) != 0)
                goto fail;
        if (pthread_create(&s->writer, NULL, writer_loop, s) != 0) {
                snprintf(errstr, errstr_size, "cannot start the spool writer thread");
                goto fail;
        }
        if (s->listed)
                avk_log(AVK_LOG_INFO, "spool", "%s holds %zu documents to produce", s->path,
                        s->listed);
        return s;
fail:
        s->closing = 1;
        avk_spool_close(s);
        return NULL;
}

void avk_spool_close(avk_spool_t *s)
{
        if (!s)
                return;
        if (!s->closing) {
                pthread_mutex_lock(&s->lock);
                s->closing = 1;
                pthread_cond_signal(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->writer, NULL);
        }
        while (!TAILQ_EMPTY(&s->nodes))
                list_remove(s, TAILQ_FIRST(&s->nodes));
        if (s->fd >= 0)
                close(s->fd);
        pthread_mutex_destroy(&s->io_lock);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}

size_t avk_spool_outstanding(avk_spool_t *s)
{
        pthread_mutex_lock(&s->lock);
        size_t n = s->listed + s->queued;
        pthread_mutex_unlock(&s->lock);
        return n;
}

uint64_t avk_spool_max_seq(avk_spool_t *s)
{
        pthread_mutex_lock(&s->lock);
        uint64_t seq = s->max_seq;
        pthread_mutex_unlock(&s->lock);
        return seq;
}

size_t avk_spool_batch(avk_spool_t *s, const struct avk_spool_entry **batch, size_t max)
{
        size_t n = 0;
        pthread_mutex_lock(&s->lock);
        for (struct node *node = TAILQ_FIRST(&s->nodes); node && n < max;
             node = TAILQ_NEXT(node, link))
                batch[n++] = &node->e;
        pthread_mutex_unlock(&s->lock);
        return n;
}

/* Encodes MAYBE or DONE records for a batch and writes them durably. */
static int mark(avk_spool_t *s, int type, const struct avk_spool_entry *const *batch,
                const int32_t *partition, const int64_t *scan_from, size_t cnt, char *errstr,
                size_t errstr_size)
{
        size_t rec = HEADER_SIZE + 1 + 8 + (type == REC_MAYBE ? 12 : 0);
        unsigned char *out = malloc(cnt * rec + 1);
        if (!out) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        for (size_t i = 0; i < cnt; i++) {
                struct buf b = {out + i * rec, HEADER_SIZE};
                put_u(&b, (uint64_t)type, 1);
                put_u(&b, batch[i]->seq, 8);
                if (type == REC_MAYBE) {
                        put_u(&b, (uint32_t)partition[i], 4);
                        put_u(&b, (uint64_t)scan_from[i], 8);
                }
                seal(&b);
        }
        pthread_mutex_lock(&s->io_lock);
        int rc = write_durably(s, out, cnt * rec, errstr, errstr_size);
        free(out);
        if (rc == 0) {
                pthread_mutex_lock(&s->lock);
                for (size_t i = 0; i < cnt; i++) {
                        struct node *n = (struct node *)batch[i];
                        if (type == REC_MAYBE)
                                note_maybe(&n->e, partition[i], scan_from[i]);
                        else
                                list_remove(s, n);
                }
                /* Everything done: start the file afresh. Appends being
                 * written hold io_lock, so none is lost by the cut. */
                int empty = s->listed == 0;
                pthread_mutex_unlock(&s->lock);
                if (empty && type == REC_DONE) {
                        if (ftruncate(s->fd, 0) == 0 && fsync(s->fd) == 0)
                                s->file_size = 0;
                        else
                                avk_log(AVK_LOG_WARN, "spool", "%s: cannot truncate: %s", s->path,
                                        strerror(errno));
                }
        }
        pthread_mutex_unlock(&s->io_lock);
        return rc;
}

int avk_spool_maybe(avk_spool_t *s, const struct avk_spool_entry *const *batch,
                    const int32_t *partition, const int64_t *scan_from, size_t cnt, char *errstr,
                    size_t errstr_size)
{
        return mark(s, REC_MAYBE, batch, partition, scan_from, cnt, errstr, errstr_size);
}

int avk_spool_done(avk_spool_t *s, const struct avk_spool_entry *const *batch, size_t cnt,
                   char *errstr, size_t errstr_size)
{
        return mark(s, REC_DONE, batch, NULL, NULL, cnt, errstr, errstr_size);
}
