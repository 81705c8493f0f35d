/*
 * avk_directory: see directory.h.
 *
 * The loader walks the JSON once, keeping the JSON path of where it is (the
 * same avk_path the Avro JSON codec uses), and records an error for every
 * problem instead of stopping at the first. Checks that need the whole file -
 * duplicate HSA-ids, an inbox topic shared by two parties (or by a party and the
 * triage desk), missing municipalities, the triage desk's HSA-id being no unit's -
 * run after the walk.
 *
 * Strings point into the parsed JSON, which the directory keeps; contacts,
 * deliveries and webhooks are allocated one by one and listed in `owned` so
 * that one loop frees them. Lookups go through two sorted pointer arrays
 * (parties by code, units by HSA-id) and bsearch.
 */
#include "common/contract/directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/contract/ident.h"
#include "common/contract/json.h"
#include "common/util/jsondoc.h"
#include "common/util/secret.h"
#include "common/contract/municipality.h"

/* VGR's organisation number as it starts VGR's HSA-ids (docs/domain.md, "Identifiers"). */
#define VGR_HSA_PREFIX "SE2321000131-"
#define WHERE_SIZE     160

/* NULL-terminated for avk_jsondoc_check_keys(). */
static const char *const ladder_keys[AVK_DIRECTORY_LADDER_STEPS + 1] = {
    "manager", "senior_manager", "local_forum", "county_forum", NULL};
static const char *const ladder_meaning[AVK_DIRECTORY_LADDER_STEPS] = {
    "step 1, the manager closest to the patient",
    "step 2, that manager's manager",
    "step 3, the joint local or sub-regional forum",
    "step 4, the county-level joint forum",
};

static const char *const root_keys[] = {"about", "triage_desk", "parties", "subregion_forums",
                                        NULL};
#define SUBREGION_MAX 8 /* the county has four; room for a change of the division */
static const char *const party_keys[] = {"party",    "name",  "coordinator", "ladder",
                                         "delivery", "units", NULL};
static const char *const unit_keys[] = {"hsa_id", "name",     "coordinator",
                                        "ladder", "delivery", NULL};
static const char *const contact_keys[] = {"name", "email", "phone", NULL};
static const char *const delivery_keys[] = {"webhook", "inbox_topic", NULL};
static const char *const webhook_keys[] = {"url", "secret_file", "allow_http", "patient_identity",
                                           NULL};
static const char *const desk_keys[] = {"hsa_id",   "name", "record_party", "coordinator", "ladder",
                                        "delivery", NULL};
/* Whose inbox the desk's is, for check_inboxes(): its own, no party's. */
static const struct avk_directory_party desk_owner = {.code = "triage_desk"};

struct avk_directory {
        json_t *root;
        struct avk_directory_party *parties; /* file order */
        size_t party_cnt;
        const struct avk_directory_party **by_code;
        size_t by_code_cnt;
        const struct avk_directory_unit **by_hsa_id;
        size_t unit_cnt;
        struct avk_directory_desk triage_desk;
        struct {
                const char *subregion; /* as data/municipalities.csv names it */
                const struct avk_directory_contact *forum;
        } subregion_forums[SUBREGION_MAX];
        size_t subregion_forum_cnt;
        void **owned; /* contacts, deliveries, webhooks, unit arrays, paths */
        size_t owned_cnt, owned_cap;
        void **webhooks; /* struct avk_directory_webhook *, to wipe their secrets */
        size_t webhook_cnt, webhook_cap;
};

/* An inbox topic named in the file, to find one shared by two parties. */
struct inbox {
        const char *topic;
        const struct avk_directory_party *party;
        char where[WHERE_SIZE];
};

struct loader {
        avk_directory_t *dir;
        struct avk_jsondoc doc;
        char *base; /* the file's directory with '/', "" for the working directory */
        int oom;
        struct inbox *inboxes;
        size_t inbox_cnt, inbox_cap;
};

static void out_of_memory(struct loader *l)
{
        if (!l->oom)
                avk_jsondoc_fail(&l->doc, "out of memory");
        l->oom = 1;
}

/* ---- ownership ---- */

static int push_ptr(void ***arr, size_t *cnt, size_t *cap, void *p)
{
        if (*cnt == *cap) {
                size_t n = *cap ? *cap * 2 : 32;
                void **grown = realloc(*arr, n * sizeof(*grown));

                if (grown == NULL)
                        return -1;
                *arr = grown;
                *cap = n;
        }
        (*arr)[(*cnt)++] = p;
        return 0;
}

/* Zeroed memory that the directory frees on destroy; NULL (and an error) when out of memory. */
static void *own(struct loader *l, size_t size)
{
        void *p = calloc(1, size);

        if (p == NULL || push_ptr(&l->dir->owned, &l->dir->owned_cnt, &l->dir->owned_cap, p) != 0) {
                free(p);
                out_of_memory(l);
                return NULL;
        }
        return p;
}

/* ---- values ---- */

/* One '@' between a non-empty local part and a domain with an inner dot; no spaces. */
static int is_email(const char *s)
{
        const char *at = strchr(s, '@');
        const char *dot;

        if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
                return 0;
        for (const char *p = s; *p; p++) {
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return 0;
        }
        dot = strchr(at + 1, '.');
        return dot != NULL && dot != at + 1 && dot[1] != '\0' && s[strlen(s) - 1] != '.';
}

/* Digits, spaces, '-', and a leading '+'; at least 6 digits. */
static int is_phone(const char *s)
{
        int digits = 0;

        for (const char *p = s; *p; p++) {
                if (*p >= '0' && *p <= '9')
                        digits++;
                else if (!(*p == ' ' || *p == '-' || (*p == '+' && p == s)))
                        return 0;
        }
        return digits >= 6;
}

/* ---- parts ---- */

/* The contact at the current path (value is obj's member). NULL after an error. */
static const struct avk_directory_contact *parse_contact(struct loader *l, json_t *value)
{
        struct avk_directory_contact *c;
        size_t errors_before = avk_errors_total(l->doc.errs);

        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                return NULL;
        avk_jsondoc_check_keys(&l->doc, value, contact_keys);
        c = own(l, sizeof(*c));
        if (c == NULL)
                return NULL;
        c->name = avk_jsondoc_string(&l->doc, value, "name", 1);
        c->email = avk_jsondoc_string(&l->doc, value, "email", 1);
        c->phone = avk_jsondoc_string(&l->doc, value, "phone", 0);
        if (c->email && !is_email(c->email))
                avk_jsondoc_fail_key(&l->doc, "email", "\"%s\" is not an e-mail address", c->email);
        if (c->phone && !is_phone(c->phone))
                avk_jsondoc_fail_key(
                    &l->doc, "phone",
                    "\"%s\" is not a phone number (digits, spaces, '-', a leading '+')", c->phone);
        return avk_errors_total(l->doc.errs) == errors_before ? c : NULL;
}

/* The contact at obj.key; NULL when absent (an error when required) or invalid. */
static const struct avk_directory_contact *get_contact(struct loader *l, json_t *obj,
                                                       const char *key, int required)
{
        json_t *value = json_object_get(obj, key);
        const struct avk_directory_contact *c;

        if (value == NULL) {
                if (required)
                        avk_jsondoc_fail_key(&l->doc, key, "is required");
                return NULL;
        }
        avk_path_push(&l->doc.path, key, 0);
        c = parse_contact(l, value);
        avk_path_pop(&l->doc.path);
        return c;
}

/*
 * Fills ladder from obj.ladder. A party must name every step; a unit names
 * any, and takes the others from inherit (its party's ladder).
 */
static void parse_ladder(struct loader *l, json_t *obj, const struct avk_directory_contact **ladder,
                         const struct avk_directory_contact *const *inherit)
{
        json_t *value = json_object_get(obj, "ladder");

        for (int i = 0; i < AVK_DIRECTORY_LADDER_STEPS; i++)
                ladder[i] = inherit ? inherit[i] : NULL;
        if (value == NULL) {
                if (inherit == NULL)
                        avk_jsondoc_fail_key(
                            &l->doc, "ladder",
                            "is required: the four escalation steps manager, senior_manager, "
                            "local_forum, county_forum");
                return;
        }
        avk_path_push(&l->doc.path, "ladder", 0);
        if (avk_jsondoc_expect_object(&l->doc, value) == 0) {
                avk_jsondoc_check_keys(&l->doc, value, ladder_keys);
                for (int i = 0; i < AVK_DIRECTORY_LADDER_STEPS; i++) {
                        if (json_object_get(value, ladder_keys[i]) == NULL) {
                                if (inherit == NULL)
                                        avk_jsondoc_fail_key(&l->doc, ladder_keys[i],
                                                             "is required (%s)", ladder_meaning[i]);
                                continue;
                        }
                        ladder[i] = get_contact(l, value, ladder_keys[i], 1);
                }
        }
        avk_path_pop(&l->doc.path);
}

/* "dir/" of "dir/file.json"; "" for "file.json". NULL when out of memory. */
static char *base_dir(const char *file)
{
        const char *slash = strrchr(file, '/');
        size_t len = slash ? (size_t)(slash - file) + 1 : 0;
        char *base = malloc(len + 1);

        if (base == NULL)
                return NULL;
        memcpy(base, file, len);
        base[len] = '\0';
        return base;
}

/*
 * Reads the secret at path into wh through avk_secret_read(), the one reader
 * of key files (owner-only mode, size, final line end). Errors name the path
 * and the problem, never the bytes.
 */
static void read_secret(struct loader *l, const char *path, struct avk_directory_webhook *wh)
{
        struct avk_secret secret;
        char reason[512];

        /* "secret_file" leads the reason; the key's path in the document precedes it. */
        if (avk_secret_read(path, "secret_file", AVK_DIRECTORY_SECRET_MIN, &secret, reason,
                            sizeof(reason)) != 0) {
                avk_jsondoc_fail(&l->doc, "%s", reason);
                return;
        }
        if (push_ptr(&l->dir->webhooks, &l->dir->webhook_cnt, &l->dir->webhook_cap, wh) != 0) {
                avk_secret_wipe(&secret);
                out_of_memory(l);
                return;
        }
        wh->secret = secret.bytes;
        wh->secret_len = secret.len;
}

/* The webhook at the current path. NULL after an error. */
static const struct avk_directory_webhook *parse_webhook(struct loader *l, json_t *value)
{
        struct avk_directory_webhook *wh;
        const char *url, *secret_file;
        int allow_http;
        char reason[200];

        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                return NULL;
        avk_jsondoc_check_keys(&l->doc, value, webhook_keys);
        wh = own(l, sizeof(*wh));
        if (wh == NULL)
                return NULL;
        allow_http = avk_jsondoc_bool(&l->doc, value, "allow_http", 0);
        wh->patient_identity = avk_jsondoc_bool(&l->doc, value, "patient_identity", 0);
        url = avk_jsondoc_string(&l->doc, value, "url", 1);
        if (url && avk_ident_http_url(url, allow_http, reason, sizeof(reason)) != 0) {
                int is_http = strncmp(url, "http://", 7) == 0;

                avk_jsondoc_fail_key(&l->doc, "url", "%s%s", reason,
                                     is_http && !allow_http
                                         ? "; set \"allow_http\": true to allow a test endpoint"
                                         : "");
                url = NULL;
        }
        if (url && wh->patient_identity && strncmp(url, "http://", 7) == 0) {
                avk_jsondoc_fail_key(&l->doc, "patient_identity",
                                     "patient identity is only sent over https://");
                url = NULL;
        }
        wh->url = url;
        secret_file = avk_jsondoc_string(&l->doc, value, "secret_file", 1);
        if (secret_file != NULL) {
                size_t n = strlen(l->base) + strlen(secret_file) + 1;
                char *resolved = own(l, n);

                if (resolved == NULL)
                        return NULL;
                snprintf(resolved, n, "%s%s", secret_file[0] == '/' ? "" : l->base, secret_file);
                wh->secret_file = resolved;
                read_secret(l, resolved, wh);
        }
        return wh->url && wh->secret ? wh : NULL;
}

static void remember_inbox(struct loader *l, const char *topic,
                           const struct avk_directory_party *party)
{
        struct inbox *in;

        if (l->inbox_cnt == l->inbox_cap) {
                size_t n = l->inbox_cap ? l->inbox_cap * 2 : 64;
                struct inbox *grown = realloc(l->inboxes, n * sizeof(*grown));

                if (grown == NULL) {
                        out_of_memory(l);
                        return;
                }
                l->inboxes = grown;
                l->inbox_cap = n;
        }
        in = &l->inboxes[l->inbox_cnt++];
        in->topic = topic;
        in->party = party;
        avk_path_push(&l->doc.path, "inbox_topic", 0);
        avk_path_format(&l->doc.path, in->where, sizeof(in->where));
        avk_path_pop(&l->doc.path);
}

/* The delivery at obj.delivery; NULL when absent (an error when required) or invalid. */
static const struct avk_directory_delivery *
get_delivery(struct loader *l, json_t *obj, const struct avk_directory_party *party, int required)
{
        json_t *value = json_object_get(obj, "delivery");
        struct avk_directory_delivery *d = NULL;
        size_t errors_before = avk_errors_total(l->doc.errs);
        json_t *webhook;

        if (value == NULL) {
                if (required)
                        avk_jsondoc_fail_key(&l->doc, "delivery",
                                             "is required: a webhook and/or an inbox_topic");
                return NULL;
        }
        avk_path_push(&l->doc.path, "delivery", 0);
        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                goto out;
        avk_jsondoc_check_keys(&l->doc, value, delivery_keys);
        d = own(l, sizeof(*d));
        if (d == NULL)
                goto out;
        webhook = json_object_get(value, "webhook");
        if (webhook != NULL) {
                avk_path_push(&l->doc.path, "webhook", 0);
                d->webhook = parse_webhook(l, webhook);
                avk_path_pop(&l->doc.path);
        }
        d->inbox_topic = avk_jsondoc_string(&l->doc, value, "inbox_topic", 0);
        if (d->inbox_topic != NULL) {
                char reason[200];

                if (avk_ident_kafka_topic(d->inbox_topic, reason, sizeof(reason)) != 0) {
                        avk_jsondoc_fail_key(&l->doc, "inbox_topic", "%s", reason);
                        d->inbox_topic = NULL;
                } else {
                        remember_inbox(l, d->inbox_topic, party);
                }
        }
        if (webhook == NULL && json_object_get(value, "inbox_topic") == NULL)
                avk_jsondoc_fail(&l->doc,
                                 "names no channel: expected a webhook and/or an inbox_topic");
out:
        avk_path_pop(&l->doc.path);
        return avk_errors_total(l->doc.errs) == errors_before ? d : NULL;
}

static void parse_unit(struct loader *l, json_t *value, const struct avk_directory_party *party,
                       struct avk_directory_unit *u)
{
        const char *hsa_id;
        char reason[200];

        u->party = party;
        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                return;
        avk_jsondoc_check_keys(&l->doc, value, unit_keys);
        hsa_id = avk_jsondoc_string(&l->doc, value, "hsa_id", 1);
        if (hsa_id && avk_ident_hsa_id(hsa_id, reason, sizeof(reason)) != 0) {
                avk_jsondoc_fail_key(&l->doc, "hsa_id", "%s", reason);
                hsa_id = NULL;
        }
        /* Private providers under VGR have their own organisation numbers, but a
         * municipality's unit never has VGR's: that is a unit filed under the wrong party. */
        if (hsa_id && party->code && strcmp(party->code, "VGR") != 0 &&
            strncmp(hsa_id, VGR_HSA_PREFIX, strlen(VGR_HSA_PREFIX)) == 0) {
                avk_jsondoc_fail_key(
                    &l->doc, "hsa_id",
                    "is an HSA-id of VGR (organisation number 2321000131), but the unit is "
                    "listed under %s",
                    party->code);
                hsa_id = NULL;
        }
        u->hsa_id = hsa_id;
        u->name = avk_jsondoc_string(&l->doc, value, "name", 1);

        u->receiver.coordinator = get_contact(l, value, "coordinator", 0);
        if (u->receiver.coordinator == NULL && json_object_get(value, "coordinator") == NULL)
                u->receiver.coordinator = party->receiver.coordinator;
        parse_ladder(l, value, u->receiver.ladder, party->receiver.ladder);
        u->receiver.delivery = get_delivery(l, value, party, 0);
        if (u->receiver.delivery == NULL && json_object_get(value, "delivery") == NULL)
                u->receiver.delivery = party->receiver.delivery;
}

static void parse_party(struct loader *l, json_t *value, size_t index)
{
        struct avk_directory_party *p = &l->dir->parties[index];
        const struct avk_municipality *m = NULL;
        const char *code;
        json_t *units;
        char reason[200];

        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                return;
        avk_jsondoc_check_keys(&l->doc, value, party_keys);
        code = avk_jsondoc_string(&l->doc, value, "party", 1);
        if (code && avk_ident_party(code, reason, sizeof(reason)) != 0) {
                avk_jsondoc_fail_key(&l->doc, "party", "%s", reason);
                code = NULL;
        }
        for (size_t i = 0; code && i < index; i++) {
                if (l->dir->parties[i].code && strcmp(l->dir->parties[i].code, code) == 0) {
                        avk_jsondoc_fail_key(&l->doc, "party",
                                             "\"%s\" is already listed at parties[%zu]", code, i);
                        code = NULL;
                }
        }
        p->code = code;
        if (code)
                m = avk_municipality_find(code);
        p->subregion = m ? m->subregion : NULL;
        p->name = avk_jsondoc_string(&l->doc, value, "name", 1);
        if (p->name && m && strcmp(p->name, m->name) != 0)
                avk_jsondoc_fail_key(&l->doc, "name", "\"%s\" is not the name of %s (%s)", p->name,
                                     m->code, m->name);

        p->receiver.coordinator = get_contact(l, value, "coordinator", 1);
        parse_ladder(l, value, p->receiver.ladder, NULL);
        p->receiver.delivery = get_delivery(l, value, p, 1);

        units = json_object_get(value, "units");
        if (units == NULL)
                return;
        avk_path_push(&l->doc.path, "units", 0);
        if (!json_is_array(units)) {
                avk_jsondoc_fail(&l->doc, "expected an array, got %s", avk_json_type_name(units));
        } else if (json_array_size(units) > 0) {
                struct avk_directory_unit *arr =
                    own(l, json_array_size(units) * sizeof(struct avk_directory_unit));

                if (arr != NULL) {
                        for (size_t i = 0; i < json_array_size(units); i++) {
                                avk_path_push(&l->doc.path, NULL, (long)i);
                                parse_unit(l, json_array_get(units, i), p, &arr[i]);
                                avk_path_pop(&l->doc.path);
                        }
                        p->units = arr;
                        p->unit_cnt = json_array_size(units);
                }
        }
        avk_path_pop(&l->doc.path);
}

/* ---- whole-file checks ---- */

/* Sets path to parties[i].units[j] of unit u. */
static void unit_path(const struct avk_directory_party *parties, const struct avk_directory_unit *u,
                      struct avk_path *path)
{
        avk_path_init(path);
        avk_path_push(path, "parties", 0);
        avk_path_push(path, NULL, (long)(u->party - parties));
        avk_path_push(path, "units", 0);
        avk_path_push(path, NULL, (long)(u - u->party->units));
}

/* By HSA-id, then file order, so that of two equal ids the first listed comes first. */
static int unit_cmp(const void *a, const void *b)
{
        const struct avk_directory_unit *ua = *(const struct avk_directory_unit *const *)a;
        const struct avk_directory_unit *ub = *(const struct avk_directory_unit *const *)b;
        int c = strcmp(ua->hsa_id, ub->hsa_id);

        if (c != 0)
                return c;
        if (ua->party != ub->party)
                return ua->party < ub->party ? -1 : 1;
        return ua < ub ? -1 : ua > ub;
}

static int unit_key_cmp(const void *key, const void *elem)
{
        return strcmp(key, (*(const struct avk_directory_unit *const *)elem)->hsa_id);
}

static int party_cmp(const void *a, const void *b)
{
        return strcmp((*(const struct avk_directory_party *const *)a)->code,
                      (*(const struct avk_directory_party *const *)b)->code);
}

static int party_key_cmp(const void *key, const void *elem)
{
        return strcmp(key, (*(const struct avk_directory_party *const *)elem)->code);
}

static void index_parties(struct loader *l)
{
        avk_directory_t *dir = l->dir;

        dir->by_code = calloc(dir->party_cnt + 1, sizeof(*dir->by_code));
        if (dir->by_code == NULL) {
                out_of_memory(l);
                return;
        }
        for (size_t i = 0; i < dir->party_cnt; i++) {
                if (dir->parties[i].code)
                        dir->by_code[dir->by_code_cnt++] = &dir->parties[i];
        }
        qsort(dir->by_code, dir->by_code_cnt, sizeof(*dir->by_code), party_cmp);
}

/* Indexes the units by HSA-id, reporting every id listed twice. */
static void index_units(struct loader *l)
{
        avk_directory_t *dir = l->dir;
        size_t total = 0;

        for (size_t i = 0; i < dir->party_cnt; i++)
                total += dir->parties[i].unit_cnt;
        dir->by_hsa_id = calloc(total + 1, sizeof(*dir->by_hsa_id));
        if (dir->by_hsa_id == NULL) {
                out_of_memory(l);
                return;
        }
        for (size_t i = 0; i < dir->party_cnt; i++) {
                for (size_t j = 0; j < dir->parties[i].unit_cnt; j++) {
                        if (dir->parties[i].units[j].hsa_id)
                                dir->by_hsa_id[dir->unit_cnt++] = &dir->parties[i].units[j];
                }
        }
        qsort(dir->by_hsa_id, dir->unit_cnt, sizeof(*dir->by_hsa_id), unit_cmp);
        for (size_t i = 1; i < dir->unit_cnt; i++) {
                const struct avk_directory_unit *first = dir->by_hsa_id[i - 1];
                const struct avk_directory_unit *again = dir->by_hsa_id[i];
                struct avk_path first_path;
                char first_str[WHERE_SIZE];

                if (strcmp(first->hsa_id, again->hsa_id) != 0)
                        continue;
                unit_path(dir->parties, first, &first_path);
                avk_path_format(&first_path, first_str, sizeof(first_str));
                unit_path(dir->parties, again, &l->doc.path);
                avk_jsondoc_fail_key(&l->doc, "hsa_id", "%s is already the HSA-id of %s",
                                     again->hsa_id, first_str);
        }
        avk_path_init(&l->doc.path);
}

/* A party's inbox is its own: a topic shared by two parties would show one the other's deviations.
 */
static void check_inboxes(struct loader *l)
{
        for (size_t i = 1; i < l->inbox_cnt; i++) {
                for (size_t j = 0; j < i; j++) {
                        const struct inbox *a = &l->inboxes[j], *b = &l->inboxes[i];

                        if (strcmp(a->topic, b->topic) != 0 || a->party == b->party ||
                            a->party->code == NULL || b->party->code == NULL)
                                continue;
                        avk_errors_add(l->doc.errs, NULL,
                                       "%s: %s: \"%s\" is already the inbox of party %s (%s); "
                                       "a party's inbox topic must be its own",
                                       l->doc.file, b->where, b->topic, a->party->code, a->where);
                        break;
                }
        }
}

static void check_complete(struct loader *l)
{
        char missing[AVK_ERROR_MSG_SIZE];
        size_t used = 0, cnt = 0;

        avk_path_push(&l->doc.path, "parties", 0);
        if (avk_directory_party(l->dir, "VGR") == NULL)
                avk_jsondoc_fail(
                    &l->doc, "VGR is missing (load with AVK_DIRECTORY_ALLOW_PARTIAL for a partial "
                             "directory)");
        missing[0] = '\0';
        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                if (avk_directory_party(l->dir, avk_municipalities[i].code) != NULL)
                        continue;
                cnt++;
                if (used < sizeof(missing))
                        used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s",
                                                 used ? ", " : "", avk_municipalities[i].code);
        }
        if (cnt > 0)
                avk_jsondoc_fail(&l->doc,
                                 "%zu of the %zu municipalities are missing: %s (load with "
                                 "AVK_DIRECTORY_ALLOW_PARTIAL for a partial directory)",
                                 cnt, avk_municipality_cnt, missing);
        avk_path_pop(&l->doc.path);
}

/* The county's manual triage desk: an entry of its own, not a unit of a party (directory.h). */
static void parse_triage_desk(struct loader *l, json_t *root)
{
        json_t *value = json_object_get(root, "triage_desk");
        struct avk_directory_desk *desk = &l->dir->triage_desk;
        char reason[200];

        if (value == NULL) {
                avk_jsondoc_fail_key(&l->doc, "triage_desk",
                                     "is required: the county's manual triage desk, which sorts "
                                     "by hand what routing cannot settle");
                return;
        }
        avk_path_push(&l->doc.path, "triage_desk", 0);
        if (avk_jsondoc_expect_object(&l->doc, value) != 0)
                goto out;
        avk_jsondoc_check_keys(&l->doc, value, desk_keys);
        desk->hsa_id = avk_jsondoc_string(&l->doc, value, "hsa_id", 1);
        if (desk->hsa_id && avk_ident_hsa_id(desk->hsa_id, reason, sizeof(reason)) != 0)
                avk_jsondoc_fail_key(&l->doc, "hsa_id", "%s", reason);
        else if (desk->hsa_id && avk_directory_unit(l->dir, desk->hsa_id) != NULL)
                avk_jsondoc_fail_key(&l->doc, "hsa_id",
                                     "%s is a unit of party %s; the desk is a joint function, "
                                     "no party's unit",
                                     desk->hsa_id,
                                     avk_directory_unit(l->dir, desk->hsa_id)->party->code);
        desk->name = avk_jsondoc_string(&l->doc, value, "name", 1);
        desk->record_party = avk_jsondoc_string(&l->doc, value, "record_party", 1);
        if (desk->record_party && avk_directory_party(l->dir, desk->record_party) == NULL)
                avk_jsondoc_fail_key(&l->doc, "record_party", "%s is not a party of the directory",
                                     desk->record_party);
        desk->receiver.coordinator = get_contact(l, value, "coordinator", 1);
        parse_ladder(l, value, desk->receiver.ladder, NULL);
        desk->receiver.delivery = get_delivery(l, value, &desk_owner, 1);
out:
        avk_path_pop(&l->doc.path);
}

/* A sub-region some municipality of the compiled-in table belongs to. */
static int is_subregion(const char *name)
{
        for (size_t i = 0; i < avk_municipality_cnt; i++) {
                if (strcmp(avk_municipalities[i].subregion, name) == 0)
                        return 1;
        }
        return 0;
}

/* "subregion_forums": {"<sub-region>": contact, ...}, optional. */
static void parse_subregion_forums(struct loader *l, json_t *root)
{
        json_t *value = json_object_get(root, "subregion_forums"), *contact;
        const char *name;

        if (value == NULL)
                return;
        avk_path_push(&l->doc.path, "subregion_forums", 0);
        if (avk_jsondoc_expect_object(&l->doc, value) == 0) {
                json_object_foreach(value, name, contact)
                {
                        if (!is_subregion(name)) {
                                avk_jsondoc_fail_key(&l->doc, name,
                                                     "no municipality of data/municipalities.csv "
                                                     "belongs to this sub-region");
                                continue;
                        }
                        if (l->dir->subregion_forum_cnt == SUBREGION_MAX) {
                                avk_jsondoc_fail_key(&l->doc, name, "more than %d sub-regions",
                                                     SUBREGION_MAX);
                                break;
                        }
                        const struct avk_directory_contact *forum = get_contact(l, value, name, 1);
                        if (forum) {
                                size_t i = l->dir->subregion_forum_cnt++;
                                l->dir->subregion_forums[i].subregion = name;
                                l->dir->subregion_forums[i].forum = forum;
                        }
                }
        }
        avk_path_pop(&l->doc.path);
}

/* ---- load ---- */

avk_directory_t *avk_directory_load(const char *path, unsigned flags, struct avk_errors *errs)
{
        struct loader l = {0};
        size_t errors_before = avk_errors_total(errs);
        json_t *parties;

        avk_jsondoc_init(&l.doc, path, errs);
        l.dir = calloc(1, sizeof(*l.dir));
        l.base = base_dir(path);
        if (l.dir == NULL || l.base == NULL) {
                avk_errors_add(errs, path, "out of memory");
                goto out;
        }
        l.dir->root = avk_jsondoc_load(&l.doc);
        if (l.dir->root == NULL || avk_jsondoc_expect_object(&l.doc, l.dir->root) != 0)
                goto out;
        avk_jsondoc_check_keys(&l.doc, l.dir->root, root_keys);
        avk_jsondoc_string(&l.doc, l.dir->root, "about", 0);

        parties = json_object_get(l.dir->root, "parties");
        avk_path_push(&l.doc.path, "parties", 0);
        if (parties == NULL) {
                avk_jsondoc_fail(&l.doc, "is required: VGR and the county's municipalities");
        } else if (!json_is_array(parties) || json_array_size(parties) == 0) {
                avk_jsondoc_fail(&l.doc, "expected a non-empty array, got %s",
                                 avk_json_type_name(parties));
        } else {
                l.dir->party_cnt = json_array_size(parties);
                l.dir->parties = calloc(l.dir->party_cnt, sizeof(*l.dir->parties));
                if (l.dir->parties == NULL) {
                        out_of_memory(&l);
                        goto out;
                }
                for (size_t i = 0; i < l.dir->party_cnt && !l.oom; i++) {
                        avk_path_push(&l.doc.path, NULL, (long)i);
                        parse_party(&l, json_array_get(parties, i), i);
                        avk_path_pop(&l.doc.path);
                }
        }
        avk_path_pop(&l.doc.path);
        if (l.oom)
                goto out;

        index_parties(&l);
        index_units(&l);
        parse_triage_desk(&l, l.dir->root);
        check_inboxes(&l);
        if (!(flags & AVK_DIRECTORY_ALLOW_PARTIAL))
                check_complete(&l);
        parse_subregion_forums(&l, l.dir->root);
out:
        free(l.inboxes);
        free(l.base);
        if (avk_errors_total(errs) != errors_before) {
                avk_directory_destroy(l.dir);
                return NULL;
        }
        return l.dir;
}

void avk_directory_destroy(avk_directory_t *dir)
{
        if (dir == NULL)
                return;
        for (size_t i = 0; i < dir->webhook_cnt; i++) {
                struct avk_directory_webhook *wh = dir->webhooks[i];
                /* read_secret() read it with avk_secret_read(): AVK_SECRET_MAX. */
                struct avk_secret secret = {(unsigned char *)wh->secret, wh->secret_len,
                                            AVK_SECRET_MAX + 1};

                avk_secret_wipe(&secret);
        }
        free(dir->webhooks);
        for (size_t i = 0; i < dir->owned_cnt; i++)
                free(dir->owned[i]);
        free(dir->owned);
        free(dir->by_code);
        free(dir->by_hsa_id);
        free(dir->parties);
        json_decref(dir->root);
        free(dir);
}

/* ---- lookups ---- */

const struct avk_directory_party *avk_directory_party(const avk_directory_t *dir, const char *code)
{
        const struct avk_directory_party **found;

        if (code == NULL || dir->by_code == NULL)
                return NULL;
        found = bsearch(code, dir->by_code, dir->by_code_cnt, sizeof(*dir->by_code), party_key_cmp);
        return found ? *found : NULL;
}

const struct avk_directory_unit *avk_directory_unit(const avk_directory_t *dir, const char *hsa_id)
{
        const struct avk_directory_unit **found;

        if (hsa_id == NULL || dir->by_hsa_id == NULL)
                return NULL;
        found =
            bsearch(hsa_id, dir->by_hsa_id, dir->unit_cnt, sizeof(*dir->by_hsa_id), unit_key_cmp);
        return found ? *found : NULL;
}

size_t avk_directory_party_cnt(const avk_directory_t *dir)
{
        return dir->party_cnt;
}

const struct avk_directory_party *avk_directory_party_at(const avk_directory_t *dir, size_t i)
{
        return i < dir->party_cnt ? &dir->parties[i] : NULL;
}

size_t avk_directory_unit_cnt(const avk_directory_t *dir)
{
        return dir->unit_cnt;
}

const struct avk_directory_desk *avk_directory_triage_desk(const avk_directory_t *dir)
{
        return &dir->triage_desk;
}

const struct avk_directory_receiver *
avk_directory_receiver(const avk_directory_t *dir, const char *party, const char *unit_hsa_id)
{
        const struct avk_directory_unit *u = avk_directory_unit(dir, unit_hsa_id);
        const struct avk_directory_party *p = avk_directory_party(dir, party);

        if (unit_hsa_id != NULL && strcmp(unit_hsa_id, dir->triage_desk.hsa_id) == 0)
                return &dir->triage_desk.receiver;
        return u && p && u->party == p ? &u->receiver : p ? &p->receiver : NULL;
}

const struct avk_directory_contact *
avk_directory_local_forum(const avk_directory_t *dir, const char *party, const char *counterpart)
{
        const struct avk_directory_party *p = avk_directory_party(dir, party);
        const struct avk_directory_party *other = avk_directory_party(dir, counterpart);
        const char *subregion = p && p->subregion           ? p->subregion
                                : other && other->subregion ? other->subregion
                                                            : NULL;

        for (size_t i = 0; subregion && i < dir->subregion_forum_cnt; i++) {
                if (strcmp(dir->subregion_forums[i].subregion, subregion) == 0)
                        return dir->subregion_forums[i].forum;
        }
        return NULL;
}
