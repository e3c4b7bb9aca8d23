/* remote_sync.c: the synchronous remote client in a dozen lines of real work. Talks to the nodes
 * named by HACACHE_ENDPOINTS (default http://127.0.0.1:8080), with HACACHE_TOKEN and, for
 * https:// endpoints, HACACHE_CACERT; stores a session, reads it back, counts a login, revokes the
 * session. Exit status 0 when every step did what it should.
 *
 *   cc remote_sync.c $(pkg-config --cflags --libs hacache) -o remote_sync */
#include <hacache.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, int rv)
{
    fprintf(stderr, "%s: %s\n", what, hc_strerror(rv));
    return 1;
}

int main(void)
{
    const char *eps = getenv("HACACHE_ENDPOINTS");
    hc_client_opts_t opts = {.endpoints = eps ? eps : "http://127.0.0.1:8080",
                             .token = getenv("HACACHE_TOKEN"),
                             .timeout_ms = 5000};
    hc_client_t *c;
    int rv = hc_client_new(&opts, &c);
    if (rv != 0) {
        return fail("hc_client_new", rv);
    }
    const char *ca = getenv("HACACHE_CACERT");
    if (ca != NULL && *ca) {
        hc_client_tls_t tls = {.ca_file = ca};
        if ((rv = hc_client_set_tls(c, &tls)) != 0) {
            hc_client_free(c);
            return fail("hc_client_set_tls", rv);
        }
    }
    const char *key = "session-42", *val = "user=alice;roles=admin";
    /* a quorum write: acknowledged once a majority has it, applied once even when retried */
    rv = hc_put(c, "sessions", key, strlen(key), val, strlen(val), HC_ACK_QUORUM, 60000);
    if (rv != 0) {
        hc_client_free(c);
        return fail("hc_put", rv);
    }
    hc_value_t v;
    rv = hc_get(c, "sessions", key, strlen(key), &v);
    if (rv != 0) {
        hc_client_free(c);
        return fail("hc_get", rv);
    }
    printf("read back: %.*s\n", (int)v.len, (const char *)v.data);
    int same = v.len == strlen(val) && memcmp(v.data, val, v.len) == 0;
    hc_value_free(&v);
    int64_t logins = 0;
    rv = hc_incr(c, "counters", "logins", 6, 1, HC_ACK_QUORUM, &logins);
    if (rv != 0) {
        hc_client_free(c);
        return fail("hc_incr", rv);
    }
    printf("logins: %lld\n", (long long)logins);
    rv = hc_del(c, "sessions", key, strlen(key), HC_ACK_QUORUM); /* revoke */
    if (rv != 0) {
        hc_client_free(c);
        return fail("hc_del", rv);
    }
    rv = hc_get(c, "sessions", key, strlen(key), &v);
    printf("after revoking: %s\n", rv == HC_ENOTFOUND ? "not found" : hc_strerror(rv));
    hc_value_free(&v);
    hc_client_free(c);
    return same && rv == HC_ENOTFOUND ? 0 : 1;
}
