/* settings.c: see settings.h. */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hcc_settings_init(hcc_settings_t *s, const hc_client_opts_t *opts)
{
    memset(s, 0, sizeof(*s));
    if (opts == NULL || opts->endpoints == NULL) {
        return HC_EINVAL;
    }
    if (opts->token != NULL) {
        for (const char *t = opts->token; *t; t++) {
            if ((unsigned char)*t < 0x20 || *t == 0x7f) {
                return HC_EINVAL;
            }
        }
    }
    if (hcc_transport_global_init() != 0) {
        return HC_EINTERNAL;
    }
    s->timeout_ms = opts->timeout_ms ? opts->timeout_ms : HC_CLIENT_DEFAULT_TIMEOUT_MS;
    int rv = hcc_endpoints_init(&s->eps, opts->endpoints);
    if (rv != 0) {
        return rv;
    }
    if (opts->token && *opts->token) {
        size_t n = strlen(opts->token) + 32;
        if ((s->auth_line = malloc(n)) == NULL) {
            hcc_endpoints_free(&s->eps);
            return HC_ENOMEM;
        }
        snprintf(s->auth_line, n, "Authorization: Bearer %s", opts->token);
    }
    return 0;
}

void hcc_settings_free(hcc_settings_t *s)
{
    hcc_endpoints_free(&s->eps);
    if (s->has_ca) {
        hcc_cafile_free(&s->ca);
    }
    free(s->server_name);
    free(s->auth_line);
    memset(s, 0, sizeof(*s));
}

int hcc_settings_set_tls(hcc_settings_t *s, const hc_client_tls_t *tls, char *err, size_t errlen)
{
    if (tls == NULL) {
        return HC_EINVAL;
    }
    if (tls->server_name != NULL) {
        const char *n = tls->server_name;
        if (*n == '\0' || strlen(n) > 253 || strpbrk(n, " /@[]?#%:") != NULL) {
            snprintf(err, errlen, "server name %.100s: not a host name", n);
            return HC_EINVAL;
        }
    }
    hcc_cafile_t ca;
    int has_ca = tls->ca_file != NULL && *tls->ca_file;
    if (has_ca) {
        int rv = hcc_cafile_init(&ca, tls->ca_file, err, errlen);
        if (rv != 0) {
            return rv;
        }
    }
    char *name = tls->server_name ? strdup(tls->server_name) : NULL;
    if (tls->server_name && name == NULL) {
        if (has_ca) {
            hcc_cafile_free(&ca);
        }
        return HC_ENOMEM;
    }
    if (s->has_ca) {
        hcc_cafile_free(&s->ca);
    }
    s->has_ca = has_ca;
    if (has_ca) {
        s->ca = ca;
    }
    free(s->server_name);
    s->server_name = name;
    return 0;
}

void hcc_settings_tls(hcc_settings_t *s, hcc_tls_t *tls, char *err, size_t errlen)
{
    if (s->has_ca && hcc_cafile_refresh(&s->ca) < 0 && err != NULL) {
        snprintf(err, errlen, "%s", s->ca.err);
    }
    tls->ca_pem = s->has_ca ? s->ca.pem : NULL;
    tls->ca_len = s->has_ca ? s->ca.len : 0;
    tls->server_name = s->server_name;
}
