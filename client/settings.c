/* settings.c: see settings.h. */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "Authorization: Bearer <token>" in a malloc'd string; NULL for a token with control
 * characters (or OOM: *oom set). */
static char *auth_line_of(const char *token, size_t len, int *oom)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)token[i] < 0x20 || token[i] == 0x7f) {
            return NULL;
        }
    }
    size_t n = len + 32;
    char *line = malloc(n);
    if (line == NULL) {
        *oom = 1;
        return NULL;
    }
    snprintf(line, n, "Authorization: Bearer %.*s", (int)len, token);
    return line;
}

int hcc_settings_init(hcc_settings_t *s, const hc_client_opts_t *opts)
{
    memset(s, 0, sizeof(*s));
    if (opts == NULL || opts->endpoints == NULL) {
        return HC_EINVAL;
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
        int oom = 0;
        if ((s->auth_line = auth_line_of(opts->token, strlen(opts->token), &oom)) == NULL) {
            hcc_endpoints_free(&s->eps);
            return oom ? HC_ENOMEM : HC_EINVAL;
        }
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
    free(s->token_path);
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

/* Reads the token file: 0 with a new Authorization line in *line and the file's stat in *st, or
 * -1 with the reason in err (HC_ENOMEM in *rv on allocation failure). */
static int read_token(const char *path, struct stat *st, char **line, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "token file %s: cannot open", path);
        return -1;
    }
    char buf[4096 + 2];
    size_t n = fstat(fileno(f), st) == 0 ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    fclose(f);
    buf[n] = '\0';
    if (n > 4096) {
        snprintf(err, errlen, "token file %s: longer than 4 KiB", path);
        return -1;
    }
    /* the first non-empty line, without surrounding blanks */
    char *p = buf;
    while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t') {
        p++;
    }
    size_t len = strcspn(p, "\r\n");
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }
    int oom = 0;
    *line = len > 0 ? auth_line_of(p, len, &oom) : NULL;
    if (*line == NULL) {
        snprintf(err, errlen, "token file %s: %s", path,
                 oom        ? "out of memory"
                 : len == 0 ? "empty"
                            : "control characters in the token");
        return -1;
    }
    return 0;
}

int hcc_settings_set_token_file(hcc_settings_t *s, const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *line = NULL;
    char *copy = path ? strdup(path) : NULL;
    if (path == NULL || copy == NULL) {
        free(copy);
        return path == NULL ? HC_EINVAL : HC_ENOMEM;
    }
    if (read_token(path, &st, &line, err, errlen) != 0) {
        free(copy);
        return HC_EINVAL;
    }
    free(s->auth_line);
    s->auth_line = line;
    free(s->token_path);
    s->token_path = copy;
    s->token_seen = st;
    return 0;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

void hcc_settings_refresh(hcc_settings_t *s, char *err, size_t errlen)
{
    if (s->has_ca && hcc_cafile_refresh(&s->ca) < 0 && err != NULL) {
        snprintf(err, errlen, "%s", s->ca.err);
    }
    struct stat st;
    if (s->token_path != NULL && stat(s->token_path, &st) == 0 && !same_stat(&st, &s->token_seen)) {
        char *line = NULL;
        char why[300];
        if (read_token(s->token_path, &st, &line, why, sizeof(why)) == 0) {
            free(s->auth_line);
            s->auth_line = line;
        } else if (err != NULL) {
            snprintf(err, errlen, "%s; the old token stays", why);
        }
        s->token_seen = st; /* a bad file is not read again until it changes */
    }
}

void hcc_settings_tls(const hcc_settings_t *s, hcc_tls_t *tls)
{
    tls->ca_pem = s->has_ca ? s->ca.pem : NULL;
    tls->ca_len = s->has_ca ? s->ca.len : 0;
    tls->server_name = s->server_name;
}
