/*
 * avk_pseudonym: see pseudonym.h.
 */
#include "consumer/analyse/pseudonym.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/contract/ident.h"

#define KEY_CONFIG "analysis.pseudonym.key.file"

struct avk_pseudonym {
        struct avk_secret key;
};

avk_pseudonym_t *avk_pseudonym_new(const char *key_file, char *errstr, size_t errstr_size)
{
        avk_pseudonym_t *p = calloc(1, sizeof(*p));
        if (!p) {
                snprintf(errstr, errstr_size, "%s: out of memory", KEY_CONFIG);
                return NULL;
        }
        if (avk_secret_read(key_file, KEY_CONFIG, AVK_PSEUDONYM_KEY_MIN, &p->key, errstr,
                            errstr_size) != 0) {
                free(p);
                return NULL;
        }
        return p;
}

void avk_pseudonym_destroy(avk_pseudonym_t *p)
{
        if (!p)
                return;
        avk_secret_wipe(&p->key);
        free(p);
}

const char *avk_pseudonym_age_group(int birth_ymd, int64_t at_ms)
{
        time_t t = (time_t)(at_ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return "UNKNOWN";
        int at_ymd = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
        if (birth_ymd > at_ymd)
                return "UNKNOWN";
        /* Whole years: the birthday (MMDD) reached this year or not. */
        int age = at_ymd / 10000 - birth_ymd / 10000 - (at_ymd % 10000 < birth_ymd % 10000);
        return age < 18   ? "AGE_0_17"
               : age < 65 ? "AGE_18_64"
               : age < 80 ? "AGE_65_79"
                          : "AGE_80_PLUS";
}

/* A symbol of the report, or UNKNOWN when it is absent. */
static const char *or_unknown(const char *symbol)
{
        return symbol && *symbol ? symbol : "UNKNOWN";
}

int avk_pseudonym_patient(const avk_pseudonym_t *p, const char *personal_id, const char *age_group,
                          const char *sex, int64_t occurred_at_ms,
                          struct avk_pseudonym_patient *out)
{
        memset(out, 0, sizeof(*out));
        out->age_group = or_unknown(age_group);
        out->sex = or_unknown(sex);
        if (!personal_id)
                return 0;
        struct avk_personal_id id;
        char reason[128];
        char digits[16];
        size_t n = 0;
        int rc;
        if (avk_ident_personal_id(personal_id, avk_ident_today_ymd(), &id, reason,
                                  sizeof(reason)) == 0) {
                rc = avk_secret_hmac_hex(p->key.bytes, p->key.len, id.normalized, 12,
                                         out->pseudonym);
                out->age_group = avk_pseudonym_age_group(
                    id.birth_year * 10000 + id.birth_month * 100 + id.birth_day, occurred_at_ms);
                out->sex = id.sex == AVK_SEX_MALE ? "MALE" : "FEMALE";
        } else {
                /* Intake validates identities; one that slipped past (an older
                 * writer) is still hidden, over its digits. */
                for (const char *c = personal_id; *c && n < sizeof(digits); c++)
                        if (*c >= '0' && *c <= '9')
                                digits[n++] = *c;
                rc = avk_secret_hmac_hex(p->key.bytes, p->key.len, digits, n, out->pseudonym);
                out->identity_unparsed = 1;
        }
        explicit_bzero(&id, sizeof(id));
        explicit_bzero(digits, sizeof(digits));
        if (rc != 0)
                return -1;
        out->has_pseudonym = 1;
        return 0;
}
