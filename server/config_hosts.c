/* config_hosts.c: HA_HOSTS and host:port syntax, and the identity rules that find this node's
 * own entry (hc_hosts_find_self). Part of the configuration contract of config.h. */
#include "config_hosts.h"

#include "hacache.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOSTS_MAX 255 /* entries in HA_HOSTS; bounds untrusted input */

/* ---------------------------------------------------------------------------------------- */
/* host:port syntax */

static int is_host_char(int ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

static int looks_like_ipv6(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.') {
            return 0;
        }
    }
    return 1;
}

static int is_ipv4_literal(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1;
}

/* Splits s[0..len) written as "host:port" or "[v6]:port". On failure returns HC_EINVAL with the
 * reason in `why` phrased to follow the quoted text ("has no port ..."). */
int config__split_hostport(const char *s, size_t len, char *host, size_t hostlen, uint16_t *port,
                           int *ipv6, char *why, size_t whylen)
{
    const char *end = s + len, *hb, *he, *p;
    *ipv6 = 0;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL) {
            snprintf(why, whylen, "has '[' without ']'");
            return HC_EINVAL;
        }
        hb = s + 1;
        he = rb;
        p = rb + 1;
        if (p == end) {
            snprintf(why, whylen, "has no port (write [addr]:port)");
            return HC_EINVAL;
        }
        if (*p != ':') {
            snprintf(why, whylen, "has junk after ']' (write [addr]:port)");
            return HC_EINVAL;
        }
        p++;
        *ipv6 = 1;
    } else {
        const char *colon = memrchr(s, ':', len);
        if (colon == NULL) {
            snprintf(why, whylen, "has no port (write host:port)");
            return HC_EINVAL;
        }
        hb = s;
        he = colon;
        p = colon + 1;
        if (memchr(hb, ':', (size_t)(he - hb)) != NULL) {
            if (looks_like_ipv6(hb, (size_t)(end - hb))) {
                snprintf(why, whylen, "is an IPv6 address without brackets (write [addr]:port)");
            } else {
                snprintf(why, whylen, "has more than one ':' (write host:port)");
            }
            return HC_EINVAL;
        }
    }

    /* port: digits, then nothing */
    const char *d = p;
    while (d < end && isdigit((unsigned char)*d)) {
        d++;
    }
    if (d == p) {
        if (p == end) {
            snprintf(why, whylen, "has no port after ':'");
        } else {
            snprintf(why, whylen, "has an invalid port \"%.*s\"", (int)(end - p), p);
        }
        return HC_EINVAL;
    }
    if (d != end) {
        if (*d == '/') {
            snprintf(why, whylen, "has a path after the port (only host:port is allowed)");
        } else {
            snprintf(why, whylen, "has junk \"%.*s\" after the port", (int)(end - d), d);
        }
        return HC_EINVAL;
    }
    unsigned long pv = 0;
    for (const char *q = p; q < d && pv <= 65535; q++) {
        pv = pv * 10 + (unsigned long)(*q - '0');
    }
    if (pv < 1 || pv > 65535) {
        snprintf(why, whylen, "has port %.*s out of range 1..65535", (int)(d - p), p);
        return HC_EINVAL;
    }

    /* host */
    size_t hl = (size_t)(he - hb);
    if (hl == 0) {
        snprintf(why, whylen, "has an empty host");
        return HC_EINVAL;
    }
    if (hl > HOST_MAX_LEN) {
        snprintf(why, whylen, "has a host longer than %d characters", HOST_MAX_LEN);
        return HC_EINVAL;
    }
    if (hl >= hostlen) {
        snprintf(why, whylen, "has a host that is too long");
        return HC_EINVAL;
    }
    memcpy(host, hb, hl);
    host[hl] = '\0';
    if (*ipv6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            snprintf(why, whylen, "has an invalid IPv6 address");
            return HC_EINVAL;
        }
    } else {
        for (size_t i = 0; i < hl; i++) {
            if (!is_host_char((unsigned char)host[i])) {
                snprintf(why, whylen, "has an invalid character '%c' in the host", host[i]);
                return HC_EINVAL;
            }
        }
    }
    *port = (uint16_t)pv;
    return 0;
}

int hc_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    char why[128];
    int v6;
    if (s == NULL) {
        return HC_EINVAL;
    }
    return config__split_hostport(s, strlen(s), host, hostlen, port, &v6, why, sizeof(why));
}

void hc_host_format(const hc_host_t *h, char *out, size_t outlen)
{
    snprintf(out, outlen, h->ipv6 ? "[%s]:%u" : "%s:%u", h->host, (unsigned)h->port);
}

/* Host equality: IPv6 literals by address, everything else case-insensitively as text. */
static int host_equal(const char *a, int a_v6, const char *b, int b_v6)
{
    if (a_v6 && b_v6) {
        struct in6_addr x, y;
        return inet_pton(AF_INET6, a, &x) == 1 && inet_pton(AF_INET6, b, &y) == 1 &&
               memcmp(&x, &y, sizeof(x)) == 0;
    }
    return a_v6 == b_v6 && strcasecmp(a, b) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* HA_HOSTS */

void hc_hosts_free(hc_hosts_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

int hc_hosts_parse(const char *csv, hc_hosts_t *out, char *err, size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    const char *s = csv ? csv : "";
    size_t total = strlen(s), n_entries = 1;
    int blank = 1;
    for (size_t i = 0; i < total; i++) {
        n_entries += s[i] == ',';
        blank &= isspace((unsigned char)s[i]) != 0;
    }
    if (blank) {
        snprintf(err, errlen, "HA_HOSTS: is empty; expected host:port entries separated by commas");
        return HC_EINVAL;
    }
    if (n_entries > HOSTS_MAX) {
        snprintf(err, errlen, "HA_HOSTS: has %zu entries, at most %d are supported", n_entries,
                 HOSTS_MAX);
        return HC_EINVAL;
    }
    hc_host_t *v = calloc(n_entries, sizeof(*v));
    if (v == NULL) {
        snprintf(err, errlen, "HA_HOSTS: out of memory");
        return HC_EINVAL;
    }

    size_t n = 0;
    const char *b = s;
    for (size_t idx = 1; idx <= n_entries; idx++) {
        const char *comma = strchr(b, ',');
        const char *e = comma ? comma : s + total;
        const char *next = comma ? comma + 1 : e;
        while (b < e && isspace((unsigned char)*b)) {
            b++;
        }
        while (e > b && isspace((unsigned char)e[-1])) {
            e--;
        }
        int elen = (int)(e - b) > VALUE_TEXT_MAX ? VALUE_TEXT_MAX : (int)(e - b);
        if (b == e) {
            snprintf(err, errlen, "HA_HOSTS: entry %zu is empty (stray or trailing comma?)", idx);
            goto fail;
        }
        hc_host_t *h = &v[n];
        const char *rest = b;
        const char *sep = memmem(b, (size_t)(e - b), "://", 3);
        if (sep != NULL) {
            size_t sl = (size_t)(sep - b);
            if (sl == 4 && strncasecmp(b, "http", 4) == 0) {
                memcpy(h->scheme, "http", 5);
            } else if (sl == 5 && strncasecmp(b, "https", 5) == 0) {
                memcpy(h->scheme, "https", 6);
            } else {
                snprintf(err, errlen,
                         "HA_HOSTS: entry %zu \"%.*s\" has unknown scheme \"%.*s\" (use http://, "
                         "https:// or none)",
                         idx, elen, b, (int)(sl > 32 ? 32 : sl), b);
                goto fail;
            }
            rest = sep + 3;
        }
        char why[128];
        if (config__split_hostport(rest, (size_t)(e - rest), h->host, sizeof(h->host), &h->port,
                                   &h->ipv6, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "HA_HOSTS: entry %zu \"%.*s\" %s", idx, elen, b, why);
            goto fail;
        }
        for (size_t j = 0; j < n; j++) {
            if (v[j].port == h->port && host_equal(v[j].host, v[j].ipv6, h->host, h->ipv6)) {
                char name[300];
                hc_host_format(h, name, sizeof(name));
                snprintf(err, errlen, "HA_HOSTS: entries %zu and %zu are the same node %s", j + 1,
                         idx, name);
                goto fail;
            }
        }
        n++;
        b = next;
    }
    out->v = v;
    out->n = n;
    return 0;

fail:
    free(v);
    return HC_EINVAL;
}

/* "a:7000, b:7000" of the entries whose flag in `pick` is set (all when pick is NULL). */
static void format_entries(const hc_hosts_t *h, const unsigned char *pick, hc_sbuf_t *b)
{
    int first = 1;
    for (size_t i = 0; i < h->n; i++) {
        if (pick != NULL && !pick[i]) {
            continue;
        }
        char name[300];
        hc_host_format(&h->v[i], name, sizeof(name));
        hc_sbuf_printf(b, "%s%s", first ? "" : ", ", name);
        first = 0;
    }
    if (first) {
        hc_sbuf_printf(b, "(none)");
    }
}

/* hc_hosts_find_self with the origin of the name for the messages: `var` is the variable that
 * names the node ("HOSTNAME_OVERWRITE"), `from` how to say where the name came from; both NULL
 * when unknown. */
int config__find_self(const hc_hosts_t *h, const char *name, const char *var, const char *from,
                      char *err, size_t errlen)
{
    char nhost[HOST_MAX_LEN + 8];
    uint16_t nport = 0;
    int has_port = 0, nv6 = 0;
    size_t len = name ? strlen(name) : 0;
    char from_text[96] = "";
    if (from != NULL) {
        snprintf(from_text, sizeof(from_text), " (from %s)", from);
    }

    /* the name: host, host:port, [v6]:port, a bare IPv6 literal or [v6] */
    int ok = len > 0 && len <= HOST_MAX_LEN + 8;
    if (ok && name[0] == '[' && name[len - 1] == ']') {
        ok = len - 2 < sizeof(nhost);
        if (ok) {
            memcpy(nhost, name + 1, len - 2);
            nhost[len - 2] = '\0';
            nv6 = 1;
        }
    } else if (ok && name[0] != '[' && strchr(name, ':') == NULL) {
        ok = len < sizeof(nhost);
        for (size_t i = 0; ok && i < len; i++) {
            ok = is_host_char((unsigned char)name[i]);
        }
        if (ok) {
            memcpy(nhost, name, len + 1);
        }
    } else if (ok && name[0] != '[' && strchr(name, ':') != strrchr(name, ':')) {
        struct in6_addr a6;
        ok = len < sizeof(nhost) && inet_pton(AF_INET6, name, &a6) == 1;
        if (ok) {
            memcpy(nhost, name, len + 1);
            nv6 = 1;
        }
    } else if (ok) {
        char why[128];
        ok = config__split_hostport(name, len, nhost, sizeof(nhost), &nport, &nv6, why,
                                    sizeof(why)) == 0;
        has_port = 1;
    }
    if (ok && nv6) {
        struct in6_addr a6;
        ok = inet_pton(AF_INET6, nhost, &a6) == 1;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "%s: this node's name \"%.*s\"%s is not host, host:port or [addr]:port",
                 var ? var : "HA_HOSTS", VALUE_TEXT_MAX, name ? name : "", from_text);
        return HC_EINVAL;
    }

    unsigned char match[HOSTS_MAX] = {0};
    size_t n_match = 0, found = 0;
    size_t nlen = strlen(nhost);
    for (size_t i = 0; i < h->n && i < HOSTS_MAX; i++) {
        const hc_host_t *e = &h->v[i];
        int m = host_equal(e->host, e->ipv6, nhost, nv6);
        if (has_port) {
            m = m && e->port == nport;
        } else if (!m && !nv6 && !e->ipv6 && !is_ipv4_literal(e->host)) {
            /* first DNS label: "hacache-0" matches "hacache-0.hacache", never as a prefix */
            const char *dot = strchr(e->host, '.');
            m = dot != NULL && (size_t)(dot - e->host) == nlen &&
                strncasecmp(e->host, nhost, nlen) == 0;
        }
        if (m) {
            match[i] = 1;
            n_match++;
            found = i;
        }
    }
    if (n_match == 1) {
        return (int)found;
    }

    hc_sbuf_t b = {.p = err, .cap = errlen};
    if (errlen > 0) {
        err[0] = '\0';
    }
    if (n_match == 0) {
        hc_sbuf_printf(&b, "HA_HOSTS: this node \"%.*s\"%s is not in HA_HOSTS; entries: ",
                       VALUE_TEXT_MAX, name, from_text);
        format_entries(h, NULL, &b);
        if (var == NULL || strcmp(var, "HOSTNAME_OVERWRITE") != 0) {
            hc_sbuf_printf(&b, "; set HOSTNAME_OVERWRITE to this node's entry");
        }
        return HC_ENOTFOUND;
    }
    hc_sbuf_printf(&b, "HA_HOSTS: this node \"%.*s\"%s matches %zu entries: ", VALUE_TEXT_MAX, name,
                   from_text, n_match);
    format_entries(h, match, &b);
    hc_sbuf_printf(&b, "; set HOSTNAME_OVERWRITE to this node's host:port");
    return HC_EINVAL;
}

int hc_hosts_find_self(const hc_hosts_t *h, const char *name, char *err, size_t errlen)
{
    return config__find_self(h, name, NULL, NULL, err, errlen);
}

int hc_resolve_listen(const char *addr, struct sockaddr_storage *ss)
{
    char host[256];
    uint16_t port;
    if (hc_parse_hostport(addr, host, sizeof(host), &port) != 0) {
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int hc_same_hostport(const char *a, const char *b)
{
    char ha[256], hb[256];
    uint16_t pa, pb;
    if (hc_parse_hostport(a, ha, sizeof(ha), &pa) != 0 ||
        hc_parse_hostport(b, hb, sizeof(hb), &pb) != 0) {
        return strcasecmp(a, b) == 0;
    }
    return pa == pb && strcasecmp(ha, hb) == 0;
}
