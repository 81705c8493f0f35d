/*
 * avk_followup: the yearly follow-up report (årlig uppföljning) as one
 * self-contained HTML page - tables with the figures and SVG charts drawn
 * here, its style sheet inline, no script, nothing fetched - laid out for A4
 * so that a browser's "print to PDF" gives the document the parties file.
 *
 * It renders the JSON of avk_aggregate_summary() and avk_aggregate_overdue()
 * (consumer/dashboard/aggregate.h); every string from them is HTML-escaped, the
 * deviations' description excerpts included.
 */
#ifndef AVK_FOLLOWUP_H
#define AVK_FOLLOWUP_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/**
 * @brief The report for summary's year.
 * @param summary avk_aggregate_summary() of one year
 * @param overdue avk_aggregate_overdue() at the same now
 * @param css the style sheet, put inline in a <style> element as it is (the
 * caller's Content-Security-Policy names its hash)
 * @returns a malloc'd NUL-terminated page for the caller to free, or NULL
 * with the reason in errstr.
 */
char *avk_followup_html(const json_t *summary, const json_t *overdue, const char *css, char *errstr,
                        size_t errstr_size);

/**
 * @brief Writes s to out with &, <, >, " and ' as character references: safe
 * in element content and in quoted attribute values.
 */
void avk_followup_escape(FILE *out, const char *s);

#endif
