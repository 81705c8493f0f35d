/*
 * avk_spool: the intake's local, append-only, fsync'd store for documents
 * Kafka could not take, so that accepted means kept even while Kafka is
 * unreachable.
 *
 * One file, spool.log, of checksummed records:
 *   ENTRY  a document: its send sequence number, topic, key, id and encoded
 *          value, and where it may already be in Kafka (see below);
 *   MAYBE  "entry seq may be in partition P at an offset >= O": written
 *          before a document is produced, because a crash between Kafka's
 *          acknowledgement and the DONE record must not produce it twice;
 *   DONE   "entry seq is in Kafka".
 * Appends are group-committed: a writer thread writes whatever is queued and
 * fsyncs once, then calls each append's callback. A torn tail (a crash while
 * writing, before the fsync returned, so never acknowledged) is cut off when
 * the spool is opened. When every entry is done the file is truncated.
 *
 * The MAYBE and DONE records go to drain.state instead (drainstate.h) from
 * the first one the file system has no room for until every entry is done,
 * so a full disk does not stop the drain (docs/intake.md, "The spool on a
 * full disk"). Opening reserves that file's space.
 *
 * Entries come back oldest send sequence first, so the spool drains in the
 * order documents were sent.
 *
 * The spool has an identity of its own, instance.id (a random UUID written
 * when the spool is created): the reporter derives its Kafka
 * transactional.id from it, so that a restart on the same spool fences and
 * aborts what the previous process left open (docs/intake.md, "Receipts").
 */
#ifndef AVK_SPOOL_H
#define AVK_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct avk_spool avk_spool_t;

/** One spooled document. Strings are NUL-terminated. */
struct avk_spool_entry {
        uint64_t seq;      /**< send sequence number: the drain order */
        int32_t partition; /**< where it may be in Kafka; -1 when it was never produced */
        int64_t scan_from; /**< may be in partition at offsets >= this; -1: certainly not */
        const char *topic;
        const char *key;
        const char *id; /**< the document's id (deviation_id or response_id) */
        const void *value;
        size_t value_len;
};

/** @brief Called once per append: ok 1 once the entry is durable, 0 with a reason. */
typedef void(avk_spool_done_cb)(void *opaque, int ok, const char *reason);

/**
 * @brief Opens (creating it when missing) the spool in dir and recovers the
 * entries not yet done. @returns NULL with the reason in errstr.
 */
avk_spool_t *avk_spool_open(const char *dir, uint64_t max_bytes, char *errstr, size_t errstr_size);

/** @brief Waits for queued appends, then closes. Entries not done stay in the file. */
void avk_spool_close(avk_spool_t *spool);

/**
 * @brief Queues a copy of entry for the next group commit; done() is called
 * from the writer thread once it is durable, or with the reason it is not
 * (the spool is full, its disk is full or failed), which names no path: it
 * may reach a client.
 */
void avk_spool_append(avk_spool_t *spool, const struct avk_spool_entry *entry,
                      avk_spool_done_cb *done, void *opaque);

/** @brief The spool's identity, a UUID in text (owned by the spool). */
const char *avk_spool_instance(avk_spool_t *spool);

/** @brief Entries not yet done, counting appends still queued. */
size_t avk_spool_outstanding(avk_spool_t *spool);

/** @brief The highest send sequence number ever seen by the spool (0 if none). */
uint64_t avk_spool_max_seq(avk_spool_t *spool);

/**
 * @brief The up to max oldest durable entries not yet done, in send order.
 * The entries stay owned by the spool and valid until avk_spool_done() names
 * them; only the thread that drains may call this, _maybe and _done.
 * @returns how many were written to batch.
 */
size_t avk_spool_batch(avk_spool_t *spool, const struct avk_spool_entry **batch, size_t max);

/**
 * @brief Durably records that each entry in batch may be in Kafka, found
 * at partition[i] from offset scan_from[i] on (the reporter: of its
 * receipts topic), before it is produced; partition -1 and scan_from -1
 * record that it is certainly not in Kafka (its transaction was aborted).
 * @returns 0, or -1 with the reason in errstr.
 */
int avk_spool_maybe(avk_spool_t *spool, const struct avk_spool_entry *const *batch,
                    const int32_t *partition, const int64_t *scan_from, size_t cnt, char *errstr,
                    size_t errstr_size);

/**
 * @brief Durably records that the entries are in Kafka and forgets them.
 * @returns 0, or -1 with the reason in errstr.
 */
int avk_spool_done(avk_spool_t *spool, const struct avk_spool_entry *const *batch, size_t cnt,
                   char *errstr, size_t errstr_size);

#endif
