/*
 * avk_calendar: the Swedish working-day calendar in Stockholm time, for the
 * deadlines of the deviation process ("3 working days", "60 days").
 *
 * Holidays are those of lag (1989:253) om allmänna helgdagar as in force
 * since 2005 (SFS 2004:1311: nationaldagen became a holiday, annandag pingst
 * ceased to be one): nyårsdagen, trettondedag jul, långfredagen, påskdagen,
 * annandag påsk, första maj, Kristi himmelsfärdsdag, pingstdagen,
 * nationaldagen, midsommardagen, alla helgons dag, juldagen and annandag jul;
 * plus the eves that working life treats as holidays: midsommarafton,
 * julafton and nyårsafton. Easter follows the Gregorian computus. A working
 * day is Monday to Friday and none of these.
 *
 * Stockholm time is CET (UTC+1) and CEST (UTC+2) from the last Sunday of
 * March 01:00 UTC to the last Sunday of October 01:00 UTC: the EU rule in
 * force (directive 2000/84/EC), implemented here rather than through TZ and
 * localtime_r(), because setting TZ is not thread-safe and the tracker must
 * not depend on the host's zone database.
 *
 * Both rules are applied to every year from 1900 to 2199 as they stand
 * today: deadlines are computed for deviations of the present, and a
 * historical calendar (a fixed midsommardag before 1953, no summer time
 * before 1980) would only make old dates disagree with the rule a user
 * reads in docs/deadlines.md.
 *
 * Times are int64 milliseconds since the Unix epoch, UTC. Everything here is
 * pure: no state, safe from any thread.
 */
#ifndef AVK_CALENDAR_H
#define AVK_CALENDAR_H

#include <stdint.h>

/** CET, UTC+1, in milliseconds. */
#define AVK_CALENDAR_CET_MS 3600000
/** CEST (summer time), UTC+2, in milliseconds. */
#define AVK_CALENDAR_CEST_MS 7200000

/** @brief Easter Sunday (påskdagen) of a Gregorian year: *month 3 or 4, *day. */
void avk_calendar_easter(int year, int *month, int *day);

/**
 * @brief 1 when the date is one of the holidays or holiday eves above, else 0
 * (also for a date that does not exist).
 */
int avk_calendar_is_holiday(int year, int month, int day);

/** @brief 1 for Monday to Friday that is not a holiday; 0 otherwise and for a nonexistent date. */
int avk_calendar_is_working_day(int year, int month, int day);

/** @brief Stockholm's offset from UTC at an instant: AVK_CALENDAR_CET_MS or AVK_CALENDAR_CEST_MS.
 */
int64_t avk_calendar_utc_offset_ms(int64_t utc_ms);

/** @brief The Stockholm-local date of an instant. */
void avk_calendar_local_date(int64_t utc_ms, int *year, int *month, int *day);

/**
 * @brief The instant of a Stockholm-local date and time. A time in the hour
 * the clocks skip in March counts as CET (it lands an hour later on the
 * clock); one in the hour that occurs twice in October is taken as its first
 * occurrence (CEST).
 */
int64_t avk_calendar_from_local(int year, int month, int day, int hour, int minute, int second);

/**
 * @brief The end (23:59:59.999 Stockholm time) of the nth working day after
 * the Stockholm-local day of from_ms; that day itself is never counted, be it
 * a working day or not. n >= 1; n <= 0 gives the end of from_ms's own day.
 */
int64_t avk_calendar_add_working_days(int64_t from_ms, int n);

/**
 * @brief The end (23:59:59.999 Stockholm time) of the nth calendar day after
 * the local day of from_ms. n >= 1; n <= 0 gives the end of from_ms's own day.
 */
int64_t avk_calendar_add_days(int64_t from_ms, int n);

/**
 * @brief The start (00:00 Stockholm time) of the nth working day before the
 * local day of deadline_ms, for a reminder. n >= 1; n <= 0 gives the start of
 * deadline_ms's own day.
 */
int64_t avk_calendar_sub_working_days(int64_t deadline_ms, int n);

/** @brief The start (00:00 Stockholm time) of the nth calendar day before the local day of
 * deadline_ms. */
int64_t avk_calendar_sub_days(int64_t deadline_ms, int n);

/** Size of avk_calendar_format_local()'s text, its NUL included. */
#define AVK_CALENDAR_LOCAL_SIZE 24

/**
 * @brief An instant as people in Sweden read it: its Stockholm-local date and
 * time to the minute, "2027-03-28 03:30" (24-hour clock, no zone letter), into
 * buf. A year outside 0..9999 is written as it is.
 */
void avk_calendar_format_local(int64_t utc_ms, char buf[AVK_CALENDAR_LOCAL_SIZE]);

#endif
