/* test_auth.c: the API token set (server/auth.c): which tokens are accepted, before and after a
 * reload. */
#include <sodium.h>

#include "auth.h"
#include "test.h"

/* A probe against a token set: the bytes presented and whether they must be accepted. */
typedef struct {
    const char *token;
    size_t len; /* 0: strlen(token) */
    int accepted;
} probe_t;

/* hc_auth_new after libsodium is set up (each test may run on its own). */
static int new_auth(char *const *tokens, size_t n, hc_auth_t **out)
{
    if (sodium_init() < 0) {
        return -1;
    }
    return hc_auth_new(tokens, n, out);
}

static void check_probes(const hc_auth_t *a, const probe_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = p[i].len ? p[i].len : strlen(p[i].token);
        if (hc_auth_check(a, p[i].token, len) != p[i].accepted) {
            fprintf(stderr, "  probe \"%.*s\" (%zu bytes): expected %s\n", (int)len, p[i].token,
                    len, p[i].accepted ? "accepted" : "rejected");
            hc_test_failures_++;
        }
    }
}

static void test_no_token_not_required(void)
{
    hc_auth_t *a;
    REQUIRE(new_auth(NULL, 0, &a) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 0);
    static const probe_t p[] = {{"anything", 0, 0}, {"", 0, 0}};
    check_probes(a, p, sizeof(p) / sizeof(p[0]));
    hc_auth_free(a);
}

static void test_one_token(void)
{
    char *tokens[] = {"s3cret-token-0123456789"};
    hc_auth_t *a;
    REQUIRE(new_auth(tokens, 1, &a) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 1);
    static const probe_t p[] = {
        {"s3cret-token-0123456789", 0, 1},
        {"s3cret-token-012345678", 0, 0},   /* a prefix */
        {"s3cret-token-01234567890", 0, 0}, /* longer */
        {"S3CRET-TOKEN-0123456789", 0, 0},  /* case matters */
        {"", 0, 0},
        /* the length counts, not a terminating NUL */
        {"s3cret-token-0123456789 and more", 23, 1},
        {"s3cret-token-0123456789", 10, 0},
    };
    check_probes(a, p, sizeof(p) / sizeof(p[0]));
    hc_auth_free(a);
}

static void test_several_tokens(void)
{
    char *tokens[] = {"token-one-aaaaaaaaaaaa", "token-two-bbbbbbbbbbbb", "token-three-cccccccccc"};
    hc_auth_t *a;
    REQUIRE(new_auth(tokens, 3, &a) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 1);
    static const probe_t p[] = {
        {"token-one-aaaaaaaaaaaa", 0, 1},
        {"token-two-bbbbbbbbbbbb", 0, 1},
        {"token-three-cccccccccc", 0, 1},
        {"token-four-dddddddddd", 0, 0},
        {"token-one-aaaaaaaaaaaatoken-two-bbbbbbbbbbbb", 0, 0},
    };
    check_probes(a, p, sizeof(p) / sizeof(p[0]));
    hc_auth_free(a);
}

static void test_reload_swaps(void)
{
    char *before[] = {"old-token-xxxxxxxxxxxx"};
    char *after[] = {"new-token-yyyyyyyyyyyy", "new-token-zzzzzzzzzzzz"};
    hc_auth_t *a;
    REQUIRE(new_auth(before, 1, &a) == 0);
    CHECK_EQ_INT(hc_auth_check(a, before[0], strlen(before[0])), 1);

    REQUIRE(hc_auth_set_tokens(a, after, 2) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 1);
    static const probe_t p[] = {
        {"old-token-xxxxxxxxxxxx", 0, 0},
        {"new-token-yyyyyyyyyyyy", 0, 1},
        {"new-token-zzzzzzzzzzzz", 0, 1},
    };
    check_probes(a, p, sizeof(p) / sizeof(p[0]));

    /* an emptied token file: no token required any more, none matches */
    REQUIRE(hc_auth_set_tokens(a, NULL, 0) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 0);
    CHECK_EQ_INT(hc_auth_check(a, after[0], strlen(after[0])), 0);

    /* and back */
    REQUIRE(hc_auth_set_tokens(a, before, 1) == 0);
    CHECK_EQ_INT(hc_auth_required(a), 1);
    CHECK_EQ_INT(hc_auth_check(a, before[0], strlen(before[0])), 1);
    hc_auth_free(a);
    hc_auth_free(NULL);
}

static const hc_test_t tests[] = {
    {"no_token_not_required", test_no_token_not_required},
    {"one_token", test_one_token},
    {"several_tokens", test_several_tokens},
    {"reload_swaps", test_reload_swaps},
};

HC_TEST_MAIN(tests)
