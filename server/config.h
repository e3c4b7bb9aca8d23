/* config.h: the configuration contract of SPEC section 2: environment variables, flags that
 * mirror them, defaults, and every validation hacached --check-config performs. */
#ifndef HC_CONFIG_H
#define HC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config_hosts.h"
#include "log.h"

/* Up to this many error lines are kept by one validation run. */
#define HC_CONFIG_MAX_ERRORS 32

/* Error lines of a load/validate run; each line names the variable first ("HA_HOSTS: ..."). */
typedef struct {
    char line[HC_CONFIG_MAX_ERRORS][512];
    size_t n;
} hc_config_errors_t;

/* Looks up one environment variable; returns NULL when unset. Tests inject their own. */
typedef const char *(*hc_getenv_fn)(void *ud, const char *name);

typedef struct hc_config {
    /* what main() should do */
    int cmd_help, cmd_version, cmd_check_config;

    int ha_mode;              /* HA_MODE */
    char *ha_hosts_raw;       /* HA_HOSTS as given */
    hc_hosts_t hosts;         /* parsed HA_HOSTS */
    char *hostname_overwrite; /* HOSTNAME_OVERWRITE */
    char *hostname;           /* HOSTNAME or gethostname() */
    int self_index;           /* my entry in hosts, -1 until validated in cluster mode */
    char *listen_addr;        /* CACHE_LISTEN_ADDR */

    char *auth_token_file; /* CACHE_AUTH_TOKEN_FILE */
    char **auth_tokens;    /* CACHE_AUTH_TOKEN or the lines of the file; [0] is sent */
    size_t n_auth_tokens;

    int tls;                                /* CACHE_TLS */
    char *tls_server_cert, *tls_server_key; /* CACHE_TLS_SERVER_CERT/KEY */
    char *tls_client_cert, *tls_client_key; /* CACHE_TLS_CLIENT_CERT/KEY (default: server) */
    char *tls_ca_server, *tls_ca_client;    /* CACHE_TLS_CA_SERVER/CLIENT */
    char *tls_client_validate_domain;       /* CACHE_TLS_CLIENT_VALIDATE_DOMAIN */
    char *tls_sni_overwrite;                /* CACHE_TLS_SNI_OVERWRITE */
    uint32_t tls_expiry_warn_days;          /* CACHE_TLS_EXPIRY_WARN_DAYS */

    char *http_addr;                    /* CACHE_HTTP_ADDR, host:port ([v6]:port allowed) */
    char *http_tls_cert, *http_tls_key; /* CACHE_HTTP_TLS_CERT/KEY */
    char *api_token_file;               /* CACHE_API_TOKEN_FILE */
    char **api_tokens;                  /* CACHE_API_TOKEN or lines of the file; all accepted */
    size_t n_api_tokens;
    int api_insecure; /* CACHE_API_INSECURE */
    char *resp_addr;  /* CACHE_RESP_ADDR, NULL = off */
    /* CACHE_HEALTH_ADDR, NULL = off: probes and metrics only, no token */
    char *health_addr;

    uint64_t max_memory;     /* CACHE_MAX_MEMORY bytes */
    uint64_t max_key_size;   /* CACHE_MAX_KEY_SIZE bytes */
    uint64_t max_value_size; /* CACHE_MAX_VALUE_SIZE bytes */

    /* connection limits (hacached lowers max_clients and unauth_max to fit its file limit) */
    uint32_t max_clients;          /* CACHE_MAX_CLIENTS: admitted HTTP + RESP connections */
    uint32_t unauth_max;           /* CACHE_UNAUTH_MAX: unauthenticated ones, per listener */
    uint32_t unauth_timeout_ms;    /* CACHE_UNAUTH_TIMEOUT_MS: time to authenticate */
    uint32_t resp_idle_timeout_ms; /* CACHE_RESP_IDLE_TIMEOUT_MS: 0 = idle clients are kept */

    uint32_t heartbeat_ms;         /* CACHE_HEARTBEAT_MS */
    uint32_t election_timeout_ms;  /* CACHE_ELECTION_TIMEOUT_MS */
    uint32_t quorum_loss_grace_ms; /* CACHE_QUORUM_LOSS_GRACE_MS (default = election timeout) */
    uint32_t bootstrap_expect;     /* CACHE_BOOTSTRAP_EXPECT, 0 = every HA_HOSTS entry */
    char *data_dir;                /* CACHE_DATA_DIR */
    hc_log_level_t log_level;      /* CACHE_LOG_LEVEL */
    hc_log_format_t log_format;    /* CACHE_LOG_FORMAT */
    uint32_t shutdown_timeout_ms;  /* CACHE_SHUTDOWN_TIMEOUT_MS */
    uint32_t expiry_interval_ms;   /* CACHE_EXPIRY_INTERVAL_MS: active TTL reclaim period */
} hc_config_t;

/* Sets every field to its default. Strings owned by the config (freed by hc_config_free). */
void hc_config_init(hc_config_t *c);
void hc_config_free(hc_config_t *c);

/* Reads the environment through getenv_fn (NULL = getenv(3)), then argv flags (flags win;
 * "--name value" and "--name=value"; boolean flags may omit the value). `system_hostname` is
 * the gethostname() result used when HOSTNAME is unset (NULL = call gethostname()).
 * Syntax errors (unknown flag, bad number/size/bool, bad HA_HOSTS entry) are appended to errs.
 * Returns 0 or HC_EINVAL. Does not touch the filesystem. */
int hc_config_load(hc_config_t *c, int argc, char **argv, hc_getenv_fn getenv_fn, void *ud,
                   const char *system_hostname, hc_config_errors_t *errs);

/* Semantic checks that may read files: self-identification in HA_HOSTS, tokens, TLS files
 * present and readable, key matches certificate, certificate not expired / not yet valid,
 * scheme vs CACHE_TLS, API token required off-loopback. Sets c->self_index. Appends errors;
 * returns 0 or HC_EINVAL. `now` is the wall-clock second used for expiry checks. */
int hc_config_validate(hc_config_t *c, int64_t now, hc_config_errors_t *errs);

/* Reads a token file exactly as validation does (one token per line, blank lines and a trailing
 * \r ignored, each at least 16 bytes; API tokens without blanks or control bytes), for credential
 * reloads. 0 with *tokens (n entries; release with hc_config_tokens_free, which also wipes
 * them), or HC_EINVAL with one line naming `var` in err. */
int hc_config_read_tokens(const char *var, const char *path, int api, char ***tokens, size_t *n,
                          char *err, size_t errlen);
void hc_config_tokens_free(char **tokens, size_t n);

/* Prints every knob with its variable, flag, default and meaning. */
void hc_config_print_help(FILE *out);

/* Parses sizes like "512MiB", "2GiB", "64KiB", "1000", "10MB" (SI), "1k". 0 or HC_EINVAL. */
int hc_parse_size(const char *s, uint64_t *out);

/* Splits "host:port" / "[v6]:port" into host (no brackets) and port. 0 or HC_EINVAL. */
int hc_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Do two "host:port" names denote the same HA_HOSTS entry (host case-insensitive; names that do
 * not parse are compared whole)? */
int hc_same_hostport(const char *a, const char *b);

#endif
