/*
 * avk_aggregate: see aggregate.h.
 *
 * Deviations live in a binary tree (POSIX tsearch) keyed by their 16-byte id,
 * for the lookup when a record arrives, and in an array, for the passes that
 * compute figures. Coded fields are stored as indexes into this file's label
 * tables, found by symbol name - not by the enum's position, so a schema
 * that adds a symbol cannot shift a category into another.
 */
#include "consumer/dashboard/aggregate.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "common/util/calendar.h"
#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/contract/municipality.h"
#include "common/contract/party.h"
#include "common/util/scrub.h"

#define MS_PER_DAY INT64_C(86400000)
#define NONE       INT64_MIN /* a null time */
#define NO_PARTY   0xff      /* not routed yet */
#define FIRST_YEAR 1970      /* reported_at outside these years is not a report of ours */
#define LAST_YEAR  2199
/* Deadlines, and so "answered within the deadline" and days overdue, are avvik's local policy
 * (docs/deadlines.md): the agreement says only "skyndsamt". */
#define DEADLINE_BASIS_LABEL                                                                       \
        "Tidsgränserna är lokal policy, inte avtalets text (avtalet säger skyndsamt)"

struct label {
        const char *code;
        const char *sv;
};

#define CNT(table) (sizeof(table) / sizeof(table[0]))

/* Each table holds its enum's symbols in schema order; an unknown symbol
 * takes the last entry, the schema's default. */
static const struct label categories[] = {
    {"INFORMATION_TRANSFER", "Informationsöverföring"},
    {"DISCHARGE_PLANNING", "Utskrivning och samordnad planering"},
    {"SIP", "SIP"},
    {"MEDICATION", "Läkemedel"},
    {"PHYSICIAN_AVAILABILITY", "Läkartillgänglighet"},
    {"ASSISTIVE_DEVICES", "Hjälpmedel"},
    {"CARE_AND_TREATMENT", "Vård och behandling"},
    {"SELF_CARE", "Egenvård"},
    {"ORAL_HEALTH", "Munhälsa"},
    {"MENTAL_HEALTH_ADDICTION", "Psykisk hälsa och beroende"},
    {"CHILDREN_YOUNG_PEOPLE", "Barn och unga"},
    {"OTHER", "Övrigt"},
};
static const struct label harms[] = {
    {"NONE", "Ingen skada"},       {"LOW", "Lindrig skada"}, {"MODERATE", "Måttlig skada"},
    {"SEVERE", "Allvarlig skada"}, {"DEATH", "Dödsfall"},    {"UNKNOWN", "Okänd"},
};
static const struct label subregions[] = {
    {"FYRBODAL", "Fyrbodal"},   {"GOTEBORGSREGIONEN", "Göteborgsregionen"},
    {"SKARABORG", "Skaraborg"}, {"SJUHARAD", "Södra Älvsborg"},
    {"UNKNOWN", "Okänd"},
};
static const struct label event_classes[] = {
    {"INCIDENT_WITH_HARM", "Händelse med skada"},
    {"INCIDENT_WITHOUT_HARM", "Händelse utan skada"},
    {"NEAR_MISS", "Tillbud"},
    {"UNSAFE_CONDITION", "Risk"},
    {"UNKNOWN", "Okänd"},
};
/* The process's order, which breaks ties of state_at; UNKNOWN (a symbol of a
 * newer writer) ranks first so that it never hides a known state. */
static const struct label states[] = {
    {"UNKNOWN", "Okänd"},
    {"REPORTED", "Rapporterad"},
    {"ROUTED", "Skickad"},
    {"ACKNOWLEDGED", "Kvitterad"},
    {"ANSWERED", "Besvarad"},
    {"REJECTED", "Fel mottagare – skickas vidare"},
    {"DISPUTED", "Svar ifrågasatt"},
    {"ESCALATED", "Eskalerad"},
    {"CLOSED", "Avslutad"},
};
enum { STATE_UNKNOWN, STATE_ANSWERED = 4, STATE_REJECTED = 5, STATE_CLOSED = 8 };
/* Index 0 is "never escalated" (a null step); the ladder follows, in the words of the texts each
 * step rests on (docs/escalation.md). */
static const struct label steps[] = {
    {"NONE", "Ej eskalerad"},
    {"MANAGER", "Chef närmast patienten"},
    {"MANAGERS_MANAGER", "Chef över chef"},
    {"LOCAL_FORUM", "Partsgemensamt forum, lokalt eller delregionalt"},
    {"COUNTY_FORUM", "Partsgemensamt forum på länsnivå"},
    {"COURT", "Allmän domstol"},
    {"UNKNOWN", "Okänt steg"},
};

/* The sub-agreements as the 2027 agreement's titles name them (docs/agreement.md), the agreement
 * itself, the county-wide routines and a local one. */
static const struct label agreements[] = {
    {"HEALTH_CARE_AGREEMENT", "Hälso- och sjukvårdsavtalet"},
    {"DISCHARGE_PAYMENT", "In- och utskrivning från sluten vård"},
    {"PHYSICIAN_RESPONSIBILITY", "Regionens läkaransvar i kommunal primärvård"},
    {"MENTAL_HEALTH_ADDICTION", "Psykisk funktionsnedsättning, skadligt bruk och beroende"},
    {"ORAL_HEALTH", "Munhälsa – uppsökande och nödvändig tandvård"},
    {"LOCAL_ROUTINE", "Lokal rutin"},
    {"COUNTY_GUIDELINE", "Länsgemensamma riktlinjer och rutiner"},
    {"UNKNOWN", "Okänd"},
};
/* Index 0 is a record written before the care setting was carried (null). */
static const struct label care_settings[] = {
    {"NOT_RECORDED", "Ej registrerad"},
    {"INPATIENT", "Slutenvård"},
    {"OUTPATIENT_CLINIC", "Specialiserad öppenvård"},
    {"REGION_PRIMARY_CARE", "Vårdcentral (regionens primärvård)"},
    {"EMERGENCY", "Akutmottagning"},
    {"PREHOSPITAL", "Ambulanssjukvård"},
    {"HOME_HEALTH_CARE", "Kommunal hemsjukvård"},
    {"SPECIALISED_HOME_CARE", "Specialiserad vård i hemmet"},
    {"SPECIAL_HOUSING", "Särskilt boende"},
    {"HOUSING_WITH_SPECIAL_SERVICE", "Bostad med särskild service"},
    {"DAY_ACTIVITY", "Daglig verksamhet"},
    {"SHORT_TERM_STAY", "Korttidsvistelse"},
    {"HVB_HOME", "HVB-hem"},
    {"DENTAL", "Tandvård"},
    {"REGION_PRIMARY_CARE_HOME_VISIT", "Hembesök från vårdcentral"},
    {"ORDINARY_HOUSING", "Ordinärt boende utan kommunal hemsjukvård"},
    {"OTHER", "Annan vårdform"},
};

/* Response-time buckets: upper bounds in days; the last bucket is open. */
static const int bucket_days[] = {1, 3, 7, 14, 30, 60, 90};
/* Labels of the buckets, in days (the charts say "dagar"). */
static const char *const bucket_labels[] = {"< 1",   "1–3",   "3–7",   "7–14",
                                            "14–30", "30–60", "60–90", "≥ 90"};
#define BUCKET_CNT (CNT(bucket_days) + 1)

enum kept { KEPT_NULL, KEPT_NO, KEPT_YES };

/* What a deviation's records have shown of its routing, whichever is its
 * current view: a record older than the view still adds to it. */
enum routing_seen {
        SEEN_DECISION = 1,       /* a record with a routing_decision */
        SEEN_WRONG_RECEIVER = 2, /* a hop above 0, or the state REJECTED */
        SEEN_TRIAGE = 4,         /* a routing decided TRIAGE */
        SEEN_MANUAL = 8,         /* a routing decided MANUAL (the county's manual triage) */
};

struct deviation {
        unsigned char id[16]; /* first: the tree's key */
        int64_t state_at, reported_at;
        int64_t ack_deadline_at, answer_deadline_at; /* NONE when null */
        int64_t time_to_ack_ms, time_to_answer_ms;   /* NONE when null */
        int16_t year;                                /* of reported_at, Swedish time */
        uint8_t month;                               /* 1..12 */
        uint8_t state, category, harm, subregion, event_class, step, kept;
        uint8_t agreement, care_setting, seen; /* seen: enum routing_seen */
        uint8_t reporter, receiver; /* party numbers (common/contract/party.h), receiver NO_PARTY */
        uint8_t municipality;       /* index into avk_municipalities */
        uint8_t lex_maria, child;
        char *excerpt; /* NULL when the record has no description */
};

struct avk_aggregate {
        void *root; /* tsearch tree of struct deviation * */
        struct deviation **all;
        size_t cnt, cap;
};

static int by_id(const void *a, const void *b)
{
        return memcmp(a, b, 16); /* the id is each struct's first member */
}

avk_aggregate_t *avk_aggregate_new(void)
{
        return calloc(1, sizeof(avk_aggregate_t));
}

void avk_aggregate_destroy(avk_aggregate_t *agg)
{
        if (!agg)
                return;
        for (size_t i = 0; i < agg->cnt; i++) {
                tdelete(agg->all[i], &agg->root, by_id);
                free(agg->all[i]->excerpt);
                free(agg->all[i]);
        }
        free(agg->all);
        free(agg);
}

size_t avk_aggregate_size(const avk_aggregate_t *agg)
{
        return agg->cnt;
}

/* ---- reading a record ---------------------------------------------------- */

static size_t label_index(const struct label *table, size_t cnt, const char *code)
{
        for (size_t i = 0; i < cnt; i++) {
                if (strcmp(table[i].code, code) == 0)
                        return i;
        }
        return cnt - 1;
}

/* The field, with a nullable union resolved to its branch; 0 when the field
 * is null, 1 when present, -1 when the record lacks it. */
static int field(avro_value_t *record, const char *name, avro_value_t *out)
{
        avro_value_t f;
        int disc;
        if (avro_value_get_by_name(record, name, &f, NULL) != 0)
                return -1;
        if (avro_value_get_type(&f) != AVRO_UNION) {
                *out = f;
                return 1;
        }
        if (avro_value_get_discriminant(&f, &disc) != 0 ||
            avro_value_get_current_branch(&f, out) != 0)
                return -1;
        return avro_value_get_type(out) == AVRO_NULL ? 0 : 1;
}

static int get_string(avro_value_t *record, const char *name, const char **s)
{
        avro_value_t f;
        size_t size;
        int rc = field(record, name, &f);
        if (rc == 1 && avro_value_get_string(&f, s, &size) != 0)
                return -1;
        return rc;
}

static int get_long(avro_value_t *record, const char *name, int64_t *v)
{
        avro_value_t f;
        int rc = field(record, name, &f);
        *v = NONE;
        if (rc == 1 && avro_value_get_long(&f, v) != 0)
                return -1;
        return rc;
}

/* An enum field's symbol (*code unchanged when null). */
static int get_symbol(avro_value_t *record, const char *name, const char **code)
{
        avro_value_t f;
        int symbol;
        int rc = field(record, name, &f);
        if (rc == 1 && (avro_value_get_enum(&f, &symbol) != 0 ||
                        !(*code = avro_schema_enum_get(avro_value_get_schema(&f), symbol))))
                return -1;
        return rc;
}

static int get_enum(avro_value_t *record, const char *name, const struct label *table, size_t cnt,
                    size_t *index)
{
        const char *code = NULL;
        int rc = get_symbol(record, name, &code);
        if (rc == 1)
                *index = label_index(table, cnt, code);
        return rc;
}

/* What record shows of the deviation's routing (enum routing_seen). */
static int routing_seen(avro_value_t *record, size_t state, uint8_t *seen)
{
        const char *decision = NULL;
        int32_t hop = 0;
        avro_value_t f;
        int has_hop = field(record, "hop", &f); /* null for REPORTED */
        if (has_hop < 0 || (has_hop == 1 && avro_value_get_int(&f, &hop) != 0) ||
            get_symbol(record, "routing_decision", &decision) < 0)
                return -1;
        *seen = 0;
        if (decision)
                *seen |= SEEN_DECISION | (strcmp(decision, "TRIAGE") == 0 ? SEEN_TRIAGE : 0) |
                         (strcmp(decision, "MANUAL") == 0 ? SEEN_MANUAL : 0);
        if (hop > 0 || state == STATE_REJECTED)
                *seen |= SEEN_WRONG_RECEIVER;
        return 0;
}

static int get_bool(avro_value_t *record, const char *name, int *v)
{
        avro_value_t f;
        int rc = field(record, name, &f);
        *v = 0;
        if (rc == 1 && avro_value_get_boolean(&f, v) != 0)
                return -1;
        return rc;
}

/* description_scrubbed scrubbed once more - the dashboard must show no
 * identity even from a record an older or faulty forwarder wrote - then cut
 * to AVK_AGGREGATE_EXCERPT_MAX bytes at a character boundary, with line
 * breaks and other controls as spaces and "…" when cut. */
static char *excerpt_of(const char *description)
{
        static const char ellipsis[] = "…";
        size_t len;
        char *text = avk_scrub_text(description, strlen(description), &len, NULL);
        if (!text)
                return NULL;
        size_t keep = len;
        if (keep > AVK_AGGREGATE_EXCERPT_MAX) {
                keep = AVK_AGGREGATE_EXCERPT_MAX - (sizeof(ellipsis) - 1);
                while (keep > 0 && ((unsigned char)text[keep] & 0xc0) == 0x80)
                        keep--; /* a continuation byte: the character starts before */
        }
        char *out = malloc(keep + sizeof(ellipsis));
        if (out) {
                for (size_t i = 0; i < keep; i++)
                        out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? ' ' : text[i];
                strcpy(out + keep, keep < len ? ellipsis : "");
        }
        free(text);
        return out;
}

/* Fills d from record (d->excerpt set last, so nothing leaks on an error). */
static int read_record(avro_value_t *record, struct deviation *d, char *errstr, size_t errstr_size)
{
        const char *id = NULL, *municipality = NULL, *reporter = NULL, *receiver = NULL,
                   *description = NULL;
        size_t state = 0, category = 0, harm = 0, subregion = 0, event_class = 0, step = 0;
        size_t agreement = CNT(agreements) - 1, care_setting = 0;
        int kept = 0, lex_maria = 0, child = 0;
        int has_kept = 0, has_step = 0, has_care_setting = 0;
        const char *bad = NULL;
        avro_value_t flags;
        uuid_t uuid;
        char reason[256] = "missing or of another type";
        if (get_string(record, "deviation_id", &id) != 1 || uuid_parse(id, uuid) != 0)
                bad = "deviation_id", snprintf(reason, sizeof(reason), "not a UUID");
        else if (get_enum(record, "state", states, CNT(states), &state) != 1)
                bad = "state";
        else if (get_long(record, "state_at", &d->state_at) != 1)
                bad = "state_at";
        else if (get_long(record, "reported_at", &d->reported_at) != 1)
                bad = "reported_at";
        else if (get_enum(record, "category", categories, CNT(categories), &category) != 1)
                bad = "category";
        else if (get_enum(record, "harm_level", harms, CNT(harms), &harm) != 1)
                bad = "harm_level";
        else if (get_enum(record, "subregion", subregions, CNT(subregions), &subregion) != 1)
                bad = "subregion";
        else if (get_enum(record, "event_class", event_classes, CNT(event_classes), &event_class) !=
                 1)
                bad = "event_class";
        else if (get_string(record, "municipality_code", &municipality) != 1)
                bad = "municipality_code";
        else if (get_string(record, "reporter_party", &reporter) != 1)
                bad = "reporter_party";
        else if (get_string(record, "receiver_party", &receiver) < 0)
                bad = "receiver_party";
        else if (get_long(record, "time_to_acknowledge_ms", &d->time_to_ack_ms) < 0)
                bad = "time_to_acknowledge_ms";
        else if (get_long(record, "time_to_answer_ms", &d->time_to_answer_ms) < 0)
                bad = "time_to_answer_ms";
        else if (get_long(record, "acknowledge_deadline_at", &d->ack_deadline_at) < 0)
                bad = "acknowledge_deadline_at";
        else if (get_long(record, "answer_deadline_at", &d->answer_deadline_at) < 0)
                bad = "answer_deadline_at";
        else if ((has_kept = get_bool(record, "deadline_kept", &kept)) < 0)
                bad = "deadline_kept";
        else if ((has_step = get_enum(record, "highest_escalation_step", steps + 1, CNT(steps) - 1,
                                      &step)) < 0)
                bad = "highest_escalation_step";
        else if (field(record, "flags", &flags) != 1 ||
                 get_bool(&flags, "possible_lex_maria", &lex_maria) != 1 ||
                 get_bool(&flags, "child_involved", &child) != 1)
                bad = "flags";
        else if (get_string(record, "description_scrubbed", &description) < 0)
                bad = "description_scrubbed";
        else if (get_enum(record, "agreement", agreements, CNT(agreements), &agreement) < 0)
                bad = "agreement";
        else if ((has_care_setting = get_enum(record, "care_setting", care_settings + 1,
                                              CNT(care_settings) - 1, &care_setting)) < 0)
                bad = "care_setting";
        else if (routing_seen(record, state, &d->seen) != 0)
                bad = "hop or routing_decision";
        if (bad) {
                snprintf(errstr, errstr_size, "%s: %s", bad, reason);
                return -1;
        }
        const struct avk_municipality *m = avk_municipality_find(municipality);
        int reporter_party = avk_party_parse(reporter, reason, sizeof(reason));
        int receiver_party = receiver ? avk_party_parse(receiver, reason, sizeof(reason)) : 0;
        int year, month, day;
        avk_calendar_local_date(d->reported_at, &year, &month, &day);
        if (!m) {
                snprintf(errstr, errstr_size,
                         "municipality_code: not one of the county's 49 municipalities");
                return -1;
        }
        if (reporter_party < 0 || receiver_party < 0) {
                snprintf(errstr, errstr_size, "%s: %s",
                         reporter_party < 0 ? "reporter_party" : "receiver_party", reason);
                return -1;
        }
        if (year < FIRST_YEAR || year > LAST_YEAR) {
                snprintf(errstr, errstr_size, "reported_at: outside the years %d to %d", FIRST_YEAR,
                         LAST_YEAR);
                return -1;
        }
        memcpy(d->id, uuid, 16);
        d->year = (int16_t)year;
        d->month = (uint8_t)month;
        d->state = (uint8_t)state;
        d->category = (uint8_t)category;
        d->harm = (uint8_t)harm;
        d->subregion = (uint8_t)subregion;
        d->event_class = (uint8_t)event_class;
        d->step = (uint8_t)(has_step == 1 ? step + 1 : 0);
        d->kept = has_kept == 1 ? (kept ? KEPT_YES : KEPT_NO) : KEPT_NULL;
        d->agreement = (uint8_t)agreement;
        d->care_setting = (uint8_t)(has_care_setting == 1 ? care_setting + 1 : 0);
        d->reporter = (uint8_t)reporter_party;
        d->receiver = receiver ? (uint8_t)receiver_party : NO_PARTY;
        d->municipality = (uint8_t)(m - avk_municipalities);
        d->lex_maria = (uint8_t)lex_maria;
        d->child = (uint8_t)child;
        d->excerpt = NULL;
        if (description && *description && !(d->excerpt = excerpt_of(description))) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

/* Whether view a comes after view b in the deviation's history. */
static int is_newer_or_same(const struct deviation *a, const struct deviation *b)
{
        return a->state_at > b->state_at || (a->state_at == b->state_at && a->state >= b->state);
}

int avk_aggregate_add(avk_aggregate_t *agg, avro_value_t *record, char *errstr, size_t errstr_size)
{
        struct deviation d;
        if (read_record(record, &d, errstr, errstr_size) != 0)
                return -1;
        struct deviation **held = tfind(&d, &agg->root, by_id);
        if (held) {
                if (!is_newer_or_same(&d, *held)) {
                        (*held)->seen |= d.seen;
                        free(d.excerpt);
                        return 0;
                }
                d.seen |= (*held)->seen;
                free((*held)->excerpt);
                **held = d;
                return 1;
        }
        if (agg->cnt == agg->cap) {
                size_t cap = agg->cap ? 2 * agg->cap : 1024;
                struct deviation **all = realloc(agg->all, cap * sizeof(*all));
                if (!all)
                        goto oom;
                agg->all = all;
                agg->cap = cap;
        }
        struct deviation *copy = malloc(sizeof(*copy));
        if (!copy)
                goto oom;
        *copy = d;
        if (!tsearch(copy, &agg->root, by_id)) {
                free(copy);
                goto oom;
        }
        agg->all[agg->cnt++] = copy;
        return 1;
oom:
        free(d.excerpt);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
}

/* ---- figures ------------------------------------------------------------ */

static const char *party_name(int party)
{
        return party == AVK_PARTY_VGR ? "Västra Götalandsregionen"
                                      : avk_municipalities[party - 1].name;
}

static json_t *time_json(int64_t ms)
{
        char buf[32];
        if (ms == NONE)
                return json_null();
        avk_json_format_time(ms, buf);
        return json_string(buf);
}

/* The instant as the page and the report show it: Swedish time, "2027-03-28 03:30". */
static json_t *local_time_json(int64_t ms)
{
        char buf[AVK_CALENDAR_LOCAL_SIZE];
        if (ms == NONE)
                return json_null();
        avk_calendar_format_local(ms, buf);
        return json_string(buf);
}

/* Open: neither answered (now or before) nor closed. */
static int is_open(const struct deviation *d)
{
        return d->state != STATE_ANSWERED && d->state != STATE_CLOSED &&
               d->time_to_answer_ms == NONE && d->kept == KEPT_NULL;
}

/* The deadline an open deviation is overdue against at now (the earliest
 * passed: the acknowledgement's while unacknowledged, else the answer's);
 * NONE when it is not overdue. *answer says which. */
static int64_t overdue_since(const struct deviation *d, int64_t now_ms, int *answer)
{
        int64_t since = NONE;
        if (!is_open(d))
                return NONE;
        if (d->time_to_ack_ms == NONE && d->ack_deadline_at != NONE && d->ack_deadline_at < now_ms)
                since = d->ack_deadline_at, *answer = 0;
        if (d->answer_deadline_at != NONE && d->answer_deadline_at < now_ms &&
            (since == NONE || d->answer_deadline_at < since))
                since = d->answer_deadline_at, *answer = 1;
        return since;
}

/* Swedish calendar days from the date of since to the date of now. */
static int64_t calendar_days(int64_t since_ms, int64_t now_ms)
{
        int y1, m1, d1, y2, m2, d2;
        avk_calendar_local_date(since_ms, &y1, &m1, &d1);
        avk_calendar_local_date(now_ms, &y2, &m2, &d2);
        /* Noon to noon: the offsets differ by an hour at most, which the
         * rounding absorbs. */
        int64_t diff = avk_calendar_from_local(y2, m2, d2, 12, 0, 0) -
                       avk_calendar_from_local(y1, m1, d1, 12, 0, 0);
        return (diff + MS_PER_DAY / 2) / MS_PER_DAY;
}

/* [{"code", "label", "count"}] of a label table. */
static json_t *counts_json(const struct label *table, size_t cnt, const size_t *counts)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < cnt; i++)
                json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "code", table[i].code, "label",
                                                   table[i].sv, "count", (json_int_t)counts[i]));
        return a;
}

static int cmp_int64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Nearest rank: the smallest value at or above p percent of the values. */
static int64_t percentile(const int64_t *sorted, size_t n, unsigned p)
{
        size_t rank = (p * n + 99) / 100;
        return sorted[rank > 0 ? rank - 1 : 0];
}

static json_t *days_json(int64_t ms)
{
        return json_real((double)((ms * 10 + MS_PER_DAY / 2) / MS_PER_DAY) / 10.0);
}

/* {"count", "p50_ms", "p90_ms", "p50_days", "p90_days", "buckets"} of n
 * durations (sorted here). */
static json_t *distribution_json(int64_t *ms, size_t n)
{
        size_t counts[BUCKET_CNT] = {0};
        qsort(ms, n, sizeof(*ms), cmp_int64);
        for (size_t i = 0; i < n; i++) {
                size_t b = 0;
                while (b < CNT(bucket_days) && ms[i] >= bucket_days[b] * MS_PER_DAY)
                        b++;
                counts[b]++;
        }
        json_t *buckets = json_array();
        for (size_t b = 0; buckets && b < BUCKET_CNT; b++) {
                json_t *bucket =
                    json_pack("{s:s,s:i,s:I}", "label", bucket_labels[b], "from_days",
                              b ? bucket_days[b - 1] : 0, "count", (json_int_t)counts[b]);
                if (bucket && b < CNT(bucket_days))
                        json_object_set_new(bucket, "to_days", json_integer(bucket_days[b]));
                json_array_append_new(buckets, bucket);
        }
        json_t *out = json_pack("{s:I,s:o}", "count", (json_int_t)n, "buckets", buckets);
        if (out && n > 0) {
                json_object_set_new(out, "p50_ms", json_integer(percentile(ms, n, 50)));
                json_object_set_new(out, "p90_ms", json_integer(percentile(ms, n, 90)));
                json_object_set_new(out, "p50_days", days_json(percentile(ms, n, 50)));
                json_object_set_new(out, "p90_days", days_json(percentile(ms, n, 90)));
        } else if (out) {
                json_object_set_new(out, "p50_ms", json_null());
                json_object_set_new(out, "p90_ms", json_null());
                json_object_set_new(out, "p50_days", json_null());
                json_object_set_new(out, "p90_days", json_null());
        }
        return out;
}

/* Sets "<role>_party" (the code, null when not routed) and "<role>_name". */
static json_t *party_json(json_t *obj, const char *role, int party)
{
        char code_key[32], name_key[32];
        snprintf(code_key, sizeof(code_key), "%s_party", role);
        snprintf(name_key, sizeof(name_key), "%s_name", role);
        int routed = party != NO_PARTY;
        json_object_set_new(obj, code_key,
                            routed ? json_string(avk_party_code(party)) : json_null());
        json_object_set_new(obj, name_key, json_string(routed ? party_name(party) : "Ej skickad"));
        return obj;
}

/* What the lists show of a deviation: no patient data, by construction. */
static json_t *deviation_json(const struct deviation *d)
{
        char id[AVK_IDENT_UUID_SIZE];
        uuid_unparse_lower(d->id, id);
        json_t *o = json_pack(
            "{s:s,s:o,s:s,s:s,s:s,s:s,s:s,s:s}", "deviation_id", id, "reported_at",
            time_json(d->reported_at), "category", categories[d->category].code, "category_label",
            categories[d->category].sv, "harm_level", harms[d->harm].code, "harm_label",
            harms[d->harm].sv, "state", states[d->state].code, "state_label", states[d->state].sv);
        if (!o)
                return NULL;
        json_object_set_new(o, "reported_at_local", local_time_json(d->reported_at));
        party_json(o, "reporter", d->reporter);
        party_json(o, "receiver", d->receiver);
        json_object_set_new(o, "municipality",
                            json_string(avk_municipalities[d->municipality].name));
        json_object_set_new(o, "excerpt", d->excerpt ? json_string(d->excerpt) : json_null());
        return o;
}

struct pair_count {
        int reporter, receiver;
        size_t count;
};

static int by_count_then_parties(const void *a, const void *b)
{
        const struct pair_count *x = a, *y = b;
        if (x->count != y->count)
                return x->count < y->count ? 1 : -1;
        if (x->reporter != y->reporter)
                return x->reporter - y->reporter;
        return x->receiver - y->receiver;
}

static int by_reported_desc(const void *a, const void *b)
{
        const struct deviation *x = *(struct deviation *const *)a,
                               *y = *(struct deviation *const *)b;
        if (x->reported_at != y->reported_at)
                return x->reported_at < y->reported_at ? 1 : -1;
        return memcmp(x->id, y->id, 16);
}

/* Party pairs: reporter 0..49 by receiver 0..49 or not routed (50). */
#define PARTIES (AVK_PARTY_MAX + 1)

/* How clear the allocation was for a group of deviations (a month, a
 * sub-agreement, a care setting): of those routed, how many met a wrong
 * receiver; of those whose routing decision is known, how many went to triage
 * and to the county's manual triage. */
struct clarity {
        size_t count, routed, wrong_receiver, decided, triage, manual;
};

static void clarity_add(struct clarity *c, const struct deviation *d)
{
        c->count++;
        if (d->receiver != NO_PARTY) {
                c->routed++;
                c->wrong_receiver += (d->seen & SEEN_WRONG_RECEIVER) != 0;
        }
        if (d->seen & SEEN_DECISION) {
                c->decided++;
                c->triage += (d->seen & SEEN_TRIAGE) != 0;
                c->manual += (d->seen & SEEN_MANUAL) != 0;
        }
}

static json_t *share_json(size_t part, size_t whole)
{
        return whole ? json_real((double)part / (double)whole) : json_null();
}

/* Sets the counts and rates of c in obj; returns obj. */
static json_t *clarity_json(json_t *obj, const struct clarity *c)
{
        if (!obj)
                return NULL;
        json_object_set_new(obj, "count", json_integer((json_int_t)c->count));
        json_object_set_new(obj, "routed", json_integer((json_int_t)c->routed));
        json_object_set_new(obj, "wrong_receiver", json_integer((json_int_t)c->wrong_receiver));
        json_object_set_new(obj, "wrong_receiver_rate", share_json(c->wrong_receiver, c->routed));
        json_object_set_new(obj, "decided", json_integer((json_int_t)c->decided));
        json_object_set_new(obj, "triage", json_integer((json_int_t)c->triage));
        json_object_set_new(obj, "triage_rate", share_json(c->triage, c->decided));
        json_object_set_new(obj, "manual_triage", json_integer((json_int_t)c->manual));
        json_object_set_new(obj, "manual_triage_rate", share_json(c->manual, c->decided));
        return obj;
}

/* [{"code", "label", counts and rates}] of a label table. */
static json_t *clarity_table_json(const struct label *table, size_t cnt, const struct clarity *rows)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < cnt; i++)
                json_array_append_new(a, clarity_json(json_pack("{s:s,s:s}", "code", table[i].code,
                                                                "label", table[i].sv),
                                                      &rows[i]));
        return a;
}

struct tally {
        size_t total;
        size_t *months;          /* first_month .. last_month */
        struct clarity *clarity; /* of each month, as months */
        struct clarity agreement[CNT(agreements)], care_setting[CNT(care_settings)];
        int first_month, month_cnt;
        size_t category[CNT(categories)], harm[CNT(harms)], subregion[CNT(subregions)];
        size_t event_class[CNT(event_classes)], state[CNT(states)], step[CNT(steps)];
        size_t category_harm[CNT(categories)][CNT(harms)];
        size_t pairs[PARTIES][PARTIES + 1];
        size_t municipality[256];
        size_t kept_known, kept, lex_maria, child, overdue;
        int64_t *ack, *answer;
        size_t ack_cnt, answer_cnt;
        struct deviation **latest;
        size_t latest_cnt;
};

static int month_number(int year, int month)
{
        return year * 12 + month - 1;
}

static int included(const struct deviation *d, int year)
{
        return year == 0 || d->year == year;
}

/* One pass: every count of the deviations of year. -1 when out of memory. */
static int tally(const avk_aggregate_t *agg, int year, int64_t now_ms, struct tally *t)
{
        int lo = year ? month_number(year, 1) : 0, hi = year ? month_number(year, 12) : -1;
        for (size_t i = 0; !year && i < agg->cnt; i++) {
                int m = month_number(agg->all[i]->year, agg->all[i]->month);
                lo = i == 0 || m < lo ? m : lo;
                hi = i == 0 || m > hi ? m : hi;
        }
        t->first_month = lo;
        t->month_cnt = hi - lo + 1;
        t->months = calloc((size_t)t->month_cnt + 1, sizeof(*t->months));
        t->clarity = calloc((size_t)t->month_cnt + 1, sizeof(*t->clarity));
        t->ack = malloc((agg->cnt + 1) * sizeof(*t->ack));
        t->answer = malloc((agg->cnt + 1) * sizeof(*t->answer));
        t->latest = malloc((agg->cnt + 1) * sizeof(*t->latest));
        if (!t->months || !t->clarity || !t->ack || !t->answer || !t->latest)
                return -1;
        for (size_t i = 0; i < agg->cnt; i++) {
                const struct deviation *d = agg->all[i];
                if (!included(d, year))
                        continue;
                int answer;
                t->total++;
                t->months[month_number(d->year, d->month) - lo]++;
                clarity_add(&t->clarity[month_number(d->year, d->month) - lo], d);
                clarity_add(&t->agreement[d->agreement], d);
                clarity_add(&t->care_setting[d->care_setting], d);
                t->category[d->category]++;
                t->harm[d->harm]++;
                t->subregion[d->subregion]++;
                t->event_class[d->event_class]++;
                t->state[d->state]++;
                t->step[d->step]++;
                t->category_harm[d->category][d->harm]++;
                t->pairs[d->reporter][d->receiver == NO_PARTY ? PARTIES : d->receiver]++;
                t->municipality[d->municipality]++;
                t->kept_known += d->kept != KEPT_NULL;
                t->kept += d->kept == KEPT_YES;
                t->lex_maria += d->lex_maria;
                t->child += d->child;
                t->overdue += overdue_since(d, now_ms, &answer) != NONE;
                if (d->time_to_ack_ms != NONE)
                        t->ack[t->ack_cnt++] = d->time_to_ack_ms;
                if (d->time_to_answer_ms != NONE)
                        t->answer[t->answer_cnt++] = d->time_to_answer_ms;
                t->latest[t->latest_cnt++] = agg->all[i];
        }
        return 0;
}

/* The months' counts, or with rates their clarity too. */
static json_t *months_json(const struct tally *t, int rates)
{
        json_t *a = json_array();
        for (int i = 0; a && i < t->month_cnt; i++) {
                int m = t->first_month + i;
                char label[16];
                snprintf(label, sizeof(label), "%04d-%02d", m / 12, m % 12 + 1);
                json_t *month =
                    json_pack("{s:s,s:I}", "month", label, "count", (json_int_t)t->months[i]);
                json_array_append_new(a, rates ? clarity_json(month, &t->clarity[i]) : month);
        }
        return a;
}

static json_t *pairs_json(const struct tally *t)
{
        struct pair_count *pc = malloc(sizeof(struct pair_count) * PARTIES * (PARTIES + 1));
        size_t n = 0;
        if (!pc)
                return NULL;
        for (int r = 0; r < PARTIES; r++) {
                for (int s = 0; s <= PARTIES; s++) {
                        if (t->pairs[r][s])
                                pc[n++] = (struct pair_count){r, s, t->pairs[r][s]};
                }
        }
        qsort(pc, n, sizeof(*pc), by_count_then_parties);
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) {
                json_t *o = json_pack("{s:I}", "count", (json_int_t)pc[i].count);
                party_json(o, "reporter", pc[i].reporter);
                party_json(o, "receiver", pc[i].receiver == PARTIES ? NO_PARTY : pc[i].receiver);
                json_array_append_new(a, o);
        }
        free(pc);
        return a;
}

static json_t *municipalities_json(const struct tally *t)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < avk_municipality_cnt; i++) {
                if (t->municipality[i])
                        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I}", "code",
                                                           avk_municipalities[i].code, "name",
                                                           avk_municipalities[i].name, "subregion",
                                                           avk_municipalities[i].subregion, "count",
                                                           (json_int_t)t->municipality[i]));
        }
        return a;
}

static json_t *category_harm_json(const struct tally *t)
{
        json_t *a = json_array();
        for (size_t c = 0; a && c < CNT(categories); c++) {
                json_t *counts = json_array();
                for (size_t h = 0; counts && h < CNT(harms); h++)
                        json_array_append_new(counts,
                                              json_integer((json_int_t)t->category_harm[c][h]));
                json_array_append_new(a, json_pack("{s:s,s:s,s:o}", "code", categories[c].code,
                                                   "label", categories[c].sv, "counts", counts));
        }
        return a;
}

static json_t *years_json(const avk_aggregate_t *agg)
{
        char seen[LAST_YEAR - FIRST_YEAR + 1] = {0};
        for (size_t i = 0; i < agg->cnt; i++)
                seen[agg->all[i]->year - FIRST_YEAR] = 1;
        json_t *a = json_array();
        for (int y = 0; a && y <= LAST_YEAR - FIRST_YEAR; y++) {
                if (seen[y])
                        json_array_append_new(a, json_integer(FIRST_YEAR + y));
        }
        return a;
}

static json_t *latest_json(struct tally *t)
{
        qsort(t->latest, t->latest_cnt, sizeof(*t->latest), by_reported_desc);
        json_t *a = json_array();
        for (size_t i = 0; a && i < t->latest_cnt && i < AVK_AGGREGATE_LATEST_CNT; i++)
                json_array_append_new(a, deviation_json(t->latest[i]));
        return a;
}

json_t *avk_aggregate_summary(const avk_aggregate_t *agg, int year, int64_t now_ms)
{
        struct tally *t = calloc(1, sizeof(*t)); /* about 30 kB: not on the stack */
        json_t *out = NULL;
        if (!t || tally(agg, year, now_ms, t) != 0)
                goto out;
        json_t *deadline =
            json_pack("{s:I,s:I,s:o,s:s,s:s}", "answered_with_deadline", (json_int_t)t->kept_known,
                      "kept", (json_int_t)t->kept, "share", share_json(t->kept, t->kept_known),
                      "basis", "LOCAL_POLICY", "basis_label", DEADLINE_BASIS_LABEL);
        out = json_pack(
            "{s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o},s:o,s:{s:o,s:I},"
            "s:{s:I,s:I},s:I,s:o}",
            "year", year ? json_integer(year) : json_null(), "years", years_json(agg), "now",
            time_json(now_ms), "total", (json_int_t)t->total, "by_month", months_json(t, 0),
            "by_category", counts_json(categories, CNT(categories), t->category), "by_harm",
            counts_json(harms, CNT(harms), t->harm), "by_subregion",
            counts_json(subregions, CNT(subregions), t->subregion), "by_event_class",
            counts_json(event_classes, CNT(event_classes), t->event_class), "by_state",
            counts_json(states, CNT(states), t->state), "by_party_pair", pairs_json(t),
            "by_municipality", municipalities_json(t), "by_category_harm", category_harm_json(t),
            "response_time", "acknowledge", distribution_json(t->ack, t->ack_cnt), "answer",
            distribution_json(t->answer, t->answer_cnt), "deadline", deadline, "escalation",
            "by_step", counts_json(steps, CNT(steps), t->step), "escalated",
            (json_int_t)(t->total - t->step[0]), "flags", "possible_lex_maria",
            (json_int_t)t->lex_maria, "child_involved", (json_int_t)t->child, "overdue",
            (json_int_t)t->overdue, "latest", latest_json(t));
        if (out && (json_object_set_new(out, "now_local", local_time_json(now_ms)) != 0 ||
                    json_object_set_new(
                        out, "by_agreement",
                        clarity_table_json(agreements, CNT(agreements), t->agreement)) != 0 ||
                    json_object_set_new(out, "by_care_setting",
                                        clarity_table_json(care_settings, CNT(care_settings),
                                                           t->care_setting)) != 0 ||
                    json_object_set_new(out, "clarity_by_month", months_json(t, 1)) != 0)) {
                json_decref(out);
                out = NULL;
        }
out:
        if (t) {
                free(t->months);
                free(t->clarity);
                free(t->ack);
                free(t->answer);
                free(t->latest);
        }
        free(t);
        return out;
}

struct overdue {
        const struct deviation *d;
        int64_t since;
        int answer;
};

static int by_days_desc(const void *a, const void *b)
{
        const struct overdue *x = a, *y = b;
        if (x->since != y->since)
                return x->since > y->since ? 1 : -1;
        return memcmp(x->d->id, y->d->id, 16);
}

json_t *avk_aggregate_overdue(const avk_aggregate_t *agg, int64_t now_ms, size_t limit)
{
        struct overdue *o = malloc((agg->cnt + 1) * sizeof(*o));
        json_t *out = NULL, *items = NULL;
        size_t n = 0;
        if (!o)
                return NULL;
        for (size_t i = 0; i < agg->cnt; i++) {
                int answer = 0;
                int64_t since = overdue_since(agg->all[i], now_ms, &answer);
                if (since != NONE)
                        o[n++] = (struct overdue){agg->all[i], since, answer};
        }
        /* Earliest deadline first is most days overdue first. */
        qsort(o, n, sizeof(*o), by_days_desc);
        if (!(items = json_array()))
                goto out;
        for (size_t i = 0; i < n && i < limit; i++) {
                json_t *item = deviation_json(o[i].d);
                if (!item)
                        goto out;
                json_object_set_new(item, "deadline",
                                    json_string(o[i].answer ? "ANSWER" : "ACKNOWLEDGE"));
                json_object_set_new(item, "deadline_label",
                                    json_string(o[i].answer ? "Svar" : "Kvittens"));
                json_object_set_new(item, "deadline_at", time_json(o[i].since));
                json_object_set_new(item, "deadline_at_local", local_time_json(o[i].since));
                json_object_set_new(item, "days_overdue",
                                    json_integer(calendar_days(o[i].since, now_ms)));
                json_array_append_new(items, item);
        }
        out = json_pack("{s:o,s:o,s:I,s:O}", "now", time_json(now_ms), "now_local",
                        local_time_json(now_ms), "total", (json_int_t)n, "items", items);
out:
        json_decref(items);
        free(o);
        return out;
}
