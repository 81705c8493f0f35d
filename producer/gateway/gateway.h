/*
 * avk_gateway: the HTTP intake - existing systems file deviations and
 * responses as JSON (or a FHIR R4 AdverseEvent) over HTTP, answered 202 only
 * once Kafka acknowledged the document or it is in the spool.
 *
 *   POST /v1/deviations                   DeviationReported JSON, or FHIR with
 *                                         Content-Type application/fhir+json
 *   POST /v1/deviations/{id}/responses    DeviationResponse JSON
 *   GET  /v1/deviations/{id}, /v1/deviations   look-ups (producer/gateway/lookup.h)
 *   GET  /healthz, /readyz, /metrics
 *
 * Every request to /v1 carries a bearer token bound to a party, or to the
 * county's triage desk (common/http/auth.h): a party files only as itself and
 * responds only to the deviations it receives (or, to dispute, reported); the
 * desk responds only to the deviations at it. The gateway knows that
 * from the lifecycle topics (producer/gateway/view.h); a deviation id belongs
 * to the first document filed under it. Retries are recognised by
 * Idempotency-Key and by document id (producer/gateway/idempotency.h). The
 * server is avvik's HTTP server (common/http/server.h) with a thread pool; a
 * request waiting for Kafka is suspended, not a blocked thread, and answered
 * from the reporter's callback.
 * docs/gateway.md has the status codes, configuration keys and metrics.
 */
#ifndef AVK_GATEWAY_H
#define AVK_GATEWAY_H

#include <stddef.h>

#include "common/util/config.h"

typedef struct avk_gateway avk_gateway_t;

/**
 * @brief Loads the tokens, creates the reporter, starts the view's consumers
 * and listens on gateway.listen (HTTPS when gateway.tls.* are set).
 * cfg is not copied: it must outlive the gateway.
 * @returns the running gateway, or NULL with the reason in errstr, naming the
 * configuration key at fault.
 */
avk_gateway_t *avk_gateway_start(const avk_config_t *cfg, char *errstr, size_t errstr_size);

/** @brief The TCP port it listens on (the one picked when gateway.listen asks for port 0). */
unsigned avk_gateway_port(const avk_gateway_t *gateway);

/**
 * @brief Stops accepting connections, waits until every request in progress
 * has been answered, stops the server and the view, then destroys the
 * reporter (which waits for every outstanding acknowledgement) and frees the
 * gateway. NULL is a no-op.
 */
void avk_gateway_stop(avk_gateway_t *gateway);

/**
 * @brief The principal of a gateway tokens file's subject: a party ("VGR" or a municipality
 * code) or "DESK", the county's triage desk (docs/gateway.md, "The triage desk").
 * @returns its number (>= 0), or -1 with the reason in errstr.
 */
int avk_gateway_principal_parse(const char *code, char *errstr, size_t errstr_size);

#endif
