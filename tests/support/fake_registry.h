/*
 * fake_registry: a Confluent-compatible Schema Registry served in-process by
 * libmicrohttpd on an ephemeral loopback port, for tests of code that talks to
 * a registry (the client itself, the codec's Confluent framing).
 *
 * It speaks just enough of the API - POST /subjects/{subject}/versions and
 * GET /schemas/ids/{id}, with Confluent error bodies - and can be switched
 * into failure modes, so a test can show what a caller gets back when the
 * registry misbehaves. Ids are handed out from FAKE_REGISTRY_FIRST_ID; the
 * same schema text always gets the same id, whatever the subject.
 *
 * One fake per test: start it in the fixture, stop it in the teardown. Its
 * answers come from the daemon's thread; every accessor here takes the fake's
 * lock, so a test may call them while requests are in flight.
 */
#ifndef AVK_TEST_FAKE_REGISTRY_H
#define AVK_TEST_FAKE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define FAKE_REGISTRY_FIRST_ID  100
#define FAKE_REGISTRY_MAX       32                /* schemas it holds */
#define FAKE_REGISTRY_HANG_MS   1500              /* how long FAKE_REGISTRY_HANG waits */
#define FAKE_REGISTRY_OVERSIZED (5 * 1024 * 1024) /* body size of the HUGE modes */

enum fake_registry_mode {
        FAKE_REGISTRY_NORMAL,
        FAKE_REGISTRY_FAIL_500,     /**< 500 with a Confluent error body */
        FAKE_REGISTRY_GARBAGE,      /**< 200 with an HTML body */
        FAKE_REGISTRY_NO_ID,        /**< 200 with JSON that lacks "id" */
        FAKE_REGISTRY_HANG,         /**< answers only after FAKE_REGISTRY_HANG_MS */
        FAKE_REGISTRY_HUGE,         /**< 200 with a Content-Length over 4 MiB */
        FAKE_REGISTRY_HUGE_CHUNKED, /**< 200, chunked, over 4 MiB */
};

/** What the fake has received: counters, and the last request's details. */
struct fake_registry_seen {
        int requests;  /**< every request, whatever the mode */
        int registers; /**< POST /subjects/{subject}/versions answered in NORMAL mode */
        int fetches;   /**< GET /schemas/ids/{id} answered in NORMAL mode, found or not */
        char method[16];
        char url[512];
        char subject[256]; /**< of the last register */
        char schema[1024]; /**< of the last register, cut to fit */
        char content_type[128];
        char accept[128];
        char authorization[128];
};

struct fake_registry;

/**
 * @brief Starts a fake on 127.0.0.1 and an ephemeral port, answering in mode.
 * @returns the fake, or NULL with the reason in errstr.
 */
struct fake_registry *fake_registry_start(enum fake_registry_mode mode, char *errstr,
                                          size_t errstr_size);

/**
 * @brief Like fake_registry_start(), on 127.0.0.1:port (0: an ephemeral one),
 * so that a fake stopped and started again answers where it did.
 */
struct fake_registry *fake_registry_start_on(enum fake_registry_mode mode, unsigned port,
                                             char *errstr, size_t errstr_size);

/**
 * @brief Keeps the fake's schemas in the file at path, as a real registry
 * keeps its ids across restarts: loads the schemas a fake kept there before
 * (each gets its old id back, so call this before any register), then appends
 * each new one, one JSON string a line, flushed at once.
 * @returns 0, or -1 with the reason in errstr. The fake closes the file.
 */
int fake_registry_keep_in(struct fake_registry *fake, const char *path, char *errstr,
                          size_t errstr_size);

/**
 * @brief A fake in FAKE_REGISTRY_NORMAL mode, for a Check fixture: when none
 * can be started, the running test fails with the reason.
 */
struct fake_registry *fake_registry_start_or_fail(void);

/** @brief Stops the daemon (a hanging answer is cut short) and frees the fake. NULL is a no-op. */
void fake_registry_stop(struct fake_registry *fake);

/** @brief "http://127.0.0.1:<port>", owned by the fake. */
const char *fake_registry_url(const struct fake_registry *fake);

void fake_registry_set_mode(struct fake_registry *fake, enum fake_registry_mode mode);

/** @brief "schemaType" in fetch answers; NULL (the default) leaves it out. Not copied. */
void fake_registry_set_schema_type(struct fake_registry *fake, const char *schema_type);

/**
 * @brief Stores a schema as if another producer had registered it.
 * @returns its id, or -1 when the fake is full.
 */
int32_t fake_registry_add_schema(struct fake_registry *fake, const char *schema);

/** @brief A copy of the counters and the last request. */
struct fake_registry_seen fake_registry_seen(struct fake_registry *fake);

/** @brief How many register requests named subject. */
int fake_registry_registrations(struct fake_registry *fake, const char *subject);

/**
 * @brief The full text stored under id.
 * @returns a malloc'd copy for the caller to free, or NULL when id is unknown.
 */
char *fake_registry_schema(struct fake_registry *fake, int32_t id);

/**
 * @brief A loopback port nothing listens on (bound once, then released), for
 * "registry down" tests. @returns the port, or 0 when no socket was available.
 */
unsigned fake_registry_unused_port(void);

#endif
