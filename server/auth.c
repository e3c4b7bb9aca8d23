/* auth.c: the API token set (auth.h). */
#include "auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hacache.h"

struct hc_auth {
    /* BLAKE2b-256 of every accepted token: a leaked core dump shows no token. */
    unsigned char (*hashes)[crypto_generichash_BYTES];
    size_t n;
};

int hc_auth_new(char *const *tokens, size_t n, hc_auth_t **out)
{
    *out = NULL;
    hc_auth_t *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return HC_ENOMEM;
    }
    int rv = hc_auth_set_tokens(a, tokens, n);
    if (rv != 0) {
        free(a);
        return rv;
    }
    *out = a;
    return 0;
}

void hc_auth_free(hc_auth_t *a)
{
    if (a == NULL) {
        return;
    }
    hc_auth_set_tokens(a, NULL, 0);
    free(a);
}

int hc_auth_set_tokens(hc_auth_t *a, char *const *tokens, size_t n)
{
    unsigned char(*hashes)[crypto_generichash_BYTES] = NULL;
    if (n > 0) {
        hashes = calloc(n, sizeof(*hashes));
        if (hashes == NULL) {
            return HC_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        crypto_generichash(hashes[i], crypto_generichash_BYTES, (const unsigned char *)tokens[i],
                           strlen(tokens[i]), NULL, 0);
    }
    if (a->hashes != NULL) {
        sodium_memzero(a->hashes, a->n * sizeof(*a->hashes));
    }
    free(a->hashes);
    a->hashes = hashes;
    a->n = n;
    return 0;
}

int hc_auth_required(const hc_auth_t *a)
{
    return a->n > 0;
}

int hc_auth_check(const hc_auth_t *a, const void *token, size_t len)
{
    unsigned char hash[crypto_generichash_BYTES];
    crypto_generichash(hash, sizeof(hash), token, len, NULL, 0);
    int ok = 0;
    for (size_t t = 0; t < a->n; t++) {
        ok |= sodium_memcmp(hash, a->hashes[t], sizeof(hash)) == 0;
    }
    return ok;
}
