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

#include <uuid/uuid.h>

#include "common/util/log.h"
#include "producer/intake/drainstate.h"
#include "producer/intake/record.h"

enum { REC_ENTRY = 1, REC_MAYBE = 2, REC_DONE = 3 };

#define MAX_BODY_SIZE (64u << 20) /* far above any document; guards recovery */

struct node {
        struct avk_spool_entry e; /* first: batch pointers convert back */
        TAILQ_ENTRY(node) link;   /* in seq order */
        int done;                 /* while replaying: a DONE record named it; while
                                     writing drain.state: in the batch being done */
        uint64_t offset;          /* where its ENTRY record starts in spool.log */
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
        char instance[37]; /* instance.id: a UUID in text */

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

        /* The drain's bookkeeping while spool.log cannot grow (drainstate.h):
         * from the first MAYBE or DONE the file system had no room for until
         * the spool is empty. Only the draining thread uses these, under
         * io_lock. */
        struct avk_drainstate state;
        struct avk_drainstate_marks *marks, *next_marks; /* durable; being written */
        int state_mode;
};

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
        size_t rec_len = AVK_RECORD_HEADER + 1 + 8 + 4 + 8 + 2 + topic.len + 2 + key.len + 2 +
                         id.len + 4 + e->value_len;
        struct node *n = calloc(1, sizeof(*n) + rec_len + topic.len + key.len + id.len + 3);
        if (!n)
                return NULL;
        struct avk_record_buf b = {n->rec, AVK_RECORD_HEADER};
        avk_record_put_u(&b, REC_ENTRY, 1);
        avk_record_put_u(&b, e->seq, 8);
        avk_record_put_u(&b, (uint32_t)e->partition, 4);
        avk_record_put_u(&b, (uint64_t)e->scan_from, 8);
        avk_record_put_bytes(&b, topic.p, topic.len, 2);
        avk_record_put_bytes(&b, key.p, key.len, 2);
        avk_record_put_bytes(&b, id.p, id.len, 2);
        size_t value_at = b.len + 4;
        avk_record_put_bytes(&b, e->value, e->value_len, 4);
        avk_record_seal(&b);
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
        struct avk_record_reader r = {body, len, 0, 1};
        struct avk_spool_entry e = {0};
        struct field topic, key, id;
        e.seq = avk_record_get_u(&r, 8);
        e.partition = (int32_t)(uint32_t)avk_record_get_u(&r, 4);
        e.scan_from = (int64_t)avk_record_get_u(&r, 8);
        topic.p = avk_record_get_bytes(&r, 2, &topic.len);
        key.p = avk_record_get_bytes(&r, 2, &key.len);
        id.p = avk_record_get_bytes(&r, 2, &id.len);
        e.value = avk_record_get_bytes(&r, 4, &e.value_len);
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
 * cuts the file back so that no half record stays behind, errno saying why. */
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
fail:;
        int err = errno;
        snprintf(errstr, errstr_size, "%s: %s", s->path, strerror(err));
        if (ftruncate(s->fd, (off_t)s->file_size) != 0)
                avk_log(AVK_LOG_ERROR, "spool", "%s: cannot cut back a failed write: %s", s->path,
                        strerror(errno));
        errno = err; /* the caller tells a full file system from a failed disk */
        return -1;
}

/* Why an append that could not be written was refused, without the
 * spool's path: the sender may be a client of the gateway. */
static const char *refusal(int err)
{
        return err == ENOSPC || err == EDQUOT ? "the spool's disk is full"
                                              : "the spool cannot write to its disk";
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
                        a->node->offset = s->file_size + len;
                        len += a->node->rec_len;
                }
                int ok = out && write_durably(s, out, len, reason, sizeof(reason)) == 0;
                if (out && !ok) {
                        /* The path is for the operator; the sender hears what
                         * happened (docs/intake.md, "The spool on a full disk"). */
                        int err = errno;
                        avk_log(AVK_LOG_ERROR, "spool", "%s", reason);
                        snprintf(reason, sizeof(reason), "%s", refusal(err));
                }
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

static int has_seq(const uint64_t *seqs, size_t cnt, uint64_t seq)
{
        for (size_t i = 0; i < cnt; i++)
                if (seqs[i] == seq)
                        return 1;
        return 0;
}

/* The entry with seq among nodes[0..cnt), in seq order; NULL if none. */
static struct node *find_node(struct node **nodes, size_t cnt, uint64_t seq)
{
        struct node key_node = {.e.seq = seq}, *key = &key_node;
        struct node **found = cnt ? bsearch(&key, nodes, cnt, sizeof(*nodes), by_seq) : NULL;
        return found ? *found : NULL;
}

/* Applies the drain's state (drainstate.h) to the entries read from the
 * file, nodes[0..cnt) in seq order, after the file's own records. Entries
 * appended after the state was written (at or past log_end) it leaves. */
static void apply_marks(const struct avk_drainstate_marks *m, struct node **nodes, size_t cnt)
{
        if (!m->log_end)
                return;
        for (size_t i = 0; i < cnt && nodes[i]->e.seq <= m->done_through; i++)
                if (nodes[i]->offset < m->log_end &&
                    !has_seq(m->open, m->open_cnt, nodes[i]->e.seq))
                        nodes[i]->done = 1;
        for (size_t k = 0; k < m->done_cnt; k++) {
                struct node *n = find_node(nodes, cnt, m->done[k]);
                if (n && n->offset < m->log_end)
                        n->done = 1;
        }
        for (size_t k = 0; k < m->maybe_cnt; k++) {
                struct node *n = find_node(nodes, cnt, m->maybe[k].seq);
                if (n && n->offset < m->log_end)
                        note_maybe(&n->e, m->maybe[k].partition, m->maybe[k].scan_from);
        }
}

/* Replays the file: entries, then their MAYBE and DONE records in file
 * order, then the drain's state; cuts off a torn tail. */
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
        while (size - pos >= AVK_RECORD_HEADER) {
                size_t body = avk_record_intact(data + pos, size - pos, MAX_BODY_SIZE);
                if (!body) {
                        /* A torn tail is what a crash mid-write leaves; an
                         * intact record after a damaged one is not. */
                        size_t next = pos + AVK_RECORD_HEADER + avk_record_length(data + pos);
                        if (next < size &&
                            avk_record_intact(data + next, size - next, MAX_BODY_SIZE)) {
                                snprintf(errstr, errstr_size,
                                         "%s: damaged record at offset %zu followed by intact "
                                         "ones; not cutting acknowledged documents (move the "
                                         "file aside to start empty)",
                                         s->path, pos);
                                goto out;
                        }
                        break;
                }
                const unsigned char *b = data + pos + AVK_RECORD_HEADER;
                struct avk_record_reader r = {b + 1, body - 1, 0, 1};
                if (b[0] == REC_ENTRY) {
                        struct node *n = node_parse(b + 1, body - 1);
                        if (!n || grow(&nodes, &node_cap, node_cnt, sizeof(*nodes)) != 0) {
                                free(n);
                                snprintf(errstr, errstr_size, "%s: unreadable entry at offset %zu",
                                         s->path, pos);
                                goto out;
                        }
                        n->offset = pos;
                        nodes[node_cnt++] = n;
                } else if (b[0] == REC_MAYBE || b[0] == REC_DONE) {
                        struct mark_op op = {.type = b[0], .seq = avk_record_get_u(&r, 8)};
                        if (b[0] == REC_MAYBE) {
                                op.partition = (int32_t)(uint32_t)avk_record_get_u(&r, 4);
                                op.scan_from = (int64_t)avk_record_get_u(&r, 8);
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
                pos += AVK_RECORD_HEADER + body;
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
                struct node *found = find_node(nodes, node_cnt, ops[i].seq);
                if (!found)
                        continue; /* its entry was done in an earlier life of the file */
                if (ops[i].type == REC_MAYBE)
                        note_maybe(&found->e, ops[i].partition, ops[i].scan_from);
                else
                        found->done = 1;
        }
        apply_marks(s->marks, nodes, node_cnt);
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < node_cnt; i++) {
                if (!nodes[i]->done) {
                        list_insert(s, nodes[i]);
                        nodes[i] = NULL;
                }
        }
        /* Sequence numbers go on from the state's, which may speak of
         * entries the file no longer holds. */
        if (s->marks->log_end && s->marks->max_seq > s->max_seq)
                s->max_seq = s->marks->max_seq;
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

/* Reads dir/instance.id into s->instance, writing a new random one (and
 * making it durable, the directory entry too) when there is none. */
static int instance_load(avk_spool_t *s, const char *dir, char *errstr, size_t errstr_size)
{
        char path[4200];
        snprintf(path, sizeof(path), "%s/instance.id", dir);
        uuid_t u;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = read(fd, s->instance, sizeof(s->instance) - 1);
                close(fd);
                s->instance[n > 0 ? n : 0] = '\0';
                s->instance[strcspn(s->instance, "\n")] = '\0';
                if (uuid_parse(s->instance, u) == 0)
                        return 0;
                snprintf(errstr, errstr_size, "intake.spool.dir: %s: not a UUID", path);
                return -1;
        }
        if (errno != ENOENT)
                goto io_error;
        uuid_generate_random(u);
        uuid_unparse_lower(u, s->instance);
        char line[sizeof(s->instance) + 1];
        int len = snprintf(line, sizeof(line), "%s\n", s->instance);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                goto io_error;
        int err = 0;
        errno = EIO; /* what a short write without an error number means */
        if (write(fd, line, (size_t)len) != len || fsync(fd) != 0)
                err = errno;
        close(fd);
        int dir_fd = err ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!err && (dir_fd < 0 || fsync(dir_fd) != 0))
                err = errno;
        if (dir_fd >= 0)
                close(dir_fd);
        if (!err)
                return 0;
        unlink(path); /* a half-written identity must not outlive this failure */
        errno = err;
io_error:
        snprintf(errstr, errstr_size, "intake.spool.dir: %s: %s", path, strerror(errno));
        return -1;
}

avk_spool_t *avk_spool_open(const char *dir, uint64_t max_bytes, char *errstr, size_t errstr_size)
{
        avk_spool_t *s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        s->fd = -1;
        s->state.fd = -1;
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
        if (instance_load(s, dir, errstr, errstr_size) != 0)
                goto fail;
        s->marks = malloc(sizeof(*s->marks));
        s->next_marks = malloc(sizeof(*s->next_marks));
        if (!s->marks || !s->next_marks) {
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (avk_drainstate_open(&s->state, dir, s->marks, errstr, errstr_size) != 0)
                goto fail;
        s->state_mode = s->marks->log_end > 0;
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
        avk_drainstate_close(&s->state);
        free(s->marks);
        free(s->next_marks);
        pthread_mutex_destroy(&s->io_lock);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}

const char *avk_spool_instance(avk_spool_t *s)
{
        return s->instance;
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

/* MAYBE or DONE records for the entries of a batch. */
struct marking {
        int type;
        const struct avk_spool_entry *const *batch;
        const int32_t *partition; /* MAYBE only */
        const int64_t *scan_from; /* MAYBE only */
        size_t cnt;
};

/* Appends m's records to spool.log durably; errno says why not. The caller
 * holds io_lock. */
static int mark_in_log(avk_spool_t *s, const struct marking *m, char *errstr, size_t errstr_size)
{
        size_t rec = AVK_RECORD_HEADER + 1 + 8 + (m->type == REC_MAYBE ? 12 : 0);
        unsigned char *out = malloc(m->cnt * rec + 1);
        if (!out) {
                snprintf(errstr, errstr_size, "out of memory");
                errno = ENOMEM;
                return -1;
        }
        for (size_t i = 0; i < m->cnt; i++) {
                struct avk_record_buf b = {out + i * rec, AVK_RECORD_HEADER};
                avk_record_put_u(&b, (uint64_t)m->type, 1);
                avk_record_put_u(&b, m->batch[i]->seq, 8);
                if (m->type == REC_MAYBE) {
                        avk_record_put_u(&b, (uint32_t)m->partition[i], 4);
                        avk_record_put_u(&b, (uint64_t)m->scan_from[i], 8);
                }
                avk_record_seal(&b);
        }
        int rc = write_durably(s, out, m->cnt * rec, errstr, errstr_size);
        int err = errno;
        free(out);
        errno = err;
        return rc;
}

/* Adds seq to seqs[*cnt] of at most max; -1 when they are full. */
static int add_seq(uint64_t *seqs, size_t *cnt, size_t max, uint64_t seq)
{
        if (*cnt == max)
                return -1;
        seqs[(*cnt)++] = seq;
        return 0;
}

/* Sets or replaces seq's mark in next. -1 when the marks are full. */
static int set_maybe(struct avk_drainstate_marks *next, const struct avk_spool_entry *e)
{
        size_t k = 0;
        while (k < next->maybe_cnt && next->maybe[k].seq != e->seq)
                k++;
        if (k == AVK_DRAINSTATE_MAYBE_MAX)
                return -1;
        if (k == next->maybe_cnt)
                next->maybe_cnt++;
        next->maybe[k] = (struct avk_drainstate_maybe){e->seq, e->partition, e->scan_from};
        return 0;
}

/* Drops the mark of every entry of m (a DONE) from next. */
static void drop_maybes(struct avk_drainstate_marks *next, const struct marking *m)
{
        size_t kept = 0;
        for (size_t k = 0; k < next->maybe_cnt; k++) {
                int done = 0;
                for (size_t i = 0; i < m->cnt && !done; i++)
                        done = m->batch[i]->seq == next->maybe[k].seq;
                if (!done)
                        next->maybe[kept++] = next->maybe[k];
        }
        next->maybe_cnt = kept;
}

/* Moves next's watermark past the oldest entries m is doing (each node's
 * done flag set) and keeps in next->done those done above it. -1 when they
 * do not fit. The caller holds lock. */
static int advance(avk_spool_t *s, struct avk_drainstate_marks *next, const struct marking *m)
{
        struct node *n = TAILQ_FIRST(&s->nodes);
        while (n && (n->e.seq <= next->done_through || n->done))
                n = TAILQ_NEXT(n, link);
        uint64_t through = n ? n->e.seq - 1 : s->max_seq;
        if (through > next->done_through)
                next->done_through = through;
        size_t kept = 0;
        for (size_t k = 0; k < next->done_cnt; k++)
                if (next->done[k] > next->done_through)
                        next->done[kept++] = next->done[k];
        next->done_cnt = kept;
        for (size_t i = 0; i < m->cnt; i++)
                if (m->batch[i]->seq > next->done_through &&
                    add_seq(next->done, &next->done_cnt, AVK_DRAINSTATE_DONE_MAX,
                            m->batch[i]->seq) != 0)
                        return -1;
        drop_maybes(next, m);
        return 0;
}

/* Builds in s->next_marks the drain's state with m applied. The caller
 * holds io_lock. */
static int marks_next(avk_spool_t *s, const struct marking *m, char *errstr, size_t errstr_size)
{
        struct avk_drainstate_marks *next = s->next_marks;
        *next = *s->marks;
        int rc = 0;
        pthread_mutex_lock(&s->lock);
        next->log_end = s->file_size;
        next->max_seq = s->max_seq;
        for (size_t i = 0; i < m->cnt; i++) {
                if (m->type == REC_DONE) {
                        ((struct node *)m->batch[i])->done = 1;
                } else {
                        struct avk_spool_entry e = *m->batch[i];
                        note_maybe(&e, m->partition[i], m->scan_from[i]);
                        rc |= set_maybe(next, &e);
                }
        }
        if (m->type == REC_DONE)
                rc |= advance(s, next, m);
        /* Entries under the watermark not done: appended after younger ones
         * were, they are the first in the list. */
        next->open_cnt = 0;
        for (struct node *n = TAILQ_FIRST(&s->nodes); n && n->e.seq <= next->done_through;
             n = TAILQ_NEXT(n, link))
                if (!n->done)
                        rc |=
                            add_seq(next->open, &next->open_cnt, AVK_DRAINSTATE_OPEN_MAX, n->e.seq);
        for (size_t i = 0; m->type == REC_DONE && i < m->cnt; i++)
                ((struct node *)m->batch[i])->done = 0;
        pthread_mutex_unlock(&s->lock);
        if (rc != 0)
                snprintf(errstr, errstr_size,
                         "%s: the drain's marks do not fit (%zu done ahead of the oldest, %zu "
                         "marked, %zu late): free space for spool.log",
                         s->state.path, next->done_cnt, next->maybe_cnt, next->open_cnt);
        return rc;
}

/* Writes m where the drain keeps its bookkeeping: spool.log, or drain.state
 * once the file system had no room for spool.log to grow, until the spool
 * is empty. The caller holds io_lock. */
static int mark_durably(avk_spool_t *s, const struct marking *m, char *errstr, size_t errstr_size)
{
        if (!s->state_mode) {
                if (mark_in_log(s, m, errstr, errstr_size) == 0)
                        return 0;
                if (errno != ENOSPC && errno != EDQUOT)
                        return -1;
                avk_log(AVK_LOG_WARN, "spool",
                        "%s; the drain keeps its bookkeeping in %s until the spool is empty",
                        errstr, s->state.path);
                memset(s->marks, 0, sizeof(*s->marks));
                s->state_mode = 1;
        }
        if (marks_next(s, m, errstr, errstr_size) != 0 ||
            avk_drainstate_write(&s->state, s->next_marks, errstr, errstr_size) != 0)
                return -1;
        struct avk_drainstate_marks *written = s->next_marks;
        s->next_marks = s->marks;
        s->marks = written;
        return 0;
}

/* Everything done: starts spool.log afresh, and drain.state with it. The
 * caller holds io_lock, so no append is being written and none is lost by
 * the cut. */
static void start_afresh(avk_spool_t *s)
{
        if (ftruncate(s->fd, 0) != 0 || fsync(s->fd) != 0) {
                avk_log(AVK_LOG_WARN, "spool", "%s: cannot truncate: %s", s->path, strerror(errno));
                return;
        }
        s->file_size = 0;
        if (!s->state_mode)
                return;
        char errstr[512];
        memset(s->next_marks, 0, sizeof(*s->next_marks));
        if (avk_drainstate_write(&s->state, s->next_marks, errstr, sizeof(errstr)) != 0) {
                /* Harmless: what it says is about entries older than any to come. */
                avk_log(AVK_LOG_WARN, "spool", "%s", errstr);
                return;
        }
        struct avk_drainstate_marks *written = s->next_marks;
        s->next_marks = s->marks;
        s->marks = written;
        s->state_mode = 0;
        avk_log(AVK_LOG_INFO, "spool", "%s is empty: the drain's bookkeeping is back in it",
                s->path);
}

/* Records m durably, then applies it to the entries in memory. */
static int mark(avk_spool_t *s, const struct marking *m, char *errstr, size_t errstr_size)
{
        pthread_mutex_lock(&s->io_lock);
        int rc = mark_durably(s, m, errstr, errstr_size);
        if (rc == 0) {
                pthread_mutex_lock(&s->lock);
                for (size_t i = 0; i < m->cnt; i++) {
                        struct node *n = (struct node *)m->batch[i];
                        if (m->type == REC_MAYBE)
                                note_maybe(&n->e, m->partition[i], m->scan_from[i]);
                        else
                                list_remove(s, n);
                }
                int empty = s->listed == 0;
                pthread_mutex_unlock(&s->lock);
                if (empty && m->type == REC_DONE)
                        start_afresh(s);
        }
        pthread_mutex_unlock(&s->io_lock);
        return rc;
}

int avk_spool_maybe(avk_spool_t *s, const struct avk_spool_entry *const *batch,
                    const int32_t *partition, const int64_t *scan_from, size_t cnt, char *errstr,
                    size_t errstr_size)
{
        struct marking m = {REC_MAYBE, batch, partition, scan_from, cnt};
        return mark(s, &m, errstr, errstr_size);
}

int avk_spool_done(avk_spool_t *s, const struct avk_spool_entry *const *batch, size_t cnt,
                   char *errstr, size_t errstr_size)
{
        struct marking m = {REC_DONE, batch, NULL, NULL, cnt};
        return mark(s, &m, errstr, errstr_size);
}
