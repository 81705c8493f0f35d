/*
 * avk_drainstate: where the spool's drain keeps its bookkeeping (what is in
 * Kafka, where a document may already be) when spool.log cannot grow
 * because its file system is full (docs/intake.md, "The spool on a full
 * disk").
 *
 * One small file, drain.state, preallocated when the spool opens, so that
 * writing it never needs space; it is written in place. It has two slots;
 * each write goes to the slot not holding the newest state and is
 * fdatasync'd, so a torn write leaves the previous state readable. A slot
 * (little-endian): u32 body length, u32 CRC-32 of the body, then the body:
 *   u64 generation, u64 log_end, u64 done_through, u64 max_seq,
 *   u32 done_cnt, u32 open_cnt, u32 maybe_cnt, done_cnt x u64 seq,
 *   open_cnt x u64 seq, maybe_cnt x (u64 seq, i32 partition, i64 scan_from)
 * The newest slot whose checksum matches is the state.
 *
 * The state speaks of the ENTRY records that start before log_end in
 * spool.log: those with seq <= done_through (but for the few listed in
 * open: appended late, after younger ones were done) or listed in done are
 * in Kafka; those listed in maybe may be in partition at offsets >=
 * scan_from. The drain produces oldest first, so a watermark and the
 * current batch's marks fit a few kilobytes. log_end 0 is an empty state.
 */
#ifndef AVK_DRAINSTATE_H
#define AVK_DRAINSTATE_H

#include <stddef.h>
#include <stdint.h>

/* Twice the drain's batch: a batch and the leftovers of the one before. */
#define AVK_DRAINSTATE_DONE_MAX  1024
#define AVK_DRAINSTATE_MAYBE_MAX 1024
#define AVK_DRAINSTATE_OPEN_MAX  256

/** "Entry seq may be in partition at an offset >= scan_from". */
struct avk_drainstate_maybe {
        uint64_t seq;
        int32_t partition;
        int64_t scan_from;
};

/** What one slot holds. */
struct avk_drainstate_marks {
        uint64_t log_end;      /**< covers the entries that start before this offset; 0: none */
        uint64_t done_through; /**< entries with seq <= this are in Kafka */
        uint64_t max_seq;      /**< the highest seq the spool had seen when it was written */
        size_t done_cnt, open_cnt, maybe_cnt;
        uint64_t done[AVK_DRAINSTATE_DONE_MAX]; /**< in Kafka, above done_through */
        uint64_t open[AVK_DRAINSTATE_OPEN_MAX]; /**< not in Kafka, below done_through */
        struct avk_drainstate_maybe maybe[AVK_DRAINSTATE_MAYBE_MAX];
};

/** The open state file. */
struct avk_drainstate {
        int fd;
        uint64_t generation; /**< of the newest slot; 0 when none was ever written */
        char path[4096];
};

/**
 * @brief Opens dir/drain.state, creating and preallocating it when missing,
 * and reads the newest intact slot into marks (all zero when none is).
 * @returns 0, or -1 with the reason in errstr (the file system may be full
 * when the file is created: the spool then refuses to open).
 */
int avk_drainstate_open(struct avk_drainstate *ds, const char *dir,
                        struct avk_drainstate_marks *marks, char *errstr, size_t errstr_size);

/**
 * @brief Durably replaces the state by marks, in the slot the newest one is
 * not in. @returns 0, or -1 with the reason in errstr (the state is then
 * the one before).
 */
int avk_drainstate_write(struct avk_drainstate *ds, const struct avk_drainstate_marks *marks,
                         char *errstr, size_t errstr_size);

/** @brief Closes the file (a ds whose fd is -1 is left alone). */
void avk_drainstate_close(struct avk_drainstate *ds);

#endif
