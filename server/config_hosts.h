/* config_hosts.h: HA_HOSTS entries (SPEC §2): their syntax, and the identity rules that find
 * this node's own entry. Part of the configuration contract (config.h includes it). */
#ifndef HC_CONFIG_HOSTS_H
#define HC_CONFIG_HOSTS_H

#include <stddef.h>
#include <stdint.h>

/* Longest HA_HOSTS entry as host:port: "[" + 253-byte host + "]:" + port, with room to spare. */
#define HC_NODE_NAME_MAX 300

/* One entry of HA_HOSTS. */
typedef struct {
    char scheme[8]; /* "", "http" or "https" as written */
    char host[256]; /* DNS name or IP literal, IPv6 without brackets */
    uint16_t port;
    int ipv6; /* host was written as [v6]:port */
} hc_host_t;

typedef struct {
    hc_host_t *v; /* owned, n entries in written order */
    size_t n;
} hc_hosts_t;

/* Parses HA_HOSTS. Returns 0, or HC_EINVAL with a one-line reason in err (naming the entry). */
int hc_hosts_parse(const char *csv, hc_hosts_t *out, char *err, size_t errlen);
void hc_hosts_free(hc_hosts_t *h);

/* Finds "me" in hosts. `name` is "host" or "host:port" ([v6]:port). Host comparison is
 * case-insensitive; a bare name also matches an entry whose first DNS label equals it.
 * Returns the index, or HC_ENOTFOUND (no match) / HC_EINVAL (matches more than one entry or
 * bad name) with a one-line reason in err that lists the entries and the name looked for. */
int hc_hosts_find_self(const hc_hosts_t *h, const char *name, char *err, size_t errlen);

/* Formats entry i as host:port ([v6]:port), the node's name in status and logs. */
void hc_host_format(const hc_host_t *h, char *out, size_t outlen);

/* Resolves a listen address "host:port" / "[v6]:port" (empty host: any) for bind(). 0 or -1. */
struct sockaddr_storage;
int hc_resolve_listen(const char *addr, struct sockaddr_storage *ss);

/* ---- for the other configuration files (config.c, config_validate.c) ---- */

#define HOST_MAX_LEN   253 /* longest DNS name */
#define VALUE_TEXT_MAX 200 /* how much of a bad value an error line quotes */

/* Splits s[0..len) written as "host:port" or "[v6]:port". On failure returns HC_EINVAL with the
 * reason in `why` phrased to follow the quoted text ("has no port ..."). */
int config__split_hostport(const char *s, size_t len, char *host, size_t hostlen, uint16_t *port,
                           int *ipv6, char *why, size_t whylen);
/* hc_hosts_find_self with the origin of the name for the messages: `var` is the variable that
 * names the node ("HOSTNAME_OVERWRITE"), `from` how to say where the name came from; both NULL
 * when unknown. */
int config__find_self(const hc_hosts_t *h, const char *name, const char *var, const char *from,
                      char *err, size_t errlen);

#endif
