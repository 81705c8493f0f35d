/*
 * avk_pseudonym: what the analysis stream says about a patient instead of
 * who the patient is (docs/domain.md, "Patient data"): a keyed pseudonym, the
 * age band at the time of the event and the sex.
 *
 * The pseudonym is the lower-case hex HMAC-SHA256 of the normalised 12-digit
 * identity (YYYYMMDDNNNC) under a key read from a file
 * (analysis.pseudonym.key.file). The same patient gets the same pseudonym in
 * every record under one key, so analysis can follow a patient's deviations
 * without knowing who it is; without the key nobody can test a guessed
 * personnummer against it (the numbers are few enough to try them all, so an
 * unkeyed hash would protect nothing). The key is wiped when the handle is
 * destroyed and never logged. Key rotation: docs/analysis.md.
 */
#ifndef AVK_PSEUDONYM_H
#define AVK_PSEUDONYM_H

#include <stddef.h>
#include <stdint.h>

#include "common/util/secret.h"

/** Fewest bytes of key accepted: the size of the hash. */
#define AVK_PSEUDONYM_KEY_MIN 32

typedef struct avk_pseudonym avk_pseudonym_t;

/**
 * @brief Reads the key. The file must be a regular file of at least
 * AVK_PSEUDONYM_KEY_MIN bytes that neither group nor others may access.
 * @returns NULL with "analysis.pseudonym.key.file: <path>: <reason>" in errstr.
 */
avk_pseudonym_t *avk_pseudonym_new(const char *key_file, char *errstr, size_t errstr_size);

/** @brief Wipes the key and frees the handle. NULL is a no-op. */
void avk_pseudonym_destroy(avk_pseudonym_t *pseudonym);

/** A patient as the analysis stream carries it. Symbols are static strings. */
struct avk_pseudonym_patient {
        int has_pseudonym;                   /**< 0 when no identity was given */
        char pseudonym[AVK_SECRET_HEX_SIZE]; /**< hex HMAC-SHA256; "" without identity */
        const char *age_group;               /**< AgeGroup symbol, e.g. "AGE_65_79" */
        const char *sex;                     /**< Sex symbol: "FEMALE", "MALE", "UNKNOWN" */
        int identity_unparsed;               /**< an identity was given but did not parse */
};

/**
 * @brief The patient of a deviation.
 * @param personal_id the report's patient.personal_id, NULL when absent.
 * @param age_group, sex the report's own patient.age_group and patient.sex
 * symbols (NULL: no patient), used when the identity cannot tell.
 * @param occurred_at_ms when the event happened: the age is the age then.
 *
 * With a personnummer or samordningsnummer that parses, the age band comes
 * from its birth date and the sex from its ninth digit (odd = male); one that
 * does not parse is still pseudonymised (over its digits), never forwarded,
 * and the report's age group and sex are used.
 * @returns 0, or -1 when OpenSSL fails.
 */
int avk_pseudonym_patient(const avk_pseudonym_t *pseudonym, const char *personal_id,
                          const char *age_group, const char *sex, int64_t occurred_at_ms,
                          struct avk_pseudonym_patient *out);

/**
 * @brief The AgeGroup symbol for someone born on birth_ymd (YYYYMMDD) at the
 * UTC date of at_ms: AGE_0_17, AGE_18_64, AGE_65_79, AGE_80_PLUS, or UNKNOWN
 * when the birth date lies after it.
 */
const char *avk_pseudonym_age_group(int birth_ymd, int64_t at_ms);

#endif
