/*
 * avk_directory: the party directory - VGR and the county's 49
 * municipalities, their units by HSA-id, and for each who receives a
 * deviation (the coordinator), who holds each step of the escalation ladder,
 * and how a deviation is delivered (a signed webhook and/or a Kafka inbox
 * topic of the party's own).
 *
 * The directory is a JSON file (format: docs/routing.md; sample:
 * data/directory.json) validated entirely when it is loaded: every problem is
 * reported at once, each naming the file and the JSON path
 * ("directory.json: parties[3].units[0].hsa_id: ...") or, for a syntax
 * error, the line and column. Webhook secrets are never in the file: it names
 * a secret_file, which the loader reads; no error sentence ever carries a
 * secret's bytes.
 *
 * A unit inherits from its party what it does not name itself: the
 * coordinator, the delivery channels (each as a whole) and each ladder step
 * separately (a unit usually names its own managers and shares the party's
 * forums).
 *
 * A loaded directory is immutable: threads may share it read-only. Every
 * pointer it hands out is owned by it and valid until avk_directory_destroy().
 */
#ifndef AVK_DIRECTORY_H
#define AVK_DIRECTORY_H

#include <stddef.h>

#include "common/util/errors.h"

/** The escalation ladder (eskaleringstrappan), in the order a disagreement climbs it. */
enum avk_directory_ladder_step {
        AVK_DIRECTORY_MANAGER,        /**< 1: the manager closest to the patient */
        AVK_DIRECTORY_SENIOR_MANAGER, /**< 2: that manager's manager */
        AVK_DIRECTORY_LOCAL_FORUM,    /**< 3: the joint local or sub-regional forum */
        AVK_DIRECTORY_COUNTY_FORUM,   /**< 4: the county-level joint forum */
        AVK_DIRECTORY_LADDER_STEPS
};

/** A person or function mailbox. */
struct avk_directory_contact {
        const char *name;  /**< e.g. "Avvikelsesamordnare, Borås Stad" */
        const char *email; /**< where notices go */
        const char *phone; /**< NULL when none is given */
};

/** A webhook: deviations are POSTed to url, signed with HMAC-SHA256 over the body. */
struct avk_directory_webhook {
        const char *url;
        const char *secret_file;     /**< the path the secret was read from (resolved) */
        const unsigned char *secret; /**< the file's bytes, without a final newline; never log */
        size_t secret_len;           /**< at least AVK_DIRECTORY_SECRET_MIN */
        int patient_identity;        /**< 1 when the payload may carry the patient's identity */
};

/** The HMAC key length the loader requires: the output length of SHA-256 (RFC 2104). */
#define AVK_DIRECTORY_SECRET_MIN 32

/** How deviations reach a party or unit: at least one of the two. */
struct avk_directory_delivery {
        const struct avk_directory_webhook *webhook; /**< NULL when none */
        const char *inbox_topic;                     /**< NULL when none */
};

/** Who receives deviations and holds each escalation step. Never NULL inside. */
struct avk_directory_receiver {
        const struct avk_directory_contact *coordinator;
        const struct avk_directory_contact *ladder[AVK_DIRECTORY_LADDER_STEPS];
        const struct avk_directory_delivery *delivery;
};

struct avk_directory_unit;

struct avk_directory_party {
        const char *code;      /**< "VGR" or a municipality code (SCB kommunkod) */
        const char *name;      /**< for a municipality, its name in the compiled-in table */
        const char *subregion; /**< a municipality's sub-region (compiled-in table); NULL for VGR */
        struct avk_directory_receiver receiver;
        const struct avk_directory_unit *units; /**< unit_cnt units, in file order */
        size_t unit_cnt;
};

struct avk_directory_unit {
        const char *hsa_id;
        const char *name;
        const struct avk_directory_party *party;
        struct avk_directory_receiver
            receiver; /**< with what the unit lacks taken from its party */
};

/**
 * The county-level manual triage desk: where routing sends what it cannot settle (every party but
 * the reporter has answered "wrong receiver", or the hops ran out). A joint function of the
 * parties, not a unit of either: its own entry ("triage_desk"), with its own coordinator, ladder
 * and delivery (webhook and/or inbox topic, read by its own principal).
 */
struct avk_directory_desk {
        const char *hsa_id; /**< its HSA-id, no unit's: DeviationRouted.receiver_unit_hsa_id */
        const char *name;
        /**
         * The party a DeviationRouted to the desk names as receiver_party, since the schema's
         * receiver_party is a party; it grants that party nothing (docs/routing.md).
         */
        const char *record_party;
        struct avk_directory_receiver receiver;
};

/**
 * DeviationResponse.responder of what the desk answers in its record_party's name: it tells the
 * desk's decision from that party's own (docs/routing.md, "Who triages by hand").
 */
#define AVK_DIRECTORY_DESK_RESPONDER "TRIAGE_DESK"

typedef struct avk_directory avk_directory_t;

enum {
        /** Accept a directory that lacks VGR or some municipalities (tests, pilots). */
        AVK_DIRECTORY_ALLOW_PARTIAL = 1 << 0,
};

/**
 * @brief Loads and validates a directory file.
 *
 * Without AVK_DIRECTORY_ALLOW_PARTIAL the file must list VGR and all 49
 * municipalities: a production router must never find a party missing.
 * Relative secret_file paths are resolved against the directory file's own
 * directory.
 *
 * @returns the directory, or NULL with every problem added to errs, each
 * starting with path (the file name as given).
 */
avk_directory_t *avk_directory_load(const char *path, unsigned flags, struct avk_errors *errs);

/** @brief Frees the directory, wiping the secrets it read. NULL is a no-op. */
void avk_directory_destroy(avk_directory_t *dir);

/** @brief The party with code ("VGR", "1480"), or NULL. O(log n). */
const struct avk_directory_party *avk_directory_party(const avk_directory_t *dir, const char *code);

/** @brief The unit with an HSA-id, or NULL. O(log n). */
const struct avk_directory_unit *avk_directory_unit(const avk_directory_t *dir, const char *hsa_id);

/** @brief Number of parties; avk_directory_party_at() gives them in file order. */
size_t avk_directory_party_cnt(const avk_directory_t *dir);

const struct avk_directory_party *avk_directory_party_at(const avk_directory_t *dir, size_t i);

/** @brief Number of units of all parties. */
size_t avk_directory_unit_cnt(const avk_directory_t *dir);

/** @brief The county's manual triage desk ("triage_desk" in the file). Never NULL. */
const struct avk_directory_desk *avk_directory_triage_desk(const avk_directory_t *dir);

/**
 * @brief Who receives what is routed to party and unit_hsa_id: the triage desk when unit_hsa_id
 * is its HSA-id, the unit when it is one of party's, else the party. NULL when party is not in
 * the directory (and the unit is not the desk). Owned by dir.
 */
const struct avk_directory_receiver *
avk_directory_receiver(const avk_directory_t *dir, const char *party, const char *unit_hsa_id);

/**
 * @brief The partsgemensamt forum of the sub-region a deviation between party and counterpart
 * belongs to: that of party when it is a municipality, else that of counterpart
 * (docs/escalation.md, "Sub-regions"); both sides of a disagreement hold the local forum step
 * there. NULL when neither is a municipality or the file's "subregion_forums" names none for the
 * sub-region (the party's own ladder's local_forum holds the step then). Owned by dir.
 */
const struct avk_directory_contact *
avk_directory_local_forum(const avk_directory_t *dir, const char *party, const char *counterpart);

#endif
