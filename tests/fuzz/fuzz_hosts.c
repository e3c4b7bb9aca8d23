/* fuzz_hosts.c: HA_HOSTS parsing, self-identification and size parsing never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    hc_hosts_t hosts;
    char err[512];
    if (hc_hosts_parse(s, &hosts, err, sizeof(err)) == 0) {
        char name[300];
        for (size_t i = 0; i < hosts.n; i++) {
            hc_host_format(&hosts.v[i], name, sizeof(name));
            (void)hc_hosts_find_self(&hosts, name, err, sizeof(err));
        }
        (void)hc_hosts_find_self(&hosts, s, err, sizeof(err));
        hc_hosts_free(&hosts);
    }
    uint64_t sz;
    (void)hc_parse_size(s, &sz);
    char host[256];
    uint16_t port;
    (void)hc_parse_hostport(s, host, sizeof(host), &port);
    free(s);
    return 0;
}
