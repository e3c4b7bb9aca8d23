/* test_proto.c: the command codec round-trips every field and rejects malformed input. */
#include "codec.h"
#include "hacache.h"
#include "test.h"

static void test_roundtrip_put(void)
{
    static const char key[] = {'k', 0, 'y'};
    hc_cmd_t c = {.op = HC_OP_PUT,
                  .cache = "sessions",
                  .cache_len = 8,
                  .key = key,
                  .klen = sizeof(key),
                  .val = "value",
                  .vlen = 5,
                  .expire_at_ms = 1234567890123ull,
                  .if_absent = 1,
                  .has_if_version = 1,
                  .if_version = 42};
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode(&c, &buf, &len) == 0);
    hc_cmd_decoded_t d;
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    CHECK_EQ_INT(d.cmd.op, HC_OP_PUT);
    CHECK(d.cmd.cache_len == 8 && memcmp(d.cmd.cache, "sessions", 8) == 0);
    CHECK(d.cmd.klen == 3 && memcmp(d.cmd.key, key, 3) == 0);
    CHECK(d.cmd.vlen == 5 && memcmp(d.cmd.val, "value", 5) == 0);
    CHECK(d.cmd.expire_at_ms == 1234567890123ull);
    CHECK_EQ_INT(d.cmd.if_absent, 1);
    CHECK_EQ_INT(d.cmd.has_if_version, 1);
    CHECK_EQ_INT(d.cmd.if_version, 42);
    hc_cmd_decoded_free(&d);
    free(buf);
}

static void test_roundtrip_incr_and_config(void)
{
    hc_cmd_t c = {.op = HC_OP_INCR,
                  .cache = "c",
                  .cache_len = 1,
                  .key = "n",
                  .klen = 1,
                  .incr_by = -9000000000ll};
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode(&c, &buf, &len) == 0);
    hc_cmd_decoded_t d;
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    CHECK(d.cmd.incr_by == -9000000000ll);
    hc_cmd_decoded_free(&d);
    free(buf);

    hc_cmd_t s = {.op = HC_OP_CACHE_CONFIG,
                  .cache = "jwks",
                  .cache_len = 4,
                  .settings = {.max_memory = 1 << 20,
                               .default_ttl_ms = 60000,
                               .policy = HC_POLICY_SERVE_STALE,
                               .max_stale_ms = 5000}};
    REQUIRE(hc_cmd_encode(&s, &buf, &len) == 0);
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    CHECK(d.cmd.settings.max_memory == 1 << 20);
    CHECK(d.cmd.settings.default_ttl_ms == 60000);
    CHECK(d.cmd.settings.policy == HC_POLICY_SERVE_STALE);
    CHECK(d.cmd.settings.max_stale_ms == 5000);
    hc_cmd_decoded_free(&d);
    free(buf);
}

/* INVALIDATE is the only command without a cache name; every other one still needs one */
static void test_invalidate_has_no_cache(void)
{
    hc_cmd_t c = {.op = HC_OP_INVALIDATE};
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode(&c, &buf, &len) == 0);
    hc_cmd_decoded_t d;
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    CHECK(d.cmd.op == HC_OP_INVALIDATE);
    CHECK_EQ_INT(d.cmd.cache_len, 0);
    hc_cmd_decoded_free(&d);
    free(buf);
    hc_cmd_t del = {.op = HC_OP_DEL, .key = "k", .klen = 1};
    REQUIRE(hc_cmd_encode(&del, &buf, &len) == 0);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    free(buf);
}

static void test_rejects_bad_input(void)
{
    hc_cmd_decoded_t d;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK_EQ_INT(hc_cmd_decode(garbage, sizeof(garbage), HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    /* op 0 (unspecified) and an empty cache name are refused */
    static const uint8_t empty[] = {0};
    CHECK_EQ_INT(hc_cmd_decode(empty, 0, HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    (void)empty;
    /* bound checked before parsing */
    hc_cmd_t c = {.op = HC_OP_DEL, .cache = "c", .cache_len = 1, .key = "k", .klen = 1};
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode(&c, &buf, &len) == 0);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, len - 1, &d), HC_ETOOLARGE);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, len, &d), 0);
    hc_cmd_decoded_free(&d);
    free(buf);
}

static hc_test_t tests[] = {
    {"roundtrip_put", test_roundtrip_put},
    {"roundtrip_incr_and_config", test_roundtrip_incr_and_config},
    {"invalidate_has_no_cache", test_invalidate_has_no_cache},
    {"rejects_bad_input", test_rejects_bad_input},
};
HC_TEST_MAIN(tests)
