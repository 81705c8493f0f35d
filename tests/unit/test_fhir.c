/*
 * FHIR R4 AdverseEvent -> DeviationReported: what a filing system that speaks
 * FHIR sees - a complete resource becomes a deviation the contract accepts;
 * what cannot be mapped is named by its FHIR path; what the contract rejects
 * is named by its DeviationReported path, after the mapping.
 */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/json.h"
#include "tests/support/contract.h"
#include "producer/intake/fhir.h"
#include "tests/support/check_text.h"
#include "tests/support/test_data.h"

#define EXT(name) AVK_FHIR_EXTENSION_BASE name

static avk_catalog_t *catalog;
static const avk_schema_t *reported;
static avro_value_t value;
static char map_errors[8192];
static size_t map_error_count;

static void setup(void)
{
        contract_open(&catalog, &reported, &value);
}

static void teardown(void)
{
        contract_close(catalog, &value);
}

/* A resource from tests/data/fhir/. */
static json_t *load(const char *name)
{
        char rel[128], path[512], err[512];
        snprintf(rel, sizeof(rel), "fhir/%s", name);
        json_t *res =
            test_data_load_json(test_data_path(rel, path, sizeof(path)), err, sizeof(err));
        ck_assert_msg(res != NULL, "%s", err);
        return res;
}

/* Maps res (stolen: the document must not depend on it); errors joined into map_errors. */
static json_t *map(json_t *res)
{
        struct avk_errors errs;
        avk_errors_init(&errs);
        json_t *doc = avk_fhir_to_deviation(res, &errs);
        json_decref(res);
        avk_errors_join(&errs, map_errors, sizeof(map_errors));
        map_error_count = avk_errors_total(&errs);
        ck_assert_msg((doc == NULL) == (avk_errors_total(&errs) != 0),
                      "a document and errors, or neither: %s", map_errors);
        return doc;
}

/* Maps res (stolen), expecting success. */
static json_t *map_ok(json_t *res)
{
        json_t *doc = map(res);
        ck_assert_msg(doc != NULL, "mapping failed: %s", map_errors);
        return doc;
}

/* Maps res (stolen), expecting failure; returns the joined errors. */
static const char *map_fails(json_t *res)
{
        json_t *doc = map(res);
        ck_assert_msg(doc == NULL, "mapping succeeded, expected errors");
        return map_errors;
}

/* Validates doc (not stolen) as intake does; the joined errors, "" when accepted. */
static const char *validate(const json_t *doc)
{
        static char joined[8192];
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(reported, doc, &value, &contract_intake, &errs);
        ck_assert_int_eq(rc != 0, avk_errors_total(&errs) != 0);
        return avk_errors_join(&errs, joined, sizeof(joined));
}

/* Maps res (stolen), expecting failure with expected among the errors. */
static void expect_map_error(json_t *res, const char *expected)
{
        const char *errors = map_fails(res);
        ck_assert_contains(errors, expected);
}

/* Validates doc (not stolen), expecting expected among the contract's errors. */
static void expect_invalid(const json_t *doc, const char *expected)
{
        const char *errors = validate(doc);
        ck_assert_contains(errors, expected);
}

/* The node at a dotted path ("reporter.unit_hsa_id"). */
static const json_t *at(const json_t *doc, const char *path)
{
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", path);
        const json_t *node = doc;
        for (char *save = NULL, *key = strtok_r(buf, ".", &save); key;
             key = strtok_r(NULL, ".", &save))
                node = json_object_get(node, key);
        ck_assert_msg(node != NULL, "no %s in the document", path);
        return node;
}

#define ck_assert_field(doc, path, expected)                                                       \
        do {                                                                                       \
                const json_t *field_ = at((doc), (path));                                          \
                ck_assert_msg(json_is_string(field_), "%s is not a string", (path));               \
                ck_assert_str_eq(json_string_value(field_), (expected));                           \
        } while (0)

#define ck_assert_null_field(doc, path)                                                            \
        ck_assert_msg(json_is_null(at((doc), (path))), "%s is not null", (path))

#define ck_assert_bool_field(doc, path, expected)                                                  \
        ck_assert_msg(json_is_boolean(at((doc), (path))) &&                                        \
                          json_is_true(at((doc), (path))) == (expected),                           \
                      "%s is not %s", (path), (expected) ? "true" : "false")

/* The extension with this URL, or NULL. */
static json_t *find_ext(json_t *res, const char *url)
{
        size_t i;
        json_t *ext;
        json_array_foreach(json_object_get(res, "extension"), i, ext)
        {
                if (strcmp(json_string_value(json_object_get(ext, "url")), url) == 0)
                        return ext;
        }
        return NULL;
}

/* Sets the extension url to {key: v} (v stolen), adding it when absent. */
static void set_ext(json_t *res, const char *url, const char *key, json_t *v)
{
        json_t *ext = find_ext(res, url);
        if (!ext) {
                ext = json_pack("{s:s}", "url", url);
                json_array_append_new(json_object_get(res, "extension"), ext);
        }
        json_object_clear(ext);
        json_object_set_new(ext, "url", json_string(url));
        json_object_set_new(ext, key, v);
}

static void del_ext(json_t *res, const char *url)
{
        json_t *list = json_object_get(res, "extension");
        for (size_t i = 0; i < json_array_size(list); i++) {
                if (strcmp(json_string_value(json_object_get(json_array_get(list, i), "url")),
                           url) == 0) {
                        json_array_remove(list, i);
                        return;
                }
        }
        ck_abort_msg("no extension %s to delete", url);
}

static json_t *coded(const char *system, const char *code)
{
        return json_pack("{s:[{s:s, s:s}]}", "coding", "system", system, "code", code);
}

static json_t *severity(const char *code)
{
        return coded("http://terminology.hl7.org/CodeSystem/adverse-event-severity", code);
}

static json_t *outcome(const char *code)
{
        return coded("http://terminology.hl7.org/CodeSystem/adverse-event-outcome", code);
}

static json_t *identifier(const char *system, const char *v)
{
        return json_pack("{s:s, s:s}", "system", system, "value", v);
}

/* ---- complete and minimal resources ---- */

START_TEST(complete_resource_maps_to_a_deviation_the_contract_accepts)
{
        json_t *doc = map_ok(load("adverse-event-discharge.json"));
        ck_assert_str_eq(validate(doc), "");

        ck_assert_field(doc, "deviation_id", "3F1C2A9E-8B7D-4C1E-9A65-0D2F4B6C8E10");
        ck_assert_field(doc, "occurred_at", "2026-11-16T16:40:00+01:00");
        ck_assert_field(doc, "discovered_at", "2026-11-16T20:10:00+01:00");
        ck_assert_field(doc, "reported_at", "2026-11-17T08:55:00+01:00");
        ck_assert_field(doc, "reporter.party", "1480");
        ck_assert_field(doc, "reporter.unit_hsa_id", "SE2120001215-HSK0042");
        ck_assert_field(doc, "reporter.role", "NURSE");
        ck_assert_field(doc, "receiver.party", "VGR");
        ck_assert_field(doc, "receiver.unit_hsa_id", "SE2321000131-E000000012345");
        ck_assert_field(doc, "location.party", "VGR");
        ck_assert_field(doc, "location.unit_hsa_id", "SE2321000131-E000000012345");
        ck_assert_field(doc, "location.care_setting", "INPATIENT");
        ck_assert_field(doc, "municipality_code", "1480");
        ck_assert_field(doc, "event_class", "INCIDENT_WITH_HARM");
        ck_assert_field(doc, "category", "DISCHARGE_PLANNING");
        ck_assert_field(doc, "competence", "PHYSICIAN");
        ck_assert_field(doc, "home_visits", "LONG_TERM_REGULAR");
        ck_assert_field(doc, "harm.level", "LOW");
        ck_assert_bool_field(doc, "harm.psychological", 1);
        ck_assert_field(doc, "patient.personal_id", "194003141233");
        ck_assert_field(doc, "patient.age_group", "UNKNOWN");
        ck_assert_field(doc, "patient.sex", "UNKNOWN");
        ck_assert_field(doc, "description",
                        "Patienten skrevs ut från medicinavdelning till ordinärt boende med "
                        "hemsjukvård. Läkemedelslista och utskrivningsmeddelande saknades i den "
                        "gemensamma IT-tjänsten när distriktssköterskan kom på kvällsbesöket. "
                        "Insulindosen var oklar och fick stämmas av med jourläkare.");
        ck_assert_field(doc, "immediate_actions",
                        "Kontakt med jourläkare; dosen bekräftades muntligt och dokumenterades.");
        ck_assert_field(doc, "agreement", "DISCHARGE_PAYMENT");
        ck_assert_field(doc, "routine", "Samverkan vid in- och utskrivning");
        ck_assert_bool_field(doc, "flags.possible_lex_maria", 0);
        ck_assert_bool_field(doc, "flags.possible_lex_sarah", 0);
        ck_assert_bool_field(doc, "flags.child_involved", 0);
        ck_assert_field(doc, "source_system", "Treserva");
        /* Every DeviationReported field, no more. */
        ck_assert_int_eq(json_object_size(doc),
                         json_array_size(json_object_get(avk_schema_json(reported), "fields")));

        /* What the contract stores: the uuid in lower case, the event time in UTC. */
        char err[256];
        json_t *stored = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_msg(stored != NULL, "%s", err);
        ck_assert_field(stored, "deviation_id", "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
        ck_assert_field(stored, "occurred_at", "2026-11-16T15:40:00.000Z");
        ck_assert_field(stored, "reported_at", "2026-11-17T07:55:00.000Z");
        json_decref(stored);
        json_decref(doc);
}
END_TEST

START_TEST(mapping_leaves_the_resource_unchanged)
{
        json_t *res = load("adverse-event-discharge.json");
        json_t *before = json_deep_copy(res);
        struct avk_errors errs;
        avk_errors_init(&errs);
        json_t *doc = avk_fhir_to_deviation(res, &errs);
        ck_assert_ptr_nonnull(doc);
        ck_assert_msg(json_equal(res, before), "the resource was modified");
        json_decref(doc);
        json_decref(before);
        json_decref(res);
}
END_TEST

START_TEST(minimal_resource_takes_the_defaults)
{
        json_t *doc = map_ok(load("adverse-event-minimal.json"));
        ck_assert_str_eq(validate(doc), "");
        ck_assert_field(doc, "deviation_id", "9a7e4b21-55c3-4f0e-8d1a-6b2c3d4e5f60");
        ck_assert_null_field(doc, "discovered_at");
        ck_assert_null_field(doc, "receiver.party");
        ck_assert_null_field(doc, "receiver.unit_hsa_id");
        ck_assert_null_field(doc, "location.unit_hsa_id");
        ck_assert_field(doc, "location.party", "1490");
        ck_assert_field(doc, "location.care_setting", "SPECIAL_HOUSING");
        ck_assert_field(doc, "reporter.role", "PHYSICIAN");
        ck_assert_field(doc, "category", "PHYSICIAN_AVAILABILITY");
        ck_assert_field(doc, "event_class", "UNKNOWN"); /* actual, harm not stated */
        ck_assert_field(doc, "harm.level", "UNKNOWN");
        ck_assert_bool_field(doc, "harm.psychological", 0);
        ck_assert_field(doc, "competence", "UNKNOWN");
        ck_assert_field(doc, "home_visits", "UNKNOWN");
        ck_assert_field(doc, "agreement", "UNKNOWN");
        ck_assert_null_field(doc, "patient"); /* no subject: no patient concerned */
        ck_assert_null_field(doc, "immediate_actions");
        ck_assert_null_field(doc, "routine");
        ck_assert_null_field(doc, "source_system");
        ck_assert_bool_field(doc, "flags.possible_lex_maria", 0);
        ck_assert_bool_field(doc, "flags.possible_lex_sarah", 0);
        ck_assert_bool_field(doc, "flags.child_involved", 0);
        json_decref(doc);
}
END_TEST

/* ---- what is not an AdverseEvent ---- */

START_TEST(only_an_adverse_event_is_mapped)
{
        json_t *res =
            json_pack("{s:s, s:s, s:{s:s}, s:s}", "resourceType", "Observation", "status", "final",
                      "code", "text", "Fall", "effectiveDateTime", "2026-11-16T16:40:00+01:00");
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "resourceType: is \"Observation\"; only an AdverseEvent");
        ck_assert_msg(map_error_count == 1, "another resource's elements were judged too: %s",
                      errors);

        res = load("adverse-event-minimal.json");
        json_object_del(res, "resourceType");
        expect_map_error(res, "resourceType: is required: expected \"AdverseEvent\"");

        expect_map_error(json_pack("[{s:s}]", "resourceType", "AdverseEvent"),
                         "expected a FHIR resource (a JSON object), got an array");
}
END_TEST

/* ---- codes ---- */

START_TEST(unknown_category_code_names_system_and_accepted_codes)
{
        json_t *res = load("adverse-event-discharge.json");
        json_t *coding = json_array_get(
            json_object_get(json_array_get(json_object_get(res, "category"), 0), "coding"), 1);
        json_object_set_new(coding, "code", json_string("weather"));
        expect_map_error(res,
                         "AdverseEvent.category[0].coding[1].code: unknown code \"weather\" in "
                         "system " AVK_FHIR_CATEGORY_SYSTEM "; expected one of "
                         "information-transfer, discharge-planning, sip, medication, "
                         "physician-availability, assistive-devices, care-and-treatment, "
                         "self-care, oral-health, mental-health-addiction, "
                         "children-young-people, other");
}
END_TEST

START_TEST(category_is_also_read_from_event_coding)
{
        json_t *res = load("adverse-event-minimal.json");
        json_object_del(res, "category");
        json_object_set_new(res, "event",
                            json_pack("{s:[{s:s, s:s}], s:s}", "coding", "system",
                                      AVK_FHIR_CATEGORY_SYSTEM, "code", "oral-health", "text",
                                      "Munvårdsbedömning uteblev."));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "category", "ORAL_HEALTH");
        ck_assert_field(doc, "description", "Munvårdsbedömning uteblev.");
        json_decref(doc);

        res = load("adverse-event-minimal.json");
        json_object_set_new(res, "event",
                            json_pack("{s:[{s:s, s:s}], s:s}", "coding", "system",
                                      AVK_FHIR_CATEGORY_SYSTEM, "code", "medication", "text", "x"));
        expect_map_error(res, "AdverseEvent.event.coding[0].code: a second category "
                              "(\"medication\" after \"physician-availability\")");
}
END_TEST

START_TEST(unknown_extension_codes_name_extension_and_accepted_codes)
{
        json_t *res = load("adverse-event-discharge.json");
        set_ext(res, EXT("reporter-role"), "valueCode", json_string("NURSE"));
        set_ext(res, EXT("care-setting"), "valueCode", json_string("ward"));
        set_ext(res, EXT("home-visits"), "valueCode", json_string("weekly"));
        set_ext(res, EXT("event-class"), "valueCode", json_string("accident"));
        const char *errors = map_fails(res);
        ck_assert_contains(errors,
                           "AdverseEvent.extension[1].valueCode: unknown code \"NURSE\" in "
                           "https://avvik.vardsamverkan.se/fhir/StructureDefinition/"
                           "reporter-role; expected one of nurse, assistant-nurse, "
                           "physician, occupational-therapist, physiotherapist, care-staff, "
                           "social-worker, coordinator, manager, other");
        ck_assert_contains(errors, "AdverseEvent.extension[5].valueCode: unknown code \"ward\" in "
                                   "https://avvik.vardsamverkan.se/fhir/StructureDefinition/"
                                   "care-setting; expected one of inpatient, outpatient-clinic, "
                                   "region-primary-care, primary-care, "
                                   "region-primary-care-home-visit, ordinary-housing, emergency, "
                                   "prehospital, home-health-care, "
                                   "specialised-home-care, special-housing, "
                                   "housing-with-special-service, day-activity, short-term-stay, "
                                   "hvb-home, dental, other");
        ck_assert_contains(errors,
                           "AdverseEvent.extension[8].valueCode: unknown code \"weekly\" in "
                           "https://avvik.vardsamverkan.se/fhir/StructureDefinition/"
                           "home-visits; expected one of none, short-term-or-infrequent, "
                           "long-term-regular, unknown");
        ck_assert_contains(errors,
                           "AdverseEvent.extension[19].valueCode: unknown code \"accident\" "
                           "in https://avvik.vardsamverkan.se/fhir/StructureDefinition/"
                           "event-class; expected one of incident-with-harm");
}
END_TEST

START_TEST(unknown_hl7_codes_are_named)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(res, "actuality", json_string("possible"));
        json_object_set_new(res, "severity", severity("critical"));
        json_object_set_new(res, "outcome", outcome("dead"));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.actuality: unknown code \"possible\" in system "
                                   "http://hl7.org/fhir/adverse-event-actuality; expected one of "
                                   "actual, potential");
        ck_assert_contains(errors,
                           "AdverseEvent.severity.coding[0].code: unknown code "
                           "\"critical\" in system http://terminology.hl7.org/CodeSystem/"
                           "adverse-event-severity; expected one of mild, moderate, severe");
        ck_assert_contains(errors, "AdverseEvent.outcome.coding[0].code: unknown code \"dead\"");

        res = load("adverse-event-discharge.json");
        json_object_set_new(res, "severity", coded("http://snomed.info/sct", "24484000"));
        expect_map_error(res, "AdverseEvent.severity: has no coding with system "
                              "http://terminology.hl7.org/CodeSystem/adverse-event-severity");
}
END_TEST

START_TEST(avvik_extension_urls_and_value_types_are_checked)
{
        json_t *res = load("adverse-event-discharge.json");
        set_ext(res, EXT("care-settings"), "valueCode", json_string("inpatient"));
        set_ext(res, EXT("child-involved"), "valueString", json_string("yes"));
        set_ext(res, EXT("routine"), "valueString", json_integer(7));
        set_ext(res, EXT("receiver-unit"), "valueIdentifier",
                identifier("urn:oid:1.2.752.29.4.19", "2321000131"));
        json_array_append_new(
            json_object_get(res, "extension"),
            json_pack("{s:s, s:b}", "url", EXT("possible-lex-maria"), "valueBoolean", 1));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.extension[19].url: \"" EXT(
                                       "care-settings") "\" is not one of avvik's extensions");
        ck_assert_contains(errors, "AdverseEvent.extension[14].valueString: the child-involved "
                                   "extension takes valueBoolean");
        ck_assert_contains(errors,
                           "AdverseEvent.extension[11].valueString: expected a string, got an "
                           "integer");
        ck_assert_contains(errors, "AdverseEvent.extension[3].valueIdentifier: has no system "
                                   "urn:oid:1.2.752.129.2.1.4.1 (HSA-id); it supplies "
                                   "receiver.unit_hsa_id");
        ck_assert_contains(errors, "AdverseEvent.extension[20]: a second " EXT(
                                       "possible-lex-maria") " extension; it may appear once");
}
END_TEST

START_TEST(extensions_of_others_are_ignored)
{
        json_t *res = load("adverse-event-minimal.json");
        json_array_append_new(
            json_object_get(res, "extension"),
            json_pack("{s:s, s:i}", "url",
                      "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueInteger",
                      3));
        json_t *doc = map_ok(res);
        ck_assert_str_eq(validate(doc), "");
        json_decref(doc);
}
END_TEST

START_TEST(governance_flags_come_from_extensions)
{
        json_t *res = load("adverse-event-minimal.json");
        set_ext(res, EXT("possible-lex-maria"), "valueBoolean", json_true());
        set_ext(res, EXT("possible-lex-sarah"), "valueBoolean", json_true());
        set_ext(res, EXT("child-involved"), "valueBoolean", json_true());
        json_t *doc = map_ok(res);
        ck_assert_bool_field(doc, "flags.possible_lex_maria", 1);
        ck_assert_bool_field(doc, "flags.possible_lex_sarah", 1);
        ck_assert_bool_field(doc, "flags.child_involved", 1);
        ck_assert_str_eq(validate(doc), "");
        json_decref(doc);
}
END_TEST

START_TEST(text_is_passed_whole_for_the_contract_to_judge)
{
        /* A NUL inside a string is kept, so the contract sees it rather than a shorter text. */
        json_t *res = load("adverse-event-minimal.json");
        json_object_set_new(json_object_get(res, "event"), "text", json_stringn("a\0b", 3));
        json_t *doc = map_ok(res);
        ck_assert_int_eq(json_string_length(at(doc, "description")), 3);
        expect_invalid(doc, "description: contains a NUL character");
        json_decref(doc);
}
END_TEST

/* ---- times ---- */

START_TEST(date_without_time_is_rejected)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(res, "date", json_string("2026-11-16"));
        json_object_set_new(res, "detected", json_string("2026-11"));
        json_object_set_new(res, "recordedDate", json_string("2026-11-17T08:55:00"));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.date: is a date without a time; occurred_at needs "
                                   "a time with a zone (e.g. 2026-11-16T16:40:00+01:00)");
        ck_assert_contains(errors, "AdverseEvent.detected: is a date without a time; "
                                   "discovered_at needs a time with a zone");
        ck_assert_contains(errors, "AdverseEvent.recordedDate: has no time zone; reported_at needs "
                                   "a time with a zone");
}
END_TEST

START_TEST(missing_recorded_date_names_the_element)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_del(res, "recordedDate");
        const char *errors = map_fails(res);
        ck_assert_str_eq(errors, "AdverseEvent.recordedDate: is required: it supplies reported_at");
}
END_TEST

START_TEST(time_in_the_future_is_left_to_the_contract)
{
        json_t *res = load("adverse-event-minimal.json");
        json_object_set_new(res, "recordedDate", json_string("2027-01-05T08:30:00+01:00"));
        json_t *doc = map_ok(res);
        expect_invalid(doc, "reported_at: ");
        json_decref(doc);
}
END_TEST

/* ---- required pieces ---- */

START_TEST(missing_required_pieces_name_their_fhir_elements)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_del(res, "identifier");
        json_object_del(res, "actuality");
        json_object_del(res, "date");
        json_object_del(res, "recorder");
        json_object_del(res, "category");
        json_object_del(res, "event");
        del_ext(res, EXT("care-setting"));
        del_ext(res, EXT("municipality"));
        del_ext(res, EXT("reporter-party"));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.identifier: is required: an identifier with "
                                   "system urn:ietf:rfc:3986 and value urn:uuid:<uuid> supplies "
                                   "deviation_id");
        ck_assert_contains(errors, "AdverseEvent.actuality: is required: actual or potential "
                                   "decides event_class");
        ck_assert_contains(errors, "AdverseEvent.date: is required: it supplies occurred_at");
        ck_assert_contains(errors, "AdverseEvent.recorder: is required: its identifier (system "
                                   "urn:oid:1.2.752.129.2.1.4.1, the unit's HSA-id) supplies "
                                   "reporter.unit_hsa_id");
        ck_assert_contains(
            errors,
            "AdverseEvent.category: is required: a coding with system " AVK_FHIR_CATEGORY_SYSTEM
            " supplies category");
        ck_assert_contains(errors, "AdverseEvent.event.text: is required: it supplies description");
        ck_assert_contains(errors, "AdverseEvent.extension: the extension " EXT(
                                       "care-setting") " is required: it supplies "
                                                       "location.care_setting");
        ck_assert_contains(errors, "AdverseEvent.extension: the extension " EXT(
                                       "municipality") " is required: it supplies "
                                                       "municipality_code");
        ck_assert_contains(errors, "AdverseEvent.extension: the extension " EXT(
                                       "reporter-party") " is required: it supplies "
                                                         "reporter.party");
}
END_TEST

START_TEST(deviation_id_needs_a_urn_uuid_identifier)
{
        json_t *res = load("adverse-event-minimal.json");
        json_object_set_new(res, "identifier",
                            identifier("urn:oid:1.2.752.129.2.1.2.1", "AV-2026-00042"));
        expect_map_error(res, "AdverseEvent.identifier: has no identifier with system "
                              "urn:ietf:rfc:3986 and value urn:uuid:<uuid>");

        res = load("adverse-event-minimal.json");
        json_object_set_new(res, "identifier",
                            identifier("urn:ietf:rfc:3986", "https://treserva.example/ae/42"));
        expect_map_error(res, "AdverseEvent.identifier.value: is not urn:uuid:<uuid>; deviation_id "
                              "needs a uuid");

        /* A list of identifiers (as R5 has it): the urn:uuid one is taken. */
        res = load("adverse-event-minimal.json");
        json_object_set_new(res, "identifier",
                            json_pack("[o, o]",
                                      identifier("urn:oid:1.2.752.129.2.1.2.1", "AV-2026-00042"),
                                      identifier("urn:ietf:rfc:3986",
                                                 "urn:uuid:0b7c2f9a-3d4e-4f5a-8b6c-7d8e9f0a1b2c")));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "deviation_id", "0b7c2f9a-3d4e-4f5a-8b6c-7d8e9f0a1b2c");
        json_decref(doc);

        /* The uuid itself is the contract's to check, under its own name. */
        res = load("adverse-event-minimal.json");
        json_object_set_new(res, "identifier", identifier("urn:ietf:rfc:3986", "urn:uuid:42"));
        doc = map_ok(res);
        expect_invalid(doc, "deviation_id: ");
        json_decref(doc);
}
END_TEST

START_TEST(wrong_json_types_are_named_by_fhir_path)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(res, "date", json_integer(1795000000000));
        json_object_set_new(res, "subject", json_string("Patient/1"));
        json_object_set_new(res, "severity", json_string("mild"));
        json_object_set_new(res, "category", json_object());
        json_object_set_new(res, "location", json_pack("{s:s}", "identifier", "SE2321000131-E1"));
        json_object_set_new(res, "event", json_pack("{s:[s]}", "text", "x"));
        json_object_set_new(res, "recorder", json_pack("{s:[i]}", "identifier", 1));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.date: expected a dateTime string, got an integer");
        ck_assert_contains(errors,
                           "AdverseEvent.subject: expected a Reference object, got a string");
        ck_assert_contains(
            errors, "AdverseEvent.severity: expected a CodeableConcept object, got a string");
        ck_assert_contains(errors,
                           "AdverseEvent.category: expected an array of CodeableConcept, got an "
                           "object");
        ck_assert_contains(errors, "AdverseEvent.location.identifier: expected an Identifier "
                                   "object, got a string");
        ck_assert_contains(errors, "AdverseEvent.event.text: expected a string, got an array");
        ck_assert_contains(errors, "AdverseEvent.recorder.identifier[0]: expected an Identifier "
                                   "object, got an integer");
        ck_assert_msg(strstr(errors, "is required") == NULL,
                      "a wrong type was also reported missing: %s", errors);
}
END_TEST

START_TEST(unknown_elements_and_modifier_extensions_are_rejected)
{
        json_t *res = load("adverse-event-minimal.json");
        json_object_set_new(res, "occurrenceDateTime", json_string("2026-11-18T02:15:00Z"));
        json_object_set_new(res, "status", json_string("completed"));
        json_object_set_new(res, "_date", json_pack("{s:s}", "id", "d1")); /* a primitive's own */
        json_object_set_new(res, "implicitRules", json_string("http://example.org/local-rules"));
        json_object_set_new(res, "modifierExtension",
                            json_pack("[{s:s, s:b}]", "url", "http://example.org/entered-in-error",
                                      "valueBoolean", 1));
        const char *errors = map_fails(res);
        ck_assert_contains(errors,
                           "AdverseEvent.occurrenceDateTime: is not an element of a FHIR R4 "
                           "AdverseEvent");
        ck_assert_contains(errors, "AdverseEvent.status: is not an element of a FHIR R4");
        ck_assert_contains(errors, "AdverseEvent.modifierExtension[0]: modifier extension "
                                   "\"http://example.org/entered-in-error\" is not understood");
        ck_assert_contains(errors, "AdverseEvent.implicitRules: is not understood");
        ck_assert_msg(strstr(errors, "_date") == NULL, "_date was rejected: %s", errors);
}
END_TEST

/* ---- the patient ---- */

START_TEST(samordningsnummer_maps_to_personal_id)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(
            res, "subject",
            json_pack("{s:o}", "identifier",
                      identifier(AVK_FHIR_SYSTEM_SAMORDNINGSNUMMER, "19400374-1230")));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "patient.personal_id", "19400374-1230");
        ck_assert_str_eq(validate(doc), "");
        char err[256];
        json_t *stored = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_field(stored, "patient.personal_id", "194003741230");
        json_decref(stored);
        json_decref(doc);
}
END_TEST

START_TEST(bad_personnummer_passes_the_mapping_and_fails_the_contract)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(json_object_get(json_object_get(res, "subject"), "identifier"), "value",
                            json_string("194003141234"));
        json_t *doc = map_ok(res);
        const char *errors = validate(doc);
        ck_assert_contains(errors, "patient.personal_id: ");
        ck_assert_contains(errors, "check digit");
        ck_assert_msg(strstr(errors, "194003141234") == NULL && strstr(errors, "0314") == NULL,
                      "the error repeats the personal identity number: %s", errors);
        json_decref(doc);
}
END_TEST

START_TEST(contract_rules_are_applied_after_the_mapping)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(json_object_get(json_object_get(res, "recorder"), "identifier"),
                            "value", json_string("SE2120001216-HSK0042"));
        set_ext(res, EXT("municipality"), "valueCode", json_string("9999"));
        json_t *doc = map_ok(res);
        const char *errors = validate(doc);
        ck_assert_contains(errors, "reporter.unit_hsa_id: ");
        ck_assert_contains(errors, "municipality_code: ");
        json_decref(doc);
}
END_TEST

/* A resource naming its reporter's party as receiver maps, and the contract
 * refuses it as it refuses the JSON intake's (docs/fhir-mapping.md). */
START_TEST(receiver_party_that_is_the_reporter_party_is_refused)
{
        json_t *res = load("adverse-event-discharge.json");
        set_ext(res, EXT("receiver-party"), "valueCode", json_string("1480"));
        json_t *doc = map_ok(res);
        expect_invalid(doc, "receiver.party: is 1480, the same as reporter.party: a deviation in "
                            "collaboration is between two parties");
        json_decref(doc);
}
END_TEST

START_TEST(subject_with_another_identifier_system_is_rejected)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(
            res, "subject",
            json_pack("{s:o}", "identifier", identifier("urn:oid:1.2.752.97.3.1.3", "SE123-4567")));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.subject.identifier: has no identifier with system "
                                   "urn:oid:1.2.752.129.2.1.3.1 (personnummer) or "
                                   "urn:oid:1.2.752.129.2.1.3.3 (samordningsnummer)");
        ck_assert_msg(strstr(errors, "SE123") == NULL, "the value was repeated: %s", errors);
}
END_TEST

START_TEST(subject_outside_the_resource_is_not_fetched)
{
        json_t *res = load("adverse-event-discharge.json");
        json_object_set_new(res, "subject", json_pack("{s:s}", "reference", "Patient/1234"));
        expect_map_error(res, "AdverseEvent.subject.reference: refers to a resource "
                              "outside this one, which is not fetched");

        /* A display alone: a patient is concerned, identity unknown. */
        res = load("adverse-event-discharge.json");
        json_object_set_new(res, "subject", json_pack("{s:s}", "display", "Okänd brukare"));
        json_t *doc = map_ok(res);
        ck_assert_null_field(doc, "patient.personal_id");
        ck_assert_field(doc, "patient.sex", "UNKNOWN");
        ck_assert_str_eq(validate(doc), "");
        json_decref(doc);
}
END_TEST

START_TEST(contained_patient_gives_sex_and_age_group)
{
        json_t *doc = map_ok(load("adverse-event-near-miss.json"));
        ck_assert_str_eq(validate(doc), "");
        ck_assert_null_field(doc, "patient.personal_id"); /* the MRN is not a personal id */
        ck_assert_field(doc, "patient.sex", "FEMALE");
        ck_assert_field(doc, "patient.age_group", "AGE_0_17");
        ck_assert_bool_field(doc, "flags.child_involved", 1);
        json_decref(doc);
}
END_TEST

START_TEST(contained_patient_identifier_wins_over_gender_and_birth_date)
{
        json_t *res = load("adverse-event-near-miss.json");
        json_t *patient = json_array_get(json_object_get(res, "contained"), 0);
        json_array_append_new(json_object_get(patient, "identifier"),
                              identifier(AVK_FHIR_SYSTEM_PERSONNUMMER, "195306224584"));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "patient.personal_id", "195306224584");
        ck_assert_field(doc, "patient.sex", "UNKNOWN");
        ck_assert_field(doc, "patient.age_group", "UNKNOWN");
        json_decref(doc);
}
END_TEST

START_TEST(birth_date_gives_an_age_group_only_when_unambiguous)
{
        static const struct {
                const char *birth;
                const char *group;
        } cases[] = {
            {"2015", "AGE_0_17"},        {"2008", "UNKNOWN"}, /* 17 or 18 on 2026-11-10 */
            {"2008-11-10", "AGE_18_64"}, {"2008-11-11", "AGE_0_17"}, {"1961-12", "AGE_18_64"},
            {"1961-11", "UNKNOWN"},      {"1961-10", "AGE_65_79"},   {"1946-05-01", "AGE_80_PLUS"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *res = load("adverse-event-near-miss.json");
                json_t *patient = json_array_get(json_object_get(res, "contained"), 0);
                json_object_set_new(patient, "birthDate", json_string(cases[i].birth));
                json_t *doc = map_ok(res);
                ck_assert_msg(
                    strcmp(json_string_value(at(doc, "patient.age_group")), cases[i].group) == 0,
                    "born %s: %s, expected %s", cases[i].birth,
                    json_string_value(at(doc, "patient.age_group")), cases[i].group);
                json_decref(doc);
        }

        json_t *res = load("adverse-event-near-miss.json");
        json_t *patient = json_array_get(json_object_get(res, "contained"), 0);
        json_object_set_new(patient, "birthDate", json_string("2027-01-01"));
        json_object_set_new(patient, "gender", json_string("f"));
        const char *errors = map_fails(res);
        ck_assert_contains(errors, "AdverseEvent.contained[0].birthDate: is after the event");
        ck_assert_contains(errors, "AdverseEvent.contained[0].gender: unknown code \"f\" in system "
                                   "http://hl7.org/fhir/administrative-gender; expected one of "
                                   "male, female, other, unknown");
}
END_TEST

START_TEST(contained_reference_must_find_a_patient)
{
        json_t *res = load("adverse-event-near-miss.json");
        json_object_set_new(json_object_get(res, "subject"), "reference", json_string("#nobody"));
        expect_map_error(res, "AdverseEvent.subject.reference: refers to a contained "
                              "resource, but no AdverseEvent.contained[].id matches");

        res = load("adverse-event-near-miss.json");
        json_object_set_new(json_array_get(json_object_get(res, "contained"), 0), "resourceType",
                            json_string("Practitioner"));
        expect_map_error(res,
                         "AdverseEvent.contained[0].resourceType: the subject must be a Patient");
}
END_TEST

/* ---- harm and event class ---- */

START_TEST(potential_event_maps_to_near_miss_without_harm)
{
        json_t *doc = map_ok(load("adverse-event-near-miss.json"));
        ck_assert_field(doc, "event_class", "NEAR_MISS");
        ck_assert_field(doc, "harm.level", "NONE");
        json_decref(doc);

        json_t *res = load("adverse-event-near-miss.json");
        set_ext(res, EXT("event-class"), "valueCode", json_string("unsafe-condition"));
        doc = map_ok(res);
        ck_assert_field(doc, "event_class", "UNSAFE_CONDITION");
        ck_assert_field(doc, "harm.level", "NONE");
        ck_assert_str_eq(validate(doc), "");
        json_decref(doc);
}
END_TEST

START_TEST(potential_event_with_harm_is_rejected)
{
        json_t *res = load("adverse-event-near-miss.json");
        json_object_set_new(res, "severity", severity("moderate"));
        expect_map_error(res,
                         "AdverseEvent.severity.coding[0].code: gives harm level MODERATE, but a "
                         "potential event (actuality potential) harmed no one");

        res = load("adverse-event-near-miss.json");
        set_ext(res, EXT("event-class"), "valueCode", json_string("incident-with-harm"));
        expect_map_error(res, "AdverseEvent.extension[11].valueCode: event class "
                              "INCIDENT_WITH_HARM contradicts AdverseEvent.actuality "
                              "potential");
}
END_TEST

START_TEST(harm_level_follows_severity_and_fatal_outcome)
{
        static const char *const severities[][2] = {
            {"mild", "LOW"}, {"moderate", "MODERATE"}, {"severe", "SEVERE"}};
        for (size_t i = 0; i < 3; i++) {
                json_t *res = load("adverse-event-minimal.json");
                json_object_set_new(res, "severity", severity(severities[i][0]));
                json_t *doc = map_ok(res);
                ck_assert_field(doc, "harm.level", severities[i][1]);
                ck_assert_field(doc, "event_class", "INCIDENT_WITH_HARM");
                json_decref(doc);
        }
        json_t *res = load("adverse-event-minimal.json");
        json_object_set_new(res, "severity", severity("moderate"));
        json_object_set_new(res, "outcome", outcome("fatal"));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "harm.level", "DEATH");
        ck_assert_field(doc, "event_class", "INCIDENT_WITH_HARM");
        ck_assert_str_eq(validate(doc), "");
        json_decref(doc);

        /* Psychological harm alone is harm too. */
        res = load("adverse-event-minimal.json");
        set_ext(res, EXT("psychological-harm"), "valueBoolean", json_true());
        doc = map_ok(res);
        ck_assert_field(doc, "harm.level", "UNKNOWN");
        ck_assert_field(doc, "event_class", "INCIDENT_WITH_HARM");
        ck_assert_bool_field(doc, "harm.psychological", 1);
        json_decref(doc);
}
END_TEST

START_TEST(stated_event_class_is_used_and_checked)
{
        json_t *res = load("adverse-event-minimal.json");
        set_ext(res, EXT("event-class"), "valueCode", json_string("incident-without-harm"));
        json_t *doc = map_ok(res);
        ck_assert_field(doc, "event_class", "INCIDENT_WITHOUT_HARM");
        ck_assert_field(doc, "harm.level", "NONE");
        json_decref(doc);

        res = load("adverse-event-minimal.json");
        set_ext(res, EXT("event-class"), "valueCode", json_string("incident-without-harm"));
        json_object_set_new(res, "severity", severity("severe"));
        expect_map_error(res, "AdverseEvent.extension[5].valueCode: event class "
                              "INCIDENT_WITHOUT_HARM contradicts "
                              "AdverseEvent.severity.coding[0].code (harm level "
                              "SEVERE)");

        res = load("adverse-event-minimal.json");
        set_ext(res, EXT("event-class"), "valueCode", json_string("near-miss"));
        expect_map_error(res, "event class NEAR_MISS contradicts "
                              "AdverseEvent.actuality actual");
}
END_TEST

/* ---- the code tables against the schema ---- */

static void kebab(const char *symbol, char *code, size_t size)
{
        size_t i = 0;
        for (; symbol[i] && i + 1 < size; i++)
                code[i] = symbol[i] == '_' ? '-' : (char)tolower((unsigned char)symbol[i]);
        code[i] = '\0';
}

/* Maps the minimal resource with one code changed; returns the field's symbol (static). */
static const char *map_code(const char *enum_name, const char *code)
{
        static char symbol[64];
        json_t *res = load("adverse-event-minimal.json");
        const char *field = NULL;
        if (strcmp(enum_name, "Category") == 0) {
                json_object_set_new(res, "category",
                                    json_pack("[o]", coded(AVK_FHIR_CATEGORY_SYSTEM, code)));
                field = "category";
        } else {
                static const char *const exts[][3] = {
                    {"ReporterRole", "reporter-role", "reporter.role"},
                    {"CareSetting", "care-setting", "location.care_setting"},
                    {"Competence", "competence", "competence"},
                    {"HomeVisits", "home-visits", "home_visits"},
                    {"Agreement", "agreement", "agreement"},
                    {"EventClass", "event-class", "event_class"},
                };
                for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
                        if (strcmp(exts[i][0], enum_name) != 0)
                                continue;
                        char url[256];
                        snprintf(url, sizeof(url), "%s%s", AVK_FHIR_EXTENSION_BASE, exts[i][1]);
                        set_ext(res, url, "valueCode", json_string(code));
                        field = exts[i][2];
                }
        }
        ck_assert_msg(field != NULL, "no FHIR element for enum %s", enum_name);
        if (strcmp(code, "near-miss") == 0 || strcmp(code, "unsafe-condition") == 0)
                json_object_set_new(res, "actuality", json_string("potential"));
        json_t *doc = map(res);
        ck_assert_msg(doc != NULL, "%s code %s: %s", enum_name, code, map_errors);
        ck_assert_str_eq(validate(doc), "");
        snprintf(symbol, sizeof(symbol), "%s", json_string_value(at(doc, field)));
        json_decref(doc);
        return symbol;
}

START_TEST(every_enum_symbol_has_a_fhir_code)
{
        static const char *const enums[] = {"Category",   "ReporterRole", "CareSetting",
                                            "Competence", "HomeVisits",   "Agreement",
                                            "EventClass"};
        for (size_t e = 0; e < sizeof(enums) / sizeof(enums[0]); e++) {
                char fullname[128];
                snprintf(fullname, sizeof(fullname), "se.vardsamverkan.avvik.%s", enums[e]);
                const json_t *def = avk_schema_named(reported, fullname);
                ck_assert_msg(def != NULL, "no enum %s in the schema", fullname);
                const json_t *symbols = json_object_get(def, "symbols");
                ck_assert_int_gt(json_array_size(symbols), 0);
                size_t i;
                const json_t *sym;
                json_array_foreach(symbols, i, sym)
                {
                        char code[64];
                        kebab(json_string_value(sym), code, sizeof(code));
                        ck_assert_str_eq(map_code(enums[e], code), json_string_value(sym));
                }
        }
}
END_TEST

static Suite *fhir_suite(void)
{
        Suite *s = suite_create("fhir");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, complete_resource_maps_to_a_deviation_the_contract_accepts);
        tcase_add_test(tc, mapping_leaves_the_resource_unchanged);
        tcase_add_test(tc, minimal_resource_takes_the_defaults);
        tcase_add_test(tc, only_an_adverse_event_is_mapped);
        tcase_add_test(tc, unknown_category_code_names_system_and_accepted_codes);
        tcase_add_test(tc, category_is_also_read_from_event_coding);
        tcase_add_test(tc, unknown_extension_codes_name_extension_and_accepted_codes);
        tcase_add_test(tc, unknown_hl7_codes_are_named);
        tcase_add_test(tc, avvik_extension_urls_and_value_types_are_checked);
        tcase_add_test(tc, extensions_of_others_are_ignored);
        tcase_add_test(tc, governance_flags_come_from_extensions);
        tcase_add_test(tc, text_is_passed_whole_for_the_contract_to_judge);
        tcase_add_test(tc, date_without_time_is_rejected);
        tcase_add_test(tc, missing_recorded_date_names_the_element);
        tcase_add_test(tc, time_in_the_future_is_left_to_the_contract);
        tcase_add_test(tc, missing_required_pieces_name_their_fhir_elements);
        tcase_add_test(tc, deviation_id_needs_a_urn_uuid_identifier);
        tcase_add_test(tc, wrong_json_types_are_named_by_fhir_path);
        tcase_add_test(tc, unknown_elements_and_modifier_extensions_are_rejected);
        tcase_add_test(tc, samordningsnummer_maps_to_personal_id);
        tcase_add_test(tc, bad_personnummer_passes_the_mapping_and_fails_the_contract);
        tcase_add_test(tc, contract_rules_are_applied_after_the_mapping);
        tcase_add_test(tc, receiver_party_that_is_the_reporter_party_is_refused);
        tcase_add_test(tc, subject_with_another_identifier_system_is_rejected);
        tcase_add_test(tc, subject_outside_the_resource_is_not_fetched);
        tcase_add_test(tc, contained_patient_gives_sex_and_age_group);
        tcase_add_test(tc, contained_patient_identifier_wins_over_gender_and_birth_date);
        tcase_add_test(tc, birth_date_gives_an_age_group_only_when_unambiguous);
        tcase_add_test(tc, contained_reference_must_find_a_patient);
        tcase_add_test(tc, potential_event_maps_to_near_miss_without_harm);
        tcase_add_test(tc, potential_event_with_harm_is_rejected);
        tcase_add_test(tc, harm_level_follows_severity_and_fatal_outcome);
        tcase_add_test(tc, stated_event_class_is_used_and_checked);
        tcase_add_test(tc, every_enum_symbol_has_a_fhir_code);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(fhir_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
