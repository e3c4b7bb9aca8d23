/* auth.h: the API tokens (CACHE_API_TOKEN / CACHE_API_TOKEN_FILE) that HTTP and RESP accept,
 * kept as BLAKE2b hashes and compared in constant time; the credential reload swaps them. */
#ifndef HC_AUTH_H
#define HC_AUTH_H

#include <stddef.h>

typedef struct hc_auth hc_auth_t;

/* A token set holding the hashes of tokens[0..n) (the strings are not kept; n may be 0: no token
 * required). The caller owns *out and frees it with hc_auth_free once no adapter uses it.
 * 0 or HC_ENOMEM. */
int hc_auth_new(char *const *tokens, size_t n, hc_auth_t **out);

/* NULL is ignored. The hashes are wiped first. */
void hc_auth_free(hc_auth_t *a);

/* Replaces the accepted tokens (reloads): hashes of tokens[0..n), n may be 0. 0, or HC_ENOMEM
 * (the old ones stay). */
int hc_auth_set_tokens(hc_auth_t *a, char *const *tokens, size_t n);

/* 1 when at least one token is configured (a client must present one), else 0. */
int hc_auth_required(const hc_auth_t *a);

/* 1 when token (len bytes, not NUL-terminated) is one of the accepted tokens, else 0. Its hash
 * is compared with every accepted hash in constant time, whichever matches. */
int hc_auth_check(const hc_auth_t *a, const void *token, size_t len);

#endif
