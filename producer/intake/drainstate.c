/* avk_drainstate: see drainstate.h. */
#include "producer/intake/drainstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "producer/intake/record.h"

#define FIXED_BODY 44 /* generation, log_end, done_through, max_seq, the counts */
#define MAYBE_SIZE 20
#define SLOT_BODY_MAX                                                                              \
        (FIXED_BODY + (AVK_DRAINSTATE_DONE_MAX + AVK_DRAINSTATE_OPEN_MAX) * 8 +                    \
         AVK_DRAINSTATE_MAYBE_MAX * MAYBE_SIZE)
#define SLOT_SIZE 32768 /* a slot and its header, rounded up to whole pages */

_Static_assert(AVK_RECORD_HEADER + SLOT_BODY_MAX <= SLOT_SIZE, "a full state fits its slot");

/* Reads slot i: 0 and its generation in *generation when it is intact. */
static int read_slot(struct avk_drainstate *ds, int i, unsigned char *buf, uint64_t *generation,
                     struct avk_drainstate_marks *marks)
{
        ssize_t got = pread(ds->fd, buf, SLOT_SIZE, (off_t)i * SLOT_SIZE);
        size_t body = got > 0 ? avk_record_intact(buf, (size_t)got, SLOT_BODY_MAX) : 0;
        if (!body)
                return -1;
        struct avk_record_reader r = {buf + AVK_RECORD_HEADER, body, 0, 1};
        *generation = avk_record_get_u(&r, 8);
        marks->log_end = avk_record_get_u(&r, 8);
        marks->done_through = avk_record_get_u(&r, 8);
        marks->max_seq = avk_record_get_u(&r, 8);
        marks->done_cnt = (size_t)avk_record_get_u(&r, 4);
        marks->open_cnt = (size_t)avk_record_get_u(&r, 4);
        marks->maybe_cnt = (size_t)avk_record_get_u(&r, 4);
        if (marks->done_cnt > AVK_DRAINSTATE_DONE_MAX ||
            marks->open_cnt > AVK_DRAINSTATE_OPEN_MAX ||
            marks->maybe_cnt > AVK_DRAINSTATE_MAYBE_MAX)
                return -1;
        for (size_t k = 0; k < marks->done_cnt; k++)
                marks->done[k] = avk_record_get_u(&r, 8);
        for (size_t k = 0; k < marks->open_cnt; k++)
                marks->open[k] = avk_record_get_u(&r, 8);
        for (size_t k = 0; k < marks->maybe_cnt; k++) {
                marks->maybe[k].seq = avk_record_get_u(&r, 8);
                marks->maybe[k].partition = (int32_t)(uint32_t)avk_record_get_u(&r, 4);
                marks->maybe[k].scan_from = (int64_t)avk_record_get_u(&r, 8);
        }
        return r.ok && r.pos == body ? 0 : -1;
}

int avk_drainstate_open(struct avk_drainstate *ds, const char *dir,
                        struct avk_drainstate_marks *marks, char *errstr, size_t errstr_size)
{
        memset(marks, 0, sizeof(*marks));
        ds->generation = 0;
        snprintf(ds->path, sizeof(ds->path), "%s/drain.state", dir);
        ds->fd = open(ds->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (ds->fd < 0) {
                snprintf(errstr, errstr_size, "intake.spool.dir: %s: %s", ds->path,
                         strerror(errno));
                return -1;
        }
        /* Blocks of its own from the start: writing in place then needs no
         * space, however full the file system gets. */
        int err = posix_fallocate(ds->fd, 0, 2 * SLOT_SIZE);
        if (err == 0 && fsync(ds->fd) != 0)
                err = errno;
        if (err != 0) {
                snprintf(errstr, errstr_size,
                         "intake.spool.dir: %s: cannot reserve the drain's state file: %s",
                         ds->path, strerror(err));
                avk_drainstate_close(ds);
                return -1;
        }
        unsigned char *buf = malloc(SLOT_SIZE);
        struct avk_drainstate_marks *slot = malloc(sizeof(*slot));
        if (!buf || !slot) {
                free(buf);
                free(slot);
                snprintf(errstr, errstr_size, "out of memory");
                avk_drainstate_close(ds);
                return -1;
        }
        for (int i = 0; i < 2; i++) {
                uint64_t generation;
                if (read_slot(ds, i, buf, &generation, slot) == 0 && generation > ds->generation) {
                        ds->generation = generation;
                        *marks = *slot;
                }
        }
        free(buf);
        free(slot);
        return 0;
}

int avk_drainstate_write(struct avk_drainstate *ds, const struct avk_drainstate_marks *marks,
                         char *errstr, size_t errstr_size)
{
        unsigned char *buf = malloc(SLOT_SIZE);
        if (!buf) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        uint64_t generation = ds->generation + 1;
        struct avk_record_buf b = {buf, AVK_RECORD_HEADER};
        avk_record_put_u(&b, generation, 8);
        avk_record_put_u(&b, marks->log_end, 8);
        avk_record_put_u(&b, marks->done_through, 8);
        avk_record_put_u(&b, marks->max_seq, 8);
        avk_record_put_u(&b, marks->done_cnt, 4);
        avk_record_put_u(&b, marks->open_cnt, 4);
        avk_record_put_u(&b, marks->maybe_cnt, 4);
        for (size_t k = 0; k < marks->done_cnt; k++)
                avk_record_put_u(&b, marks->done[k], 8);
        for (size_t k = 0; k < marks->open_cnt; k++)
                avk_record_put_u(&b, marks->open[k], 8);
        for (size_t k = 0; k < marks->maybe_cnt; k++) {
                avk_record_put_u(&b, marks->maybe[k].seq, 8);
                avk_record_put_u(&b, (uint32_t)marks->maybe[k].partition, 4);
                avk_record_put_u(&b, (uint64_t)marks->maybe[k].scan_from, 8);
        }
        avk_record_seal(&b);
        /* The newest slot is generation % 2: this write goes to the other. */
        off_t at = (off_t)(generation % 2) * SLOT_SIZE;
        size_t done = 0;
        int rc = 0;
        while (done < b.len && rc == 0) {
                ssize_t n = pwrite(ds->fd, buf + done, b.len - done, at + (off_t)done);
                if (n > 0)
                        done += (size_t)n;
                else if (n == 0 || errno != EINTR) {
                        if (n == 0)
                                errno = EIO;
                        rc = -1;
                }
        }
        if (rc == 0 && fdatasync(ds->fd) != 0)
                rc = -1;
        if (rc == 0)
                ds->generation = generation;
        else
                snprintf(errstr, errstr_size, "%s: %s", ds->path, strerror(errno));
        free(buf);
        return rc;
}

void avk_drainstate_close(struct avk_drainstate *ds)
{
        if (ds->fd >= 0)
                close(ds->fd);
        ds->fd = -1;
}
