/*
 * Unit tests for avk_calendar: Easter, the holidays of lag (1989:253) om
 * allmänna helgdagar and the eves treated as holidays in working life,
 * working-day arithmetic across Easter, Christmas, New Year and the summer
 * time switches, and Stockholm's offset from UTC.
 *
 * Expected instants are written in UTC through timegm() and weekdays come
 * from gmtime_r(), and the offsets are checked hour by hour against the
 * system's zone database (tzdata's Europe/Stockholm, scripts/deps.sh), so
 * the tests do not share the calendar's own date arithmetic.
 */
#include "common/util/calendar.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HOUR_MS INT64_C(3600000)
#define DAY_MS  INT64_C(86400000)

/* The instant of a UTC date and time, by the C library. */
static int64_t utc(int year, int month, int day, int hour, int minute, int second, int ms)
{
        struct tm tm = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};

        return (int64_t)timegm(&tm) * 1000 + ms;
}

/* 0 = Sunday ... 6 = Saturday, by the C library. */
static int weekday_of(int year, int month, int day)
{
        time_t t = (time_t)(utc(year, month, day, 12, 0, 0, 0) / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        return tm.tm_wday;
}

static int days_in_month(int year, int month)
{
        static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

        return days[month - 1] + (month == 2 && leap);
}

static void assert_local_date(int64_t t, int year, int month, int day)
{
        int y, m, d;

        avk_calendar_local_date(t, &y, &m, &d);
        ck_assert_msg(y == year && m == month && d == day,
                      "local date %04d-%02d-%02d, expected %04d-%02d-%02d", y, m, d, year, month,
                      day);
}

/* ---- Easter ---- */

static const struct {
        int year, month, day;
} easter_cases[] = {
    {1900, 4, 15}, {1913, 3, 23}, /* early: 23 March */
    {1943, 4, 25},                /* the latest possible date */
    {1954, 4, 18}, {1981, 4, 19}, {2000, 4, 23}, {2008, 3, 23}, {2011, 4, 24},
    {2019, 4, 21}, {2024, 3, 31}, {2025, 4, 20}, {2026, 4, 5},  {2027, 3, 28},
    {2038, 4, 25}, {2100, 3, 28}, {2160, 3, 23}, {2199, 4, 14},
};

START_TEST(easter_sunday_follows_the_gregorian_computus)
{
        int month, day;

        avk_calendar_easter(easter_cases[_i].year, &month, &day);
        ck_assert_msg(month == easter_cases[_i].month && day == easter_cases[_i].day,
                      "Easter %d: %02d-%02d, expected %02d-%02d", easter_cases[_i].year, month, day,
                      easter_cases[_i].month, easter_cases[_i].day);
}
END_TEST

START_TEST(easter_is_a_sunday_from_22_march_to_25_april_every_year)
{
        for (int year = 1900; year <= 2199; year++) {
                int month, day;

                avk_calendar_easter(year, &month, &day);
                ck_assert_int_eq(weekday_of(year, month, day), 0);
                ck_assert_msg((month == 3 && day >= 22) || (month == 4 && day <= 25),
                              "Easter %d: %02d-%02d", year, month, day);
        }
}
END_TEST

/* ---- holidays ---- */

/* Every holiday of a year: lag (1989:253) om allmänna helgdagar 1 §, and the eves. */
struct holiday {
        int month, day;
        const char *name;
};

static const struct holiday holidays_2026[] = {
    {1, 1, "nyårsdagen"},
    {1, 6, "trettondedag jul"},
    {4, 3, "långfredagen"},
    {4, 5, "påskdagen"},
    {4, 6, "annandag påsk"},
    {5, 1, "första maj"},
    {5, 14, "Kristi himmelsfärdsdag (Easter + 39)"},
    {5, 24, "pingstdagen (Easter + 49)"},
    {6, 6, "Sveriges nationaldag"},
    {6, 19, "midsommarafton (Friday 19-25 June)"},
    {6, 20, "midsommardagen (Saturday 20-26 June)"},
    {10, 31, "alla helgons dag (Saturday 31 October - 6 November)"},
    {12, 24, "julafton"},
    {12, 25, "juldagen"},
    {12, 26, "annandag jul"},
    {12, 31, "nyårsafton"},
    {0, 0, NULL},
};

static const struct holiday holidays_2027[] = {
    {1, 1, "nyårsdagen"},
    {1, 6, "trettondedag jul"},
    {3, 26, "långfredagen"},
    {3, 28, "påskdagen"},
    {3, 29, "annandag påsk"},
    {5, 1, "första maj"},
    {5, 6, "Kristi himmelsfärdsdag (Easter + 39)"},
    {5, 16, "pingstdagen (Easter + 49)"},
    {6, 6, "Sveriges nationaldag"},
    {6, 25, "midsommarafton (Friday 19-25 June)"},
    {6, 26, "midsommardagen (Saturday 20-26 June)"},
    {11, 6, "alla helgons dag (Saturday 31 October - 6 November)"},
    {12, 24, "julafton"},
    {12, 25, "juldagen"},
    {12, 26, "annandag jul"},
    {12, 31, "nyårsafton"},
    {0, 0, NULL},
};

static const char *holiday_name(const struct holiday *table, int month, int day)
{
        for (; table->name != NULL; table++) {
                if (table->month == month && table->day == day)
                        return table->name;
        }
        return NULL;
}

/* Every day of the year: a holiday exactly when listed; a working day exactly when a weekday and
 * not listed. */
static void assert_year(int year, const struct holiday *table)
{
        for (int month = 1; month <= 12; month++) {
                for (int day = 1; day <= days_in_month(year, month); day++) {
                        const char *name = holiday_name(table, month, day);
                        int wd = weekday_of(year, month, day);

                        ck_assert_msg(avk_calendar_is_holiday(year, month, day) == (name != NULL),
                                      "%04d-%02d-%02d: holiday %d, expected %s", year, month, day,
                                      avk_calendar_is_holiday(year, month, day),
                                      name ? name : "none");
                        ck_assert_msg(avk_calendar_is_working_day(year, month, day) ==
                                          (name == NULL && wd != 0 && wd != 6),
                                      "%04d-%02d-%02d: working day %d", year, month, day,
                                      avk_calendar_is_working_day(year, month, day));
                }
        }
}

START_TEST(the_holidays_of_2026_are_those_of_the_law_and_the_eves)
{
        assert_year(2026, holidays_2026);
}
END_TEST

START_TEST(the_holidays_of_2027_are_those_of_the_law_and_the_eves)
{
        assert_year(2027, holidays_2027);
}
END_TEST

START_TEST(midsommar_falls_on_the_friday_and_saturday_of_19_to_26_june)
{
        static const struct {
                int year, eve_day;
        } known[] = {{2024, 21}, {2025, 20}, {2026, 19}, {2027, 25}, {2028, 23}};

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                ck_assert(avk_calendar_is_holiday(known[i].year, 6, known[i].eve_day));
                ck_assert(avk_calendar_is_holiday(known[i].year, 6, known[i].eve_day + 1));
        }
        for (int year = 1900; year <= 2199; year++) {
                int eves = 0;

                for (int day = 19; day <= 26; day++) {
                        int wd = weekday_of(year, 6, day);

                        if (day <= 25 && wd == 5) {
                                ck_assert_msg(avk_calendar_is_holiday(year, 6, day) &&
                                                  avk_calendar_is_holiday(year, 6, day + 1),
                                              "%d-06-%02d: midsommarafton and -dagen", year, day);
                                eves++;
                        } else if (!(day >= 20 && wd == 6)) {
                                /* Only pingstdagen (a Sunday) can fall among the other days. */
                                ck_assert_msg(!avk_calendar_is_holiday(year, 6, day) || wd == 0,
                                              "%d-06-%02d is not midsommar", year, day);
                        }
                }
                ck_assert_int_eq(eves, 1);
        }
}
END_TEST

START_TEST(alla_helgons_dag_is_the_saturday_of_31_october_to_6_november)
{
        static const struct {
                int year, month, day;
        } known[] = {{2024, 11, 2}, {2025, 11, 1}, {2026, 10, 31}, {2027, 11, 6}, {2028, 11, 4}};

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                ck_assert(avk_calendar_is_holiday(known[i].year, known[i].month, known[i].day));
        for (int year = 1900; year <= 2199; year++) {
                int found = 0;

                for (int i = 0; i < 7; i++) {
                        int month = i == 0 ? 10 : 11, day = i == 0 ? 31 : i;

                        if (!avk_calendar_is_holiday(year, month, day))
                                continue;
                        ck_assert_int_eq(weekday_of(year, month, day), 6);
                        found++;
                }
                ck_assert_msg(found == 1, "%d: %d days of alla helgons dag", year, found);
        }
}
END_TEST

START_TEST(a_date_that_does_not_exist_is_neither_holiday_nor_working_day)
{
        ck_assert(!avk_calendar_is_holiday(2026, 2, 29));
        ck_assert(!avk_calendar_is_working_day(2026, 2, 29));
        ck_assert(!avk_calendar_is_working_day(2026, 13, 1));
        ck_assert(!avk_calendar_is_working_day(2026, 4, 31));
        ck_assert(avk_calendar_is_working_day(2028, 2, 29)); /* a leap year's Tuesday */
        ck_assert(avk_calendar_is_working_day(1900, 1, 2));  /* the range's first Tuesday */
        ck_assert(avk_calendar_is_holiday(2199, 12, 31));    /* and its last day, nyårsafton */
}
END_TEST

/* ---- offsets ---- */

START_TEST(summer_time_starts_and_ends_at_0100_utc_on_the_last_sundays)
{
        static const struct {
                int year, march_day, october_day;
        } switches[] = {{2024, 31, 27}, {2025, 30, 26}, {2026, 29, 25}, {2027, 28, 31},
                        {2038, 28, 31}, {2100, 28, 31}, {1996, 31, 27}};

        for (size_t i = 0; i < sizeof(switches) / sizeof(switches[0]); i++) {
                int y = switches[i].year;
                int64_t on = utc(y, 3, switches[i].march_day, 1, 0, 0, 0);
                int64_t off = utc(y, 10, switches[i].october_day, 1, 0, 0, 0);

                ck_assert_int_eq(avk_calendar_utc_offset_ms(on - 1), AVK_CALENDAR_CET_MS);
                ck_assert_int_eq(avk_calendar_utc_offset_ms(on), AVK_CALENDAR_CEST_MS);
                ck_assert_int_eq(avk_calendar_utc_offset_ms(off - 1), AVK_CALENDAR_CEST_MS);
                ck_assert_int_eq(avk_calendar_utc_offset_ms(off), AVK_CALENDAR_CET_MS);
        }
        ck_assert_int_eq(avk_calendar_utc_offset_ms(utc(2026, 1, 15, 12, 0, 0, 0)),
                         AVK_CALENDAR_CET_MS);
        ck_assert_int_eq(avk_calendar_utc_offset_ms(utc(2026, 7, 15, 12, 0, 0, 0)),
                         AVK_CALENDAR_CEST_MS);
        ck_assert_int_eq(avk_calendar_utc_offset_ms(utc(1900, 1, 1, 0, 0, 0, 0)),
                         AVK_CALENDAR_CET_MS);
}
END_TEST

START_TEST(offsets_agree_with_the_zone_database_from_1996_to_2100)
{
        int64_t from = utc(1996, 1, 1, 0, 0, 0, 0), to = utc(2101, 1, 1, 0, 0, 0, 0);

        ck_assert_int_eq(setenv("TZ", "Europe/Stockholm", 1), 0);
        tzset();
        /* Every hour of March and October, when the clocks change; noon on the other days. */
        for (int64_t day = from; day < to; day += DAY_MS) {
                time_t noon = (time_t)(day / 1000 + 12 * 3600);
                struct tm tm;
                int hours;

                gmtime_r(&noon, &tm);
                hours = tm.tm_mon == 2 || tm.tm_mon == 9 ? 24 : 1;
                for (int h = 0; h < hours; h++) {
                        int64_t t = hours == 1 ? (int64_t)noon * 1000 : day + h * HOUR_MS;
                        time_t s = (time_t)(t / 1000);

                        ck_assert_ptr_nonnull(localtime_r(&s, &tm));
                        ck_assert_msg(tm.tm_gmtoff == 3600 || tm.tm_gmtoff == 7200,
                                      "no Europe/Stockholm zone (install tzdata): offset %ld",
                                      (long)tm.tm_gmtoff);
                        if ((int64_t)tm.tm_gmtoff * 1000 != avk_calendar_utc_offset_ms(t))
                                ck_abort_msg("%lld: zone database %ld s, calendar %lld ms",
                                             (long long)t, (long)tm.tm_gmtoff,
                                             (long long)avk_calendar_utc_offset_ms(t));
                }
        }
}
END_TEST

START_TEST(local_dates_change_at_stockholm_midnight_not_utc_midnight)
{
        assert_local_date(utc(2026, 1, 14, 22, 59, 59, 999), 2026, 1, 14);
        assert_local_date(utc(2026, 1, 14, 23, 0, 0, 0), 2026, 1, 15);
        assert_local_date(utc(2026, 7, 14, 21, 59, 59, 999), 2026, 7, 14);
        assert_local_date(utc(2026, 7, 14, 22, 0, 0, 0), 2026, 7, 15);
        assert_local_date(utc(2026, 12, 31, 23, 0, 0, 0), 2027, 1, 1);
}
END_TEST

START_TEST(local_times_in_the_switch_hours_resolve_as_documented)
{
        ck_assert_int_eq(avk_calendar_from_local(2026, 1, 15, 12, 0, 0),
                         utc(2026, 1, 15, 11, 0, 0, 0));
        ck_assert_int_eq(avk_calendar_from_local(2026, 7, 15, 12, 0, 0),
                         utc(2026, 7, 15, 10, 0, 0, 0));
        /* 02:30 does not exist on 29 March 2026: taken as CET, i.e. 03:30 CEST. */
        ck_assert_int_eq(avk_calendar_from_local(2026, 3, 29, 2, 30, 0),
                         utc(2026, 3, 29, 1, 30, 0, 0));
        /* 02:30 occurs twice on 25 October 2026: the first, still CEST. */
        ck_assert_int_eq(avk_calendar_from_local(2026, 10, 25, 2, 30, 0),
                         utc(2026, 10, 25, 0, 30, 0, 0));
        ck_assert_int_eq(avk_calendar_from_local(2026, 10, 25, 3, 0, 0),
                         utc(2026, 10, 25, 2, 0, 0, 0));
}
END_TEST

/* ---- working days ---- */

START_TEST(working_days_skip_good_friday_to_easter_monday)
{
        /* Thursday 2 April 2026, noon: Friday 3 to Monday 6 are not working days. */
        int64_t from = avk_calendar_from_local(2026, 4, 2, 12, 0, 0);

        ck_assert_int_eq(avk_calendar_add_working_days(from, 1), utc(2026, 4, 7, 21, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_working_days(from, 2), utc(2026, 4, 8, 21, 59, 59, 999));
        /* From Easter Saturday, the day itself not counted either way. */
        ck_assert_int_eq(
            avk_calendar_add_working_days(avk_calendar_from_local(2026, 4, 4, 9, 0, 0), 1),
            utc(2026, 4, 7, 21, 59, 59, 999));
}
END_TEST

START_TEST(working_days_skip_christmas_and_new_year)
{
        /* Wednesday 23 December 2026. */
        int64_t from = avk_calendar_from_local(2026, 12, 23, 10, 0, 0);

        /* 24 julafton, 25 juldagen, 26-27 weekend: Monday 28. */
        ck_assert_int_eq(avk_calendar_add_working_days(from, 1),
                         utc(2026, 12, 28, 22, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_working_days(from, 3),
                         utc(2026, 12, 30, 22, 59, 59, 999));
        /* 31 nyårsafton, 1 January nyårsdagen, 2-3 weekend: Monday 4 January 2027. */
        ck_assert_int_eq(avk_calendar_add_working_days(from, 4), utc(2027, 1, 4, 22, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_working_days(from, 5), utc(2027, 1, 5, 22, 59, 59, 999));
        /* 6 January trettondedag jul. */
        ck_assert_int_eq(avk_calendar_add_working_days(from, 6), utc(2027, 1, 7, 22, 59, 59, 999));
}
END_TEST

START_TEST(working_days_end_at_local_midnight_across_the_summer_time_switches)
{
        /* Friday 27 March 2026 (CET); the clocks go forward on Sunday 29. */
        int64_t march = avk_calendar_from_local(2026, 3, 27, 16, 0, 0);
        /* Friday 23 October 2026 (CEST); the clocks go back on Sunday 25. */
        int64_t october = avk_calendar_from_local(2026, 10, 23, 16, 0, 0);

        ck_assert_int_eq(avk_calendar_add_working_days(march, 1),
                         utc(2026, 3, 30, 21, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_working_days(october, 1),
                         utc(2026, 10, 26, 22, 59, 59, 999));
}
END_TEST

START_TEST(the_day_of_from_counts_in_stockholm_time)
{
        /* 23:30 UTC on Wednesday 14 January is 00:30 on Thursday 15 in Stockholm. */
        ck_assert_int_eq(avk_calendar_add_working_days(utc(2026, 1, 14, 23, 30, 0, 0), 1),
                         utc(2026, 1, 16, 22, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_working_days(utc(2026, 1, 14, 22, 30, 0, 0), 1),
                         utc(2026, 1, 15, 22, 59, 59, 999));
        /* From 00:00 exactly, the day is still not counted. */
        ck_assert_int_eq(
            avk_calendar_add_working_days(avk_calendar_from_local(2026, 3, 30, 0, 0, 0), 1),
            utc(2026, 3, 31, 21, 59, 59, 999));
}
END_TEST

START_TEST(calendar_days_end_at_local_midnight_on_23_and_25_hour_days)
{
        int64_t sat_march = avk_calendar_from_local(2026, 3, 28, 10, 0, 0);
        int64_t sat_october = avk_calendar_from_local(2026, 10, 24, 10, 0, 0);
        int64_t sunday_start, sunday_end;

        /* Sunday 29 March 2026 has 23 hours. */
        sunday_end = avk_calendar_add_days(sat_march, 1);
        sunday_start = avk_calendar_sub_days(sunday_end, 0);
        ck_assert_int_eq(sunday_end, utc(2026, 3, 29, 21, 59, 59, 999));
        ck_assert_int_eq(sunday_start, utc(2026, 3, 28, 23, 0, 0, 0));
        ck_assert_int_eq(sunday_end + 1 - sunday_start, 23 * HOUR_MS);
        /* Sunday 25 October 2026 has 25. */
        sunday_end = avk_calendar_add_days(sat_october, 1);
        sunday_start = avk_calendar_sub_days(sunday_end, 0);
        ck_assert_int_eq(sunday_end, utc(2026, 10, 25, 22, 59, 59, 999));
        ck_assert_int_eq(sunday_start, utc(2026, 10, 24, 22, 0, 0, 0));
        ck_assert_int_eq(sunday_end + 1 - sunday_start, 25 * HOUR_MS);
        /* 60 days across the March switch and a year boundary. */
        ck_assert_int_eq(avk_calendar_add_days(avk_calendar_from_local(2026, 2, 1, 9, 0, 0), 60),
                         utc(2026, 4, 2, 21, 59, 59, 999));
        ck_assert_int_eq(avk_calendar_add_days(avk_calendar_from_local(2026, 12, 31, 23, 59, 0), 1),
                         utc(2027, 1, 1, 22, 59, 59, 999));
}
END_TEST

START_TEST(reminders_start_working_days_before_the_deadline_day)
{
        int64_t after_easter = utc(2026, 4, 7, 21, 59, 59, 999);   /* end of Tuesday 7 April */
        int64_t after_switch = utc(2026, 3, 30, 21, 59, 59, 999);  /* end of Monday 30 March */
        int64_t after_new_year = utc(2027, 1, 4, 22, 59, 59, 999); /* end of Monday 4 January */

        /* Before Tuesday 7 April: Easter Monday to Good Friday are skipped, Thursday 2 (CEST). */
        ck_assert_int_eq(avk_calendar_sub_working_days(after_easter, 1),
                         utc(2026, 4, 1, 22, 0, 0, 0));
        ck_assert_int_eq(avk_calendar_sub_working_days(after_easter, 2),
                         utc(2026, 3, 31, 22, 0, 0, 0));
        /* Before Monday 30 March (CEST): Friday 27, still CET. */
        ck_assert_int_eq(avk_calendar_sub_working_days(after_switch, 1),
                         utc(2026, 3, 26, 23, 0, 0, 0));
        /* Before Monday 4 January 2027: Wednesday 30 December 2026. */
        ck_assert_int_eq(avk_calendar_sub_working_days(after_new_year, 1),
                         utc(2026, 12, 29, 23, 0, 0, 0));
        ck_assert_int_eq(avk_calendar_sub_days(after_new_year, 7), utc(2026, 12, 27, 23, 0, 0, 0));
}
END_TEST

START_TEST(adding_then_subtracting_working_days_returns_to_the_day_after_every_day)
{
        /*
         * For every day of 2026-2027: n working days on and n - 1 back is the
         * start of the first working day after it.
         */
        for (int64_t day = avk_calendar_from_local(2026, 1, 1, 12, 0, 0);
             day < avk_calendar_from_local(2028, 1, 1, 0, 0, 0); day += DAY_MS) {
                int64_t first = avk_calendar_add_working_days(day, 1);

                for (int n = 1; n <= 25; n += 8) {
                        int64_t deadline = avk_calendar_add_working_days(day, n);
                        int64_t back = avk_calendar_sub_working_days(deadline, n - 1);

                        ck_assert_msg(back == avk_calendar_sub_days(first, 0),
                                      "from %lld, %d working days: %lld back to %lld, first %lld",
                                      (long long)day, n, (long long)deadline, (long long)back,
                                      (long long)first);
                }
        }
}
END_TEST

static Suite *calendar_suite(void)
{
        Suite *s = suite_create("calendar");
        TCase *tc = tcase_create("calendar");

        tcase_add_loop_test(tc, easter_sunday_follows_the_gregorian_computus, 0,
                            (int)(sizeof(easter_cases) / sizeof(easter_cases[0])));
        tcase_add_test(tc, easter_is_a_sunday_from_22_march_to_25_april_every_year);
        tcase_add_test(tc, the_holidays_of_2026_are_those_of_the_law_and_the_eves);
        tcase_add_test(tc, the_holidays_of_2027_are_those_of_the_law_and_the_eves);
        tcase_add_test(tc, midsommar_falls_on_the_friday_and_saturday_of_19_to_26_june);
        tcase_add_test(tc, alla_helgons_dag_is_the_saturday_of_31_october_to_6_november);
        tcase_add_test(tc, a_date_that_does_not_exist_is_neither_holiday_nor_working_day);
        tcase_add_test(tc, summer_time_starts_and_ends_at_0100_utc_on_the_last_sundays);
        tcase_add_test(tc, offsets_agree_with_the_zone_database_from_1996_to_2100);
        tcase_add_test(tc, local_dates_change_at_stockholm_midnight_not_utc_midnight);
        tcase_add_test(tc, local_times_in_the_switch_hours_resolve_as_documented);
        tcase_add_test(tc, working_days_skip_good_friday_to_easter_monday);
        tcase_add_test(tc, working_days_skip_christmas_and_new_year);
        tcase_add_test(tc, working_days_end_at_local_midnight_across_the_summer_time_switches);
        tcase_add_test(tc, the_day_of_from_counts_in_stockholm_time);
        tcase_add_test(tc, calendar_days_end_at_local_midnight_on_23_and_25_hour_days);
        tcase_add_test(tc, reminders_start_working_days_before_the_deadline_day);
        tcase_add_test(tc, adding_then_subtracting_working_days_returns_to_the_day_after_every_day);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(calendar_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
