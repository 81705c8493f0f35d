/* avk_gateway_config: see gateway_config.h. */
#include "producer/gateway/gateway_config.h"

static const struct avk_config_key keys[] = {
    {"gateway.listen", AVK_CONFIG_STRING, 0, 0, "127.0.0.1:8080",
     "address the HTTP gateway listens on: host:port or [address]:port; port 0 picks a free "
     "one"},
    {"gateway.port.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file the gateway writes its port to once it listens, and removes when it stops"},
    {"gateway.tokens.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "the gateway's bearer tokens, one a line: <sha256-hex-of-token> <party or DESK> [label] "
     "('avvik token' makes them); required by avvik gateway"},
    {"gateway.tls.cert.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "PEM certificate (chain) of the gateway; with gateway.tls.key.file it serves HTTPS only"},
    {"gateway.tls.key.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "PEM private key of gateway.tls.cert.file"},
    {"gateway.max.body.bytes", AVK_CONFIG_INT, 1024, 16777216, "65536",
     "largest request body the gateway takes; a larger one is answered 413"},
    {"gateway.max.in.flight", AVK_CONFIG_INT, 1, 1000000, "1000",
     "documents waiting for Kafka at once; past it the gateway answers 503 with Retry-After"},
    {"gateway.threads", AVK_CONFIG_INT, 1, 256, "4", "HTTP server threads of the gateway"},
    {"gateway.commit.interval.ms", AVK_CONFIG_INT, 0, 1000, "8",
     "least milliseconds from one Kafka transaction's start to the next's (group commit): each "
     "costs librdkafka about 2 ms of CPU whatever it holds, so a longer interval costs less CPU "
     "a request and adds up to that much latency; 0 begins the next as soon as one ends"},
    {"gateway.max.connections", AVK_CONFIG_INT, 16, 1000000, "4096",
     "connections the gateway holds open at once; past it new ones are closed at once"},
    {"gateway.max.connections.per.client", AVK_CONFIG_INT, 1, 1000000, "256",
     "connections the gateway holds open from one client address; past it that address's new "
     "ones are closed at once, and other clients are still served"},
    {"gateway.header.timeout.s", AVK_CONFIG_INT, 1, 3600, "10",
     "seconds a new connection may be idle until its first request's headers are in"},
    {"gateway.body.timeout.s", AVK_CONFIG_INT, 1, 3600, "30",
     "seconds a connection may be idle after its first request's headers: while a body comes, "
     "and between requests"},
    {"gateway.idempotency.max.entries", AVK_CONFIG_INT, 16, 100000000, "100000",
     "idempotency keys the gateway remembers (Idempotency-Key and document ids)"},
    {"gateway.idempotency.ttl.s", AVK_CONFIG_INT, 1, 2592000, "86400",
     "seconds an accepted request's answer is kept for its retries"},
    {"gateway.cursor.key.file", AVK_CONFIG_STRING, 0, 0, NULL,
     "file holding the key (at least 32 bytes) that signs the list's paging cursors; every "
     "gateway instance behind one address needs the same; unset, each start makes its own"},
    {"gateway.cursor.ttl.s", AVK_CONFIG_INT, 1, 604800, "3600",
     "seconds a paging cursor of GET /v1/deviations stays valid"},
};

const struct avk_config_table avk_gateway_config_keys = AVK_CONFIG_TABLE(keys);
