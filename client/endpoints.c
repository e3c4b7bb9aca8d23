/* endpoints.c: see endpoints.h. */
#include "endpoints.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hacache.h"

uint64_t hcc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_next(hcc_endpoints_t *e)
{
    uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t hcc_jittered(hcc_endpoints_t *e, uint32_t ms)
{
    return ms / 2 + rng_next(e) % ((uint64_t)ms + 1);
}

static void rng_seed(hcc_endpoints_t *e)
{
    uint64_t seed = 0;
    size_t got = 0;
    while (got < sizeof(seed)) {
        ssize_t n = getrandom((char *)&seed + got, sizeof(seed) - got, 0);
        if (n < 0 && errno != EINTR) {
            break; /* no entropy source: the address and the clock still differ per client */
        }
        got += n > 0 ? (size_t)n : 0;
    }
    if (got < sizeof(seed)) {
        seed ^= (uint64_t)(uintptr_t)e ^ hcc_now_ms() ^ ((uint64_t)getpid() << 32);
    }
    e->rng = seed;
}

/* "http://host:port" or "https://host:port" (scheme optional), "[v6]:port" allowed. */
static int endpoint_parse(const char *s, size_t n, hcc_endpoint_t *ep)
{
    static const char http[] = "http://", https[] = "https://";
    memset(ep, 0, sizeof(*ep));
    if (n >= sizeof(https) - 1 && strncmp(s, https, sizeof(https) - 1) == 0) {
        s += sizeof(https) - 1, n -= sizeof(https) - 1;
        ep->tls = 1;
    } else if (n >= sizeof(http) - 1 && strncmp(s, http, sizeof(http) - 1) == 0) {
        s += sizeof(http) - 1, n -= sizeof(http) - 1;
    }
    if (n > 0 && s[n - 1] == '/') {
        n--;
    }
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL || colon == s) {
        return HC_EINVAL;
    }
    size_t hl = (size_t)(colon - s), pl = n - hl - 1;
    if (pl == 0 || pl > 5) {
        return HC_EINVAL;
    }
    unsigned port = 0;
    for (size_t i = 0; i < pl; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9') {
            return HC_EINVAL;
        }
        port = port * 10 + (unsigned)(colon[1 + i] - '0');
    }
    if (port == 0 || port > 65535) {
        return HC_EINVAL;
    }
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++, hl -= 2;
    }
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' || ch == '[' || ch == ']' ||
            ch == '?' || ch == '#' || ch == '%') {
            return HC_EINVAL;
        }
    }
    if (hl == 0 || (ep->host = strndup(s, hl)) == NULL) {
        return hl == 0 ? HC_EINVAL : HC_ENOMEM;
    }
    snprintf(ep->port, sizeof(ep->port), "%u", port);
    return 0;
}

void hcc_endpoints_free(hcc_endpoints_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->ep[i].host);
    }
    e->n = 0;
}

int hcc_endpoints_init(hcc_endpoints_t *e, const char *list)
{
    memset(e, 0, sizeof(*e));
    const char *p = list;
    int rv = 0;
    while (*p && rv == 0) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++, n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        if (n > 0) {
            if (e->n == HCC_MAX_ENDPOINTS) {
                rv = HC_EINVAL;
            } else if ((rv = endpoint_parse(s, n, &e->ep[e->n])) == 0) {
                e->n++;
            }
        }
        p = end ? end + 1 : p + strlen(p);
    }
    if (rv == 0 && e->n == 0) {
        rv = HC_EINVAL;
    }
    if (rv != 0) {
        hcc_endpoints_free(e);
        return rv;
    }
    rng_seed(e);
    e->cur = (size_t)(rng_next(e) % e->n); /* so that clients spread over the nodes */
    return 0;
}

void hcc_endpoints_begin(hcc_endpoints_t *e)
{
    memset(e->tried, 0, sizeof(e->tried));
    e->tried_in_round = 0;
}

void hcc_endpoint_answered(hcc_endpoints_t *e, size_t i)
{
    e->ep[i].backoff_ms = 0;
    e->ep[i].down_until = 0;
}

uint64_t hcc_endpoint_failed(hcc_endpoints_t *e, uint64_t now)
{
    hcc_endpoint_t *ep = &e->ep[e->cur];
    uint32_t b = ep->backoff_ms ? ep->backoff_ms * 2 : HCC_BACKOFF_MIN_MS;
    ep->backoff_ms = b > HCC_BACKOFF_MAX_MS ? HCC_BACKOFF_MAX_MS : b;
    ep->down_until = now + hcc_jittered(e, ep->backoff_ms);
    if (!e->tried[e->cur]) {
        e->tried[e->cur] = 1;
        e->tried_in_round++;
    }
    if (e->tried_in_round >= e->n) {
        hcc_endpoints_begin(e);
        return hcc_jittered(e, HCC_ROUND_PAUSE_MS);
    }
    return 0;
}

/* A random endpoint among those not in skip[] (when skip is not NULL) and not backing off at
 * now; -1 if none. */
static long pick(hcc_endpoints_t *e, const unsigned char *skip, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n; i++) {
        n += !(skip && skip[i]) && e->ep[i].down_until <= now;
    }
    if (n == 0) {
        return -1;
    }
    size_t k = (size_t)(rng_next(e) % n);
    for (size_t i = 0; i < e->n; i++) {
        if (!(skip && skip[i]) && e->ep[i].down_until <= now && k-- == 0) {
            return (long)i;
        }
    }
    return -1;
}

uint64_t hcc_endpoints_choose(hcc_endpoints_t *e, uint64_t now)
{
    if (e->ep[e->cur].down_until <= now && !e->tried[e->cur]) {
        return 0;
    }
    long i = pick(e, e->tried, now);
    if (i < 0) {
        i = pick(e, NULL, now); /* only tried ones are up: the round is over */
    }
    if (i >= 0) {
        e->cur = (size_t)i;
        return 0;
    }
    size_t best = 0;
    for (size_t j = 1; j < e->n; j++) {
        if (e->ep[j].down_until < e->ep[best].down_until) {
            best = j;
        }
    }
    e->cur = best;
    return e->ep[best].down_until > now ? e->ep[best].down_until - now : 0;
}
