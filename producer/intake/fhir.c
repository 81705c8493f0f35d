/*
 * avk_fhir: a FHIR R4 AdverseEvent mapped to a DeviationReported document;
 * see fhir.h, and docs/fhir-mapping.md for the mapping row by row.
 *
 * One pass over the resource fills struct deviation with pointers into the
 * resource (which outlives the call) and static symbols; the document is built
 * only when no error was found. Every error names the FHIR path of the element
 * that is wrong, or of the element that would supply a missing field.
 *
 * R4 has no place for most of what a deviation in collaboration needs
 * (parties, care setting, municipality, agreement, governance flags), so those
 * travel in extensions under AVK_FHIR_EXTENSION_BASE on the AdverseEvent
 * itself. Extensions with other URLs are ignored, as FHIR allows; modifier
 * extensions and implicitRules are rejected, as FHIR requires of a reader that
 * does not understand them.
 *
 * Enum codes are the DeviationReported symbols in lower-kebab-case
 * (DISCHARGE_PLANNING is discharge-planning). The tables below follow
 * schemas/deviation_reported.avsc; test_fhir checks every symbol of the
 * schema's enums against them.
 */
#include "producer/intake/fhir.h"

#include "common/contract/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PATH_SIZE 192

#define ACTUALITY_SYSTEM "http://hl7.org/fhir/adverse-event-actuality"
#define SEVERITY_SYSTEM  "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
#define OUTCOME_SYSTEM   "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
#define GENDER_SYSTEM    "http://hl7.org/fhir/administrative-gender"
#define UUID_PREFIX      "urn:uuid:"

/* ---- code tables ---- */

struct code_map {
        const char *code;
        const char *symbol; /* NULL: a known code that maps to nothing */
};

static const struct code_map category_codes[] = {
    {"information-transfer", "INFORMATION_TRANSFER"},
    {"discharge-planning", "DISCHARGE_PLANNING"},
    {"sip", "SIP"},
    {"medication", "MEDICATION"},
    {"physician-availability", "PHYSICIAN_AVAILABILITY"},
    {"assistive-devices", "ASSISTIVE_DEVICES"},
    {"care-and-treatment", "CARE_AND_TREATMENT"},
    {"self-care", "SELF_CARE"},
    {"oral-health", "ORAL_HEALTH"},
    {"mental-health-addiction", "MENTAL_HEALTH_ADDICTION"},
    {"children-young-people", "CHILDREN_YOUNG_PEOPLE"},
    {"other", "OTHER"},
    {NULL, NULL}};

static const struct code_map role_codes[] = {{"nurse", "NURSE"},
                                             {"assistant-nurse", "ASSISTANT_NURSE"},
                                             {"physician", "PHYSICIAN"},
                                             {"occupational-therapist", "OCCUPATIONAL_THERAPIST"},
                                             {"physiotherapist", "PHYSIOTHERAPIST"},
                                             {"care-staff", "CARE_STAFF"},
                                             {"social-worker", "SOCIAL_WORKER"},
                                             {"coordinator", "COORDINATOR"},
                                             {"manager", "MANAGER"},
                                             {"other", "OTHER"},
                                             {NULL, NULL}};

static const struct code_map care_setting_codes[] = {
    {"inpatient", "INPATIENT"},
    {"outpatient-clinic", "OUTPATIENT_CLINIC"},
    {"region-primary-care", "REGION_PRIMARY_CARE"},
    /* Before REGION_PRIMARY_CARE the code was "primary-care", which routing always read as the
     * region's: senders of the old code keep that meaning. */
    {"primary-care", "REGION_PRIMARY_CARE"},
    {"region-primary-care-home-visit", "REGION_PRIMARY_CARE_HOME_VISIT"},
    {"ordinary-housing", "ORDINARY_HOUSING"},
    {"emergency", "EMERGENCY"},
    {"prehospital", "PREHOSPITAL"},
    {"home-health-care", "HOME_HEALTH_CARE"},
    {"specialised-home-care", "SPECIALISED_HOME_CARE"},
    {"special-housing", "SPECIAL_HOUSING"},
    {"housing-with-special-service", "HOUSING_WITH_SPECIAL_SERVICE"},
    {"day-activity", "DAY_ACTIVITY"},
    {"short-term-stay", "SHORT_TERM_STAY"},
    {"hvb-home", "HVB_HOME"},
    {"dental", "DENTAL"},
    {"other", "OTHER"},
    {NULL, NULL}};

static const struct code_map competence_codes[] = {
    {"nurse", "NURSE"},
    {"occupational-therapist", "OCCUPATIONAL_THERAPIST"},
    {"physiotherapist", "PHYSIOTHERAPIST"},
    {"physician", "PHYSICIAN"},
    {"other-competence", "OTHER_COMPETENCE"},
    {"dental", "DENTAL"},
    {"social-services", "SOCIAL_SERVICES"},
    {"unknown", "UNKNOWN"},
    {NULL, NULL}};

static const struct code_map home_visits_codes[] = {
    {"none", "NONE"},
    {"short-term-or-infrequent", "SHORT_TERM_OR_INFREQUENT"},
    {"long-term-regular", "LONG_TERM_REGULAR"},
    {"unknown", "UNKNOWN"},
    {NULL, NULL}};

static const struct code_map agreement_codes[] = {
    {"health-care-agreement", "HEALTH_CARE_AGREEMENT"},
    {"discharge-payment", "DISCHARGE_PAYMENT"},
    {"physician-responsibility", "PHYSICIAN_RESPONSIBILITY"},
    {"mental-health-addiction", "MENTAL_HEALTH_ADDICTION"},
    {"oral-health", "ORAL_HEALTH"},
    {"local-routine", "LOCAL_ROUTINE"},
    {"county-guideline", "COUNTY_GUIDELINE"},
    {"unknown", "UNKNOWN"},
    {NULL, NULL}};

static const struct code_map event_class_codes[] = {
    {"incident-with-harm", "INCIDENT_WITH_HARM"},
    {"incident-without-harm", "INCIDENT_WITHOUT_HARM"},
    {"near-miss", "NEAR_MISS"},
    {"unsafe-condition", "UNSAFE_CONDITION"},
    {"unknown", "UNKNOWN"},
    {NULL, NULL}};

static const struct code_map actuality_codes[] = {
    {"actual", NULL}, {"potential", NULL}, {NULL, NULL}};

static const struct code_map severity_codes[] = {
    {"mild", "LOW"}, {"moderate", "MODERATE"}, {"severe", "SEVERE"}, {NULL, NULL}};

/* Only a fatal outcome says anything about the harm level. */
static const struct code_map outcome_codes[] = {
    {"resolved", NULL}, {"recovering", NULL}, {"ongoing", NULL}, {"resolvedWithSequelae", NULL},
    {"fatal", "DEATH"}, {"unknown", NULL},    {NULL, NULL}};

/* Sex is the legal sex of the population register: "other" has no place there. */
static const struct code_map gender_codes[] = {{"male", "MALE"},
                                               {"female", "FEMALE"},
                                               {"other", "UNKNOWN"},
                                               {"unknown", "UNKNOWN"},
                                               {NULL, NULL}};

static const char *const personal_id_systems[] = {AVK_FHIR_SYSTEM_PERSONNUMMER,
                                                  AVK_FHIR_SYSTEM_SAMORDNINGSNUMMER, NULL};
static const char *const hsa_id_systems[] = {AVK_FHIR_SYSTEM_HSA_ID, NULL};

/* The elements of an R4 AdverseEvent; anything else (an R5 element, a typo) would be lost. */
static const char *const r4_elements[] = {"resourceType",
                                          "id",
                                          "meta",
                                          "implicitRules",
                                          "language",
                                          "text",
                                          "contained",
                                          "extension",
                                          "modifierExtension",
                                          "identifier",
                                          "actuality",
                                          "category",
                                          "event",
                                          "subject",
                                          "encounter",
                                          "date",
                                          "detected",
                                          "recordedDate",
                                          "resultingCondition",
                                          "location",
                                          "seriousness",
                                          "severity",
                                          "outcome",
                                          "recorder",
                                          "contributor",
                                          "suspectEntity",
                                          "subjectMedicalHistory",
                                          "referenceDocument",
                                          "study",
                                          NULL};

/* ---- avvik's extensions ---- */

enum value_type { VALUE_CODE, VALUE_STRING, VALUE_BOOLEAN, VALUE_IDENTIFIER };

static const char *const value_keys[] = {
    [VALUE_CODE] = "valueCode",
    [VALUE_STRING] = "valueString",
    [VALUE_BOOLEAN] = "valueBoolean",
    [VALUE_IDENTIFIER] = "valueIdentifier",
};

enum ext {
        EXT_REPORTER_PARTY,
        EXT_REPORTER_ROLE,
        EXT_RECEIVER_PARTY,
        EXT_RECEIVER_UNIT,
        EXT_LOCATION_PARTY,
        EXT_CARE_SETTING,
        EXT_MUNICIPALITY,
        EXT_COMPETENCE,
        EXT_HOME_VISITS,
        EXT_EVENT_CLASS,
        EXT_PSYCHOLOGICAL_HARM,
        EXT_AGREEMENT,
        EXT_ROUTINE,
        EXT_POSSIBLE_LEX_MARIA,
        EXT_POSSIBLE_LEX_SARAH,
        EXT_CHILD_INVOLVED,
        EXT_IMMEDIATE_ACTIONS,
        EXT_SOURCE_SYSTEM,
        EXT_REPLY_REFERENCE,
        EXT_COUNT
};

static const struct ext_def {
        const char *name; /* after AVK_FHIR_EXTENSION_BASE */
        enum value_type type;
        const char *supplies;         /* the DeviationReported field */
        int required;                 /* the field has no default */
        const struct code_map *codes; /* a closed set of codes; NULL: validated after mapping */
} ext_defs[EXT_COUNT] = {
    [EXT_REPORTER_PARTY] = {"reporter-party", VALUE_CODE, "reporter.party", 1, NULL},
    [EXT_REPORTER_ROLE] = {"reporter-role", VALUE_CODE, "reporter.role", 1, role_codes},
    [EXT_RECEIVER_PARTY] = {"receiver-party", VALUE_CODE, "receiver.party", 0, NULL},
    [EXT_RECEIVER_UNIT] = {"receiver-unit", VALUE_IDENTIFIER, "receiver.unit_hsa_id", 0, NULL},
    [EXT_LOCATION_PARTY] = {"location-party", VALUE_CODE, "location.party", 1, NULL},
    [EXT_CARE_SETTING] = {"care-setting", VALUE_CODE, "location.care_setting", 1,
                          care_setting_codes},
    [EXT_MUNICIPALITY] = {"municipality", VALUE_CODE, "municipality_code", 1, NULL},
    [EXT_COMPETENCE] = {"competence", VALUE_CODE, "competence", 0, competence_codes},
    [EXT_HOME_VISITS] = {"home-visits", VALUE_CODE, "home_visits", 0, home_visits_codes},
    [EXT_EVENT_CLASS] = {"event-class", VALUE_CODE, "event_class", 0, event_class_codes},
    [EXT_PSYCHOLOGICAL_HARM] = {"psychological-harm", VALUE_BOOLEAN, "harm.psychological", 0, NULL},
    [EXT_AGREEMENT] = {"agreement", VALUE_CODE, "agreement", 0, agreement_codes},
    [EXT_ROUTINE] = {"routine", VALUE_STRING, "routine", 0, NULL},
    [EXT_POSSIBLE_LEX_MARIA] = {"possible-lex-maria", VALUE_BOOLEAN, "flags.possible_lex_maria", 0,
                                NULL},
    [EXT_POSSIBLE_LEX_SARAH] = {"possible-lex-sarah", VALUE_BOOLEAN, "flags.possible_lex_sarah", 0,
                                NULL},
    [EXT_CHILD_INVOLVED] = {"child-involved", VALUE_BOOLEAN, "flags.child_involved", 0, NULL},
    [EXT_IMMEDIATE_ACTIONS] = {"immediate-actions", VALUE_STRING, "immediate_actions", 0, NULL},
    [EXT_SOURCE_SYSTEM] = {"source-system", VALUE_STRING, "source_system", 0, NULL},
    [EXT_REPLY_REFERENCE] = {"reply-reference", VALUE_STRING, "reply_reference", 0, NULL},
};

/* ---- the walk ---- */

struct mapper {
        const json_t *res;
        struct avk_errors *errs;
        int failed;
        const json_t *event; /* AdverseEvent.event: category and description */
        struct {
                int present;
                const json_t *value;  /* the value[x] element; NULL when absent or wrong */
                char path[PATH_SIZE]; /* of the value[x] element */
        } ext[EXT_COUNT];
};

/* What the document will hold: strings from the resource (NULs kept) or symbols. */
struct deviation {
        const json_t *deviation_id; /* "urn:uuid:<uuid>": the uuid follows the prefix */
        const json_t *occurred_at, *discovered_at, *reported_at;
        const json_t *reporter_party, *reporter_unit;
        const char *reporter_role;
        const json_t *receiver_party, *receiver_unit;
        const json_t *location_party, *location_unit;
        const char *care_setting;
        const json_t *municipality;
        const char *event_class, *category, *competence, *home_visits;
        const char *harm_level;
        int psychological;
        int has_patient;
        const json_t *personal_id;
        const char *age_group, *sex;
        const json_t *description, *immediate_actions, *routine, *source_system, *reply_reference;
        const char *agreement;
        int lex_maria, lex_sarah, child_involved;
};

__attribute__((format(printf, 3, 4))) static void fail(struct mapper *m, const char *path,
                                                       const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        avk_errors_addv(m->errs, path, fmt, ap);
        va_end(ap);
        m->failed = 1;
}

/*
 * Formats a path (or another short name) into buf. Paths here stay far below
 * PATH_SIZE; one that does not fit is cut and ends in "...", still naming the
 * place.
 */
__attribute__((format(printf, 2, 3))) static const char *path_fmt(char buf[PATH_SIZE],
                                                                  const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, PATH_SIZE, fmt, ap);
        va_end(ap);
        if (n >= PATH_SIZE)
                memcpy(buf + PATH_SIZE - 4, "...", 4);
        return buf;
}

/* jansson's object iterator takes a non-const object; iterating does not modify it. */
static json_t *iterable(const json_t *object)
{
        return (json_t *)object;
}

/* Whether the string value v is exactly s (a string holding a NUL is not). */
static int str_is(const json_t *v, const char *s)
{
        return json_string_length(v) == strlen(s) && strcmp(json_string_value(v), s) == 0;
}

enum kind { KIND_OBJECT, KIND_ARRAY, KIND_STRING, KIND_BOOLEAN };

static int is_kind(const json_t *v, enum kind kind)
{
        switch (kind) {
        case KIND_OBJECT:
                return json_is_object(v);
        case KIND_ARRAY:
                return json_is_array(v);
        case KIND_STRING:
                return json_is_string(v);
        case KIND_BOOLEAN:
                return json_is_boolean(v);
        }
        return 0;
}

/*
 * Member key of obj (at path parent) when it is of kind; NULL when absent or
 * of another kind, the latter an error saying what was expected.
 */
static const json_t *member(struct mapper *m, const json_t *obj, const char *parent,
                            const char *key, enum kind kind, const char *expected)
{
        const json_t *v = json_object_get(obj, key);
        if (v && !is_kind(v, kind)) {
                char path[PATH_SIZE];
                path_fmt(path, "%s.%s", parent, key);
                fail(m, path, "expected %s, got %s", expected, avk_json_type_name(v));
                return NULL;
        }
        return v;
}

static const struct code_map *lookup(const struct code_map *codes, const json_t *code)
{
        for (size_t i = 0; codes[i].code; i++) {
                if (str_is(code, codes[i].code))
                        return &codes[i];
        }
        return NULL;
}

/*
 * An unknown code: names where it belongs (a code system or an extension) and
 * every code accepted there. A list too long for one error message (care
 * settings, categories) goes into a second one, without a path, so that it is
 * not cut; joined, the two read as one sentence.
 */
static void unknown_code(struct mapper *m, const char *path, const json_t *code, const char *where,
                         const struct code_map *codes)
{
        char accepted[512] = "", whole[1024];
        size_t off = 0;
        for (size_t i = 0; codes[i].code && off < sizeof(accepted); i++)
                off += (size_t)snprintf(accepted + off, sizeof(accepted) - off, "%s%s",
                                        i ? ", " : "", codes[i].code);
        int n = snprintf(whole, sizeof(whole), "unknown code \"%s\" in %s; expected one of %s",
                         json_string_value(code), where, accepted);
        if (n >= 0 && strlen(path) + 2 + (size_t)n < AVK_ERROR_MSG_SIZE) {
                fail(m, path, "%s", whole);
                return;
        }
        fail(m, path, "unknown code \"%s\" in %s", json_string_value(code), where);
        avk_errors_add(m->errs, NULL, "accepted codes: %s", accepted);
}

/*
 * The code of the coding with system in the CodeableConcept cc (at path),
 * its path into code_path; NULL when none has that system. Codings of other
 * systems are translations and are skipped.
 */
static const json_t *concept_code(struct mapper *m, const json_t *cc, const char *path,
                                  const char *system, char code_path[PATH_SIZE])
{
        const json_t *codings = member(m, cc, path, "coding", KIND_ARRAY, "an array of Coding");
        const json_t *found = NULL, *coding;
        size_t i;
        json_array_foreach(codings, i, coding)
        {
                char cpath[PATH_SIZE];
                path_fmt(cpath, "%s.coding[%zu]", path, i);
                if (!json_is_object(coding)) {
                        fail(m, cpath, "expected a Coding object, got %s",
                             avk_json_type_name(coding));
                        continue;
                }
                const json_t *sys = member(m, coding, cpath, "system", KIND_STRING, "a uri string");
                if (!sys || !str_is(sys, system))
                        continue;
                char this_path[PATH_SIZE];
                path_fmt(this_path, "%s.code", cpath);
                const json_t *code = member(m, coding, cpath, "code", KIND_STRING, "a code string");
                if (!code) {
                        if (!json_object_get(coding, "code"))
                                fail(m, this_path, "is required in a coding of %s", system);
                } else if (!found) {
                        found = code;
                        path_fmt(code_path, "%s", this_path);
                } else if (!json_equal(found, code)) {
                        fail(m, this_path,
                             "a second code of %s (\"%s\" after \"%s\"); one is "
                             "expected",
                             system, json_string_value(code), json_string_value(found));
                }
        }
        return found;
}

/* Identifier i of node - one Identifier (R4's cardinality) or an array of them - with its path. */
static const json_t *identifier_at(const json_t *node, size_t i, const char *path,
                                   char buf[PATH_SIZE])
{
        if (json_is_array(node)) {
                if (i >= json_array_size(node))
                        return NULL;
                path_fmt(buf, "%s[%zu]", path, i);
                return json_array_get(node, i);
        }
        if (i > 0)
                return NULL;
        path_fmt(buf, "%s", path);
        return node;
}

/*
 * Finds in node (at path) the first identifier whose system is one of
 * systems; its value into *value and its path into found_path (may be NULL).
 * @returns 1 when found, 0 when none has such a system, -1 after an error.
 */
static int find_identifier(struct mapper *m, const json_t *node, const char *path,
                           const char *const systems[], const json_t **value,
                           char found_path[PATH_SIZE])
{
        if (!json_is_object(node) && !json_is_array(node)) {
                fail(m, path, "expected an Identifier object, got %s", avk_json_type_name(node));
                return -1;
        }
        int rc = 0;
        const json_t *ident;
        char ipath[PATH_SIZE];
        for (size_t i = 0; rc == 0 && (ident = identifier_at(node, i, path, ipath)); i++) {
                if (!json_is_object(ident)) {
                        fail(m, ipath, "expected an Identifier object, got %s",
                             avk_json_type_name(ident));
                        rc = -1;
                        break;
                }
                const json_t *sys = member(m, ident, ipath, "system", KIND_STRING, "a uri string");
                const json_t *val = member(m, ident, ipath, "value", KIND_STRING, "a string");
                for (int s = 0; sys && systems[s]; s++) {
                        if (!str_is(sys, systems[s]))
                                continue;
                        if (!val) {
                                char vpath[PATH_SIZE];
                                path_fmt(vpath, "%s.value", ipath);
                                if (!json_object_get(ident, "value"))
                                        fail(m, vpath, "is required with system %s", systems[s]);
                                return -1;
                        }
                        *value = val;
                        if (found_path)
                                path_fmt(found_path, "%s.value", ipath);
                        rc = 1;
                        break;
                }
        }
        return rc;
}

/* ---- the resource as a whole ---- */

static int check_resource_type(struct mapper *m)
{
        if (!json_is_object(m->res)) {
                fail(m, NULL, "expected a FHIR resource (a JSON object), got %s",
                     avk_json_type_name(m->res));
                return -1;
        }
        const json_t *type = json_object_get(m->res, "resourceType");
        if (!type)
                fail(m, "resourceType", "is required: expected \"AdverseEvent\"");
        else if (!json_is_string(type))
                fail(m, "resourceType", "expected a string, got %s", avk_json_type_name(type));
        else if (!str_is(type, "AdverseEvent"))
                fail(m, "resourceType",
                     "is \"%s\"; only an AdverseEvent (FHIR R4) maps to a deviation",
                     json_string_value(type));
        return m->failed ? -1 : 0;
}

static int is_r4_element(const char *key)
{
        /* "_date" carries the id and extensions of the primitive "date". */
        if (key[0] == '_')
                key++;
        for (size_t i = 0; r4_elements[i]; i++) {
                if (strcmp(key, r4_elements[i]) == 0)
                        return 1;
        }
        return 0;
}

/* What would change the meaning of the resource, or be lost, is an error. */
static void check_elements(struct mapper *m)
{
        const char *key;
        json_t *v;
        json_object_foreach(iterable(m->res), key, v)
        {
                char path[PATH_SIZE];
                path_fmt(path, "AdverseEvent.%.64s", key);
                if (!is_r4_element(key))
                        fail(m, path, "is not an element of a FHIR R4 AdverseEvent");
        }
        if (json_object_get(m->res, "implicitRules"))
                fail(m, "AdverseEvent.implicitRules",
                     "is not understood, and may change the meaning of the resource");
        const json_t *mods = member(m, m->res, "AdverseEvent", "modifierExtension", KIND_ARRAY,
                                    "an array of Extension");
        const json_t *mod;
        size_t i;
        json_array_foreach(mods, i, mod)
        {
                char path[PATH_SIZE];
                path_fmt(path, "AdverseEvent.modifierExtension[%zu]", i);
                const json_t *url = json_is_object(mod) ? json_object_get(mod, "url") : NULL;
                fail(m, path,
                     "modifier extension \"%s\" is not understood, and may change the meaning "
                     "of the resource",
                     json_is_string(url) ? json_string_value(url) : "");
        }
}

static int find_ext(const json_t *url)
{
        const size_t base_len = strlen(AVK_FHIR_EXTENSION_BASE);
        const char *s = json_string_value(url);
        if (strncmp(s, AVK_FHIR_EXTENSION_BASE, base_len) != 0)
                return -2; /* not ours */
        for (int id = 0; id < EXT_COUNT; id++) {
                if (json_string_length(url) == base_len + strlen(ext_defs[id].name) &&
                    strcmp(s + base_len, ext_defs[id].name) == 0)
                        return id;
        }
        return -1;
}

static int value_ok(struct mapper *m, enum value_type type, const json_t *value, const char *path)
{
        switch (type) {
        case VALUE_CODE:
        case VALUE_STRING:
                if (!json_is_string(value)) {
                        fail(m, path, "expected a string, got %s", avk_json_type_name(value));
                        return 0;
                }
                if (json_string_length(value) == 0) {
                        fail(m, path, "is empty; FHIR strings never are - leave the extension out");
                        return 0;
                }
                return 1;
        case VALUE_BOOLEAN:
                if (json_is_boolean(value))
                        return 1;
                fail(m, path, "expected true or false, got %s", avk_json_type_name(value));
                return 0;
        case VALUE_IDENTIFIER:
                if (json_is_object(value))
                        return 1;
                fail(m, path, "expected an Identifier object, got %s", avk_json_type_name(value));
                return 0;
        }
        return 0;
}

/* Checks one of our extensions at path and remembers its value. */
static void take_ext(struct mapper *m, int id, const json_t *ext, const char *path)
{
        const struct ext_def *def = &ext_defs[id];
        const char *want = value_keys[def->type];
        if (m->ext[id].present) {
                fail(m, path, "a second %s%s extension; it may appear once",
                     AVK_FHIR_EXTENSION_BASE, def->name);
                return;
        }
        m->ext[id].present = 1;
        path_fmt(m->ext[id].path, "%s.%s", path, want);
        int bad = 0;
        const char *key;
        json_t *v;
        json_object_foreach(iterable(ext), key, v)
        {
                if (strncmp(key, "value", 5) == 0 && strcmp(key, want) != 0) {
                        char other[PATH_SIZE];
                        path_fmt(other, "%s.%.40s", path, key);
                        fail(m, other, "the %s extension takes %s", def->name, want);
                        bad = 1;
                }
        }
        const json_t *value = json_object_get(ext, want);
        const char *vpath = m->ext[id].path;
        if (!value) {
                if (!bad)
                        fail(m, path, "the %s extension has no %s", def->name, want);
                return;
        }
        if (!bad && value_ok(m, def->type, value, vpath))
                m->ext[id].value = value;
}

static void collect_extensions(struct mapper *m)
{
        const json_t *list =
            member(m, m->res, "AdverseEvent", "extension", KIND_ARRAY, "an array of Extension");
        const json_t *ext;
        size_t i;
        json_array_foreach(list, i, ext)
        {
                char path[PATH_SIZE], url_path[PATH_SIZE];
                path_fmt(path, "AdverseEvent.extension[%zu]", i);
                path_fmt(url_path, "%s.url", path);
                if (!json_is_object(ext)) {
                        fail(m, path, "expected an Extension object, got %s",
                             avk_json_type_name(ext));
                        continue;
                }
                const json_t *url = member(m, ext, path, "url", KIND_STRING, "a uri string");
                if (!url) {
                        if (!json_object_get(ext, "url"))
                                fail(m, url_path, "is required");
                        continue;
                }
                int id = find_ext(url);
                if (id == -1)
                        fail(m, url_path,
                             "\"%s\" is not one of avvik's extensions (docs/fhir-mapping.md)",
                             json_string_value(url));
                else if (id >= 0)
                        take_ext(m, id, ext, path);
        }
}

/* ---- extension values ---- */

static const json_t *ext_value(struct mapper *m, enum ext id)
{
        const struct ext_def *def = &ext_defs[id];
        if (!m->ext[id].present && def->required)
                fail(m, "AdverseEvent.extension", "the extension %s%s is required: it supplies %s",
                     AVK_FHIR_EXTENSION_BASE, def->name, def->supplies);
        return m->ext[id].value;
}

/* The symbol for a coded extension; dflt when it is absent. */
static const char *ext_symbol(struct mapper *m, enum ext id, const char *dflt)
{
        const json_t *code = ext_value(m, id);
        if (!code)
                return dflt;
        const struct code_map *c = lookup(ext_defs[id].codes, code);
        if (c)
                return c->symbol;
        char where[PATH_SIZE];
        path_fmt(where, "%s%s", AVK_FHIR_EXTENSION_BASE, ext_defs[id].name);
        unknown_code(m, m->ext[id].path, code, where, ext_defs[id].codes);
        return dflt;
}

static int ext_flag(struct mapper *m, enum ext id)
{
        const json_t *v = ext_value(m, id);
        return v && json_is_true(v);
}

/* ---- the mapping, element by element ---- */

static void map_deviation_id(struct mapper *m, struct deviation *d)
{
        static const char *const uri_systems[] = {AVK_FHIR_SYSTEM_URI, NULL};
        const char *path = "AdverseEvent.identifier";
        const json_t *node = json_object_get(m->res, "identifier");
        if (!node) {
                fail(m, path,
                     "is required: an identifier with system %s and value urn:uuid:<uuid> "
                     "supplies deviation_id (a stable id keeps filing idempotent)",
                     AVK_FHIR_SYSTEM_URI);
                return;
        }
        const json_t *value = NULL;
        char vpath[PATH_SIZE];
        int rc = find_identifier(m, node, path, uri_systems, &value, vpath);
        if (rc == 0)
                fail(m, path,
                     "has no identifier with system %s and value urn:uuid:<uuid>; it supplies "
                     "deviation_id",
                     AVK_FHIR_SYSTEM_URI);
        if (rc != 1)
                return;
        if (strncmp(json_string_value(value), UUID_PREFIX, strlen(UUID_PREFIX)) != 0) {
                fail(m, vpath, "is not urn:uuid:<uuid>; deviation_id needs a uuid");
                return;
        }
        d->deviation_id = value;
}

/* A FHIR dateTime; it must carry a time and a zone, as a timestamp-millis does. */
static const json_t *map_time(struct mapper *m, const char *element, const char *field,
                              int required)
{
        char path[PATH_SIZE];
        path_fmt(path, "AdverseEvent.%s", element);
        const json_t *v =
            member(m, m->res, "AdverseEvent", element, KIND_STRING, "a dateTime string");
        if (!v) {
                if (required && !json_object_get(m->res, element))
                        fail(m, path, "is required: it supplies %s", field);
                return NULL;
        }
        const char *s = json_string_value(v);
        const char *t = strchr(s, 'T');
        if (!t) {
                fail(m, path,
                     "is a date without a time; %s needs a time with a zone "
                     "(e.g. 2026-11-16T16:40:00+01:00)",
                     field);
                return NULL;
        }
        if (!strpbrk(t, "Zz+-")) {
                fail(m, path,
                     "has no time zone; %s needs a time with a zone "
                     "(e.g. 2026-11-16T16:40:00+01:00)",
                     field);
                return NULL;
        }
        return v;
}

/* An HSA-id from a Reference's identifier: recorder, location. */
static const json_t *map_unit(struct mapper *m, const char *element, const char *field,
                              int required)
{
        char path[PATH_SIZE], ipath[PATH_SIZE];
        path_fmt(path, "AdverseEvent.%s", element);
        path_fmt(ipath, "%s.identifier", path);
        const json_t *ref =
            member(m, m->res, "AdverseEvent", element, KIND_OBJECT, "a Reference object");
        if (!ref) {
                if (required && !json_object_get(m->res, element))
                        fail(m, path,
                             "is required: its identifier (system %s, the unit's HSA-id) "
                             "supplies %s",
                             AVK_FHIR_SYSTEM_HSA_ID, field);
                return NULL;
        }
        const json_t *ident = json_object_get(ref, "identifier");
        if (!ident) {
                /* A display alone names no unit; a literal reference is not fetched. */
                if (required || json_object_get(ref, "reference"))
                        fail(m, ipath,
                             "is required: an identifier with system %s (HSA-id) supplies %s; "
                             "references are not resolved",
                             AVK_FHIR_SYSTEM_HSA_ID, field);
                return NULL;
        }
        const json_t *value = NULL;
        if (find_identifier(m, ident, ipath, hsa_id_systems, &value, NULL) == 0)
                fail(m, ipath, "has no identifier with system %s (HSA-id); it supplies %s",
                     AVK_FHIR_SYSTEM_HSA_ID, field);
        return value;
}

static void map_parties(struct mapper *m, struct deviation *d)
{
        d->reporter_party = ext_value(m, EXT_REPORTER_PARTY);
        d->reporter_role = ext_symbol(m, EXT_REPORTER_ROLE, NULL);
        d->reporter_unit = map_unit(m, "recorder", "reporter.unit_hsa_id", 1);

        d->receiver_party = ext_value(m, EXT_RECEIVER_PARTY);
        const json_t *unit = ext_value(m, EXT_RECEIVER_UNIT);
        if (unit && find_identifier(m, unit, m->ext[EXT_RECEIVER_UNIT].path, hsa_id_systems,
                                    &d->receiver_unit, NULL) == 0)
                fail(m, m->ext[EXT_RECEIVER_UNIT].path,
                     "has no system %s (HSA-id); it supplies receiver.unit_hsa_id",
                     AVK_FHIR_SYSTEM_HSA_ID);

        d->location_party = ext_value(m, EXT_LOCATION_PARTY);
        d->location_unit = map_unit(m, "location", "location.unit_hsa_id", 0);
        d->care_setting = ext_symbol(m, EXT_CARE_SETTING, NULL);
        d->municipality = ext_value(m, EXT_MUNICIPALITY);
}

/* The avvik category coding, from AdverseEvent.category or else AdverseEvent.event. */
static void map_category(struct mapper *m, struct deviation *d)
{
        const json_t *code = NULL, *cc;
        char code_path[PATH_SIZE] = "";
        const json_t *list = member(m, m->res, "AdverseEvent", "category", KIND_ARRAY,
                                    "an array of CodeableConcept");
        size_t n = json_array_size(list);
        for (size_t i = 0; i <= n; i++) {
                char path[PATH_SIZE], this_path[PATH_SIZE];
                if (i < n) {
                        cc = json_array_get(list, i);
                        path_fmt(path, "AdverseEvent.category[%zu]", i);
                } else {
                        cc = m->event;
                        path_fmt(path, "AdverseEvent.event");
                }
                if (!cc)
                        continue;
                if (!json_is_object(cc)) {
                        fail(m, path, "expected a CodeableConcept object, got %s",
                             avk_json_type_name(cc));
                        continue;
                }
                const json_t *c = concept_code(m, cc, path, AVK_FHIR_CATEGORY_SYSTEM, this_path);
                if (!c)
                        continue;
                if (!code) {
                        code = c;
                        path_fmt(code_path, "%s", this_path);
                } else if (!json_equal(code, c)) {
                        fail(m, this_path,
                             "a second category (\"%s\" after \"%s\"); a deviation has one",
                             json_string_value(c), json_string_value(code));
                }
        }
        if (!code) {
                /* A category of the wrong type is reported already. */
                if (list || !json_object_get(m->res, "category"))
                        fail(m, "AdverseEvent.category",
                             "is required: a coding with system %s supplies category",
                             AVK_FHIR_CATEGORY_SYSTEM);
                return;
        }
        const struct code_map *c = lookup(category_codes, code);
        if (c)
                d->category = c->symbol;
        else
                unknown_code(m, code_path, code, "system " AVK_FHIR_CATEGORY_SYSTEM,
                             category_codes);
}

/*
 * The code of a coded element (severity, outcome) in system; NULL when the
 * element is absent or wrong (an error). *entry receives the table's entry.
 */
static const json_t *coded_element(struct mapper *m, const char *element, const char *system,
                                   const struct code_map *codes, const struct code_map **entry,
                                   char code_path[PATH_SIZE])
{
        char path[PATH_SIZE];
        path_fmt(path, "AdverseEvent.%s", element);
        const json_t *cc =
            member(m, m->res, "AdverseEvent", element, KIND_OBJECT, "a CodeableConcept object");
        if (!cc)
                return NULL;
        const json_t *code = concept_code(m, cc, path, system, code_path);
        if (!code) {
                fail(m, path, "has no coding with system %s", system);
                return NULL;
        }
        *entry = lookup(codes, code);
        if (!*entry) {
                char where[PATH_SIZE];
                path_fmt(where, "system %s", system);
                unknown_code(m, code_path, code, where, codes);
                return NULL;
        }
        return code;
}

static int has_harm(const char *level)
{
        return level && strcmp(level, "NONE") != 0 && strcmp(level, "UNKNOWN") != 0;
}

/*
 * Harm level from severity and outcome; event class from actuality, the harm,
 * or the event-class extension. A potential event (a near miss, an unsafe
 * condition) harmed no one, so harm stated for one is a contradiction.
 */
static void map_harm_and_class(struct mapper *m, struct deviation *d)
{
        const char *path = "AdverseEvent.actuality";
        int potential = -1;
        const json_t *act =
            member(m, m->res, "AdverseEvent", "actuality", KIND_STRING, "a code string");
        if (act && str_is(act, "actual"))
                potential = 0;
        else if (act && str_is(act, "potential"))
                potential = 1;
        else if (act)
                unknown_code(m, path, act, "system " ACTUALITY_SYSTEM, actuality_codes);
        else if (!json_object_get(m->res, "actuality"))
                fail(m, path, "is required: actual or potential decides event_class");

        const char *level = NULL;
        char level_path[PATH_SIZE] = "", code_path[PATH_SIZE];
        const struct code_map *entry = NULL;
        const json_t *severity =
            coded_element(m, "severity", SEVERITY_SYSTEM, severity_codes, &entry, code_path);
        if (severity) {
                level = entry->symbol;
                path_fmt(level_path, "%s", code_path);
        }
        if (coded_element(m, "outcome", OUTCOME_SYSTEM, outcome_codes, &entry, code_path) &&
            entry->symbol) {
                level = entry->symbol; /* death outranks any severity */
                path_fmt(level_path, "%s", code_path);
        }
        d->psychological = ext_flag(m, EXT_PSYCHOLOGICAL_HARM);
        const char *stated = ext_symbol(m, EXT_EVENT_CLASS, NULL);
        if (potential < 0)
                return;

        if (potential && level)
                fail(m, level_path,
                     "gives harm level %s, but a potential event (actuality potential) harmed "
                     "no one",
                     level);
        if (stated) {
                int for_potential =
                    strcmp(stated, "NEAR_MISS") == 0 || strcmp(stated, "UNSAFE_CONDITION") == 0;
                if (strcmp(stated, "UNKNOWN") != 0 && for_potential != potential)
                        fail(m, m->ext[EXT_EVENT_CLASS].path,
                             "event class %s contradicts AdverseEvent.actuality %s", stated,
                             potential ? "potential" : "actual");
                else if (strcmp(stated, "INCIDENT_WITHOUT_HARM") == 0 && has_harm(level))
                        fail(m, m->ext[EXT_EVENT_CLASS].path,
                             "event class %s contradicts %s (harm level %s)", stated, level_path,
                             level);
                d->event_class = stated;
        } else if (potential) {
                d->event_class = "NEAR_MISS";
        } else {
                d->event_class =
                    has_harm(level) || d->psychological ? "INCIDENT_WITH_HARM" : "UNKNOWN";
        }
        if (level)
                d->harm_level = level;
        else if (potential || strcmp(d->event_class, "INCIDENT_WITHOUT_HARM") == 0)
                d->harm_level = "NONE";
        else
                d->harm_level = "UNKNOWN";
}

/* Parses a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD). @returns its precision 1..3, 0 if malformed. */
static int parse_date(const char *s, size_t len, int ymd[3])
{
        static const size_t lens[] = {4, 7, 10};
        ymd[1] = ymd[2] = 0;
        for (int precision = 1; precision <= 3; precision++) {
                if (len != lens[precision - 1])
                        continue;
                for (size_t i = 0; i < len; i++) {
                        int dash = i == 4 || i == 7;
                        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
                                return 0;
                }
                ymd[0] = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + s[3] - '0';
                if (precision >= 2)
                        ymd[1] = (s[5] - '0') * 10 + s[6] - '0';
                if (precision == 3)
                        ymd[2] = (s[8] - '0') * 10 + s[9] - '0';
                if (precision >= 2 && (ymd[1] < 1 || ymd[1] > 12))
                        return 0;
                if (precision == 3 && (ymd[2] < 1 || ymd[2] > 31))
                        return 0;
                return precision;
        }
        return 0;
}

static int days_in_month(int y, int month)
{
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return days[month - 1] + (month == 2 && leap);
}

static int age_on(const int birth[3], const int day[3])
{
        int age = day[0] - birth[0];
        if (day[1] < birth[1] || (day[1] == birth[1] && day[2] < birth[2]))
                age--;
        return age;
}

static const char *age_group(int age)
{
        return age < 18   ? "AGE_0_17"
               : age < 65 ? "AGE_18_64"
               : age < 80 ? "AGE_65_79"
                          : "AGE_80_PLUS";
}

/*
 * Age group on the day of the event from a birth date that may give only a
 * year or a month: the group when every possible birthday gives the same one.
 */
static void map_birth_date(struct mapper *m, struct deviation *d, const json_t *birth,
                           const char *path)
{
        int b[3], day[3];
        int precision = parse_date(json_string_value(birth), json_string_length(birth), b);
        if (!precision) {
                fail(m, path, "expected a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)");
                return;
        }
        /* The event's own calendar day, as written where it happened. */
        if (!d->occurred_at || json_string_length(d->occurred_at) < 10 ||
            parse_date(json_string_value(d->occurred_at), 10, day) != 3)
                return; /* the date error is already reported */
        int earliest[3] = {b[0], precision >= 2 ? b[1] : 1, precision == 3 ? b[2] : 1};
        int latest[3] = {b[0], precision >= 2 ? b[1] : 12, b[2]};
        if (precision < 3)
                latest[2] = days_in_month(latest[0], latest[1]);
        int oldest = age_on(earliest, day), youngest = age_on(latest, day);
        if (oldest < 0) {
                fail(m, path, "is after the event (AdverseEvent.date)");
                return;
        }
        if (youngest < 0)
                youngest = 0;
        const char *group = age_group(oldest);
        d->age_group = strcmp(group, age_group(youngest)) == 0 ? group : "UNKNOWN";
}

/* A contained Patient ("#id"): its identifiers, else its gender and birth date. */
static void map_contained_patient(struct mapper *m, struct deviation *d, const char *id)
{
        const json_t *list =
            member(m, m->res, "AdverseEvent", "contained", KIND_ARRAY, "an array of resources");
        const json_t *patient = NULL, *r;
        char path[PATH_SIZE] = "";
        size_t i;
        json_array_foreach(list, i, r)
        {
                const json_t *rid = json_object_get(r, "id");
                if (json_is_string(rid) && str_is(rid, id)) {
                        patient = r;
                        path_fmt(path, "AdverseEvent.contained[%zu]", i);
                        break;
                }
        }
        if (!patient) {
                /* contained of the wrong type is reported already */
                if (list || !json_object_get(m->res, "contained"))
                        fail(m, "AdverseEvent.subject.reference",
                             "refers to a contained resource, but no AdverseEvent.contained[].id "
                             "matches");
                return;
        }
        const json_t *type = json_object_get(patient, "resourceType");
        if (!json_is_string(type) || !str_is(type, "Patient")) {
                char tpath[PATH_SIZE];
                path_fmt(tpath, "%s.resourceType", path);
                fail(m, tpath, "the subject must be a Patient");
                return;
        }
        const json_t *ids = json_object_get(patient, "identifier");
        if (ids && !d->personal_id) {
                char ipath[PATH_SIZE];
                path_fmt(ipath, "%s.identifier", path);
                /* A Patient carries other identifiers too (local ones): those are skipped. */
                if (find_identifier(m, ids, ipath, personal_id_systems, &d->personal_id, NULL) < 0)
                        return;
        }
        if (d->personal_id)
                return; /* sex and age group are for patients whose identity is unknown */
        const json_t *gender = member(m, patient, path, "gender", KIND_STRING, "a code string");
        if (gender) {
                char gpath[PATH_SIZE];
                path_fmt(gpath, "%s.gender", path);
                const struct code_map *c = lookup(gender_codes, gender);
                if (c)
                        d->sex = c->symbol;
                else
                        unknown_code(m, gpath, gender, "system " GENDER_SYSTEM, gender_codes);
        }
        const json_t *birth = member(m, patient, path, "birthDate", KIND_STRING, "a date string");
        if (birth) {
                char bpath[PATH_SIZE];
                path_fmt(bpath, "%s.birthDate", path);
                map_birth_date(m, d, birth, bpath);
        }
}

static void map_patient(struct mapper *m, struct deviation *d)
{
        const json_t *subject =
            member(m, m->res, "AdverseEvent", "subject", KIND_OBJECT, "a Reference object");
        if (!subject)
                return; /* no patient concerned (or a type error) */
        d->has_patient = 1;
        d->age_group = "UNKNOWN";
        d->sex = "UNKNOWN";
        const char *ipath = "AdverseEvent.subject.identifier";
        const json_t *ident = json_object_get(subject, "identifier");
        if (ident &&
            find_identifier(m, ident, ipath, personal_id_systems, &d->personal_id, NULL) == 0)
                fail(m, ipath,
                     "has no identifier with system %s (personnummer) or %s (samordningsnummer); "
                     "it supplies patient.personal_id",
                     AVK_FHIR_SYSTEM_PERSONNUMMER, AVK_FHIR_SYSTEM_SAMORDNINGSNUMMER);
        const json_t *ref = member(m, subject, "AdverseEvent.subject", "reference", KIND_STRING,
                                   "a reference string");
        if (!ref)
                return; /* an identifier, a display, or nothing: the patient is as known */
        const char *r = json_string_value(ref);
        if (r[0] == '#')
                map_contained_patient(m, d, r + 1);
        else if (!ident)
                fail(m, "AdverseEvent.subject.reference",
                     "refers to a resource outside this one, which is not fetched; give "
                     "AdverseEvent.subject.identifier or refer to a contained Patient (\"#id\")");
}

static void map_texts(struct mapper *m, struct deviation *d)
{
        const json_t *event = json_object_get(m->res, "event");
        d->description = member(m, m->event, "AdverseEvent.event", "text", KIND_STRING, "a string");
        /* A wrong type of event or event.text is reported already. */
        if (!d->description && (!event || (m->event && !json_object_get(m->event, "text"))))
                fail(m, "AdverseEvent.event.text",
                     "is required: it supplies description (R4 AdverseEvent has no description "
                     "element)");
        d->immediate_actions = ext_value(m, EXT_IMMEDIATE_ACTIONS);
        d->routine = ext_value(m, EXT_ROUTINE);
        d->source_system = ext_value(m, EXT_SOURCE_SYSTEM);
        d->reply_reference = ext_value(m, EXT_REPLY_REFERENCE);
}

static void map_context(struct mapper *m, struct deviation *d)
{
        d->competence = ext_symbol(m, EXT_COMPETENCE, "UNKNOWN");
        d->home_visits = ext_symbol(m, EXT_HOME_VISITS, "UNKNOWN");
        d->agreement = ext_symbol(m, EXT_AGREEMENT, "UNKNOWN");
        d->lex_maria = ext_flag(m, EXT_POSSIBLE_LEX_MARIA);
        d->lex_sarah = ext_flag(m, EXT_POSSIBLE_LEX_SARAH);
        d->child_involved = ext_flag(m, EXT_CHILD_INVOLVED);
}

/* ---- the document ---- */

/* A copy of src's text from byte skip on, NULs kept for the validator to see; null for NULL. */
static json_t *text(const json_t *src, size_t skip)
{
        if (!src)
                return json_null();
        return json_stringn(json_string_value(src) + skip, json_string_length(src) - skip);
}

/*
 * The document, every field present. json_object_set_new() and json_pack's
 * "o" take each part even when they fail (a NULL part: out of memory), so one
 * check at the end releases everything.
 */
static json_t *build(const struct deviation *d)
{
        json_t *doc = json_object();
        int rc = 0;
        rc |= json_object_set_new(doc, "deviation_id", text(d->deviation_id, strlen(UUID_PREFIX)));
        rc |= json_object_set_new(doc, "occurred_at", text(d->occurred_at, 0));
        rc |= json_object_set_new(doc, "discovered_at", text(d->discovered_at, 0));
        rc |= json_object_set_new(doc, "reported_at", text(d->reported_at, 0));
        rc |= json_object_set_new(doc, "reporter",
                                  json_pack("{s:o, s:o, s:s}", "party", text(d->reporter_party, 0),
                                            "unit_hsa_id", text(d->reporter_unit, 0), "role",
                                            d->reporter_role));
        rc |= json_object_set_new(doc, "receiver",
                                  json_pack("{s:o, s:o}", "party", text(d->receiver_party, 0),
                                            "unit_hsa_id", text(d->receiver_unit, 0)));
        rc |= json_object_set_new(doc, "location",
                                  json_pack("{s:o, s:o, s:s}", "party", text(d->location_party, 0),
                                            "unit_hsa_id", text(d->location_unit, 0),
                                            "care_setting", d->care_setting));
        rc |= json_object_set_new(doc, "municipality_code", text(d->municipality, 0));
        rc |= json_object_set_new(doc, "event_class", json_string(d->event_class));
        rc |= json_object_set_new(doc, "category", json_string(d->category));
        rc |= json_object_set_new(doc, "competence", json_string(d->competence));
        rc |= json_object_set_new(doc, "home_visits", json_string(d->home_visits));
        rc |= json_object_set_new(
            doc, "harm",
            json_pack("{s:s, s:b}", "level", d->harm_level, "psychological", d->psychological));
        rc |= json_object_set_new(doc, "patient",
                                  !d->has_patient ? json_null()
                                                  : json_pack("{s:o, s:s, s:s}", "personal_id",
                                                              text(d->personal_id, 0), "age_group",
                                                              d->age_group, "sex", d->sex));
        rc |= json_object_set_new(doc, "description", text(d->description, 0));
        rc |= json_object_set_new(doc, "immediate_actions", text(d->immediate_actions, 0));
        rc |= json_object_set_new(doc, "agreement", json_string(d->agreement));
        rc |= json_object_set_new(doc, "routine", text(d->routine, 0));
        rc |= json_object_set_new(doc, "flags",
                                  json_pack("{s:b, s:b, s:b}", "possible_lex_maria", d->lex_maria,
                                            "possible_lex_sarah", d->lex_sarah, "child_involved",
                                            d->child_involved));
        rc |= json_object_set_new(doc, "source_system", text(d->source_system, 0));
        rc |= json_object_set_new(doc, "reply_reference", text(d->reply_reference, 0));
        if (rc != 0) {
                json_decref(doc);
                return NULL;
        }
        return doc;
}

json_t *avk_fhir_to_deviation(const json_t *resource, struct avk_errors *errs)
{
        struct mapper m = {.res = resource, .errs = errs};
        struct deviation d = {0};
        if (check_resource_type(&m) != 0)
                return NULL; /* nothing else of another resource means the same */
        check_elements(&m);
        collect_extensions(&m);
        m.event =
            member(&m, resource, "AdverseEvent", "event", KIND_OBJECT, "a CodeableConcept object");

        map_deviation_id(&m, &d);
        d.occurred_at = map_time(&m, "date", "occurred_at", 1);
        d.discovered_at = map_time(&m, "detected", "discovered_at", 0);
        d.reported_at = map_time(&m, "recordedDate", "reported_at", 1);
        map_parties(&m, &d);
        map_category(&m, &d);
        map_harm_and_class(&m, &d);
        map_patient(&m, &d);
        map_texts(&m, &d);
        map_context(&m, &d);
        if (m.failed)
                return NULL;
        json_t *doc = build(&d);
        if (!doc)
                avk_errors_add(errs, NULL, "out of memory building the deviation document");
        return doc;
}
