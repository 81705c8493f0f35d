/*
 * Unit tests for avk_rules with the real rules (data/routing-rules.json) and
 * directory (data/directory.json): a table of cases taken from the
 * health-care agreement, each row citing the seed document and section it
 * comes from (source documents by file name: docs/agreement.md), covering every
 * allocation item in both directions; then the named receiver, triage,
 * re-routing after "wrong receiver" and the hop bound.
 *
 * The expected receivers are written out here and the decisions come from
 * the rules file only, so a changed rule fails a row: the test
 * every_rule_decides_some_row flips each rule's party in turn and requires a
 * row to fail. The loader's errors are tested on fixtures in tests/data/rules/.
 */
#include "consumer/route/rules.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/support/check_text.h"
#include "tests/support/routing_fixture.h"
#include "tests/support/test_data.h"

#define RULES_FILE    AVK_SOURCE_DIR "/data/routing-rules.json"
#define SEEDS_DIR     AVK_SOURCE_DIR "/../shared/seeds"
#define FIXTURE(name) AVK_TEST_DATA "/rules/" name

/* Source documents, by file name (docs/agreement.md). */
#define SEED_2021 "001_d2508e3e58e7f3ae.txt" /* Hälso- och sjukvårdsavtalet, webb 2021 */
#define SEED_2025 "000_a90ff52cdeecaa0e.txt" /* Beslutsunderlag slutförslag, SRO 2025 */
#define SEED_2022 "002_e1e4bd6a19612320.txt" /* Färdplan och avtal, mars 2022 */
#define SEED_2024 "004_6ff8ed775027230e.txt" /* Mötesanteckning arbetsgrupp 2024-12-10 */

#define VVG_UNIT "SE2321000131-E000000000001" /* the triage desk of data/directory.json */

static avk_catalog_t *catalog;
static const avk_schema_t *reported;
static avk_directory_t *dir;
static avk_rules_t *rules;

/* 2026-06-01T00:00Z: under the agreement in force until 2026-12-31. */
#define OCCURRED_2026 1780272000000LL
/* 2027-06-01T00:00Z: under the 2027-2030 agreement. */
#define OCCURRED_2027 1811808000000LL

/* What a deviation says about itself, as routing reads it. */
struct situation {
        const char *reporter, *location, *municipality;
        const char *category, *care_setting, *competence, *home_visits, *agreement;
        long long occurred_at_ms; /* 0: OCCURRED_2026 */
};

static struct avk_rules_input input_of(const struct situation *s)
{
        struct avk_rules_input in = {
            .reporter_party = s->reporter,
            .location_party = s->location,
            .municipality_code = s->municipality,
            .category = s->category,
            .care_setting = s->care_setting,
            .competence = s->competence,
            .home_visits = s->home_visits,
            .agreement = s->agreement,
            .event_class = "INCIDENT_WITHOUT_HARM",
            .harm_level = "NONE",
            .occurred_at_ms = s->occurred_at_ms ? s->occurred_at_ms : OCCURRED_2026,
        };
        return in;
}

/* ---- the allocation: first routing, no receiver named ---- */

struct allocation_case {
        const char *clause; /* seed file, section: where the case comes from */
        const char *what;
        struct situation s;
        const char *party; /* expected receiver */
        const char *rule;  /* expected rule id */
};

/* Columns of s: reporter, location, municipality, category, care_setting,
 * competence, home_visits, agreement. */
static const struct allocation_case allocation[] = {
    /* Competences that decide alone. */
    {SEED_2021 ", Gemensamt ansvar och samverkan: VGR ansvarar för läkare",
     "home care nurse: the physician never came to a patient at home",
     {"1480", "VGR", "1480", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "PHYSICIAN",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-PHYSICIAN"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: VGR ansvarar för läkare",
     "special housing: the health centre physician's order was missing",
     {"1490", "VGR", "1490", "MEDICATION", "SPECIAL_HOUSING", "PHYSICIAN", "NONE", "UNKNOWN", 0},
     "VGR",
     "R-REGION-PHYSICIAN"},
    {SEED_2022 ", ÖVERENSKOMMELSE LÄKARMEDVERKAN I KOMMUNAL PRIMÄRVÅRD: tillgänglighet till "
               "läkare hela dygnet",
     "special housing: no physician reachable at night (deploy/samples/02)",
     {"1490", "1490", "1490", "PHYSICIAN_AVAILABILITY", "SPECIAL_HOUSING", "UNKNOWN", "NONE",
      "PHYSICIAN_RESPONSIBILITY", 0},
     "VGR",
     "R-REGION-PHYSICIAN-AVAILABILITY"},
    {SEED_2025 ", Förslag till ställningstagande: överenskommelse munhälsa - uppsökande och "
               "nödvändig tandvård",
     "special housing: the outreach dental team did not come to a broken denture",
     {"1401", "VGR", "1401", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "DENTAL", "NONE", "UNKNOWN",
      0},
     "VGR",
     "R-REGION-DENTAL-OUTREACH"},
    {SEED_2021 ", A.7 Avtalets omfattning och uppbyggnad: samverkan med kommunens socialtjänst",
     "psychiatric clinic: social services did not act on the joint plan",
     {"VGR", "1485", "1485", "MENTAL_HEALTH_ADDICTION", "OUTPATIENT_CLINIC", "SOCIAL_SERVICES",
      "NONE", "MENTAL_HEALTH_ADDICTION", 0},
     "1485",
     "R-MUNI-SOCIAL-SERVICES"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: VGR ansvarar för ... övriga kompetenser",
     "home care: the dietitian's advice never came",
     {"1481", "VGR", "1481", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "OTHER_COMPETENCE",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-OTHER-COMPETENCE"},
    /* Joint duties: the side that failed is the reporter's counterpart. */
    {SEED_2025 ", Kommunernas betalningsansvar vid in- och utskrivning från slutna hälso- och "
               "sjukvård",
     "ward: the municipality did not take home a patient ready for discharge",
     {"VGR", "VGR", "1480", "DISCHARGE_PLANNING", "INPATIENT", "UNKNOWN", "UNKNOWN",
      "DISCHARGE_PAYMENT", 0},
     "1480",
     "R-MUNI-DISCHARGE-TAKEOVER"},
    {SEED_2022 ", ÖVERENSKOMMELSE SAMVERKAN VID IN- OCH UTSKRIVNING: planering finns för "
               "insatser av den regionfinansierade öppna vården",
     "home care: the nursing discharge note was missing (deploy/samples/01)",
     {"1480", "VGR", "1480", "DISCHARGE_PLANNING", "INPATIENT", "NURSE", "LONG_TERM_REGULAR",
      "DISCHARGE_PAYMENT", 0},
     "VGR",
     "R-REGION-DISCHARGE-PLANNING"},
    {SEED_2021 ", Kommunens ansvar: erbjudande om SIP ... mellan kommun och VGR",
     "clinic: the municipality did not come to the SIP meeting",
     {"VGR", "VGR", "1463", "SIP", "OUTPATIENT_CLINIC", "UNKNOWN", "NONE", "HEALTH_CARE_AGREEMENT",
      0},
     "1463",
     "R-MUNI-SIP"},
    {SEED_2021 ", Kommunens ansvar: erbjudande om SIP ... mellan kommun och VGR",
     "home care: the health centre did not come to the SIP meeting",
     {"1463", "1463", "1463", "SIP", "HOME_HEALTH_CARE", "NURSE", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-SIP"},
    /* The region's care settings. */
    {SEED_2025 ", Hälso- och sjukvård i hemmet: specialiserad vård i hemmet ... ett ansvar för "
               "VGR",
     "home care: the ASIH nurse missed a visit",
     {"1490", "VGR", "1490", "CARE_AND_TREATMENT", "SPECIALISED_HOME_CARE", "NURSE",
      "SHORT_TERM_OR_INFREQUENT", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-SPECIALISED-HOME-CARE"},
    {SEED_2022 ", Parternas ansvar - kompletteringar: samtliga hälso- och sjukvårdsinsatser "
               "... HVB",
     "social services: a child placed at an HVB home got no health assessment",
     {"1480", "1480", "1480", "CHILDREN_YOUNG_PEOPLE", "HVB_HOME", "NURSE", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-HVB"},
    {SEED_2021 ", Regionens ansvar: öppen och sluten vård, akut och planerad vård",
     "home care: a medication change in hospital was not passed on",
     {"1482", "VGR", "1482", "MEDICATION", "INPATIENT", "UNKNOWN", "UNKNOWN",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-INPATIENT"},
    {SEED_2021 ", Regionens ansvar: öppen och sluten vård, akut och planerad vård",
     "home care: the emergency department sent the patient home without notice",
     {"1488", "VGR", "1488", "INFORMATION_TRANSFER", "EMERGENCY", "UNKNOWN", "UNKNOWN", "UNKNOWN",
      0},
     "VGR",
     "R-REGION-ACUTE"},
    {SEED_2021 ", Regionens ansvar: öppen och sluten vård, akut och planerad vård",
     "special housing: the ambulance crew left no report",
     {"1496", "VGR", "1496", "INFORMATION_TRANSFER", "PREHOSPITAL", "UNKNOWN", "UNKNOWN", "UNKNOWN",
      0},
     "VGR",
     "R-REGION-ACUTE"},
    {SEED_2021 ", Regionens ansvar: patienter som ... kan besöka VGRs mottagningar",
     "home care: the health centre did not answer a nurse's referral",
     {"1435", "VGR", "1435", "INFORMATION_TRANSFER", "REGION_PRIMARY_CARE", "UNKNOWN", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-CLINIC"},
    {SEED_2021 ", Regionens ansvar: rehabiliterings- och habiliteringsinsatser inom specialist- "
               "samt primärvård",
     "home care: a clinic occupational therapist prescribed an aid without handover",
     {"1480", "VGR", "1480", "ASSISTIVE_DEVICES", "OUTPATIENT_CLINIC", "OCCUPATIONAL_THERAPIST",
      "NONE", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-CLINIC"},
    {SEED_2021 ", Lagstiftning: för tandvård finns särskilda bestämmelser",
     "special housing: the dental clinic sent no treatment plan",
     {"1493", "VGR", "1493", "INFORMATION_TRANSFER", "DENTAL", "UNKNOWN", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-DENTAL-CARE"},
    /* The municipality's competences in its own settings. */
    {SEED_2021 ", Gemensamt ansvar och samverkan: kommunen ansvarar för insatser utförda av "
               "sjuksköterska",
     "ward: home care did not give the insulin ordered at discharge",
     {"VGR", "1480", "1480", "MEDICATION", "HOME_HEALTH_CARE", "NURSE", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "R-MUNI-NURSE"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: ... arbetsterapeut",
     "children's hospital: the lift was not in place at home (deploy/samples/03)",
     {"VGR", "1435", "1435", "ASSISTIVE_DEVICES", "HOME_HEALTH_CARE", "OCCUPATIONAL_THERAPIST",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "1435",
     "R-MUNI-OCCUPATIONAL-THERAPIST"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: ... fysioterapeut",
     "rehabilitation clinic: the training plan was not followed at daily activity",
     {"VGR", "1496", "1496", "CARE_AND_TREATMENT", "DAY_ACTIVITY", "PHYSIOTHERAPIST", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "1496",
     "R-MUNI-PHYSIOTHERAPIST"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: kommunen ansvarar för ... sjuksköterska",
     "Folktandvården: staff skipped the daily oral care the dentist ordered",
     {"VGR", "1466", "1466", "ORAL_HEALTH", "SPECIAL_HOUSING", "NURSE", "NONE", "ORAL_HEALTH", 0},
     "1466",
     "R-MUNI-NURSE"},
    {SEED_2025 ", Inledning (Avtalet omfattar alla åldrar)",
     "a child in home health care: allocated as an adult would be",
     {"VGR", "1480", "1480", "CHILDREN_YOUNG_PEOPLE", "HOME_HEALTH_CARE", "NURSE",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "R-MUNI-NURSE"},
    /* Sub-agreements. */
    {SEED_2025 ", Regionens läkaransvar i kommunal primärvård",
     "special housing: the physician's rounds were cancelled",
     {"1487", "1487", "1487", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "UNKNOWN", "NONE",
      "PHYSICIAN_RESPONSIBILITY", 0},
     "VGR",
     "R-REGION-PHYSICIAN-AGREEMENT"},
    {SEED_2025 ", Förslag till ställningstagande: överenskommelse munhälsa",
     "special housing: no oral health assessment was made",
     {"1466", "1466", "1466", "ORAL_HEALTH", "SPECIAL_HOUSING", "UNKNOWN", "NONE", "ORAL_HEALTH",
      0},
     "VGR",
     "R-REGION-ORAL-HEALTH"},
    /* The municipality's housing and activities. */
    {SEED_2021 ", Kommunens ansvar: särskilt boende",
     "hospital: special housing did not follow up after discharge",
     {"VGR", "1492", "1492", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "UNKNOWN", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "1492",
     "R-MUNI-SPECIAL-HOUSING"},
    {SEED_2021 ", Kommunens ansvar: bostad med särskild service",
     "neurology clinic: the epilepsy plan was not followed at an LSS group home",
     {"VGR", "1441", "1441", "CARE_AND_TREATMENT", "HOUSING_WITH_SPECIAL_SERVICE", "UNKNOWN",
      "NONE", "HEALTH_CARE_AGREEMENT", 0},
     "1441",
     "R-MUNI-SPECIAL-HOUSING"},
    {SEED_2021 ", Lagstiftning: personer i särskilda boendeformer",
     "ward: wound care was not continued at a short-term stay",
     {"VGR", "1470", "1470", "CARE_AND_TREATMENT", "SHORT_TERM_STAY", "UNKNOWN", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "1470",
     "R-MUNI-SPECIAL-HOUSING"},
    {SEED_2021 ", Kommunens ansvar: daglig verksamhet, (LSS)",
     "habilitation: seizure medication was not given at daily activity",
     {"VGR", "1496", "1496", "MEDICATION", "DAY_ACTIVITY", "UNKNOWN", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "1496",
     "R-MUNI-DAY-ACTIVITY"},
    /* Home visits: duration and frequency. */
    {SEED_2025 ", Långvarigt behov och frekvens: VGR ansvarar för tillfälliga behov av hembesök",
     "municipality: the district nurse missed short-term home visits",
     {"1480", "1480", "1480", "CARE_AND_TREATMENT", "OTHER", "NURSE", "SHORT_TERM_OR_INFREQUENT",
      "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-SHORT-HOME-VISITS"},
    {SEED_2025 ", Långvarigt behov och frekvens: VGR ansvarar för ... sällan förekommande behov",
     "home care asked to make infrequent visits that are the region's",
     {"1440", "1440", "1440", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "UNKNOWN",
      "SHORT_TERM_OR_INFREQUENT", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "R-REGION-SHORT-HOME-VISITS"},
    {SEED_2025 ", Långvarigt behov och frekvens: Kommunen ansvarar för hembesök när behovet "
               "bedöms kvarstå",
     "health centre: long-term regular home visits were not taken over",
     {"VGR", "1480", "1480", "CARE_AND_TREATMENT", "OTHER", "UNKNOWN", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "R-MUNI-LONG-HOME-VISITS"},
    {SEED_2021 ", Lagstiftning: kommunerna ansvaret för hälso- och sjukvård i hemmet sedan 1999",
     "ward: home health care never started after discharge",
     {"VGR", "1415", "1415", "INFORMATION_TRANSFER", "HOME_HEALTH_CARE", "UNKNOWN", "UNKNOWN",
      "HEALTH_CARE_AGREEMENT", 0},
     "1415",
     "R-MUNI-HOME-HEALTH-CARE"},
    {SEED_2025 ", Avtalens relation och förutsättningar: hälso- och sjukvård ... i ordinärt "
               "boende",
     "health centre: home help gave a double dose under its delegation in ordinary housing",
     {"VGR", "1487", "1487", "MEDICATION", "ORDINARY_HOUSING", "NURSE", "NONE",
      "HEALTH_CARE_AGREEMENT", 0},
     "1487",
     "R-MUNI-ORDINARY-HOUSING"},
    /* From 2027 other competences are a joint duty: the rule names triage. */
    {SEED_2025 ", Viktiga förändringar efter remissbearbetning: gemensamt ansvar ... övriga "
               "kompetenser",
     "special housing, 2027: the dietitian the health centre should arrange never came",
     {"1496", "VGR", "1496", "CARE_AND_TREATMENT", "REGION_PRIMARY_CARE", "OTHER_COMPETENCE",
      "NONE", "HEALTH_CARE_AGREEMENT", OCCURRED_2027},
     "VGR",
     "R-JOINT-OTHER-COMPETENCE-2027"},
    /* Nothing in the allocation decides: triage (rule "TRIAGE"). */
    {SEED_2022 ", ÖVERENSKOMMELSE SAMVERKAN KRING PERSONER MED PSYKISK FUNKTIONSNEDSÄTTNING: "
               "gemensamma ansvarsområden",
     "psychiatry: a joint addiction matter nothing in the allocation settles",
     {"VGR", "1480", "1480", "MENTAL_HEALTH_ADDICTION", "OTHER", "UNKNOWN", "UNKNOWN",
      "MENTAL_HEALTH_ADDICTION", 0},
     "1480",
     "TRIAGE"},
    {SEED_2024 ", Nuläge: akuta placeringar av barn ... oklart vem som har hälso- och "
               "sjukvårdsansvaret",
     "social services: acute placement of a child, responsibility unclear",
     {"1480", "1480", "1480", "CHILDREN_YOUNG_PEOPLE", "OTHER", "UNKNOWN", "UNKNOWN", "UNKNOWN", 0},
     "VGR",
     "TRIAGE"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: parterna har ett gemensamt ansvar",
     "ward: a self-care plan fell between the parties",
     {"VGR", "VGR", "1490", "SELF_CARE", "OTHER", "UNKNOWN", "NONE", "UNKNOWN", 0},
     "1490",
     "TRIAGE"},
};

#define ALLOCATION_CNT (sizeof(allocation) / sizeof(allocation[0]))

/* 0 when the case decides as expected; else 1 with what differs in why. */
static int check_allocation(const avk_rules_t *r, const struct allocation_case *c, char *why,
                            size_t why_size)
{
        struct avk_rules_input in = input_of(&c->s);
        struct avk_rules_decision d;
        int triage = strcmp(c->rule, AVK_RULES_ID_TRIAGE) == 0 || strstr(c->rule, "-JOINT-");

        avk_rules_decide(r, dir, &in, &d);
        if (strcmp(d.receiver_party, c->party) == 0 && strcmp(d.rule_id, c->rule) == 0 &&
            d.kind == (triage ? AVK_RULES_TRIAGE : AVK_RULES_AGREEMENT_RULE) && d.hop == 0)
                return 0;
        snprintf(why, why_size, "%s [%s]: expected %s by %s, got %s by %s (%s): %s", c->what,
                 c->clause, c->party, c->rule, d.receiver_party, d.rule_id,
                 avk_rules_decision_symbol(d.kind), d.reason);
        return 1;
}

START_TEST(allocation_follows_the_agreement)
{
        char why[2048];

        ck_assert_msg(check_allocation(rules, &allocation[_i], why, sizeof(why)) == 0, "row %d: %s",
                      _i, why);
}
END_TEST

START_TEST(a_rule_decision_names_the_rule_what_matched_and_the_clause)
{
        struct situation s = {"VGR",
                              "1480",
                              "1480",
                              "MEDICATION",
                              "HOME_HEALTH_CARE",
                              "NURSE",
                              "LONG_TERM_REGULAR",
                              "UNKNOWN",
                              0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        avk_rules_decide(rules, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, "R-MUNI-NURSE");
        ck_assert_str_eq(d.receiver_unit_hsa_id, "");
        ck_assert_contains(d.reason, "Regel R-MUNI-NURSE gäller (care_setting HOME_HEALTH_CARE, "
                                     "competence NURSE): I kommunal hälso- och sjukvård är "
                                     "sjuksköterskor kommunens. Mottagare: Göteborg (1480).");
        ck_assert_contains(d.reason, "Klausul: Hälso- och sjukvårdsavtalet (vardsamverkan.se, "
                                     "2021), \"Gemensamt ansvar och samverkan\": \"kommunen "
                                     "ansvarar för insatser utförda av sjuksköterska, "
                                     "arbetsterapeut och fysioterapeut\".");
}
END_TEST

START_TEST(triage_says_what_no_rule_matched)
{
        struct situation s = {"1480",  "1480",    "1480",    "CHILDREN_YOUNG_PEOPLE",
                              "OTHER", "UNKNOWN", "UNKNOWN", "UNKNOWN",
                              0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        avk_rules_decide(rules, dir, &in, &d);
        ck_assert_int_eq(d.kind, AVK_RULES_TRIAGE);
        ck_assert_str_eq(d.receiver_unit_hsa_id, "");
        ck_assert_contains(d.reason, "Ingen regel i avtalet gäller (reporter MUNICIPALITY, "
                                     "category CHILDREN_YOUNG_PEOPLE, care_setting OTHER, "
                                     "competence UNKNOWN, home_visits UNKNOWN, agreement UNKNOWN, "
                                     "event_class INCIDENT_WITHOUT_HARM, harm_level NONE, period "
                                     "UNTIL_2026).");
        ck_assert_contains(d.reason, "Samordnaren hos Västra Götalandsregionen (VGR) sorterar "
                                     "den: regionen, motpart till den rapporterande kommunen.");
}
END_TEST

START_TEST(a_rule_sends_the_deviation_to_the_unit_where_it_happened)
{
        struct situation s = {"1482",    "VGR",     "1482", "MEDICATION", "INPATIENT", "UNKNOWN",
                              "UNKNOWN", "UNKNOWN", 0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        in.location_unit_hsa_id = "SE2321000131-E000000012345";
        avk_rules_decide(rules, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, "R-REGION-INPATIENT");
        ck_assert_str_eq(d.receiver_unit_hsa_id, "SE2321000131-E000000012345");
        ck_assert_contains(d.reason, "Enhet: Sahlgrenska Universitetssjukhuset, Medicinavdelning "
                                     "31 (SE2321000131-E000000012345), där händelsen inträffade.");
        /* A unit of another party than the receiver's is not used. */
        in.location_unit_hsa_id = "SE2120001215-HSK0042";
        avk_rules_decide(rules, dir, &in, &d);
        ck_assert_str_eq(d.receiver_party, "VGR");
        ck_assert_str_eq(d.receiver_unit_hsa_id, "");
}
END_TEST

/* ---- a receiver named by the reporter ---- */

struct named_case {
        const char *clause;
        const char *what;
        const char *named_party, *named_unit, *location_unit;
        struct situation s;
        const char *party, *unit; /* expected; unit "" for the party's coordinator */
        enum avk_rules_decision_kind kind;
        const char *rule;
        const char *reason_part;
};

static const struct named_case named[] = {
    {SEED_2021 ", A.13 Avvikelser (DOMAIN.md: the reporter picks the receiving organisation)",
     "deploy/samples/01: the reporter names the ward",
     "VGR",
     "SE2321000131-E000000012345",
     "SE2321000131-E000000012345",
     {"1480", "VGR", "1480", "DISCHARGE_PLANNING", "INPATIENT", "PHYSICIAN", "LONG_TERM_REGULAR",
      "DISCHARGE_PAYMENT", 0},
     "VGR",
     "SE2321000131-E000000012345",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "Rapportören angav Västra Götalandsregionen (VGR) som mottagare. Enhet: Sahlgrenska "
     "Universitetssjukhuset, Medicinavdelning 31 (SE2321000131-E000000012345)."},
    {SEED_2021 ", A.13 Avvikelser",
     "deploy/samples/02: the reporter names VGR without a unit",
     "VGR",
     NULL,
     "SE2120001561-SABO7",
     {"1490", "1490", "1490", "PHYSICIAN_AVAILABILITY", "SPECIAL_HOUSING", "PHYSICIAN", "NONE",
      "PHYSICIAN_RESPONSIBILITY", 0},
     "VGR",
     "",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "Rapportören angav Västra Götalandsregionen (VGR) som mottagare."},
    {SEED_2021 ", A.13 Avvikelser",
     "named party, the unit where it happened is that party's",
     "VGR",
     NULL,
     "SE2321000131-E000000012345",
     {"1480", "VGR", "1480", "MEDICATION", "INPATIENT", "UNKNOWN", "UNKNOWN", "UNKNOWN", 0},
     "VGR",
     "SE2321000131-E000000012345",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "där händelsen inträffade"},
    {SEED_2021 ", A.13 Avvikelser",
     "the reporter's choice wins over the rule (physician -> VGR)",
     "1480",
     NULL,
     NULL,
     {"VGR", "1480", "1480", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "PHYSICIAN",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "Rapportören angav Göteborg (1480) som mottagare."},
    {SEED_2021 ", A.13 Avvikelser",
     "a unit named without its party stands for its party",
     NULL,
     "SE2120001561-SABO7",
     NULL,
     {"VGR", "1490", "1490", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "UNKNOWN", "NONE", "UNKNOWN",
      0},
     "1490",
     "SE2120001561-SABO7",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "Rapportören angav Borås (1490) som mottagare. Enhet: Borås Stad, Särskilt boende Sjöbo "
     "(SE2120001561-SABO7)."},
    {SEED_2021 ", A.13 Avvikelser",
     "a unit the directory lacks: the party's coordinator",
     "1480",
     "SE2120001215-X99",
     NULL,
     {"VGR", "1480", "1480", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "NURSE", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "",
     AVK_RULES_NAMED_BY_REPORTER,
     AVK_RULES_ID_NAMED,
     "Den angivna enheten SE2120001215-X99 finns inte i partskatalogen; partens samordnare tar "
     "emot den."},
    {SEED_2021 ", Gemensamt ansvar och samverkan: VGR ansvarar för läkare",
     "a unit of another party: the named receiver is not used, the rules decide",
     "1480",
     "SE2321000131-E000000012345",
     NULL,
     {"1482", "VGR", "1480", "CARE_AND_TREATMENT", "HOME_HEALTH_CARE", "PHYSICIAN",
      "LONG_TERM_REGULAR", "HEALTH_CARE_AGREEMENT", 0},
     "VGR",
     "",
     AVK_RULES_AGREEMENT_RULE,
     "R-REGION-PHYSICIAN",
     "Rapportören angav en mottagare som inte kan användas: enheten Sahlgrenska "
     "Universitetssjukhuset, Medicinavdelning 31 (SE2321000131-E000000012345) hör till Västra "
     "Götalandsregionen (VGR), inte till Göteborg (1480). Regel R-REGION-PHYSICIAN gäller"},
    {SEED_2021 ", Gemensamt ansvar och samverkan: kommunen ansvarar för ... sjuksköterska",
     "a party outside the directory: the named receiver is not used, the rules decide",
     "0180",
     NULL,
     NULL,
     {"VGR", "1480", "1480", "MEDICATION", "HOME_HEALTH_CARE", "NURSE", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     "1480",
     "",
     AVK_RULES_AGREEMENT_RULE,
     "R-MUNI-NURSE",
     "Rapportören angav en mottagare som inte kan användas: parten \"0180\" finns inte i "
     "partskatalogen. Regel R-MUNI-NURSE gäller"},
    {SEED_2021 ", A.13 Avvikelser; issue 16: never back to the reporting party",
     "the reporter names its own party: not used, the counterpart's coordinator triages",
     "1480",
     NULL,
     NULL,
     {"1480", "1480", "1480", "INFORMATION_TRANSFER", "HOME_HEALTH_CARE", "NURSE", "UNKNOWN",
      "UNKNOWN", 0},
     "VGR",
     "",
     AVK_RULES_TRIAGE,
     AVK_RULES_ID_TRIAGE,
     "Rapportören angav en mottagare som inte kan användas: Göteborg (1480) är den "
     "rapporterande parten"},
};

START_TEST(a_named_receiver_wins_when_the_directory_knows_it)
{
        const struct named_case *c = &named[_i];
        struct avk_rules_input in = input_of(&c->s);
        struct avk_rules_decision d;

        in.named_party = c->named_party;
        in.named_unit_hsa_id = c->named_unit;
        in.location_unit_hsa_id = c->location_unit;
        avk_rules_decide(rules, dir, &in, &d);
        ck_assert_msg(strcmp(d.receiver_party, c->party) == 0 &&
                          strcmp(d.receiver_unit_hsa_id, c->unit) == 0 && d.kind == c->kind &&
                          strcmp(d.rule_id, c->rule) == 0,
                      "row %d, %s [%s]: expected %s/%s by %s, got %s/%s by %s: %s", _i, c->what,
                      c->clause, c->party, c->unit, c->rule, d.receiver_party,
                      d.receiver_unit_hsa_id, d.rule_id, d.reason);
        ck_assert_contains(d.reason, c->reason_part);
}
END_TEST

/* ---- re-routing after "wrong receiver" ---- */

struct reroute_case {
        const char *clause;
        const char *what;
        struct situation s;
        int hop;
        const char *rejecting, *suggested_party, *suggested_unit, *earlier;
        const char *party, *unit; /* expected */
        enum avk_rules_decision_kind kind;
        const char *rule;
        const char *reason_part;
};

/* A physician's failure at special housing in Borås, reported by Göteborg
 * (the patient's home municipality): R-REGION-PHYSICIAN sends it to VGR, the
 * location; once VGR has rejected it the location no longer decides and
 * R-MUNI-SPECIAL-HOUSING is the next rule that matches. */
#define PHYSICIAN_AT_SPECIAL_HOUSING                                                               \
        {                                                                                          \
                "1480", "VGR", "1490", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "PHYSICIAN",       \
                    "NONE", "HEALTH_CARE_AGREEMENT", 0                                             \
        }
/* An inpatient medication error: only region rules match. */
#define INPATIENT_MEDICATION                                                                       \
        {                                                                                          \
                "1482", "VGR", "1482", "MEDICATION", "INPATIENT", "UNKNOWN", "UNKNOWN",            \
                    "HEALTH_CARE_AGREEMENT", 0                                                     \
        }

static const struct reroute_case reroutes[] = {
    {SEED_2021 ", A.13 Avvikelser: avvikelserna ska hanteras skyndsamt",
     "VGR rejects without a suggestion: the next rule that names another party",
     PHYSICIAN_AT_SPECIAL_HOUSING, 0, "VGR", NULL, NULL, NULL, "1490", "", AVK_RULES_REROUTED,
     "R-MUNI-SPECIAL-HOUSING",
     "Västra Götalandsregionen (VGR) svarade fel mottagare (omdirigering 1 av högst 3). Regel "
     "R-MUNI-SPECIAL-HOUSING gäller"},
    {SEED_2021 ", A.13 Avvikelser", "VGR rejects and suggests Borås: the suggestion wins",
     PHYSICIAN_AT_SPECIAL_HOUSING, 0, "VGR", "1490", NULL, NULL, "1490", "", AVK_RULES_REROUTED,
     AVK_RULES_ID_SUGGESTED, "Västra Götalandsregionen (VGR) angav Borås (1490) som mottagare."},
    {SEED_2021 ", A.13 Avvikelser", "VGR rejects and suggests a unit of Borås",
     PHYSICIAN_AT_SPECIAL_HOUSING, 0, "VGR", NULL, "SE2120001561-SABO7", NULL, "1490",
     "SE2120001561-SABO7", AVK_RULES_REROUTED, AVK_RULES_ID_SUGGESTED,
     "Enhet: Borås Stad, Särskilt boende Sjöbo (SE2120001561-SABO7)."},
    {SEED_2021 ", A.13 Avvikelser", "VGR suggests itself: not used, the next rule decides",
     PHYSICIAN_AT_SPECIAL_HOUSING, 0, "VGR", "VGR", NULL, NULL, "1490", "", AVK_RULES_REROUTED,
     "R-MUNI-SPECIAL-HOUSING",
     "Västra Götalandsregionen (VGR) angav en mottagare som inte kan användas: Västra "
     "Götalandsregionen (VGR) har redan svarat fel mottagare."},
    {SEED_2021 ", Gemensamt ansvar och samverkan: kommunen ansvarar för ... sjuksköterska",
     "Göteborg rejects a home care nurse's deviation and suggests the reporting region: "
     "not followed, no other party remains",
     {"VGR", "1480", "1480", "MEDICATION", "HOME_HEALTH_CARE", "NURSE", "LONG_TERM_REGULAR",
      "HEALTH_CARE_AGREEMENT", 0},
     0,
     "1480",
     "VGR",
     "SE2321000131-E000000020001",
     NULL,
     "VGR",
     VVG_UNIT,
     AVK_RULES_MANUAL,
     AVK_RULES_ID_MANUAL,
     "Göteborg (1480) angav en mottagare som inte kan användas: Västra Götalandsregionen (VGR) "
     "är den rapporterande parten"},
    {SEED_2021 ", Regionens ansvar: sluten vård",
     "VGR rejects and only the reporting municipality remains: the county's triage desk triages",
     INPATIENT_MEDICATION, 0, "VGR", NULL, NULL, NULL, "VGR", VVG_UNIT, AVK_RULES_MANUAL,
     AVK_RULES_ID_MANUAL,
     "Varje part utom rapportören som kunde ta emot den har svarat fel mottagare"},
    {SEED_2021 ", A.14 Oenighet om tolkning av avtal; " SEED_2025
               ", Patientsäkerhet, oenighet och tvist (eskaleringstrappa)",
     "both parties have rejected it: they disagree, the county's triage desk triages by hand",
     INPATIENT_MEDICATION, 1, "1482", NULL, NULL, "VGR", "VGR", VVG_UNIT, AVK_RULES_MANUAL,
     AVK_RULES_ID_MANUAL,
     "Varje part utom rapportören som kunde ta emot den har svarat fel mottagare: parterna är "
     "oeniga, och eskaleringstrappan gäller. Länets gemensamma sorteringsfunktion, "
     "Avvikelsesamordning i samverkan, Vårdsamverkan Västra Götaland (partsgemensam) (" VVG_UNIT
     "), sorterar den manuellt."},
    {SEED_2021 ", A.13 Avvikelser: avvikelserna ska hanteras skyndsamt",
     "the third re-routing is still allowed (max_reroutes 3)", PHYSICIAN_AT_SPECIAL_HOUSING, 2,
     "VGR", NULL, NULL, NULL, "1490", "", AVK_RULES_REROUTED, "R-MUNI-SPECIAL-HOUSING",
     "(omdirigering 3 av högst 3)"},
    {SEED_2025 ", Patientsäkerhet, oenighet och tvist: eskaleringstrappa",
     "past the hop bound: the county's triage desk triages by hand, whatever is suggested",
     PHYSICIAN_AT_SPECIAL_HOUSING, 3, "VGR", "1490", NULL, NULL, "VGR", VVG_UNIT, AVK_RULES_MANUAL,
     AVK_RULES_ID_MANUAL,
     "(omdirigering 4 av högst 3). Omdirigerad 3 gånger, det högsta reglerna tillåter. Länets "
     "gemensamma sorteringsfunktion"},
};

/* The triage desk routes a MANUAL decision on: its choice wins past the hop bound and over
 * earlier rejections, its own record_party (VGR) included; naming the reporter, or nobody,
 * leaves the deviation at the desk. */
START_TEST(the_triage_desk_routes_on_to_the_receiver_it_names)
{
        struct avk_rules_input in = input_of(&(struct situation)PHYSICIAN_AT_SPECIAL_HOUSING);
        const char *earlier[2] = {"VGR", "1490"};
        struct avk_rules_rejection rej = {.hop = 4,
                                          .rejecting_party = "VGR",
                                          .suggested_party = "1490",
                                          .earlier_rejecting = earlier,
                                          .earlier_rejecting_cnt = 2,
                                          .by_desk = 1};
        struct avk_rules_decision d;

        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_int_eq(d.kind, AVK_RULES_REROUTED);
        ck_assert_str_eq(d.rule_id, AVK_RULES_ID_DESK);
        ck_assert_str_eq(d.receiver_party, "1490");
        ck_assert_int_eq(d.hop, 5);
        ck_assert_contains(d.reason, "Länets gemensamma sorteringsfunktion, Avvikelsesamordning i "
                                     "samverkan, Vårdsamverkan Västra Götaland (partsgemensam) "
                                     "(" VVG_UNIT "), har sorterat den manuellt och skickar den "
                                     "vidare. Sorteringsfunktionen angav Borås (1490) som "
                                     "mottagare.");
        /* The region, the desk's record_party, rejected before: the desk's choice still. */
        rej.suggested_party = "VGR";
        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_int_eq(d.kind, AVK_RULES_REROUTED);
        ck_assert_str_eq(d.rule_id, AVK_RULES_ID_DESK);
        ck_assert_str_eq(d.receiver_party, "VGR");
        ck_assert_str_eq(d.receiver_unit_hsa_id, "");
        rej.suggested_party = NULL;
        rej.suggested_unit_hsa_id = "SE2120001561-SABO7";
        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_str_eq(d.receiver_unit_hsa_id, "SE2120001561-SABO7");
        /* The reporter (Göteborg) is never the receiver, and no suggestion is no decision. */
        rej.suggested_party = "1480";
        rej.suggested_unit_hsa_id = NULL;
        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_int_eq(d.kind, AVK_RULES_MANUAL);
        ck_assert_str_eq(d.receiver_unit_hsa_id, VVG_UNIT);
        rej.suggested_party = NULL;
        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_int_eq(d.kind, AVK_RULES_MANUAL);
}
END_TEST

START_TEST(a_wrong_receiver_response_reroutes)
{
        const struct reroute_case *c = &reroutes[_i];
        struct avk_rules_input in = input_of(&c->s);
        const char *earlier[1] = {c->earlier};
        struct avk_rules_rejection rej = {
            .hop = c->hop,
            .rejecting_party = c->rejecting,
            .suggested_party = c->suggested_party,
            .suggested_unit_hsa_id = c->suggested_unit,
            .earlier_rejecting = c->earlier ? earlier : NULL,
            .earlier_rejecting_cnt = c->earlier ? 1 : 0,
        };
        struct avk_rules_decision d;

        avk_rules_reroute(rules, dir, &in, &rej, &d);
        ck_assert_msg(strcmp(d.receiver_party, c->party) == 0 &&
                          strcmp(d.receiver_unit_hsa_id, c->unit) == 0 && d.kind == c->kind &&
                          strcmp(d.rule_id, c->rule) == 0 && d.hop == c->hop + 1,
                      "row %d, %s [%s]: expected %s/%s by %s at hop %d, got %s/%s by %s at hop "
                      "%d: %s",
                      _i, c->what, c->clause, c->party, c->unit, c->rule, c->hop + 1,
                      d.receiver_party, d.receiver_unit_hsa_id, d.rule_id, d.hop, d.reason);
        ck_assert_contains(d.reason, c->reason_part);
}
END_TEST

/* ---- the table is the test of the rules file ---- */

/* Rows of the allocation table that decide otherwise than expected with r. */
static int failing_rows(const avk_rules_t *r)
{
        char why[2048];
        int failing = 0;

        for (size_t i = 0; i < ALLOCATION_CNT; i++)
                failing += check_allocation(r, &allocation[i], why, sizeof(why));
        return failing;
}

START_TEST(every_rule_decides_some_row)
{
        json_error_t jerr;
        json_t *doc = json_load_file(RULES_FILE, 0, &jerr);
        json_t *list = json_object_get(doc, "rules");

        ck_assert_msg(doc != NULL, "%s", jerr.text);
        ck_assert_int_eq(failing_rows(rules), 0);
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *then = json_object_get(json_array_get(list, i), "then");
                const char *id = json_string_value(json_object_get(json_array_get(list, i), "id"));
                char party[16];
                char path[64];
                int fd;
                struct avk_errors errs;
                avk_rules_t *flipped;

                /* A file of this process and rule, as test_config.c names its own. */
                snprintf(path, sizeof(path), "/tmp/avk-test-rules-%d-%zu", (int)getpid(), i);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
                ck_assert_int_ge(fd, 0);
                close(fd);
                snprintf(party, sizeof(party), "%s",
                         json_string_value(json_object_get(then, "party")));
                json_object_set_new(
                    then, "party",
                    json_string(strcmp(party, "REGION") == 0 ? "MUNICIPALITY" : "REGION"));
                ck_assert_int_eq(json_dump_file(doc, path, 0), 0);
                json_object_set_new(then, "party", json_string(party));
                avk_errors_init(&errs);
                flipped = avk_rules_load(path, reported, &errs);
                unlink(path);
                ck_assert_msg(flipped != NULL, "%s", errs.msg[0]);
                ck_assert_msg(failing_rows(flipped) > 0,
                              "%s: its party was flipped and no row of the table noticed", id);
                avk_rules_destroy(flipped);
        }
        json_decref(doc);
}
END_TEST

/* DeviationRouted takes a reason of at most 1000 characters and a rule_id of at most 100. */
static void assert_fits(const struct avk_rules_decision *d)
{
        ck_assert_uint_gt(strlen(d->reason), 0);
        ck_assert_uint_le(strlen(d->reason), 1000);
        ck_assert_uint_le(strlen(d->rule_id), 100);
        ck_assert_uint_gt(strlen(d->receiver_party), 0);
}

START_TEST(every_decision_fits_the_routed_event)
{
        struct avk_rules_decision d;

        for (size_t i = 0; i < ALLOCATION_CNT; i++) {
                struct avk_rules_input in = input_of(&allocation[i].s);

                avk_rules_decide(rules, dir, &in, &d);
                assert_fits(&d);
        }
        for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
                struct avk_rules_input in = input_of(&named[i].s);

                in.named_party = named[i].named_party;
                in.named_unit_hsa_id = named[i].named_unit;
                avk_rules_decide(rules, dir, &in, &d);
                assert_fits(&d);
        }
        for (size_t i = 0; i < sizeof(reroutes) / sizeof(reroutes[0]); i++) {
                struct avk_rules_input in = input_of(&reroutes[i].s);
                struct avk_rules_rejection rej = {.hop = reroutes[i].hop,
                                                  .rejecting_party = reroutes[i].rejecting};

                avk_rules_reroute(rules, dir, &in, &rej, &d);
                assert_fits(&d);
        }
}
END_TEST

/* The schema's RoutingDecision symbols, and the C names of them. */
START_TEST(decision_kinds_are_the_schemas_routing_decisions)
{
        const avk_schema_t *routed = avk_catalog_by_name(catalog, "DeviationRouted");
        const json_t *symbols = json_object_get(
            avk_schema_named(routed, "se.vardsamverkan.avvik.RoutingDecision"), "symbols");
        const enum avk_rules_decision_kind kinds[] = {AVK_RULES_NAMED_BY_REPORTER,
                                                      AVK_RULES_AGREEMENT_RULE, AVK_RULES_TRIAGE,
                                                      AVK_RULES_REROUTED, AVK_RULES_MANUAL};

        ck_assert_ptr_nonnull(symbols);
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                const char *symbol = avk_rules_decision_symbol(kinds[k]);
                int found = 0;

                for (size_t i = 0; i < json_array_size(symbols); i++)
                        found |= strcmp(json_string_value(json_array_get(symbols, i)), symbol) == 0;
                ck_assert_msg(found, "%s is not a RoutingDecision symbol", symbol);
        }
}
END_TEST

START_TEST(each_decision_kind_is_its_own_routing_decision_symbol)
{
        ck_assert_str_eq(avk_rules_decision_symbol(AVK_RULES_NAMED_BY_REPORTER),
                         "NAMED_BY_REPORTER");
        ck_assert_str_eq(avk_rules_decision_symbol(AVK_RULES_AGREEMENT_RULE), "AGREEMENT_RULE");
        ck_assert_str_eq(avk_rules_decision_symbol(AVK_RULES_TRIAGE), "TRIAGE");
        ck_assert_str_eq(avk_rules_decision_symbol(AVK_RULES_REROUTED), "REROUTED");
        ck_assert_str_eq(avk_rules_decision_symbol(AVK_RULES_MANUAL), "MANUAL");
}
END_TEST

/* Collapses runs of white space (NBSP included, as the seeds use it) into one space. */
static void normalize_space(char *s)
{
        char *out = s;
        int space = 0;

        for (char *p = s; *p; p++) {
                int is_space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' ||
                               ((unsigned char)p[0] == 0xC2 && (unsigned char)p[1] == 0xA0);

                if (is_space) {
                        if ((unsigned char)*p == 0xC2)
                                p++;
                        space = 1;
                        continue;
                }
                if (space && out != s)
                        *out++ = ' ';
                space = 0;
                *out++ = *p;
        }
        *out = '\0';
}

START_TEST(every_clause_quotes_its_seed_document)
{
        json_error_t jerr;
        json_t *doc = json_load_file(RULES_FILE, 0, &jerr);
        json_t *list = json_object_get(doc, "rules");
        struct stat st;

        ck_assert_ptr_nonnull(doc);
        if (stat(SEEDS_DIR, &st) != 0) {
                /* The seeds live beside the repository, not in it. */
                fprintf(stderr, "%s not found: clause quotes not checked\n", SEEDS_DIR);
                json_decref(doc);
                return;
        }
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *rule = json_array_get(list, i);
                json_t *clause = json_object_get(rule, "clause");
                const char *id = json_string_value(json_object_get(rule, "id"));
                char path[512], reason[512];
                char *seed, *quote, *section;

                snprintf(path, sizeof(path), "%s/%s", SEEDS_DIR,
                         json_string_value(json_object_get(clause, "source")));
                seed = test_data_read(path, reason, sizeof(reason));
                ck_assert_msg(seed != NULL, "%s: %s", id, reason);
                quote = strdup(json_string_value(json_object_get(clause, "quote")));
                section = strdup(json_string_value(json_object_get(clause, "section")));
                normalize_space(seed);
                normalize_space(quote);
                normalize_space(section);
                ck_assert_msg(strstr(seed, quote) != NULL, "%s: \"%s\" is not in %s", id, quote,
                              path);
                ck_assert_msg(strstr(seed, section) != NULL, "%s: no section \"%s\" in %s", id,
                              section, path);
                free(seed);
                free(quote);
                free(section);
        }
        json_decref(doc);
}
END_TEST

/* ---- the loader ---- */

static struct avk_errors errs;
static char joined[AVK_ERRORS_MAX * AVK_ERROR_MSG_SIZE];

static avk_rules_t *load(const char *path)
{
        avk_rules_t *r;

        avk_errors_init(&errs);
        r = avk_rules_load(path, reported, &errs);
        avk_errors_join(&errs, joined, sizeof(joined));
        return r;
}

static void assert_error_at(const char *file, const char *rest)
{
        ck_assert_error_at(&errs, file, rest);
}

START_TEST(the_rules_file_loads_with_its_hop_bound)
{
        ck_assert_uint_eq(avk_rules_cnt(rules), 27);
        ck_assert_int_eq(avk_rules_max_reroutes(rules), 3);
}
END_TEST

START_TEST(every_problem_of_a_rules_file_names_the_rule_and_field)
{
        const char *f = FIXTURE("many-errors.json");

        ck_assert_ptr_null(load(f));
        assert_error_at(f, "colour: unknown key (expected about, max_reroutes, rules)");
        assert_error_at(f, "max_reroutes: expected an integer from 1 to 10");
        assert_error_at(f, "rules[0] (R-A): when.competence[0]: unknown symbol \"NURSES\"; "
                           "expected one of NURSE, OCCUPATIONAL_THERAPIST, PHYSIOTHERAPIST, "
                           "PHYSICIAN, OTHER_COMPETENCE, DENTAL, SOCIAL_SERVICES, UNKNOWN");
        assert_error_at(f, "rules[1] (R-B): when.care_settting: unknown key (expected reporter, "
                           "category, care_setting, competence, home_visits, agreement, "
                           "event_class, harm_level, location, period)");
        assert_error_at(f, "rules[2] (R-C): when: names no condition; a rule must narrow down "
                           "what it takes");
        assert_error_at(f, "rules[3]: id: \"R-A\" is already the id of rules[0]");
        assert_error_at(f, "rules[4]: id: \"bad id\" is not \"R-\" and up to 62 upper-case "
                           "letters, digits and '-'");
        assert_error_at(f, "rules[5] (R-D): clause.quote: is required");
        assert_error_at(f, "rules[5] (R-D): when.reporter[1]: \"REGION\" is listed twice");
        assert_error_at(f, "rules[5] (R-D): then.party: \"COUNTY\" is neither REGION (VGR), "
                           "MUNICIPALITY (the patient's municipality) nor TRIAGE");
        assert_error_at(f, "rules[6] (R-E): when.category: expected a non-empty array of category "
                           "symbols, got a string");
        assert_error_at(f, "rules[8] (R-G): can never match: rules[7] (R-F) comes first and "
                           "matches every deviation this rule matches");
        assert_error_at(f, "rules[9] (R-H): then: is required: {\"party\": ..., \"basis\": ..., "
                           "\"reason\": ...}");
        ck_assert_msg(avk_errors_total(&errs) == 13, "%zu errors: %s", avk_errors_total(&errs),
                      joined);
}
END_TEST

START_TEST(a_rules_syntax_error_names_line_and_column)
{
        const char *f = FIXTURE("syntax-error.json");
        char prefix[512];

        ck_assert_ptr_null(load(f));
        ck_assert_uint_eq(avk_errors_total(&errs), 1);
        snprintf(prefix, sizeof(prefix), "%s:4:", f);
        ck_assert_msg(strncmp(errs.msg[0], prefix, strlen(prefix)) == 0, "%s", errs.msg[0]);
}
END_TEST

/* ---- conditions, limits and a partial directory ---- */

START_TEST(event_class_harm_level_and_reporter_are_conditions_too)
{
        avk_rules_t *r = load(FIXTURE("conditions.json"));
        struct situation s = {"1482",    "1482",    "1480",    "OTHER", "OTHER",
                              "UNKNOWN", "UNKNOWN", "UNKNOWN", 0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        ck_assert_msg(r != NULL, "%s", joined);
        in.event_class = "NEAR_MISS";
        in.harm_level = "LOW";
        avk_rules_decide(r, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, "R-NEAR-MISS-WITHOUT-HARM");
        in.harm_level = "MODERATE";
        avk_rules_decide(r, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, AVK_RULES_ID_TRIAGE);
        in.harm_level = NULL;
        avk_rules_decide(r, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, AVK_RULES_ID_TRIAGE);
        in.reporter_party = "VGR";
        avk_rules_decide(r, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, "R-REGION-REPORTS");
        ck_assert_str_eq(d.receiver_party, "1480");
        avk_rules_destroy(r);
}
END_TEST

/* Whether s is well-formed UTF-8. */
static int is_utf8(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                int extra = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : 3;

                if (*p >= 0x80 && (*p & 0xC0) == 0x80)
                        return 0;
                for (p++; extra > 0; extra--, p++) {
                        if ((*p & 0xC0) != 0x80)
                                return 0;
                }
        }
        return 1;
}

START_TEST(a_long_reason_is_cut_at_a_character)
{
        avk_rules_t *r = load(FIXTURE("long-texts.json"));
        struct situation s = {"VGR",
                              "1480",
                              "1480",
                              "MEDICATION",
                              "HOME_HEALTH_CARE",
                              "NURSE",
                              "LONG_TERM_REGULAR",
                              "UNKNOWN",
                              0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        ck_assert_msg(r != NULL, "%s", joined);
        in.named_party = "0180"; /* a sentence about it comes first */
        avk_rules_decide(r, dir, &in, &d);
        ck_assert_str_eq(d.rule_id, "R-LONG");
        ck_assert_uint_ge(strlen(d.reason), 990);
        ck_assert_uint_le(strlen(d.reason), 1000);
        ck_assert_msg(is_utf8(d.reason), "%s", d.reason);
        avk_rules_destroy(r);
}
END_TEST

START_TEST(a_party_missing_from_a_partial_directory_is_passed_over)
{
        struct avk_errors derrs;
        avk_directory_t *partial;
        struct situation s = {
            "VGR",  "1492",    "1492", "CARE_AND_TREATMENT", "SPECIAL_HOUSING", "UNKNOWN",
            "NONE", "UNKNOWN", 0};
        struct avk_rules_input in = input_of(&s);
        struct avk_rules_decision d;

        avk_errors_init(&derrs);
        partial = avk_directory_load(AVK_TEST_DATA "/directory/partial.json",
                                     AVK_DIRECTORY_ALLOW_PARTIAL, &derrs);
        ck_assert_ptr_nonnull(partial);
        avk_rules_decide(rules, partial, &in, &d);
        /* 1492 is not in it: the rule is noted and passed over; the only
         * other party is the reporting region, so the triage desk
         * triages by hand. */
        ck_assert_int_eq(d.kind, AVK_RULES_MANUAL);
        ck_assert_str_eq(d.receiver_party, "VGR");
        ck_assert_str_eq(d.receiver_unit_hsa_id, VVG_UNIT);
        ck_assert_contains(d.reason, "Regel R-MUNI-SPECIAL-HOUSING gäller, men parten 1492 finns "
                                     "inte i partskatalogen.");
        avk_directory_destroy(partial);
}
END_TEST

static Suite *routing_suite(void)
{
        Suite *s = suite_create("routing_rules");
        TCase *allocation_tc = tcase_create("allocation");
        TCase *named_tc = tcase_create("named_receiver");
        TCase *reroute_tc = tcase_create("reroute");
        TCase *table_tc = tcase_create("table");
        TCase *loader_tc = tcase_create("loader");

        tcase_add_loop_test(allocation_tc, allocation_follows_the_agreement, 0,
                            (int)ALLOCATION_CNT);
        tcase_add_test(allocation_tc, a_rule_decision_names_the_rule_what_matched_and_the_clause);
        tcase_add_test(allocation_tc, triage_says_what_no_rule_matched);
        tcase_add_test(allocation_tc, a_rule_sends_the_deviation_to_the_unit_where_it_happened);
        suite_add_tcase(s, allocation_tc);

        tcase_add_loop_test(named_tc, a_named_receiver_wins_when_the_directory_knows_it, 0,
                            (int)(sizeof(named) / sizeof(named[0])));
        suite_add_tcase(s, named_tc);

        tcase_add_loop_test(reroute_tc, a_wrong_receiver_response_reroutes, 0,
                            (int)(sizeof(reroutes) / sizeof(reroutes[0])));
        tcase_add_test(reroute_tc, the_triage_desk_routes_on_to_the_receiver_it_names);
        suite_add_tcase(s, reroute_tc);

        tcase_add_test(table_tc, every_rule_decides_some_row);
        tcase_add_test(table_tc, every_decision_fits_the_routed_event);
        tcase_add_test(table_tc, decision_kinds_are_the_schemas_routing_decisions);
        tcase_add_test(table_tc, each_decision_kind_is_its_own_routing_decision_symbol);
        tcase_add_test(table_tc, every_clause_quotes_its_seed_document);
        suite_add_tcase(s, table_tc);

        tcase_add_test(loader_tc, the_rules_file_loads_with_its_hop_bound);
        tcase_add_test(loader_tc, every_problem_of_a_rules_file_names_the_rule_and_field);
        tcase_add_test(loader_tc, a_rules_syntax_error_names_line_and_column);
        tcase_add_test(loader_tc, event_class_harm_level_and_reporter_are_conditions_too);
        tcase_add_test(loader_tc, a_long_reason_is_cut_at_a_character);
        tcase_add_test(loader_tc, a_party_missing_from_a_partial_directory_is_passed_over);
        suite_add_tcase(s, loader_tc);
        return s;
}

int main(void)
{
        struct routing_fixture fixture;
        int failed = 1;

        if (routing_fixture_load(&fixture) == 0) {
                catalog = fixture.catalog;
                reported = fixture.reported;
                dir = fixture.dir;
                rules = fixture.rules;
                failed = routing_fixture_run(routing_suite());
        }
        routing_fixture_free(&fixture);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
