/*
 * JSON <-> Avro: what a filing system sees - every field error at once, named
 * by path with the reason; normalisation of ids; and a lossless round trip.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract/avro_field.h"
#include "common/contract/json.h"
#include "tests/support/contract.h"

static avk_catalog_t *catalog;
static const avk_schema_t *reported;
static avro_value_t value;

static void setup(void)
{
        contract_open(&catalog, &reported, &value);
}

static void teardown(void)
{
        contract_close(catalog, &value);
}

static json_t *sample(void)
{
        json_error_t jerr;
        json_t *j = json_load_file(
            AVK_SOURCE_DIR "/deploy/samples/01-discharge-information-missing.json", 0, &jerr);
        ck_assert_msg(j != NULL, "%s", jerr.text);
        return j;
}

/* Converts doc (stolen) and returns the joined errors, "" when accepted. */
static const char *convert(json_t *doc, const struct avk_json_opts *opts)
{
        static char joined[4096];
        struct avk_errors errs;
        avk_errors_init(&errs);
        int rc = avk_json_to_avro(reported, doc, &value, opts, &errs);
        json_decref(doc);
        ck_assert_int_eq(rc != 0, avk_errors_total(&errs) != 0);
        return avk_errors_join(&errs, joined, sizeof(joined));
}

static void assert_error(const char *errors, const char *expected)
{
        ck_assert_msg(strstr(errors, expected) != NULL, "expected \"%s\" in: %s", expected, errors);
}

START_TEST(sample_round_trips_without_loss)
{
        json_t *in = sample();
        ck_assert_str_eq(convert(json_incref(in), &contract_intake), "");
        char err[256];
        json_t *out = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_msg(out != NULL, "%s", err);
        ck_assert_msg(json_equal(in, out), "round trip changed the document");
        json_decref(in);
        json_decref(out);
}
END_TEST

START_TEST(missing_required_field_is_named)
{
        json_t *doc = sample();
        json_object_del(doc, "description");
        json_object_del(json_object_get(doc, "reporter"), "unit_hsa_id");
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "description: is required");
        assert_error(errors, "reporter.unit_hsa_id: is required");
}
END_TEST

START_TEST(missing_optional_field_takes_its_default)
{
        json_t *doc = sample();
        json_object_del(doc, "discovered_at");
        json_object_del(doc, "competence");
        ck_assert_str_eq(convert(doc, &contract_intake), "");
        char err[256];
        json_t *out = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert(json_is_null(json_object_get(out, "discovered_at")));
        ck_assert_str_eq(json_string_value(json_object_get(out, "competence")), "UNKNOWN");
        json_decref(out);
}
END_TEST

START_TEST(wrong_json_types_are_named)
{
        json_t *doc = sample();
        json_object_set_new(json_object_get(doc, "harm"), "level", json_integer(3));
        json_object_set_new(json_object_get(doc, "harm"), "psychological", json_string("yes"));
        json_object_set_new(doc, "reporter", json_string("nurse"));
        json_object_set_new(doc, "occurred_at", json_integer(1700000000000));
        json_object_set_new(doc, "description", json_null());
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "harm.level: expected a symbol string, got an integer");
        assert_error(errors, "harm.psychological: expected true or false, got a string");
        assert_error(errors, "reporter: expected an object, got a string");
        assert_error(errors, "occurred_at: expected an RFC 3339 timestamp string, got an integer");
        assert_error(errors, "description: expected a string, got null");
}
END_TEST

START_TEST(unknown_enum_symbol_lists_the_allowed_ones)
{
        json_t *doc = sample();
        json_object_set_new(doc, "category", json_string("WEATHER"));
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "category: unknown symbol \"WEATHER\"; expected one of "
                             "INFORMATION_TRANSFER, DISCHARGE_PLANNING");
}
END_TEST

START_TEST(unknown_enum_symbol_falls_back_to_default_when_projecting)
{
        json_t *doc = sample();
        json_object_set_new(doc, "category", json_string("TRANSPORT"));
        struct avk_json_opts opts = {.flags = AVK_JSON_ENUM_FALLBACK};
        ck_assert_str_eq(convert(doc, &opts), "");
        char err[256];
        json_t *out = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_str_eq(json_string_value(json_object_get(out, "category")), "OTHER");
        json_decref(out);
}
END_TEST

START_TEST(unknown_field_is_rejected_at_intake_and_skipped_when_projecting)
{
        json_t *doc = sample();
        json_object_set_new(json_object_get(doc, "patient"), "name", json_string("x"));
        assert_error(convert(json_incref(doc), &contract_intake), "patient.name: unknown field");
        struct avk_json_opts opts = {.flags = AVK_JSON_IGNORE_UNKNOWN};
        ck_assert_str_eq(convert(doc, &opts), "");
}
END_TEST

START_TEST(oversized_and_empty_strings_are_rejected)
{
        json_t *doc = sample();
        char *big = malloc(8002);
        memset(big, 'a', 8001);
        big[8001] = '\0';
        json_object_set_new(doc, "description", json_string(big));
        json_object_set_new(doc, "source_system", json_string(big + 7900)); /* 101 chars */
        free(big);
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "description: is 8001 characters, at most 8000 allowed");
        assert_error(errors, "source_system: is 101 characters, at most 100 allowed");
        doc = sample();
        json_object_set_new(doc, "description", json_string(""));
        assert_error(convert(doc, &contract_intake),
                     "description: is 0 characters, at least 1 required");
}
END_TEST

START_TEST(length_limit_counts_characters_not_bytes)
{
        /* 8000 'ö' are 16000 bytes but 8000 characters: allowed. */
        json_t *doc = sample();
        char *text = malloc(16001);
        for (int i = 0; i < 8000; i++)
                memcpy(text + 2 * i, "\xc3\xb6", 2);
        text[16000] = '\0';
        json_object_set_new(doc, "description", json_string(text));
        free(text);
        ck_assert_str_eq(convert(doc, &contract_intake), "");
}
END_TEST

START_TEST(nul_character_in_a_string_is_rejected)
{
        json_t *doc = sample();
        json_object_set_new(doc, "description", json_stringn("a\0b", 3));
        assert_error(convert(doc, &contract_intake), "description: contains a NUL character");
}
END_TEST

START_TEST(identifier_rules_apply_with_field_paths)
{
        json_t *doc = sample();
        json_object_set_new(json_object_get(doc, "patient"), "personal_id",
                            json_string("194003141234"));
        json_object_set_new(json_object_get(doc, "reporter"), "unit_hsa_id",
                            json_string("SE2321000132-X"));
        json_object_set_new(json_object_get(doc, "reporter"), "party", json_string("Stockholm"));
        json_object_set_new(doc, "municipality_code", json_string("0180"));
        json_object_set_new(doc, "deviation_id", json_string("not-a-uuid"));
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "patient.personal_id: check digit is 4, expected 3");
        assert_error(errors, "reporter.unit_hsa_id: organisation number check digit is 2, "
                             "expected 1");
        assert_error(errors, "reporter.party: is not a party: expected \"VGR\" or a municipality");
        assert_error(errors, "municipality_code: '0180' is not one of the 49 municipalities");
        assert_error(errors, "deviation_id: is not a UUID");
        /* The personal id is not echoed: errors may reach logs. */
        ck_assert_ptr_null(strstr(errors, "194003141234"));
}
END_TEST

/* A receiver named with a code no municipality has is filed, for the router to flag; one that
 * is not a code at all is refused. */
START_TEST(an_unknown_named_receiver_code_is_filed)
{
        json_t *doc = sample();
        json_t *receiver = json_object_get(doc, "receiver");

        json_object_set_new(receiver, "party", json_string("1234"));
        json_object_set_new(receiver, "unit_hsa_id", json_null());
        ck_assert_str_eq(convert(doc, &contract_intake), "");
        doc = sample();
        receiver = json_object_get(doc, "receiver");
        json_object_set_new(receiver, "party", json_string("Tjörn"));
        json_object_set_new(receiver, "unit_hsa_id", json_null());
        assert_error(convert(doc, &contract_intake),
                     "receiver.party: is not a party: expected \"VGR\" or a municipality code of "
                     "4 digits");
}
END_TEST

START_TEST(identifiers_are_normalised)
{
        json_t *doc = sample();
        json_object_set_new(json_object_get(doc, "patient"), "personal_id",
                            json_string("400314-1233"));
        json_object_set_new(doc, "deviation_id",
                            json_string("3F1C2A9E-8B7D-4C1E-9A65-0D2F4B6C8E10"));
        ck_assert_str_eq(convert(doc, &contract_intake), "");
        char err[256];
        json_t *out = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(out, "patient"), "personal_id")),
            "194003141233");
        ck_assert_str_eq(json_string_value(json_object_get(out, "deviation_id")),
                         "3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10");
        json_decref(out);
}
END_TEST

START_TEST(timestamps_take_offsets_and_reject_the_future)
{
        json_t *doc = sample();
        json_object_set_new(doc, "occurred_at", json_string("2026-11-16T16:40:00+01:00"));
        json_object_set_new(doc, "reported_at", json_string("2026-11-23T12:04:59Z"));
        ck_assert_str_eq(convert(doc, &contract_intake), "");
        char err[256];
        json_t *out = avk_json_from_avro(reported, &value, err, sizeof(err));
        ck_assert_str_eq(json_string_value(json_object_get(out, "occurred_at")),
                         "2026-11-16T15:40:00.000Z");
        json_decref(out);

        doc = sample();
        json_object_set_new(doc, "reported_at", json_string("2026-11-23T12:05:01Z"));
        json_object_set_new(doc, "occurred_at", json_string("2026-02-30T10:00:00Z"));
        json_object_set_new(doc, "discovered_at", json_string("yesterday"));
        const char *errors = convert(doc, &contract_intake);
        assert_error(errors, "reported_at: is 5 min 1 s in the future");
        assert_error(errors, "occurred_at: is not an RFC 3339 timestamp");
        assert_error(errors, "discovered_at: is not an RFC 3339 timestamp");
}
END_TEST

START_TEST(every_error_is_reported_at_once_and_bounded)
{
        json_t *doc = json_object();
        for (int i = 0; i < 40; i++) {
                char key[16];
                snprintf(key, sizeof(key), "junk%d", i);
                json_object_set_new(doc, key, json_true());
        }
        struct avk_errors errs;
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(reported, doc, &value, &contract_intake, &errs), -1);
        json_decref(doc);
        /* 12 fields without a default missing, plus 40 unknown ones. */
        ck_assert_uint_eq(avk_errors_total(&errs), 52);
        ck_assert_uint_eq(errs.cnt, AVK_ERRORS_MAX);
        char joined[16384];
        assert_error(avk_errors_join(&errs, joined, sizeof(joined)), "(and 20 more)");
}
END_TEST

START_TEST(int_out_of_range_is_rejected)
{
        const avk_schema_t *routed = avk_catalog_by_name(catalog, "DeviationRouted");
        avro_value_t v;
        avro_generic_value_new(avk_schema_iface(routed), &v);
        json_t *doc = json_pack("{s:I}", "hop", (json_int_t)1 << 40);
        struct avk_errors errs;
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(routed, doc, &v, &contract_intake, &errs), -1);
        char joined[4096];
        assert_error(avk_errors_join(&errs, joined, sizeof(joined)),
                     "hop: 1099511627776 does not fit in 32 bits");
        json_decref(doc);
        avro_value_decref(&v);
}
END_TEST

START_TEST(invalid_utf8_in_a_value_is_an_error_on_the_way_out)
{
        ck_assert_str_eq(convert(sample(), &contract_intake), "");
        avro_value_t field;
        ck_assert_int_eq(avro_value_get_by_name(&value, "description", &field, NULL), 0);
        ck_assert_int_eq(avro_value_set_string(&field, "\xff\xfe"), 0);
        char err[256] = "";
        ck_assert_ptr_null(avk_json_from_avro(reported, &value, err, sizeof(err)));
        ck_assert_str_eq(err, "a string is not valid UTF-8");
}
END_TEST

START_TEST(time_format_and_parse_are_inverse)
{
        const int64_t cases[] = {0, 1, 999, -1, -1001, CONTRACT_NOW_MS, 253402300799999LL};
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[32];
                int64_t back;
                avk_json_format_time(cases[i], buf);
                ck_assert_int_eq(avk_json_parse_time(buf, &back), 0);
                ck_assert_int_eq(back, cases[i]);
        }
        int64_t ms;
        ck_assert_int_eq(avk_json_parse_time("1970-01-01T00:00:00.5Z", &ms), 0);
        ck_assert_int_eq(ms, 500);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T13:05:00", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T13:05:00Zjunk", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T13:05:00+24:00", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T13:05:00.Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("", &ms), -1);
}
END_TEST

/* Every day from 1900 to 2100 at an hour that moves through the day, and
 * the calendar's edges: a date the month lacks is refused, not rolled
 * over into the next month. */
START_TEST(time_parse_knows_the_calendar)
{
        for (int64_t s = -2208988800LL; s < 4102444800LL; s += 86400 + 3607) {
                char buf[32];
                int64_t back;
                avk_json_format_time(s * 1000, buf);
                ck_assert_msg(avk_json_parse_time(buf, &back) == 0 && back == s * 1000, "%s", buf);
        }
        int64_t ms;
        ck_assert_int_eq(avk_json_parse_time("2024-02-29T12:00:00Z", &ms), 0);
        ck_assert_int_eq(avk_json_parse_time("2000-02-29T12:00:00Z", &ms), 0);
        ck_assert_int_eq(avk_json_parse_time("2026-02-29T12:00:00Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("1900-02-29T12:00:00Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-02-31T12:00:00Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-04-31T12:00:00Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-12-31T23:59:60Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T14:05:00+01:00", &ms), 0);
        ck_assert_int_eq(ms, 1795179900000LL);
}
END_TEST

/* A timestamp with all its digits is read without strptime()'s rules for
 * short fields, to the same verdicts: each field just out of range is
 * refused, as is every prefix of a timestamp (each one alone in memory
 * of its length, so that the sanitizer sees a read past its end), while
 * the short fields glibc's strptime() reads are still read. */
START_TEST(time_parse_in_the_full_form_refuses_what_strptime_refused)
{
        static const char *const refused[] = {
            "2026-00-20T13:05:00Z", "2026-13-20T13:05:00Z", "2026-11-00T13:05:00Z",
            "2026-11-32T13:05:00Z", "2026-11-20T24:05:00Z", "2026-11-20T13:60:00Z",
            "2026-11-20T13:05:62Z", "2026-11-20t13:05:00Z", "2026/11/20T13:05:00Z",
            "2026-11-20T13:05:0xZ", "2026-11-20T13-05:00Z", "2026-1a-20T13:05:00Z",
        };
        int64_t ms;
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
                ck_assert_msg(avk_json_parse_time(refused[i], &ms) == -1, "%s", refused[i]);
        ck_assert_int_eq(avk_json_parse_time("2026-11-20T13:05:61Z", &ms), 0);
        ck_assert_int_eq(ms, 1795179961000LL);
        ck_assert_int_eq(avk_json_parse_time("2026-1-5T2:3:4Z", &ms), 0);
        ck_assert_int_eq(ms, 1767578584000LL);
        static const char whole[] = "2026-11-20T13:05:00.250+01:00";
        for (size_t len = 0; len < sizeof(whole) - 1; len++) {
                char *prefix = malloc(len + 1);
                ck_assert_ptr_nonnull(prefix);
                memcpy(prefix, whole, len);
                prefix[len] = '\0';
                ck_assert_msg(avk_json_parse_time(prefix, &ms) == -1, "%s", prefix);
                free(prefix);
        }
        ck_assert_int_eq(avk_json_parse_time(whole, &ms), 0);
        ck_assert_int_eq(ms, 1795176300250LL);
}
END_TEST

/* A deviation in collaboration is between two parties: naming one's own
 * party as receiver (and then answering it oneself) is refused at intake. */
START_TEST(naming_the_reporters_own_party_as_receiver_is_refused)
{
        json_t *doc = sample();
        json_object_set_new(json_object_get(doc, "receiver"), "party", json_string("1480"));
        const char *errors = convert(json_incref(doc), &contract_intake);
        ck_assert_str_eq(errors,
                         "receiver.party: is 1480, the same as reporter.party: a deviation in "
                         "collaboration is between two parties, and a party cannot answer its own "
                         "deviation; name the other party, or null to let the router propose one");
        /* Reading records already on a topic applies no intake rule. */
        struct avk_json_opts projecting = {.flags = AVK_JSON_ENUM_FALLBACK};
        ck_assert_str_eq(convert(json_incref(doc), &projecting), "");
        /* Another party, or none, is fine. */
        json_object_set_new(json_object_get(doc, "receiver"), "party", json_null());
        ck_assert_str_eq(convert(json_incref(doc), &contract_intake), "");
        json_object_set_new(json_object_get(doc, "receiver"), "party", json_string("1490"));
        ck_assert_str_eq(convert(doc, &contract_intake), "");
}
END_TEST

/* A party that rejects a deviation suggests another party; the county's triage desk, which
 * answers in the name of its record_party (VGR), may pass it on to that party (docs/routing.md,
 * "Who triages by hand"). A response without a responder is the party's. */
START_TEST(a_rejection_suggesting_the_responding_party_itself_is_refused_unless_the_desks)
{
        const avk_schema_t *response = avk_catalog_by_name(catalog, "DeviationResponse");
        ck_assert_ptr_nonnull(response);
        avro_value_t v;
        ck_assert_int_eq(avro_generic_value_new(avk_schema_iface(response), &v), 0);
        json_error_t jerr;
        json_t *doc = json_loads("{\"response_id\":\"5b0c9c1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d\","
                                 "\"deviation_id\":\"3f1c2a9e-8b7d-4c1e-9a65-0d2f4b6c8e10\","
                                 "\"responded_at\":\"2026-11-20T09:00:00.000Z\",\"party\":\"VGR\","
                                 "\"kind\":\"REJECTED_WRONG_RECEIVER\",\"suggested_receiver\":"
                                 "\"VGR\",\"comment\":\"Inte vår.\"}",
                                 0, &jerr);
        ck_assert_msg(doc != NULL, "%s", jerr.text);
        struct avk_errors errs;
        char joined[1024];
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(response, doc, &v, &contract_intake, &errs), -1);
        ck_assert_str_eq(avk_errors_join(&errs, joined, sizeof(joined)),
                         "suggested_receiver: is VGR, the same as party: a receiver that rejects a "
                         "deviation as not its own suggests another party, or null");
        json_object_set_new(doc, "responder", json_string("PARTY"));
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(response, doc, &v, &contract_intake, &errs), -1);
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        json_object_set_new(doc, "responder", json_string("TRIAGE_DESK"));
        avk_errors_init(&errs);
        ck_assert_msg(avk_json_to_avro(response, doc, &v, &contract_intake, &errs) == 0, "%s",
                      avk_errors_join(&errs, joined, sizeof(joined)));
        ck_assert_str_eq(avk_avro_text(&v, "responder"), "TRIAGE_DESK");
        json_object_set_new(doc, "responder", json_string("PARTY"));
        json_object_set_new(doc, "suggested_receiver", json_string("1480"));
        avk_errors_init(&errs);
        ck_assert_int_eq(avk_json_to_avro(response, doc, &v, &contract_intake, &errs), 0);
        json_decref(doc);
        avro_value_decref(&v);
}
END_TEST

/* The fields are read as glibc's strptime read them before the parser
 * did it itself: one or two digits, white space before a number, the year
 * in at most four digits; so the timestamps accepted did not change. */
START_TEST(time_parse_reads_fields_as_strptime_did)
{
        int64_t canonical, ms;
        ck_assert_int_eq(avk_json_parse_time("2026-01-05T02:03:04Z", &canonical), 0);
        ck_assert_int_eq(avk_json_parse_time("2026-1-5T2:3:4Z", &ms), 0);
        ck_assert_int_eq(ms, canonical);
        ck_assert_int_eq(avk_json_parse_time("2026- 1-05T 2:03: 4Z", &ms), 0);
        ck_assert_int_eq(ms, canonical);
        ck_assert_int_eq(avk_json_parse_time(" 2026-01-05T02:03:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("20261-01-05T02:03:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-13-05T02:03:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-01-05 02:03:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-01-05T24:03:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-01-05T02:60:04Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-01-05T02:03:62Z", &ms), -1);
        ck_assert_int_eq(avk_json_parse_time("2026-01-05T02:03Z", &ms), -1);
}
END_TEST

static Suite *json_suite(void)
{
        Suite *s = suite_create("json");
        TCase *tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, sample_round_trips_without_loss);
        tcase_add_test(tc, missing_required_field_is_named);
        tcase_add_test(tc, an_unknown_named_receiver_code_is_filed);
        tcase_add_test(tc, missing_optional_field_takes_its_default);
        tcase_add_test(tc, wrong_json_types_are_named);
        tcase_add_test(tc, unknown_enum_symbol_lists_the_allowed_ones);
        tcase_add_test(tc, unknown_enum_symbol_falls_back_to_default_when_projecting);
        tcase_add_test(tc, unknown_field_is_rejected_at_intake_and_skipped_when_projecting);
        tcase_add_test(tc, oversized_and_empty_strings_are_rejected);
        tcase_add_test(tc, length_limit_counts_characters_not_bytes);
        tcase_add_test(tc, nul_character_in_a_string_is_rejected);
        tcase_add_test(tc, identifier_rules_apply_with_field_paths);
        tcase_add_test(tc, identifiers_are_normalised);
        tcase_add_test(tc, timestamps_take_offsets_and_reject_the_future);
        tcase_add_test(tc, every_error_is_reported_at_once_and_bounded);
        tcase_add_test(tc, int_out_of_range_is_rejected);
        tcase_add_test(tc, invalid_utf8_in_a_value_is_an_error_on_the_way_out);
        tcase_add_test(tc, time_format_and_parse_are_inverse);
        tcase_add_test(tc, time_parse_knows_the_calendar);
        tcase_add_test(tc, time_parse_in_the_full_form_refuses_what_strptime_refused);
        tcase_add_test(tc, naming_the_reporters_own_party_as_receiver_is_refused);
        tcase_add_test(
            tc, a_rejection_suggesting_the_responding_party_itself_is_refused_unless_the_desks);
        tcase_add_test(tc, time_parse_reads_fields_as_strptime_did);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(json_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
