/*
 * avk_calendar: see calendar.h.
 *
 * Dates are turned into day numbers (days since 1970-01-01) with the
 * proleptic Gregorian conversions of Howard Hinnant's "chrono-Compatible
 * Low-Level Date Algorithms", so that walking from day to day is adding one
 * and the weekday is a remainder. Local days come from adding the offset in
 * force at the instant; the start of a local day is found by trying CEST
 * first, which is right for midnight (the clocks never change then).
 */
#include "common/util/calendar.h"

#include <stdio.h>

#define MS_PER_DAY  INT64_C(86400000)
#define MS_PER_HOUR INT64_C(3600000)

enum { SUNDAY = 0, FRIDAY = 5, SATURDAY = 6 };

/* a / b and a mod b rounded towards minus infinity: days before 1970 are negative. */
static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int year, int month, int day)
{
        int64_t y = (int64_t)year - (month <= 2);
        int64_t era = floor_div(y, 400);
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *year, int *month, int *day)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = floor_div(z, 146097);
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
        *month = (int)(mp < 10 ? mp + 3 : mp - 9);
        *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
        return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static int is_leap(int year)
{
        return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int date_exists(int year, int month, int day)
{
        static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

        if (month < 1 || month > 12 || day < 1)
                return 0;
        return day <= month_days[month - 1] + (month == 2 && is_leap(year));
}

void avk_calendar_easter(int year, int *month, int *day)
{
        /* The anonymous Gregorian algorithm (Meeus/Jones/Butcher). */
        int a = year % 19, b = year / 100, c = year % 100;
        int d = b / 4, e = b % 4, f = (b + 8) / 25, g = (b - f + 1) / 3;
        int h = (19 * a + b - d - g + 15) % 30;
        int i = c / 4, k = c % 4;
        int l = (32 + 2 * e + 2 * i - h - k) % 7;
        int m = (a + 11 * h + 22 * l) / 451;

        *month = (h + l - 7 * m + 114) / 31;
        *day = (h + l - 7 * m + 114) % 31 + 1;
}

/* The holidays of a day number whose date is year-month-day. */
static int holiday(int64_t days, int year, int month, int day)
{
        int wd = weekday(days);
        int easter_month, easter_day;
        int64_t from_easter;

        switch (month * 100 + day) {
        case 101:  /* nyårsdagen */
        case 106:  /* trettondedag jul */
        case 501:  /* första maj */
        case 606:  /* Sveriges nationaldag */
        case 1224: /* julafton */
        case 1225: /* juldagen */
        case 1226: /* annandag jul */
        case 1231: /* nyårsafton */
                return 1;
        default:
                break;
        }
        /* midsommarafton: the Friday of 19-25 June; midsommardagen the Saturday after. */
        if (month == 6 && ((wd == FRIDAY && day >= 19 && day <= 25) ||
                           (wd == SATURDAY && day >= 20 && day <= 26)))
                return 1;
        /* alla helgons dag: the Saturday of 31 October - 6 November. */
        if (wd == SATURDAY && ((month == 10 && day == 31) || (month == 11 && day <= 6)))
                return 1;
        if (month < 3 || month > 6)
                return 0;
        avk_calendar_easter(year, &easter_month, &easter_day);
        from_easter = days - days_from_civil(year, easter_month, easter_day);
        /* långfredagen, påskdagen, annandag påsk, Kristi himmelsfärdsdag, pingstdagen */
        return from_easter == -2 || from_easter == 0 || from_easter == 1 || from_easter == 39 ||
               from_easter == 49;
}

static int working_day(int64_t days)
{
        int wd = weekday(days);
        int year, month, day;

        if (wd == SATURDAY || wd == SUNDAY)
                return 0;
        civil_from_days(days, &year, &month, &day);
        return !holiday(days, year, month, day);
}

int avk_calendar_is_holiday(int year, int month, int day)
{
        if (!date_exists(year, month, day))
                return 0;
        return holiday(days_from_civil(year, month, day), year, month, day);
}

int avk_calendar_is_working_day(int year, int month, int day)
{
        if (!date_exists(year, month, day))
                return 0;
        return working_day(days_from_civil(year, month, day));
}

/* The instant of the last Sunday of month in year, 01:00 UTC. */
static int64_t last_sunday_0100_utc(int year, int month)
{
        int64_t last = days_from_civil(year, month + 1, 1) - 1; /* March or October: no wrap */

        last -= weekday(last);
        return last * MS_PER_DAY + MS_PER_HOUR;
}

int64_t avk_calendar_utc_offset_ms(int64_t utc_ms)
{
        int year, month, day;

        /* The switches are far from New Year, so the UTC year is the local one. */
        civil_from_days(floor_div(utc_ms, MS_PER_DAY), &year, &month, &day);
        if (utc_ms >= last_sunday_0100_utc(year, 3) && utc_ms < last_sunday_0100_utc(year, 10))
                return AVK_CALENDAR_CEST_MS;
        return AVK_CALENDAR_CET_MS;
}

/* The UTC instant of a local wall-clock time (ms since the epoch as if local were UTC). */
static int64_t from_local_ms(int64_t local_ms)
{
        int64_t summer = local_ms - AVK_CALENDAR_CEST_MS;

        if (avk_calendar_utc_offset_ms(summer) == AVK_CALENDAR_CEST_MS)
                return summer;
        return local_ms - AVK_CALENDAR_CET_MS;
}

/* The local day number of an instant. */
static int64_t local_day(int64_t utc_ms)
{
        return floor_div(utc_ms + avk_calendar_utc_offset_ms(utc_ms), MS_PER_DAY);
}

static int64_t start_of_day(int64_t days)
{
        return from_local_ms(days * MS_PER_DAY);
}

static int64_t end_of_day(int64_t days)
{
        return start_of_day(days + 1) - 1;
}

void avk_calendar_local_date(int64_t utc_ms, int *year, int *month, int *day)
{
        civil_from_days(local_day(utc_ms), year, month, day);
}

int64_t avk_calendar_from_local(int year, int month, int day, int hour, int minute, int second)
{
        return from_local_ms(days_from_civil(year, month, day) * MS_PER_DAY +
                             ((int64_t)hour * 3600 + (int64_t)minute * 60 + second) * 1000);
}

/* The nth working day from day (exclusive) in direction step (+1 or -1). */
static int64_t walk_working_days(int64_t day, int n, int step)
{
        while (n > 0) {
                day += step;
                n -= working_day(day);
        }
        return day;
}

int64_t avk_calendar_add_working_days(int64_t from_ms, int n)
{
        return end_of_day(walk_working_days(local_day(from_ms), n, 1));
}

int64_t avk_calendar_add_days(int64_t from_ms, int n)
{
        return end_of_day(local_day(from_ms) + (n > 0 ? n : 0));
}

int64_t avk_calendar_sub_working_days(int64_t deadline_ms, int n)
{
        return start_of_day(walk_working_days(local_day(deadline_ms), n, -1));
}

int64_t avk_calendar_sub_days(int64_t deadline_ms, int n)
{
        return start_of_day(local_day(deadline_ms) - (n > 0 ? n : 0));
}

void avk_calendar_format_local(int64_t utc_ms, char buf[AVK_CALENDAR_LOCAL_SIZE])
{
        int64_t local_ms = utc_ms + avk_calendar_utc_offset_ms(utc_ms);
        int64_t minute_of_day =
            floor_div(local_ms - floor_div(local_ms, MS_PER_DAY) * MS_PER_DAY, 60000);
        int year, month, day;
        civil_from_days(floor_div(local_ms, MS_PER_DAY), &year, &month, &day);
        snprintf(buf, AVK_CALENDAR_LOCAL_SIZE, "%04d-%02d-%02d %02d:%02d", year, month, day,
                 (int)(minute_of_day / 60), (int)(minute_of_day % 60));
}
