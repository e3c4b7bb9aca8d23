/* hacache.h: the public C interface of libhacache and libhacache_node: error codes, the remote
 * client (libhacache) and the embedded node (libhacache_node), SPEC section 7. */
#ifndef HACACHE_H
#define HACACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_VERSION_STRING "0.1.0"

/* Bytes of a write's request id (HTTP header X-Hacache-Request-Id: twice as many hex digits). A
 * retried write carrying the same id is applied once (SPEC §3). */
#define HC_REQUEST_ID_BYTES 16

/* Error codes: 0 is success, every error is negative. X(name, value, message). */
#define HC_ERRNO_MAP(X)                                                                            \
    X(ENOTFOUND, -1, "not found")                                                                  \
    X(EUNAVAILABLE, -2, "unavailable")                                                             \
    X(ETIMEDOUT, -3, "deadline exceeded")                                                          \
    X(EAUTH, -4, "authentication failed")                                                          \
    X(EINVAL, -5, "invalid argument")                                                              \
    X(ETOOLARGE, -6, "too large")                                                                  \
    X(EUNKNOWN_OUTCOME, -7, "outcome of the write is unknown")                                     \
    X(ECONFLICT, -8, "condition failed")                                                           \
    X(ENOMEM, -9, "does not fit within the memory bound")                                          \
    X(ENOTINT, -10, "value is not an integer")                                                     \
    X(EOVERFLOW, -11, "integer overflow")                                                          \
    X(ESHUTDOWN, -12, "shutting down")                                                             \
    X(EINTERNAL, -13, "internal error")                                                            \
    X(EBUSY, -14, "send queue full, retry later")                                                  \
    X(EUPGRADE, -15, "not every node runs a version that knows this command yet")                  \
    X(ETLS, -16, "TLS handshake failed (server certificate not trusted or for another name)")      \
    X(ECANCELED, -17, "operation cancelled")

enum {
#define HC_ERR_ENUM_(name, value, msg) HC_##name = (value),
    HC_ERRNO_MAP(HC_ERR_ENUM_)
#undef HC_ERR_ENUM_
};

/* Symbols of the shared library: everything else in libhacache.so is hidden. */
#if defined(__GNUC__)
#define HC_EXPORT __attribute__((visibility("default")))
#else
#define HC_EXPORT
#endif

/* Returns a static string describing err (0 or a negative HC_E* code). */
HC_EXPORT const char *hc_strerror(int err);

/* Ack level of a write (SPEC section 3). */
typedef enum { HC_ACK_QUORUM = 0, HC_ACK_ONCE, HC_ACK_LEADER, HC_ACK_NONE } hc_ack_t;

/* Consistency of a read (SPEC section 3): LOCAL the answering node's applied state (a follower
 * may lag behind a write acknowledged elsewhere); LEADER served by the leader (through the node
 * asked); LINEARIZABLE the leader first confirms it still leads (ReadIndex), so the read sees
 * every write acknowledged before it began. */
typedef enum { HC_READ_LOCAL = 0, HC_READ_LEADER, HC_READ_LINEARIZABLE } hc_consistency_t;

/* What a node does with a cache when it loses contact with the quorum (SPEC section 3):
 * INVALIDATE drops its entries and answers 503 `no_quorum`; SERVE_STALE keeps answering local
 * reads, marked stale, for at most the cache's max_stale_ms. */
typedef enum { HC_POLICY_INVALIDATE = 0, HC_POLICY_SERVE_STALE } hc_qloss_policy_t;

/* The settings of one cache; 0 means "none" for each number. */
typedef struct {
    uint64_t max_memory;     /* bytes this cache may hold; 0 = only the node-wide bound */
    uint64_t default_ttl_ms; /* TTL of a put that carries none; 0 = no expiry */
    hc_qloss_policy_t policy;
    uint64_t max_stale_ms; /* HC_POLICY_SERVE_STALE: how long after quorum loss; 0 = not at all */
} hc_cache_settings_t;

/* ---- remote client (synchronous) ----
 *
 * A client talks HTTP/1.1 (keep-alive) to the nodes listed in `endpoints`: a new client starts
 * at a random one (seeded from getrandom), so clients spread over the nodes; every call goes to
 * the node that answered last (sticky) and, when it does not answer or answers 502/503/504, to
 * a random other node, until the call's deadline (`timeout_ms`, default 5000 ms) passes. A node
 * that failed is skipped for a backoff (50 ms doubling to 2 s with each failure in a row, +-50%
 * jitter) while other nodes are left; when every node is backing off the call waits, within
 * its deadline, for the first to come out of it. Writes carry a random
 * request id (header X-Hacache-Request-Id) that stays the same across these retries, so a
 * retried write is applied once; a write still without a definite answer at the deadline
 * returns HC_EUNKNOWN_OUTCOME.
 *
 * Threads: a client may be shared between threads; its calls are serialised by a mutex (use
 * one client per thread for parallel requests).
 *
 * Transport: libcurl, HTTP/1.1 for http:// and HTTP/2 (or 1.1) for https:// endpoints; the
 * connections and TLS sessions of a client are kept and reused across its calls. https://
 * endpoints verify the server certificate and its name (see hc_client_set_tls); a node whose
 * handshake fails is failed over like one that does not answer, and a call on which every
 * attempt failed the handshake returns HC_ETLS (hc_client_last_error says why).
 *
 * Local stale copy. Both remote clients keep one and follow these rules (one implementation:
 * the asynchronous client below behaves exactly like this one; its calls and setters are named
 * in brackets). The client remembers the values nodes returned to its gets (hc_get, hc_get_ex
 * at any consistency [hc_aget, hc_aget_ex]) in caches whose stale limit is not 0: max_stale_ms
 * of the client, or the cache's own limit (hc_client_set_cache_stale
 * [hc_aclient_set_cache_stale]). At most HC_CLIENT_STALE_MAX_ENTRIES entries and
 * HC_CLIENT_STALE_MAX_BYTES bytes of keys and values are kept per client (the oldest remembered
 * goes first), with the entry's version and remaining TTL. A node's own stale answer
 * (X-Hacache-Stale: 1, a serve_stale cache after quorum loss) is returned (stale = 1) but not
 * remembered. A get returns a remembered value, with stale = 1, only when all of these hold:
 *   - the call allows it: hc_read_opts_t.no_stale is 0, and the key's cache has a stale limit
 *     that is not 0 (set the cache's limit to 0 for data that must fail closed: sessions,
 *     revocations);
 *   - no node gave an answer within the deadline (every node was unreachable, timed out, or
 *     answered 502/503/504: the call would otherwise fail with HC_EUNAVAILABLE, HC_ETIMEDOUT,
 *     HC_ESHUTDOWN or HC_EBUSY);
 *   - no node answered that it invalidated its data after losing the quorum (a 503 with
 *     reason `no_quorum`), unless hc_client_set_stale_on_invalidated(c, 1)
 *     [hc_aclient_set_stale_on_invalidated] was called: such an answer is final (the get
 *     returns HC_EUNAVAILABLE) and forgets the copy of that key;
 *   - the value was read by this client no more than the cache's stale limit ago, the TTL the
 *     node reported with it has not run out since (counted on this client's monotonic clock),
 *     and no later call of this client may have changed the key: a get answered 404, hc_put /
 *     hc_put_ex / hc_del / hc_del_ex / hc_incr of that key [hc_aput, hc_aput_ex, hc_adel,
 *     hc_adel_ex, hc_aincr], hc_clear [hc_aclear] of its cache, or a non-GET hc_request (every
 *     cache), forget the copy as soon as they succeed, answer 404, or end without a known
 *     outcome (HC_EUNKNOWN_OUTCOME, HC_ETIMEDOUT, HC_EINTERNAL, HC_ECANCELED). A write that
 *     was certainly not applied (a failed condition HC_ECONFLICT, HC_EINVAL, HC_EAUTH,
 *     HC_ETOOLARGE, HC_ENOTINT, HC_EOVERFLOW, HC_ENOMEM, HC_EUPGRADE, or no node accepted it:
 *     HC_EUNAVAILABLE, HC_ESHUTDOWN, HC_EBUSY, HC_ETLS) leaves the copy as it was;
 *   - no write of this client that may change the key is still in flight (only the
 *     asynchronous client can have one: its outcome is not known yet).
 * So a stale value never contradicts the client's own writes: after a successful hc_del the key
 * is HC_ENOTFOUND or an error, never the old value. The copy holds values read, never values
 * written: a get after hc_put has no copy to fall back to until it read the key once more.
 * Calls in flight together (asynchronous client): a get whose answer arrives after a write of
 * the same key by this client ended is returned but not remembered (the node may have answered
 * it before the write). Other clients' writes are not seen: a stale value may be one another
 * client has since overwritten or deleted. hc_cache_configure and hc_cache_info leave the copy
 * alone. */
#define HC_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define HC_CLIENT_STALE_MAX_ENTRIES  4096
#define HC_CLIENT_STALE_MAX_BYTES    (16u << 20)

typedef struct hc_client hc_client_t;
typedef struct {
    const char *endpoints; /* "http://10.0.0.1:8080,http://10.0.0.2:8080" */
    const char *token;     /* API token or NULL */
    uint32_t timeout_ms;   /* deadline of each call; 0 = library default */
    uint32_t max_stale_ms; /* serve a local copy this old when no node answers; 0 = never */
} hc_client_opts_t;
typedef struct {
    void *data;
    size_t len; /* owned by the caller after a successful hc_get; release with hc_value_free */
    int stale;  /* 1 when served from the local copy because no node answered */
} hc_value_t;

/* Creates a client; opts and its strings are copied (the caller keeps ownership). Never blocks
 * on the network and does not fail because nodes are down: connections are made by the calls.
 * 0 with *out (free with hc_client_free); HC_EINVAL for an empty or malformed endpoint list or a
 * token with control characters; HC_ENOMEM. */
HC_EXPORT int hc_client_new(const hc_client_opts_t *opts, hc_client_t **out);
/* Closes the connection and frees the client and its stale copies. NULL is a no-op. */
HC_EXPORT void hc_client_free(hc_client_t *c);
/* on = 1: hc_get falls back to the local stale copy even when a node answered that it
 * invalidated its data after a quorum loss (for caches where an old value beats a miss); 0, the
 * default: such an answer is final. A setter rather than a field of hc_client_opts_t, so that
 * programs initialising the options positionally keep compiling warning-free. */
HC_EXPORT void hc_client_set_stale_on_invalidated(hc_client_t *c, int on);
/* TLS settings for https:// endpoints (strings borrowed for the call). */
typedef struct {
    /* PEM bundle of the CA certificates the servers' certificates must chain to (curl's and
     * etcdctl's --cacert); NULL: the system's trust store. Re-read when the file changes (checked
     * at the start of each call: a stat): the new bundle is validated first (every block parses,
     * at least one certificate valid now) and a bad update keeps the old bundle, with the reason
     * in hc_client_last_error. Connections made under the old bundle are not reused. */
    const char *ca_file;
    /* The name the server certificate must carry, also sent as SNI; NULL: the endpoint's host.
     * For a sidecar dialled at https://127.0.0.1:8443 whose certificate names the service. */
    const char *server_name;
} hc_client_tls_t;

/* Sets the TLS settings (call before the calls that should use them; a later call replaces them).
 * 0; HC_EINVAL when the CA file cannot be read or holds no valid certificate (the client keeps
 * its previous settings; hc_client_last_error says why) or server_name is not a host name;
 * HC_ENOMEM. */
HC_EXPORT int hc_client_set_tls(hc_client_t *c, const hc_client_tls_t *tls);
/* Takes the API token from a file (its first non-empty line; a Kubernetes secret mounted as a
 * file), replacing opts.token, and re-reads it when the file changes (checked with a stat as each
 * call starts), so a token rotation needs no restart: give the servers the new token first
 * (CACHE_API_TOKEN_FILE accepts the old and the new one), then update the client's file. A bad
 * update (unreadable, empty, control characters, longer than 4 KiB) keeps the old token, with the
 * reason in hc_client_last_error. 0, HC_EINVAL (the file is bad now: the client keeps its
 * previous token), HC_ENOMEM. */
HC_EXPORT int hc_client_set_token_file(hc_client_t *c, const char *path);
/* Copies into buf (NUL-terminated, truncated to len) what went wrong in the client's last call
 * that failed over or failed: the endpoint and the transport's or the node's reason, e.g.
 * "https://10.0.0.1:8443: TLS: SSL certificate problem: unable to get local issuer certificate".
 * "" when the last call met no problem. 0, or HC_EINVAL. */
HC_EXPORT int hc_client_last_error(hc_client_t *c, char *buf, size_t len);

/* Stores val under key (both borrowed for the call) in cache (a name of 1-128 characters of
 * [A-Za-z0-9_.:-]). ttl_ms 0 = no TTL (or the cache's default). */
HC_EXPORT int hc_put(hc_client_t *c, const char *cache, const void *key, size_t klen,
                     const void *val, size_t vlen, hc_ack_t ack, uint64_t ttl_ms);
/* Reads key at the client's consistency (hc_client_set_consistency; HC_READ_LOCAL unless set):
 * hc_get_ex(c, cache, key, klen, NULL, out, NULL). On 0, out->data (NUL-terminated after len
 * bytes, for convenience) belongs to the caller: release it with hc_value_free. On error *out
 * is zeroed. HC_ENOTFOUND when absent. */
HC_EXPORT int hc_get(hc_client_t *c, const char *cache, const void *key, size_t klen,
                     hc_value_t *out);
/* Deletes key; HC_ENOTFOUND when it was absent. */
HC_EXPORT int hc_del(hc_client_t *c, const char *cache, const void *key, size_t klen, hc_ack_t ack);
/* Frees out->data of a successful hc_get and zeroes *v. NULL is a no-op. */
HC_EXPORT void hc_value_free(hc_value_t *v);
/* Adds by to the integer stored at key (absent = 0), applied once even when retried; *value
 * (may be NULL) gets the new integer (only known with HC_ACK_QUORUM; 0 otherwise).
 * HC_ENOTINT when the value is not an integer, HC_EOVERFLOW. */
HC_EXPORT int hc_incr(hc_client_t *c, const char *cache, const void *key, size_t klen, int64_t by,
                      hc_ack_t ack, int64_t *value);
/* Removes every entry of cache. */
HC_EXPORT int hc_clear(hc_client_t *c, const char *cache, hc_ack_t ack);

/* ---- the full data API (remote client) ----
 *
 * Ownership and threads, for every call below: every pointer argument (cache, key, value, the
 * opts and settings structs) is borrowed for the duration of the call and never kept; the
 * output structs (out, meta, info, *version) are written by the call and need no freeing,
 * except out->data of a successful hc_get_ex, which belongs to the caller (hc_value_free).
 * The calls may be made from any thread, also concurrently on one client: they are serialised
 * by the client's mutex like the calls above (hc_client_set_consistency and
 * hc_client_set_cache_stale apply to the calls that begin after they returned). */

/* Sets the consistency of hc_get and of hc_get_ex calls whose opts do not choose one.
 * 0, or HC_EINVAL for a level that is not an hc_consistency_t. */
HC_EXPORT int hc_client_set_consistency(hc_client_t *c, hc_consistency_t level);

/* Sets the stale limit of one cache (see "Local stale copy" above), overriding the client's
 * max_stale_ms for that cache's keys: 0 = never serve them from the copy, whatever
 * max_stale_ms says (their copies are dropped now and none are kept: fail closed); N > 0 = serve
 * copies up to N ms old, also when the client's max_stale_ms is 0; HC_CACHE_STALE_DEFAULT
 * removes the override. 0, HC_EINVAL (cache name), HC_ENOMEM. */
#define HC_CACHE_STALE_DEFAULT UINT32_MAX
HC_EXPORT int hc_client_set_cache_stale(hc_client_t *c, const char *cache, uint32_t max_stale_ms);

/* Options of a read; a zeroed struct (or NULL) means the client's defaults. */
typedef struct {
    int has_consistency; /* 1: read at `consistency`; 0: the client's (hc_client_set_consistency) */
    hc_consistency_t consistency;
    int no_stale; /* 1: never the local stale copy for this call (fail closed) */
} hc_read_opts_t;

/* What a node reported about an entry (or the copy remembered from such a report). */
typedef struct {
    uint64_t version; /* the entry's version: the log index of its last write; 0 if unknown */
    int has_ttl;      /* 1 when the entry expires; 0: no expiry */
    uint64_t ttl_ms;  /* has_ttl: the time it had left when the node answered (for a stale value:
                       * what is left of it now, by this client's clock) */
} hc_meta_t;

/* hc_get with options: the consistency of this read, and the entry's metadata. On 0, *out as
 * with hc_get (out->stale: from the local copy, or a node's stale answer) and *meta (may be
 * NULL) filled; on error *out and *meta are zeroed. HC_ENOTFOUND when absent; at
 * HC_READ_LEADER / HC_READ_LINEARIZABLE a node that cannot reach the leader is failed over like
 * one that does not answer (HC_EUNAVAILABLE / HC_ETIMEDOUT at the deadline). */
HC_EXPORT int hc_get_ex(hc_client_t *c, const char *cache, const void *key, size_t klen,
                        const hc_read_opts_t *opts, hc_value_t *out, hc_meta_t *meta);

/* Options of a put; a zeroed struct (or NULL) is HC_ACK_QUORUM, no TTL, no condition. */
typedef struct {
    hc_ack_t ack;
    uint64_t ttl_ms;    /* 0: no TTL (the cache's default_ttl_ms when it has one) */
    int if_absent;      /* 1: only when the key has no live entry */
    int has_if_version; /* 1: only when the key's live entry has version if_version (0 = absent) */
    uint64_t if_version;
} hc_put_opts_t;

/* hc_put with options. On 0, *version (may be NULL) gets the entry's new version (0 when the node
 * answered before it was known: HC_ACK_NONE through a follower). HC_ECONFLICT when a
 * condition failed (nothing written). A condition needs HC_ACK_QUORUM (HC_EINVAL otherwise): a
 * weaker ack is answered before the leader applies the write, which is when the condition is
 * checked, so its outcome could not be told. Otherwise the codes of hc_put. */
HC_EXPORT int hc_put_ex(hc_client_t *c, const char *cache, const void *key, size_t klen,
                        const void *val, size_t vlen, const hc_put_opts_t *opts, uint64_t *version);

/* Options of a delete; a zeroed struct (or NULL) is HC_ACK_QUORUM, no condition. */
typedef struct {
    hc_ack_t ack;
    int has_if_version; /* 1: only when the key's live entry has version if_version */
    uint64_t if_version;
} hc_del_opts_t;

/* hc_del with options: HC_ENOTFOUND when the key was absent, HC_ECONFLICT when the condition
 * failed (nothing deleted); a condition needs HC_ACK_QUORUM (HC_EINVAL otherwise, as for
 * hc_put_ex). */
HC_EXPORT int hc_del_ex(hc_client_t *c, const char *cache, const void *key, size_t klen,
                        const hc_del_opts_t *opts);

/* Declares cache (created if needed) with exactly these settings, replicated like a write with
 * HC_ACK_QUORUM: every setting is replaced, a 0 is "none" (see hc_cache_settings_t). They apply
 * to later writes: entries already stored keep their values and expiry. HC_EINVAL (cache name,
 * policy), HC_EUNKNOWN_OUTCOME and the other codes of a write. */
HC_EXPORT int hc_cache_configure(hc_client_t *c, const char *cache,
                                 const hc_cache_settings_t *settings);

/* A cache as the node that answered sees it (its applied state: local, not linearizable). */
typedef struct {
    uint64_t entries;      /* live entries, and expired ones not yet reclaimed */
    uint64_t memory_bytes; /* accounted bytes */
    uint64_t hits, misses, evictions, expirations; /* that node's counters */
    hc_cache_settings_t settings;
} hc_cache_info_t;

/* Looks cache up in GET /v1/caches. 0 with *out; HC_ENOTFOUND when the node answering does not
 * know the cache (never written nor configured, or not yet applied there), HC_EINTERNAL for an
 * answer it cannot read; the read codes otherwise. On error *out is zeroed. */
HC_EXPORT int hc_cache_info(hc_client_t *c, const char *cache, hc_cache_info_t *out);

/* Any other call of the HTTP API (admin paths, status, other query parameters) with the
 * client's token, deadline and failover: method ("GET", "POST", ...), path (already
 * percent-encoded, e.g. "/v1/status"), optional body (borrowed). A non-GET request carries one
 * fresh request id for all its attempts, so a retried write is applied once. Returns 0 when a
 * node answered with a status that is not 502/503/504 (also 4xx: look at *status): *status,
 * *resp (malloc'd, NUL-terminated after *rlen bytes; the caller frees it with free()) and
 * *rlen. Otherwise the codes of hc_put (HC_EUNAVAILABLE, HC_ETIMEDOUT, HC_EUNKNOWN_OUTCOME, ...)
 * and *resp is NULL. */
HC_EXPORT int hc_request(hc_client_t *c, const char *method, const char *path, const void *body,
                         size_t blen, int *status, char **resp, size_t *rlen);

/* ---- remote client, asynchronous (libhacache_uv: link -lhacache_uv, pkg-config hacache-uv) ----
 *
 * The same client on a caller's libuv loop: calls return at once and report through a callback
 * on the loop's thread. Node choice, failover, backoff, deadlines (one per call, timeout_ms),
 * request ids (a write keeps its id across every attempt, so a retried write is applied once),
 * https:// with hc_aclient_set_tls, the data API's options (hc_aget_ex, hc_aput_ex, hc_adel_ex),
 * the local stale copy (max_stale_ms, per-cache limits, no_stale: see "Local stale copy" above)
 * and the error codes are those of the synchronous client.
 *
 * Threads: an asynchronous client belongs to its loop: create it, call it, cancel its calls and
 * close it on the loop's thread only. Callbacks run on that thread, from inside uv_run, never
 * from inside the call that started the operation. Several calls may be in flight at once; they
 * share the client's connections (HTTP/1.1 keep-alive, or HTTP/2 streams over TLS).
 *
 * Ownership: every argument is borrowed for the duration of the call that takes it (keys,
 * values and cache names are copied). A value handed to a callback is borrowed for the callback
 * only: copy what you keep. The hc_aop_t handle of a call is valid until its callback begins. */
struct uv_loop_s;
typedef struct hc_aclient hc_aclient_t;
typedef struct hc_aop hc_aop_t;

/* Result of hc_aget: rv 0 with val (borrowed for the callback; val->stale 1 when it comes from
 * the local stale copy or a node's stale answer), or an HC_E* code with val NULL (HC_ENOTFOUND
 * when absent). */
typedef void (*hc_aget_cb)(void *ud, int rv, const hc_value_t *val);
/* Result of a write: rv 0 or an HC_E* code; value: hc_aincr's new integer (0 otherwise). */
typedef void (*hc_awrite_cb)(void *ud, int rv, int64_t value);
/* Called once the client is closed: every handle it had on the loop is closed and its memory
 * is freed. */
typedef void (*hc_aclosed_cb)(void *ud);

/* Creates a client on loop (opts as for hc_client_new; copied). Never blocks, opens nothing yet
 * (the loop is not run). 0 with *out; HC_EINVAL, HC_ENOMEM, HC_EINTERNAL. */
HC_EXPORT int hc_aclient_new(struct uv_loop_s *loop, const hc_client_opts_t *opts,
                             hc_aclient_t **out);
/* As hc_client_set_tls: the CA file is re-read when it changes (checked as each call starts). */
HC_EXPORT int hc_aclient_set_tls(hc_aclient_t *c, const hc_client_tls_t *tls);
/* As hc_client_set_token_file. */
HC_EXPORT int hc_aclient_set_token_file(hc_aclient_t *c, const char *path);
/* As hc_client_set_stale_on_invalidated and hc_client_set_cache_stale (see "Local stale copy"):
 * they apply to the reads that end after they returned (a limit of 0 also drops the cache's
 * copies at once, so a read in flight does not bring one back). */
HC_EXPORT void hc_aclient_set_stale_on_invalidated(hc_aclient_t *c, int on);
HC_EXPORT int hc_aclient_set_cache_stale(hc_aclient_t *c, const char *cache, uint32_t max_stale_ms);
/* As hc_client_last_error: the last failure any call of this client met. */
HC_EXPORT int hc_aclient_last_error(hc_aclient_t *c, char *buf, size_t len);
/* Closes the client: calls still in flight end with HC_ECANCELED (their callbacks run before
 * hc_aclient_close returns, a write among them may or may not have been applied), then the
 * client's handles close and closed_cb (may be NULL) runs from the loop. The client must not be
 * used after this call. May be called from a callback of this client. */
HC_EXPORT void hc_aclient_close(hc_aclient_t *c, hc_aclosed_cb closed_cb, void *ud);

/* Starts a read (at the client's consistency: local unless set). *op (op may be NULL) identifies it
 * for hc_acancel. 0 when started (cb will run exactly once); HC_EINVAL / HC_ENOMEM / HC_ESHUTDOWN
 * (the client is closing) otherwise, and cb does not run. */
HC_EXPORT int hc_aget(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                      hc_aget_cb cb, void *ud, hc_aop_t **op);
/* Starts hc_put / hc_del / hc_incr / hc_clear; same rules as hc_aget. */
HC_EXPORT int hc_aput(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                      const void *val, size_t vlen, hc_ack_t ack, uint64_t ttl_ms, hc_awrite_cb cb,
                      void *ud, hc_aop_t **op);
HC_EXPORT int hc_adel(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                      hc_ack_t ack, hc_awrite_cb cb, void *ud, hc_aop_t **op);
HC_EXPORT int hc_aincr(hc_aclient_t *c, const char *cache, const void *key, size_t klen, int64_t by,
                       hc_ack_t ack, hc_awrite_cb cb, void *ud, hc_aop_t **op);
HC_EXPORT int hc_aclear(hc_aclient_t *c, const char *cache, hc_ack_t ack, hc_awrite_cb cb, void *ud,
                        hc_aop_t **op);
/* The data API's options on the asynchronous client (see hc_get_ex, hc_put_ex, hc_del_ex; opts
 * NULL: the defaults, borrowed for the call). hc_aget_ex's callback gets the entry's metadata
 * too (meta NULL on error; both borrowed for the callback; val->stale as with hc_get_ex);
 * hc_read_opts_t.no_stale keeps this call from the local stale copy. hc_aput_ex's callback gets
 * the entry's new version as its value. hc_aclient_set_consistency sets the consistency of
 * reads without one (default local). */
typedef void (*hc_aget_ex_cb)(void *ud, int rv, const hc_value_t *val, const hc_meta_t *meta);
HC_EXPORT int hc_aclient_set_consistency(hc_aclient_t *c, hc_consistency_t level);
HC_EXPORT int hc_aget_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                         const hc_read_opts_t *opts, hc_aget_ex_cb cb, void *ud, hc_aop_t **op);
HC_EXPORT int hc_aput_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                         const void *val, size_t vlen, const hc_put_opts_t *opts, hc_awrite_cb cb,
                         void *ud, hc_aop_t **op);
HC_EXPORT int hc_adel_ex(hc_aclient_t *c, const char *cache, const void *key, size_t klen,
                         const hc_del_opts_t *opts, hc_awrite_cb cb, void *ud, hc_aop_t **op);
/* Cancels a call in flight: its callback runs now, inside hc_acancel, with HC_ECANCELED (a
 * cancelled write may or may not have been applied: it may have reached a node already). op must
 * be a handle whose callback has not begun. */
HC_EXPORT void hc_acancel(hc_aop_t *op);

/* ---- embedded node (library hacache_node: libhacache_node.{a,so}, pkg-config hacache-node) ----
 *
 * The program becomes a cluster member: the same node as hacached (raft, replication, the store,
 * optionally the HTTP and RESP listeners), configured the same way (the environment variables
 * and flags of `hacached --help`), running on a thread of its own or on the caller's libuv loop.
 * Reads with HC_READ_LOCAL are answered from this process's copy, without a network
 * hop; writes go through the leader like any node's, with the ack level of the call.
 *
 * A good library guest: it installs no signal handler, changes no process limit and never calls
 * exit(). Configuration errors are returned with the line hacached would print.
 *
 * SIGPIPE: on its own thread (opts.loop NULL) the node runs with every asynchronous signal
 * blocked (faults such as SIGSEGV excepted), so a write to a closed socket returns EPIPE there
 * and the program's own handlers keep running on its threads. On the caller's loop the node
 * writes sockets from the caller's thread: like any libuv network program, the caller must
 * ignore or block SIGPIPE itself.
 *
 * Logs: the node logs through opts.log (each formatted line, logfmt or JSON as
 * CACHE_LOG_FORMAT says, without newline, valid during the call; calls are never concurrent but
 * may come from any thread that runs a node), or to stderr when NULL. The log settings are
 * process-wide: with several embedded nodes in one process, the last one started sets them
 * (one embedded node per process is the supported case; several work, e.g. in tests).
 *
 * Threads and ownership, for every call below:
 *   - hc_embedded_start: any thread; with opts.loop set, the thread that runs that loop.
 *   - the blocking calls (hc_embedded_get/put/del/incr/clear/status/ready, hc_embedded_stop):
 *     any application thread, concurrently; each is handed to the node's loop (a queue and a
 *     uv_async_t) and waits for its answer with a deadline (opts.timeout_ms). They return
 *     HC_EINVAL when made from the node's loop thread (they would wait for themselves), except
 *     hc_embedded_status/ready and local gets, which that thread may make: they answer at once.
 *   - hc_embedded_submit (the callback variant): any thread, including the loop thread (from a
 *     uv callback of the caller's loop); the callback runs on the node's loop thread, exactly
 *     once, on a later loop turn (when submitted from another thread it may run before
 *     hc_embedded_submit has returned there).
 *   - hc_embedded_free: once, when no other call is running or will be made (after
 *     hc_embedded_stop, or it stops the node itself); never from the node's own thread.
 *   - every pointer argument is borrowed for the call (copied when it is handed to the node);
 *     a value returned by hc_embedded_get belongs to the caller (hc_value_free).
 *
 * Not supported: fork() while a node runs; HTTP connections still open at the drain deadline of
 * the stop are left to the process (their memory stays allocated: hc_embedded_stop returns
 * HC_ETIMEDOUT and hc_embedded_free then leaves the node's loop in place); HTTP/2 clients of an
 * own-thread node leave up to 16 of h2o's 80 KiB write buffers behind when its thread ends
 * (h2o 2.2.5 keeps them in a per-thread cache it does not expose); a few configuration
 * problems found only when the node starts (CACHE_DATA_DIR, TLS files) are printed to stderr,
 * not to opts.log (err gets "cannot start the node: invalid argument"). */
#define HC_EMBEDDED_DEFAULT_TIMEOUT_MS 5000

struct uv_loop_s;
typedef struct hc_embedded hc_embedded_t;

/* Whether a listener runs. AUTO (0): the HTTP API when CACHE_HTTP_ADDR (or --http-addr) is given,
 * RESP when CACHE_RESP_ADDR is; ON: HTTP also on its default address 127.0.0.1:8080 (RESP still
 * needs an address); OFF: not at all. */
typedef enum {
    HC_EMBEDDED_LISTEN_AUTO = 0,
    HC_EMBEDDED_LISTEN_ON,
    HC_EMBEDDED_LISTEN_OFF
} hc_embedded_listen_t;

typedef struct {
    /* NULL-terminated "KEY=VALUE" strings read instead of the process environment (HA_MODE,
     * HA_HOSTS, HOSTNAME_OVERWRITE, CACHE_*: the variables of hacached); NULL: the process
     * environment (getenv). Borrowed for hc_embedded_start. */
    const char *const *env;
    /* optional flags, as hacached's (argv[0] is the program name and ignored); flags win over
     * the environment. --help, --version and --check-config are hacached commands: HC_EINVAL. */
    int argc;
    const char *const *argv;
    /* NULL: the library runs the node on a thread of its own with its own loop. Otherwise the
     * node runs on this loop: hc_embedded_start must be called on the thread that runs it, and
     * the caller keeps running it until the node stopped (opts.stopped). */
    struct uv_loop_s *loop;
    /* log sink (see above); NULL: stderr */
    void (*log)(void *ud, int level, const char *line); /* level: 0 error .. 4 trace */
    void *log_ud;
    hc_embedded_listen_t http, resp;
    uint32_t timeout_ms; /* deadline of each blocking call; 0 = HC_EMBEDDED_DEFAULT_TIMEOUT_MS */
    /* optional: runs on the node's loop thread once the node stopped (hc_embedded_stop or
     * hc_embedded_free) and closed every handle; status 0, or HC_ETIMEDOUT when connections had
     * to be abandoned. With opts.loop set, the caller's loop may be closed only after it ran
     * (and, after a failed hc_embedded_start, only after running it until it has no more of the
     * node's handles: they close on its next turns). */
    void (*stopped)(void *ud, int status);
    void *stopped_ud;
} hc_embedded_opts_t;

/* Reads the configuration, validates it like hacached --check-config (fails on the first
 * problem) and starts the node, its peer links and the configured listeners. The node then
 * joins (or forms) its cluster in the background: hc_embedded_ready says when it serves.
 * 0 with *out (stop it with hc_embedded_stop, then hc_embedded_free). On error *out is NULL,
 * nothing is left running, and err (when errlen > 0) holds one NUL-terminated line:
 * HC_EINVAL a configuration problem (the line hacached prints, e.g. "HA_HOSTS: ..."),
 * HC_EUNAVAILABLE a listener could not bind, HC_ENOMEM, HC_EINTERNAL (thread, loop). */
HC_EXPORT int hc_embedded_start(const hc_embedded_opts_t *opts, hc_embedded_t **out, char *err,
                                size_t errlen);

/* Orderly stop, exactly like SIGTERM to hacached: /readyz turns 503, a leader hands leadership
 * to the most up-to-date follower, calls and connections in flight drain, the peer links close,
 * all within CACHE_SHUTDOWN_TIMEOUT_MS. Calls made after it started fail with HC_ESHUTDOWN.
 * Own thread: blocks until the node stopped and its thread was joined; 0, or HC_ETIMEDOUT
 * (connections abandoned). Caller's loop: from the loop thread it begins the stop and returns 0
 * at once (opts.stopped tells the end); from another thread it waits until the node stopped.
 * Idempotent. */
HC_EXPORT int hc_embedded_stop(hc_embedded_t *e);
/* Frees the node, stopping it first if needed (blocking as hc_embedded_stop does). On the
 * caller's loop thread it may not wait: the stop begins and the memory goes once the node
 * closed (opts.stopped still runs). NULL: no-op. */
HC_EXPORT void hc_embedded_free(hc_embedded_t *e);

/* Reads key of cache at the given consistency. 0: out->data (NUL-terminated after len bytes)
 * belongs to the caller (hc_value_free); out->stale is 1 when the value comes from a serve_stale
 * cache this node kept after losing its quorum. HC_ENOTFOUND, HC_EUNAVAILABLE (not ready,
 * quorum lost, no leader), HC_ETIMEDOUT, HC_ESHUTDOWN, HC_EINVAL (cache name, empty key),
 * HC_ETOOLARGE (key over CACHE_MAX_KEY_SIZE). On error *out is zeroed. */
HC_EXPORT int hc_embedded_get(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                              hc_consistency_t consistency, hc_value_t *out);
/* Writes, ordered by the leader; they return once the ack level is reached (SPEC section 3).
 * A write whose answer did not come within the deadline returns HC_EUNKNOWN_OUTCOME (it may
 * still be applied). Other codes as hc_put, hc_del (HC_ENOTFOUND when absent), hc_incr
 * (*value gets the new integer with HC_ACK_QUORUM, may be NULL), hc_clear. ttl_ms 0 = none
 * (or the cache's default). */
HC_EXPORT int hc_embedded_put(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                              const void *val, size_t vlen, hc_ack_t ack, uint64_t ttl_ms);
HC_EXPORT int hc_embedded_del(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                              hc_ack_t ack);
HC_EXPORT int hc_embedded_incr(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                               int64_t by, hc_ack_t ack, int64_t *value);
HC_EXPORT int hc_embedded_clear(hc_embedded_t *e, const char *cache, hc_ack_t ack);
/* The data API's options (as hc_get_ex, hc_put_ex, hc_del_ex of the remote client; opts NULL:
 * the defaults): the entry's version and remaining TTL with a read, conditions (they need
 * HC_ACK_QUORUM: HC_EINVAL otherwise; HC_ECONFLICT when one fails) and the new version with a
 * put. Same threads and ownership rules as the calls above. */
HC_EXPORT int hc_embedded_get_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                                 hc_consistency_t consistency, hc_value_t *out, hc_meta_t *meta);
HC_EXPORT int hc_embedded_put_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                                 const void *val, size_t vlen, const hc_put_opts_t *opts,
                                 uint64_t *version);
HC_EXPORT int hc_embedded_del_ex(hc_embedded_t *e, const char *cache, const void *key, size_t klen,
                                 const hc_del_opts_t *opts);

/* The callback variant of the calls above. */
typedef enum {
    HC_EMBEDDED_GET = 0,
    HC_EMBEDDED_PUT,
    HC_EMBEDDED_DEL,
    HC_EMBEDDED_INCR,
    HC_EMBEDDED_CLEAR
} hc_embedded_kind_t;
typedef struct {
    hc_embedded_kind_t kind;
    const char *cache;
    const void *key; /* not for CLEAR */
    size_t klen;
    const void *val; /* PUT */
    size_t vlen;
    hc_ack_t ack;                 /* writes */
    uint64_t ttl_ms;              /* PUT, INCR creating the key; 0 = none */
    int64_t by;                   /* INCR */
    hc_consistency_t consistency; /* GET */
    int if_absent;                /* PUT: only when absent (needs HC_ACK_QUORUM) */
    int has_if_version;           /* PUT, DEL: only when the version is if_version (quorum) */
    uint64_t if_version;
} hc_embedded_op_t;
typedef struct {
    int status;       /* 0 or HC_E*, as the blocking call */
    const void *data; /* GET: the value, valid during the callback only; NULL otherwise */
    size_t len;
    int stale;        /* GET: see hc_embedded_get */
    uint64_t version; /* GET, PUT, INCR: the entry's version */
    int has_ttl;      /* GET: the entry expires, ttl_ms from now */
    uint64_t ttl_ms;
    int64_t integer; /* INCR (HC_ACK_QUORUM): the new value; CLEAR: entries removed */
} hc_embedded_result_t;
typedef void (*hc_embedded_cb)(void *ud, const hc_embedded_result_t *res);
/* Hands op (copied, with its key and value) to the node. 0: cb(ud, res) runs exactly once on the
 * node's loop thread, on a later turn of its loop: when the node answers (a write that gets no
 * answer fails inside the node after two election timeouts) or with HC_ESHUTDOWN /
 * HC_EUNKNOWN_OUTCOME when the node stops first. Otherwise the error (HC_EINVAL, HC_ETOOLARGE,
 * HC_ESHUTDOWN, HC_ENOMEM) and cb is never called. */
HC_EXPORT int hc_embedded_submit(hc_embedded_t *e, const hc_embedded_op_t *op, hc_embedded_cb cb,
                                 void *ud);

/* The node's view of the cluster, copied. */
typedef struct {
    int ready;        /* 1 when GET /readyz would answer 200: a voter that can serve */
    int quorum;       /* in contact with a quorum */
    char role[16];    /* "standalone", "leader", "follower", "candidate" */
    char node[272];   /* this node, host:port */
    char leader[272]; /* the leader's host:port, "" when unknown or standalone */
    uint64_t term;
    uint64_t commit_index, applied_index;
    char not_ready_reason[64]; /* when !ready */
} hc_embedded_status_t;
/* 0 with *out; HC_ESHUTDOWN once the stop began, HC_ETIMEDOUT, HC_EINVAL. */
HC_EXPORT int hc_embedded_status(hc_embedded_t *e, hc_embedded_status_t *out);
/* 1 when the node serves (GET /readyz would be 200), 0 otherwise (also on any error). */
HC_EXPORT int hc_embedded_ready(hc_embedded_t *e);

#ifdef __cplusplus
}
#endif
#endif
