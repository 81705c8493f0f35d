/*
 * avk_followup: see followup.h.
 *
 * The page is written with stdio into a memory stream (open_memstream).
 * Every string that comes from the figures goes through esc(), numbers
 * through printf formats; the markup itself is constant. Charts are SVG
 * with presentation attributes only (no style attributes), so the page
 * renders under a Content-Security-Policy that allows exactly its one
 * inline style sheet.
 */
#include "consumer/dashboard/followup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHART_WIDTH  640
#define BAR_COLOR    "#1f5f8b"
#define PAIRS_SHOWN  25 /* party pairs in the report's table */
#define OVERDUE_ROWS 50 /* overdue deviations listed */

static const char *const month_names[12] = {"jan", "feb", "mar", "apr", "maj", "jun",
                                            "jul", "aug", "sep", "okt", "nov", "dec"};

void avk_followup_escape(FILE *out, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '&':
                        fputs("&amp;", out);
                        break;
                case '<':
                        fputs("&lt;", out);
                        break;
                case '>':
                        fputs("&gt;", out);
                        break;
                case '"':
                        fputs("&quot;", out);
                        break;
                case '\'':
                        fputs("&#39;", out);
                        break;
                default:
                        fputc(*s, out);
                }
        }
}

static const char *str(const json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : "";
}

static long long num(const json_t *obj, const char *key)
{
        return (long long)json_integer_value(json_object_get(obj, key));
}

static void esc(FILE *out, const char *s)
{
        avk_followup_escape(out, s);
}

/* A month "2027-03" as "mar": the year is the report's. */
static const char *month_label(const char *month)
{
        int m = month && strlen(month) == 7 ? atoi(month + 5) : 0;
        return m >= 1 && m <= 12 ? month_names[m - 1] : month;
}

/* A share with one decimal and the Swedish decimal comma: "12,5 %". */
static void percent(FILE *out, long long part, long long whole)
{
        if (whole <= 0) {
                fputs("–", out);
                return;
        }
        long long tenths = (1000 * part + whole / 2) / whole;
        fprintf(out, "%lld,%lld&nbsp;%%", tenths / 10, tenths % 10);
}

/* A vertical bar chart of items' count, labelled by label_key (months shortened). */
static void column_chart(FILE *out, const char *title, const json_t *items, const char *label_key)
{
        size_t n = json_array_size(items), i;
        long long max = 1;
        json_t *item;
        json_array_foreach(items, i, item) max =
            num(item, "count") > max ? num(item, "count") : max;
        const int height = 220, top = 24, bottom = 40, left = 8;
        double slot = n ? (double)(CHART_WIDTH - 2 * left) / (double)n : 0, bar = slot * 0.7;
        fprintf(out,
                "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
                CHART_WIDTH, height, CHART_WIDTH, height);
        esc(out, title);
        fputs("\">", out);
        fprintf(out,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" "
                "stroke-width=\"1\"/>",
                left, height - bottom, CHART_WIDTH - left, height - bottom);
        json_array_foreach(items, i, item)
        {
                long long count = num(item, "count");
                double h = (double)(height - top - bottom) * (double)count / (double)max;
                double x = left + slot * (double)i + (slot - bar) / 2;
                const char *label = str(item, label_key);
                if (strcmp(label_key, "month") == 0)
                        label = month_label(label);
                fprintf(out,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                        "fill=\"" BAR_COLOR "\"/>",
                        x, height - bottom - h, bar, h);
                fprintf(out,
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                        "text-anchor=\"middle\">%lld</text>",
                        x + bar / 2, height - bottom - h - 4, count);
                fprintf(out,
                        "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
                        "text-anchor=\"middle\">",
                        x + bar / 2, height - bottom + 16);
                esc(out, label);
                fputs("</text>", out);
        }
        fputs("</svg><figcaption>", out);
        esc(out, title);
        fputs("</figcaption></figure>\n", out);
}

/* A horizontal bar chart: one row per item, its label left of the bar. */
static void bar_chart(FILE *out, const char *title, const json_t *items)
{
        size_t n = json_array_size(items), i;
        long long max = 1;
        json_t *item;
        json_array_foreach(items, i, item) max =
            num(item, "count") > max ? num(item, "count") : max;
        const int row = 22, label_width = 250, value_width = 50;
        int height = (int)n * row + 8;
        fprintf(out,
                "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
                CHART_WIDTH, height, CHART_WIDTH, height);
        esc(out, title);
        fputs("\">", out);
        json_array_foreach(items, i, item)
        {
                long long count = num(item, "count");
                double w =
                    (double)(CHART_WIDTH - label_width - value_width) * (double)count / (double)max;
                int y = (int)i * row + 4;
                fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">",
                        label_width - 8, y + 15);
                esc(out, str(item, "label"));
                fprintf(out,
                        "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                        "fill=\"" BAR_COLOR "\"/><text x=\"%.1f\" y=\"%d\" "
                        "font-size=\"12\">%lld</text>",
                        label_width, y + 3, w, row - 6, label_width + w + 6, y + 15, count);
        }
        fputs("</svg><figcaption>", out);
        esc(out, title);
        fputs("</figcaption></figure>\n", out);
}

/* A table of {label, count} items with each one's share of total. */
static void count_table(FILE *out, const char *what, const json_t *items, long long total)
{
        size_t i;
        json_t *item;
        fputs("<table><thead><tr><th>", out);
        esc(out, what);
        fputs("</th><th class=\"num\">Antal</th><th class=\"num\">Andel</th></tr></thead><tbody>",
              out);
        json_array_foreach(items, i, item)
        {
                fputs("<tr><td>", out);
                esc(out, str(item, "label"));
                fprintf(out, "</td><td class=\"num\">%lld</td><td class=\"num\">",
                        num(item, "count"));
                percent(out, num(item, "count"), total);
                fputs("</td></tr>", out);
        }
        fprintf(out,
                "</tbody><tfoot><tr><th>Totalt</th><th class=\"num\">%lld</th><th></th></tr>"
                "</tfoot></table>\n",
                total);
}

/* "1 avvikelse", "4 avvikelser": the number with the noun in its form. */
static void deviations(FILE *out, long long n)
{
        fprintf(out, "%lld %s", n, n == 1 ? "avvikelse" : "avvikelser");
}

/*
 * How clear the allocation was, one row per item (a sub-agreement, a care
 * setting, a month: label_key names its label): the deviations, the share of
 * those routed that met a wrong receiver, and the shares of those with a
 * known routing decision that went to triage and to manual triage.
 */
static void clarity_table(FILE *out, const char *what, const json_t *items, const char *label_key)
{
        size_t i;
        json_t *item;
        fputs("<table><thead><tr><th>", out);
        esc(out, what);
        fputs("</th><th class=\"num\">Antal</th><th class=\"num\">Fel mottagare</th>"
              "<th class=\"num\">Triage</th><th class=\"num\">Manuell triage</th></tr></thead>"
              "<tbody>",
              out);
        json_array_foreach(items, i, item)
        {
                const char *label = str(item, label_key);
                fputs("<tr><td>", out);
                esc(out, strcmp(label_key, "month") == 0 ? month_label(label) : label);
                fprintf(out, "</td><td class=\"num\">%lld</td><td class=\"num\">",
                        num(item, "count"));
                percent(out, num(item, "wrong_receiver"), num(item, "routed"));
                fputs("</td><td class=\"num\">", out);
                percent(out, num(item, "triage"), num(item, "decided"));
                fputs("</td><td class=\"num\">", out);
                percent(out, num(item, "manual_triage"), num(item, "decided"));
                fputs("</td></tr>", out);
        }
        fputs("</tbody></table>\n", out);
}

/* Days with one decimal and the decimal comma, "–" for null. */
static void days(FILE *out, const json_t *value)
{
        if (!json_is_number(value)) {
                fputs("–", out);
                return;
        }
        long long tenths = (long long)(json_number_value(value) * 10 + 0.5);
        fprintf(out, "%lld,%lld", tenths / 10, tenths % 10);
}

static void response_times(FILE *out, const json_t *summary)
{
        const json_t *rt = json_object_get(summary, "response_time");
        static const char *const keys[2] = {"acknowledge", "answer"};
        static const char *const names[2] = {"Tid till kvittens", "Tid till svar"};
        fputs("<table><thead><tr><th>Mått</th><th class=\"num\">Antal</th>"
              "<th class=\"num\">Median (dagar)</th><th class=\"num\">90:e percentil "
              "(dagar)</th></tr></thead><tbody>",
              out);
        for (int k = 0; k < 2; k++) {
                const json_t *d = json_object_get(rt, keys[k]);
                fprintf(out, "<tr><td>%s</td><td class=\"num\">%lld</td><td class=\"num\">",
                        names[k], num(d, "count"));
                days(out, json_object_get(d, "p50_days"));
                fputs("</td><td class=\"num\">", out);
                days(out, json_object_get(d, "p90_days"));
                fputs("</td></tr>", out);
        }
        fputs("</tbody></table>\n", out);
        for (int k = 0; k < 2; k++)
                column_chart(out, names[k],
                             json_object_get(json_object_get(rt, keys[k]), "buckets"), "label");
}

/* The party of role ("reporter", "receiver"): its name, and its code when routed. */
static void party_cell(FILE *out, const json_t *item, const char *role)
{
        char code_key[32], name_key[32];
        snprintf(code_key, sizeof(code_key), "%s_party", role);
        snprintf(name_key, sizeof(name_key), "%s_name", role);
        fputs("<td>", out);
        esc(out, str(item, name_key));
        if (json_is_string(json_object_get(item, code_key))) {
                fputs(" <span class=\"code\">(", out);
                esc(out, str(item, code_key));
                fputs(")</span>", out);
        }
        fputs("</td>", out);
}

static void party_pairs(FILE *out, const json_t *summary)
{
        const json_t *pairs = json_object_get(summary, "by_party_pair");
        size_t i;
        json_t *item;
        fputs("<table><thead><tr><th>Rapporterande part</th><th>Mottagande part</th>"
              "<th class=\"num\">Antal</th></tr></thead><tbody>",
              out);
        json_array_foreach(pairs, i, item)
        {
                if (i == PAIRS_SHOWN)
                        break;
                fputs("<tr>", out);
                party_cell(out, item, "reporter");
                party_cell(out, item, "receiver");
                fprintf(out, "<td class=\"num\">%lld</td></tr>", num(item, "count"));
        }
        fputs("</tbody></table>\n", out);
        if (json_array_size(pairs) > PAIRS_SHOWN)
                fprintf(out, "<p class=\"note\">De %d vanligaste av %zu partspar.</p>\n",
                        PAIRS_SHOWN, json_array_size(pairs));
}

static void category_harm(FILE *out, const json_t *summary)
{
        const json_t *harms = json_object_get(summary, "by_harm");
        size_t i, j;
        json_t *item, *harm;
        fputs("<table class=\"matrix\"><thead><tr><th>Kategori</th>", out);
        json_array_foreach(harms, j, harm)
        {
                fputs("<th class=\"num\">", out);
                esc(out, str(harm, "label"));
                fputs("</th>", out);
        }
        fputs("</tr></thead><tbody>", out);
        json_array_foreach(json_object_get(summary, "by_category_harm"), i, item)
        {
                fputs("<tr><td>", out);
                esc(out, str(item, "label"));
                fputs("</td>", out);
                json_array_foreach(json_object_get(item, "counts"), j, harm) fprintf(
                    out, "<td class=\"num\">%lld</td>", (long long)json_integer_value(harm));
                fputs("</tr>", out);
        }
        fputs("</tbody></table>\n", out);
}

static void municipalities(FILE *out, const json_t *summary)
{
        size_t i;
        json_t *item;
        fputs("<table><thead><tr><th>Kommun</th><th>Delregion</th><th class=\"num\">Antal</th>"
              "</tr></thead><tbody>",
              out);
        json_array_foreach(json_object_get(summary, "by_municipality"), i, item)
        {
                fputs("<tr><td>", out);
                esc(out, str(item, "name"));
                fputs("</td><td>", out);
                esc(out, str(item, "subregion"));
                fprintf(out, "</td><td class=\"num\">%lld</td></tr>", num(item, "count"));
        }
        fputs("</tbody></table>\n", out);
}

static void deviation_rows(FILE *out, const json_t *items, int overdue, size_t limit)
{
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
                if (i == limit)
                        break;
                fputs("<tr><td class=\"code\">", out);
                esc(out, str(item, "deviation_id"));
                fputs("</td>", out);
                party_cell(out, item, "reporter");
                party_cell(out, item, "receiver");
                fputs("<td>", out);
                esc(out, str(item, "category_label"));
                fputs("</td>", out);
                if (overdue) {
                        fputs("<td>", out);
                        esc(out, str(item, "deadline_label"));
                        fputs(", ", out);
                        esc(out, str(item, "deadline_at_local"));
                        fprintf(out, "</td><td class=\"num\">%lld</td>", num(item, "days_overdue"));
                } else {
                        fputs("<td>", out);
                        esc(out, str(item, "reported_at_local"));
                        fputs("</td><td>", out);
                        esc(out, str(item, "state_label"));
                        fputs("</td>", out);
                }
                fputs("<td class=\"excerpt\">", out);
                esc(out, str(item, "excerpt"));
                fputs("</td></tr>", out);
        }
}

static void body(FILE *out, const json_t *s, const json_t *overdue)
{
        long long year = num(s, "year"), total = num(s, "total");
        const json_t *deadline = json_object_get(s, "deadline");
        const json_t *flags = json_object_get(s, "flags");
        const json_t *escalation = json_object_get(s, "escalation");
        fprintf(out,
                "<header><h1>Årlig uppföljning av avvikelser i samverkan %lld</h1>"
                "<p>Hälso- och sjukvårdsavtalet mellan Västra Götalandsregionen och länets 49 "
                "kommuner. Underlag: det pseudonymiserade analysflödet; inga patientuppgifter. "
                "Sammanställd ",
                year);
        esc(out, str(s, "now_local"));
        fputs(" (svensk tid).</p></header>\n", out);

        fputs("<section><h2>Sammanfattning</h2><table class=\"keyfigures\"><tbody>", out);
        fprintf(out, "<tr><th>Rapporterade avvikelser</th><td class=\"num\">%lld</td></tr>", total);
        fprintf(out,
                "<tr><th>Besvarade inom tidsgränsen (lokal policy)</th><td class=\"num\">%lld av "
                "%lld (",
                num(deadline, "kept"), num(deadline, "answered_with_deadline"));
        percent(out, num(deadline, "kept"), num(deadline, "answered_with_deadline"));
        fputs(")</td></tr>", out);
        fprintf(out, "<tr><th>Eskalerade</th><td class=\"num\">%lld</td></tr>",
                num(escalation, "escalated"));
        fprintf(out, "<tr><th>Försenade just nu</th><td class=\"num\">%lld</td></tr>",
                num(s, "overdue"));
        fprintf(out, "<tr><th>Möjlig lex Maria</th><td class=\"num\">%lld</td></tr>",
                num(flags, "possible_lex_maria"));
        fprintf(out, "<tr><th>Barn berörda</th><td class=\"num\">%lld</td></tr>",
                num(flags, "child_involved"));
        fputs("</tbody></table>\n<p class=\"note\">", out);
        esc(out, str(deadline, "basis_label"));
        fputs(".</p>\n", out);
        column_chart(out, "Avvikelser per månad", json_object_get(s, "by_month"), "month");
        fputs("</section>\n", out);

        fputs("<section class=\"page\"><h2>Ansvarsfördelningens tydlighet</h2><p class=\"note\">"
              "Fel mottagare: andel av de skickade avvikelserna där en mottagare svarade "
              "”Fel mottagare – skickas vidare”. Triage och manuell triage: andel av "
              "avvikelserna med känt beslut om mottagare som gick till triage respektive till "
              "länets manuella triage.</p>",
              out);
        fputs("<h3>Per månad</h3>", out);
        clarity_table(out, "Månad", json_object_get(s, "clarity_by_month"), "month");
        fputs("<h3>Per delöverenskommelse</h3>", out);
        clarity_table(out, "Delöverenskommelse", json_object_get(s, "by_agreement"), "label");
        fputs("<h3>Per vårdform</h3>", out);
        clarity_table(out, "Vårdform", json_object_get(s, "by_care_setting"), "label");
        fputs("</section>\n", out);

        fputs("<section class=\"page\"><h2>Kategorier och skadegrad</h2>", out);
        bar_chart(out, "Avvikelser per kategori", json_object_get(s, "by_category"));
        count_table(out, "Kategori", json_object_get(s, "by_category"), total);
        count_table(out, "Skadegrad", json_object_get(s, "by_harm"), total);
        count_table(out, "Händelsetyp", json_object_get(s, "by_event_class"), total);
        fputs("<h3>Kategori och skadegrad</h3>", out);
        category_harm(out, s);
        fputs("</section>\n", out);

        fputs("<section class=\"page\"><h2>Parter och delregioner</h2>", out);
        bar_chart(out, "Avvikelser per delregion", json_object_get(s, "by_subregion"));
        count_table(out, "Delregion", json_object_get(s, "by_subregion"), total);
        fputs("<h3>Partspar (rapporterande → mottagande)</h3>", out);
        party_pairs(out, s);
        fputs("<h3>Kommuner</h3>", out);
        municipalities(out, s);
        fputs("</section>\n", out);

        fputs("<section class=\"page\"><h2>Svarstider och tidsgränser</h2>", out);
        response_times(out, s);
        fputs("<h3>Eskalering (högsta steg i eskaleringstrappan)</h3>", out);
        bar_chart(out, "Avvikelser per högsta eskaleringssteg",
                  json_object_get(escalation, "by_step"));
        count_table(out, "Steg", json_object_get(escalation, "by_step"), total);
        fputs("</section>\n", out);

        fputs("<section class=\"page\"><h2>Försenade avvikelser</h2><p>", out);
        deviations(out, num(overdue, "total"));
        fputs(" saknar svar eller kvittens efter tidsgränsen (dagar räknas som kalenderdagar "
              "i svensk tid; tidsgränserna är lokal policy, inte avtalets).</p>",
              out);
        fputs("<table class=\"list\"><thead><tr><th>Avvikelse</th><th>Rapporterande</th>"
              "<th>Mottagare</th><th>Kategori</th><th>Tidsgräns (svensk tid)</th><th "
              "class=\"num\">Dagar över tidsgränsen</th><th>Beskrivning (utdrag)</th></tr></thead>"
              "<tbody>",
              out);
        deviation_rows(out, json_object_get(overdue, "items"), 1, OVERDUE_ROWS);
        fputs("</tbody></table>\n", out);
        fputs("<h3>Senast rapporterade</h3><table class=\"list\"><thead><tr><th>Avvikelse</th>"
              "<th>Rapporterande</th><th>Mottagare</th><th>Kategori</th><th>Rapporterad (svensk "
              "tid)</th><th>Status</th>"
              "<th>Beskrivning (utdrag)</th></tr></thead><tbody>",
              out);
        deviation_rows(out, json_object_get(s, "latest"), 0, (size_t)-1);
        fputs("</tbody></table></section>\n", out);
}

char *avk_followup_html(const json_t *summary, const json_t *overdue, const char *css, char *errstr,
                        size_t errstr_size)
{
        char *page = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&page, &len);
        if (!out) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        fprintf(out,
                "<!DOCTYPE html>\n<html lang=\"sv\"><head><meta charset=\"utf-8\">"
                "<title>Årlig uppföljning %lld – avvikelser i samverkan</title><style>",
                num(summary, "year"));
        fputs(css, out); /* the caller's, constant: its hash is in the CSP */
        fputs("</style></head><body>\n", out);
        body(out, summary, overdue);
        fputs("</body></html>\n", out);
        if (ferror(out) | fclose(out)) {
                free(page);
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        return page;
}
