/* settings.h: what a client (synchronous or asynchronous) is configured with: its endpoints, the
 * token's Authorization line, the deadline of a call, and the TLS settings (a CA bundle file
 * re-read on change, an expected server name). No locking: the caller serialises. */
#ifndef HCC_SETTINGS_H
#define HCC_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cafile.h"
#include "endpoints.h"
#include "hacache.h"
#include "transport.h"

typedef struct {
    hcc_endpoints_t eps;
    char *auth_line; /* "Authorization: Bearer ..." or NULL */
    uint32_t timeout_ms;
    int has_ca;
    hcc_cafile_t ca;
    char *server_name;
    char *token_path; /* a token file re-read on change, or NULL */
    struct stat token_seen;
} hcc_settings_t;

/* From the public options (copied). 0; HC_EINVAL (no or malformed endpoints, a token with
 * control characters); HC_ENOMEM; HC_EINTERNAL (libcurl would not initialise). On error nothing
 * is left allocated. */
int hcc_settings_init(hcc_settings_t *s, const hc_client_opts_t *opts);
void hcc_settings_free(hcc_settings_t *s);
/* Replaces the TLS settings: 0, or HC_EINVAL with the reason in err (the old settings stay),
 * HC_ENOMEM. */
int hcc_settings_set_tls(hcc_settings_t *s, const hc_client_tls_t *tls, char *err, size_t errlen);
/* Takes the token from the first non-empty line of path, and again whenever the file changes.
 * 0, or HC_EINVAL with the reason in err (unreadable, empty, control characters, longer than
 * 4 KiB: the old token stays), HC_ENOMEM. */
int hcc_settings_set_token_file(hcc_settings_t *s, const char *path, char *err, size_t errlen);
/* As a call starts: re-reads the CA file and the token file if they changed (a rejected update
 * is reported in err, when not NULL, and the old material stays). */
void hcc_settings_refresh(hcc_settings_t *s, char *err, size_t errlen);
/* The TLS settings in force, for the attempts of a call. */
void hcc_settings_tls(const hcc_settings_t *s, hcc_tls_t *tls);

#endif
