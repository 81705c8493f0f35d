/*
 * avk_aggregate: the figures patient-safety teams follow the agreement up
 * with (docs/domain.md, "How a deviation in collaboration is handled", step 5),
 * computed from the analysis stream (topic.analysis, AnalysisRecord).
 *
 * The stream has one record per state change of a deviation. The latest
 * record of a deviation - by state_at, then by the state's place in the
 * process (REPORTED before ROUTED ... before CLOSED; UNKNOWN first) - is its
 * current view, and only current views are counted: a newer record replaces
 * the deviation's contribution, an older one read late changes nothing, a
 * replayed one is the same view again.
 *
 * Per deviation the module keeps its id, times, coded fields and at most
 * AVK_AGGREGATE_EXCERPT_MAX bytes of description_scrubbed (the forwarder's
 * scrubbed text, for the dashboard's lists): about 150 bytes. Figures are
 * computed on demand by one pass over the deviations, so they are always
 * those of the records taken so far.
 *
 * Months and years are those of reported_at in Swedish time; days overdue
 * are Swedish calendar days (common/util/calendar.h).
 *
 * Pure - no Kafka, no clock (now is a parameter) - and not thread-safe: the
 * caller serialises access.
 */
#ifndef AVK_AGGREGATE_H
#define AVK_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

/** Bytes of a deviation's description_scrubbed that are kept (cut at a character). */
#define AVK_AGGREGATE_EXCERPT_MAX 140

/** Deviations in the summary's "latest" list. */
#define AVK_AGGREGATE_LATEST_CNT 10

typedef struct avk_aggregate avk_aggregate_t;

/** @brief An empty aggregate, for avk_aggregate_destroy(). NULL when out of memory. */
avk_aggregate_t *avk_aggregate_new(void);

void avk_aggregate_destroy(avk_aggregate_t *agg);

/**
 * @brief Takes one AnalysisRecord: a value of the built-in schema's class,
 * as avk_codec_decode() fills it.
 * @returns 1 when it became its deviation's current view, 0 when the view
 * held is newer (the record is ignored), -1 with "field: reason" in errstr
 * when the record cannot be used (nothing changes).
 */
int avk_aggregate_add(avk_aggregate_t *agg, avro_value_t *record, char *errstr, size_t errstr_size);

/** @brief Deviations held. */
size_t avk_aggregate_size(const avk_aggregate_t *agg);

/**
 * @brief The figures of the deviations reported in year (Swedish time), or
 * of every deviation when year is 0, as the dashboard and the yearly report
 * read them (docs/dashboard.md, "The figures"): counts per month, category,
 * party pair, sub-region, municipality, harm level, event class and state;
 * category by harm level; time to acknowledge and to answer (buckets in days,
 * p50 and p90); the share answered within the deadline; escalations per
 * highest step; governance flags; how many are overdue at now_ms; the latest
 * reported. Every code comes with its Swedish label.
 * @returns a new reference; NULL when out of memory.
 */
json_t *avk_aggregate_summary(const avk_aggregate_t *agg, int year, int64_t now_ms);

/**
 * @brief The deviations overdue at now_ms - neither answered nor closed, and
 * the answer deadline (or, while unacknowledged, the acknowledgement
 * deadline) passed - most days overdue first: {"now", "total", "items": [{
 * "deviation_id", "reporter_party", "reporter_name", "receiver_party",
 * "receiver_name", "category", "category_label", "deadline" ("ACKNOWLEDGE" or
 * "ANSWER"), "deadline_at", "days_overdue", "state", "state_label",
 * "excerpt"}]}, at most limit items.
 * @returns a new reference; NULL when out of memory.
 */
json_t *avk_aggregate_overdue(const avk_aggregate_t *agg, int64_t now_ms, size_t limit);

#endif
