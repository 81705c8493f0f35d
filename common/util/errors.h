/*
 * avk_errors: a bounded list of field errors, each "path: reason", so that a
 * rejected document can be answered with every problem at once rather than
 * one per round trip.
 */
#ifndef AVK_ERRORS_H
#define AVK_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

#define AVK_ERRORS_MAX     32
#define AVK_ERROR_MSG_SIZE 512

struct avk_errors {
        size_t cnt;     /**< messages held, at most AVK_ERRORS_MAX */
        size_t dropped; /**< errors past AVK_ERRORS_MAX, counted only */
        char msg[AVK_ERRORS_MAX][AVK_ERROR_MSG_SIZE];
};

void avk_errors_init(struct avk_errors *errs);

/**
 * @brief Adds "path: reason"; an empty or NULL path adds the reason alone.
 * The whole line is scrubbed (common/util/scrub.h) before it is cut to
 * AVK_ERROR_MSG_SIZE, so an identity the sender wrote never reaches an
 * answer or a log through it.
 */
void avk_errors_add(struct avk_errors *errs, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief avk_errors_add() with a va_list, for helpers that add their own path. */
void avk_errors_addv(struct avk_errors *errs, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/** @brief Total errors, held and dropped. */
size_t avk_errors_total(const struct avk_errors *errs);

/**
 * @brief Joins the messages with "; " into buf (truncated to fit), ending with
 * "(and N more)" when some were dropped. @returns buf.
 */
char *avk_errors_join(const struct avk_errors *errs, char *buf, size_t size);

#endif
