/* test_store.c: unit tests of the data store (server/store/store.c): commands, conditions, TTL,
 * accounting, eviction planning, digests, tables and snapshots (cursor scans and the glob
 * matcher: test_store_scan.c; a randomized comparison against a model: test_store_model.c). */
#include "test.h"

#include "hacache.h"
#include "store/store.h"

#include "store_helpers.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Victims as "cache:key" words separated by spaces, '*' marking expired ones. */
typedef struct {
    char text[1024];
    int n;
    struct {
        char cache[16], key[16];
        int expired;
    } list[32];
} victims_t;

static void record_victim(void *ud, const char *cache, size_t cache_len, const void *key,
                          size_t klen, int expired)
{
    victims_t *v = ud;
    size_t used = strlen(v->text);
    if (v->n < 32) {
        snprintf(v->list[v->n].cache, 16, "%.*s", (int)cache_len, cache);
        snprintf(v->list[v->n].key, 16, "%.*s", (int)klen, (const char *)key);
        v->list[v->n].expired = expired;
    }
    snprintf(v->text + used, sizeof(v->text) - used, "%s%.*s:%.*s%s", v->n ? " " : "",
             (int)cache_len, cache, (int)klen, (const char *)key, expired ? "*" : "");
    v->n++;
}

/* The victims of the last plan() call, for tests that apply them. */
static victims_t last_plan;

static const char *plan(hc_store_t *s, const hc_cmd_t *put_cmd, uint64_t now, int *rc)
{
    memset(&last_plan, 0, sizeof(last_plan));
    *rc = hc_store_plan_put(s, put_cmd, now, record_victim, &last_plan);
    return last_plan.text;
}

static const char *collect(hc_store_t *s, uint64_t now, size_t max, size_t *n)
{
    static victims_t v;
    memset(&v, 0, sizeof(v));
    *n = hc_store_collect_expired(s, now, max, record_victim, &v);
    return v.text;
}

/* An 'x' string of n bytes. */
static const char *xs(size_t n)
{
    static char buf[4096];
    memset(buf, 'x', n);
    buf[n] = '\0';
    return buf;
}

/* ---- commands and conditions ------------------------------------------------------------ */

static void test_roundtrip_binary_keys(void)
{
    hc_store_t *s = hc_store_new(0);
    REQUIRE(s != NULL);
    const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a'};
    const char v1[] = {0, 1, 2, 0}, v2[] = "second";
    hc_cmd_t c = mk(HC_OP_PUT, "bin", k1, sizeof(k1));
    c.val = v1;
    c.vlen = sizeof(v1);
    hc_apply_result_t r;
    CHECK_EQ_INT(hc_store_apply(s, &c, 1, 0, &r), 0);
    CHECK_EQ_INT(r.version, 1);
    c.key = k2;
    c.val = v2;
    c.vlen = 6;
    CHECK_EQ_INT(hc_store_apply(s, &c, 2, 0, &r), 0);

    hc_entry_view_t v;
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, k1, sizeof(k1), 0, &v), 0);
    CHECK_EQ_INT(v.len, 4);
    CHECK(memcmp(v.data, v1, 4) == 0);
    CHECK_EQ_INT(v.version, 1);
    CHECK_EQ_INT(v.expire_at_ms, 0);
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, k2, sizeof(k2), 0, &v), 0);
    CHECK_EQ_INT(v.len, 6);
    CHECK(memcmp(v.data, "second", 6) == 0);
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, k3, sizeof(k3), 0, &v), HC_ENOTFOUND);

    hc_cmd_t d = mk(HC_OP_DEL, "bin", k1, sizeof(k1));
    CHECK_EQ_INT(hc_store_apply(s, &d, 3, 0, &r), 0);
    CHECK_EQ_INT(r.existed, 1);
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, k1, sizeof(k1), 0, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_store_apply(s, &d, 4, 0, &r), HC_ENOTFOUND);
    CHECK_EQ_INT(r.existed, 0);
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, k2, sizeof(k2), 0, &v), 0);

    /* an empty value and an empty key are values like any other */
    CHECK_EQ_INT(put(s, "bin", "", "", 0, 5, 0), 0);
    CHECK_EQ_INT(hc_store_get(s, "bin", 3, "", 0, 0, &v), 0);
    CHECK_EQ_INT(v.len, 0);
    CHECK_EQ_INT(stats_of(s, "bin").entries, 2);
    hc_store_free(s);
}

static void test_absent_and_invalid(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_entry_view_t v;
    CHECK_EQ_INT(hc_store_get(s, "nope", 4, "k", 1, 0, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(op_key(s, HC_OP_DEL, "nope", "k", 1, 0), HC_ENOTFOUND);
    CHECK_EQ_INT(op_key(s, HC_OP_EVICT, "nope", "k", 1, 0), HC_ENOTFOUND);
    CHECK_EQ_INT(op_key(s, HC_OP_EXPIRE, "nope", "k", 1, 0), HC_ENOTFOUND);
    CHECK_EQ_INT(put(s, "c", "k", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(hc_store_get(s, "c", 1, "x", 1, 0, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(op_key(s, HC_OP_DEL, "c", "x", 2, 0), HC_ENOTFOUND);
    CHECK_EQ_INT(op_key(s, HC_OP_EVICT, "c", "x", 2, 0), HC_ENOTFOUND);
    /* reads and failed writes never create caches */
    CHECK_EQ_INT(hc_store_cache_info(s, "nope", 4, NULL, NULL), HC_ENOTFOUND);

    /* cache names are 1..255 bytes */
    char name[257];
    memset(name, 'n', sizeof(name));
    name[256] = '\0';
    CHECK_EQ_INT(put(s, name, "k", "v", 0, 3, 0), HC_EINVAL);
    name[255] = '\0';
    CHECK_EQ_INT(put(s, name, "k", "v", 0, 3, 0), 0);
    CHECK_EQ_INT(put(s, "", "k", "v", 0, 4, 0), HC_EINVAL);
    hc_cmd_t bad = mk_put("c", "k", "v", 0);
    bad.op = (hc_op_t)99;
    CHECK_EQ_INT(hc_store_apply(s, &bad, 5, 0, NULL), HC_EINVAL);
    hc_cmd_t cfg = mk(HC_OP_CACHE_CONFIG, "c", NULL, 0);
    cfg.settings.policy = (hc_qloss_policy_t)7;
    CHECK_EQ_INT(hc_store_apply(s, &cfg, 5, 0, NULL), HC_EINVAL);
    CHECK_EQ_INT(hc_store_get(s, "c", 1, NULL, 1, 0, &v), HC_ENOTFOUND);
    int rc;
    hc_cmd_t del = mk(HC_OP_DEL, "c", "k", 1);
    CHECK_EQ_STR(plan(s, &del, 0, &rc), "");
    CHECK_EQ_INT(rc, HC_EINVAL);
    CHECK_EQ_INT(hc_store_memory(s), 2 * hc_store_entry_footprint(1, 1));
    hc_store_free(s);
}

static void test_versions_and_conditions(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_apply_result_t r;
    hc_entry_view_t v;
    hc_cmd_t c = mk_put("c", "k", "one", 0);
    CHECK_EQ_INT(hc_store_apply(s, &c, 5, 0, &r), 0);
    CHECK_EQ_INT(r.version, 5);
    c.val = "two";
    CHECK_EQ_INT(hc_store_apply(s, &c, 9, 0, &r), 0);
    CHECK_EQ_INT(r.version, 9);
    CHECK_EQ_STR(get_str(s, "c", "k", 0, &v), "two");
    CHECK_EQ_INT(v.version, 9);

    /* if_absent */
    c.if_absent = 1;
    c.val = "three";
    c.vlen = 5;
    CHECK_EQ_INT(hc_store_apply(s, &c, 10, 0, &r), HC_ECONFLICT);
    CHECK_EQ_STR(get_str(s, "c", "k", 0, &v), "two");
    CHECK_EQ_INT(v.version, 9);
    hc_cmd_t c2 = c;
    c2.key = "k2";
    c2.klen = 2;
    CHECK_EQ_INT(hc_store_apply(s, &c2, 11, 0, &r), 0);
    CHECK_EQ_STR(get_str(s, "c", "k2", 0, NULL), "three");

    /* if_version: match, mismatch, 0 = must be absent */
    c.if_absent = 0;
    c.has_if_version = 1;
    c.if_version = 8;
    CHECK_EQ_INT(hc_store_apply(s, &c, 12, 0, &r), HC_ECONFLICT);
    CHECK_EQ_STR(get_str(s, "c", "k", 0, &v), "two");
    c.if_version = 9;
    CHECK_EQ_INT(hc_store_apply(s, &c, 13, 0, &r), 0);
    CHECK_EQ_INT(r.version, 13);
    CHECK_EQ_STR(get_str(s, "c", "k", 0, &v), "three");
    c.if_version = 0;
    CHECK_EQ_INT(hc_store_apply(s, &c, 14, 0, &r), HC_ECONFLICT);
    c.key = "new";
    c.klen = 3;
    CHECK_EQ_INT(hc_store_apply(s, &c, 15, 0, &r), 0);
    c.if_version = 15;
    c.key = "absent";
    c.klen = 6;
    CHECK_EQ_INT(hc_store_apply(s, &c, 16, 0, &r), HC_ECONFLICT);

    /* DEL with if_version */
    hc_cmd_t d = mk(HC_OP_DEL, "c", "k", 1);
    d.has_if_version = 1;
    d.if_version = 12;
    CHECK_EQ_INT(hc_store_apply(s, &d, 17, 0, &r), HC_ECONFLICT);
    d.if_version = 0;
    CHECK_EQ_INT(hc_store_apply(s, &d, 18, 0, &r), HC_ECONFLICT);
    CHECK_EQ_STR(get_str(s, "c", "k", 0, NULL), "three");
    d.if_version = 13;
    CHECK_EQ_INT(hc_store_apply(s, &d, 19, 0, &r), 0);
    CHECK_EQ_INT(r.existed, 1);
    d.if_version = 0;
    CHECK_EQ_INT(hc_store_apply(s, &d, 20, 0, &r), HC_ENOTFOUND);
    CHECK_EQ_INT(stats_of(s, "c").entries, 2);
    hc_store_free(s);
}

static void test_incr(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_apply_result_t r;
    hc_entry_view_t v;
    CHECK_EQ_INT(incr(s, "c", "n", 5, 0, 1, 0, &r), 0);
    CHECK_EQ_INT(r.integer, 5);
    CHECK_EQ_INT(r.version, 1);
    CHECK_EQ_STR(get_str(s, "c", "n", 0, &v), "5");
    CHECK_EQ_INT(v.version, 1);
    CHECK_EQ_INT(incr(s, "c", "n", -7, 0, 2, 0, &r), 0);
    CHECK_EQ_INT(r.integer, -2);
    CHECK_EQ_STR(get_str(s, "c", "n", 0, &v), "-2");
    CHECK_EQ_INT(v.version, 2);
    CHECK_EQ_INT(incr(s, "c", "n", 12, 0, 3, 0, &r), 0);
    CHECK_EQ_STR(get_str(s, "c", "n", 0, NULL), "10");
    CHECK_EQ_INT(hc_store_memory(s), hc_store_entry_footprint(1, 2));

    static const struct {
        const char *val;
        int64_t by;
        int rc;
        const char *after;
    } cases[] = {
        {"abc", 1, HC_ENOTINT, "abc"},
        {"", 1, HC_ENOTINT, ""},
        {"-", 1, HC_ENOTINT, "-"},
        {"1 ", 1, HC_ENOTINT, "1 "},
        {" 1", 1, HC_ENOTINT, " 1"},
        {"+1", 1, HC_ENOTINT, "+1"},
        {"1.5", 1, HC_ENOTINT, "1.5"},
        {"--1", 1, HC_ENOTINT, "--1"},
        {"9223372036854775808", 0, HC_ENOTINT, "9223372036854775808"},
        {"-9223372036854775809", 0, HC_ENOTINT, "-9223372036854775809"},
        {"000000000000000000001", 0, HC_ENOTINT, "000000000000000000001"}, /* 21 chars */
        {"00000000000000000001", 1, 0, "2"},                               /* 20 chars */
        {"007", 1, 0, "8"},
        {"-0", 0, 0, "0"},
        {"-9223372036854775808", 0, 0, "-9223372036854775808"},
        {"9223372036854775807", 1, HC_EOVERFLOW, "9223372036854775807"},
        {"9223372036854775806", 1, 0, "9223372036854775807"},
        {"-9223372036854775808", -1, HC_EOVERFLOW, "-9223372036854775808"},
        {"-9223372036854775807", INT64_MAX, 0, "0"},
    };
    uint64_t index = 10;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(put(s, "c", "x", cases[i].val, 0, ++index, 0), 0);
        uint64_t put_index = index;
        int rc = incr(s, "c", "x", cases[i].by, 0, ++index, 0, &r);
        if (rc != cases[i].rc)
            fprintf(stderr, "  case %zu (%s)\n", i, cases[i].val);
        CHECK_EQ_INT(rc, cases[i].rc);
        CHECK_EQ_STR(get_str(s, "c", "x", 0, &v), cases[i].after);
        CHECK_EQ_INT(v.version, rc == 0 ? index : put_index);
    }
    CHECK_EQ_INT(incr(s, "c", "min", INT64_MIN, 0, ++index, 0, &r), 0);
    CHECK_EQ_STR(get_str(s, "c", "min", 0, NULL), "-9223372036854775808");
    CHECK_EQ_INT(incr(s, "c", "min", -1, 0, ++index, 0, &r), HC_EOVERFLOW);

    /* keeps the expiry of a live entry; an expired one restarts from 0 with the new expiry */
    CHECK_EQ_INT(put(s, "c", "t", "10", 5000, ++index, 100), 0);
    CHECK_EQ_INT(incr(s, "c", "t", 1, 9999, ++index, 100, &r), 0);
    CHECK_EQ_STR(get_str(s, "c", "t", 100, &v), "11");
    CHECK_EQ_INT(v.expire_at_ms, 5000);
    CHECK_EQ_INT(v.version, index);
    CHECK_EQ_INT(incr(s, "c", "t", 3, 7000, ++index, 6000, &r), 0);
    CHECK_EQ_INT(r.integer, 3);
    CHECK_EQ_STR(get_str(s, "c", "t", 6000, &v), "3");
    CHECK_EQ_INT(v.expire_at_ms, 7000);
    /* an expired non-integer is absent too */
    CHECK_EQ_INT(put(s, "c", "e", "junk", 50, ++index, 0), 0);
    CHECK_EQ_INT(incr(s, "c", "e", 2, 0, ++index, 60, &r), 0);
    CHECK_EQ_STR(get_str(s, "c", "e", 60, &v), "2");
    CHECK_EQ_INT(v.expire_at_ms, 0);
    hc_store_free(s);
}

static void test_clear(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_apply_result_t r;
    CHECK_EQ_INT(config(s, "a", 100000, 60000), 0);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        CHECK_EQ_INT(put(s, "a", k, "v", i % 2 ? 0 : 1000, (uint64_t)i + 1, 0), 0);
    }
    CHECK_EQ_INT(put(s, "b", "k0", "other", 0, 100, 0), 0);
    hc_cmd_t c = mk(HC_OP_CLEAR, "a", NULL, 0);
    CHECK_EQ_INT(hc_store_apply(s, &c, 101, 0, &r), 0);
    CHECK_EQ_INT(r.removed, 50);
    CHECK_EQ_INT(r.existed, 50);
    CHECK_EQ_STR(get_str(s, "a", "k0", 0, NULL), "<absent>");
    CHECK_EQ_STR(get_str(s, "b", "k0", 0, NULL), "other");
    hc_cache_settings_t set;
    hc_cache_stats_t st;
    CHECK_EQ_INT(hc_store_cache_info(s, "a", 1, &set, &st), 0);
    CHECK_EQ_INT(set.max_memory, 100000);
    CHECK_EQ_INT(set.default_ttl_ms, 60000);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.memory, 0);
    CHECK_EQ_INT(hc_store_memory(s), hc_store_entry_footprint(2, 5));
    size_t n;
    collect(s, 5000, 100, &n);
    CHECK_EQ_INT(n, 0); /* the cleared entries left the expiry index */
    /* the cache works after a clear */
    CHECK_EQ_INT(put(s, "a", "k1", "again", 0, 102, 0), 0);
    CHECK_EQ_STR(get_str(s, "a", "k1", 0, NULL), "again");
    /* clearing an absent cache is fine and does not create it */
    c.cache = "zz";
    c.cache_len = 2;
    CHECK_EQ_INT(hc_store_apply(s, &c, 103, 0, &r), 0);
    CHECK_EQ_INT(r.removed, 0);
    CHECK_EQ_INT(hc_store_cache_info(s, "zz", 2, NULL, NULL), HC_ENOTFOUND);
    hc_store_free(s);
}

/* HC_OP_INVALIDATE: every `invalidate` cache loses its entries (cache and settings stay),
 * `serve_stale` caches keep theirs; accounting follows. */
static void test_invalidate(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_apply_result_t r;
    uint64_t index = 0;
    hc_cmd_t keep = mk(HC_OP_CACHE_CONFIG, "stale", NULL, 0);
    keep.settings.policy = HC_POLICY_SERVE_STALE;
    keep.settings.max_stale_ms = 5000;
    CHECK_EQ_INT(hc_store_apply(s, &keep, ++index, 0, NULL), 0);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        CHECK_EQ_INT(put(s, "a", k, "v", i % 2 ? 0 : 1000, ++index, 0), 0);
        CHECK_EQ_INT(put(s, "b", k, "w", 0, ++index, 0), 0);
        CHECK_EQ_INT(put(s, "stale", k, "x", 0, ++index, 0), 0);
    }
    uint64_t stale_mem = stats_of(s, "stale").memory;
    hc_cmd_t inv = {.op = HC_OP_INVALIDATE};
    CHECK_EQ_INT(hc_store_apply(s, &inv, ++index, 0, &r), 0);
    CHECK_EQ_INT(r.removed, 20);
    CHECK_EQ_STR(get_str(s, "a", "k1", 0, NULL), "<absent>");
    CHECK_EQ_STR(get_str(s, "b", "k1", 0, NULL), "<absent>");
    CHECK_EQ_STR(get_str(s, "stale", "k1", 0, NULL), "x");
    CHECK_EQ_INT(stats_of(s, "a").entries, 0);
    CHECK_EQ_INT(stats_of(s, "b").memory, 0);
    CHECK_EQ_INT(hc_store_memory(s), stale_mem);
    size_t n;
    collect(s, 5000, 100, &n);
    CHECK_EQ_INT(n, 0); /* the dropped entries left the expiry index */
    CHECK_EQ_INT(put(s, "a", "k1", "again", 0, ++index, 0), 0);
    CHECK_EQ_STR(get_str(s, "a", "k1", 0, NULL), "again");
    hc_store_free(s);
}

/* ---- TTL -------------------------------------------------------------------------------- */

static void test_ttl_visibility(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_entry_view_t v;
    CHECK_EQ_INT(put(s, "c", "k", "v", 1000, 1, 0), 0);
    CHECK_EQ_STR(get_str(s, "c", "k", 999, &v), "v");
    CHECK_EQ_INT(v.expire_at_ms, 1000);
    CHECK_EQ_STR(get_str(s, "c", "k", 1000, NULL), "<absent>");
    CHECK_EQ_STR(get_str(s, "c", "k", 5000, NULL), "<absent>");
    /* still held (and accounted) until an EXPIRE reclaims it */
    CHECK_EQ_INT(stats_of(s, "c").entries, 1);
    CHECK_EQ_INT(hc_store_memory(s), hc_store_entry_footprint(1, 1));
    /* expired = absent for conditions, DEL and INCR; a failed DEL keeps it */
    CHECK_EQ_INT(op_key(s, HC_OP_DEL, "c", "k", 2, 1000), HC_ENOTFOUND);
    CHECK_EQ_INT(stats_of(s, "c").entries, 1);
    hc_cmd_t c = mk_put("c", "k", "new", 0);
    c.if_absent = 1;
    CHECK_EQ_INT(hc_store_apply(s, &c, 3, 1000, NULL), 0);
    CHECK_EQ_STR(get_str(s, "c", "k", 99999, &v), "new");
    CHECK_EQ_INT(v.expire_at_ms, 0); /* a put replaces the expiry */
    CHECK_EQ_INT(stats_of(s, "c").entries, 1);
    CHECK_EQ_INT(hc_store_memory(s), hc_store_entry_footprint(1, 3));
    size_t n;
    collect(s, 99999, 10, &n);
    CHECK_EQ_INT(n, 0);

    /* a put with if_version 0 also treats it as absent */
    CHECK_EQ_INT(put(s, "c", "j", "v", 10, 4, 0), 0);
    c = mk_put("c", "j", "w", 0);
    c.has_if_version = 1;
    c.if_version = 4;
    CHECK_EQ_INT(hc_store_apply(s, &c, 5, 10, NULL), HC_ECONFLICT);
    c.if_version = 0;
    CHECK_EQ_INT(hc_store_apply(s, &c, 5, 10, NULL), 0);

    /* default TTL */
    CHECK_EQ_INT(config(s, "t", 0, 5000), 0);
    CHECK_EQ_INT(put(s, "t", "a", "v", 0, 6, 100), 0);
    CHECK_EQ_STR(get_str(s, "t", "a", 100, &v), "v");
    CHECK_EQ_INT(v.expire_at_ms, 5100);
    CHECK_EQ_INT(put(s, "t", "b", "v", 700, 7, 100), 0);
    CHECK_EQ_STR(get_str(s, "t", "b", 100, &v), "v");
    CHECK_EQ_INT(v.expire_at_ms, 700);
    /* an INCR that creates its key gets the default too; one on a live key keeps its expiry */
    CHECK_EQ_INT(incr(s, "t", "n", 1, 0, 8, 100, NULL), 0);
    CHECK_EQ_INT(incr(s, "t", "n", 1, 0, 9, 200, NULL), 0);
    CHECK_EQ_STR(get_str(s, "t", "n", 200, &v), "2");
    CHECK_EQ_INT(v.expire_at_ms, 5100);
    hc_store_free(s);
}

static void test_ttl_collect_and_expire(void)
{
    hc_store_t *s = hc_store_new(0);
    CHECK_EQ_INT(put(s, "c", "a", "v", 300, 1, 0), 0);
    CHECK_EQ_INT(put(s, "c", "b", "v", 100, 2, 0), 0);
    CHECK_EQ_INT(put(s, "d", "c", "v", 200, 3, 0), 0);
    CHECK_EQ_INT(put(s, "c", "d", "v", 500, 4, 0), 0);
    CHECK_EQ_INT(put(s, "c", "e", "v", 0, 5, 0), 0);
    CHECK_EQ_INT(put(s, "c", "f", "v", 400, 6, 0), 0);
    size_t n;
    CHECK_EQ_STR(collect(s, 99, 10, &n), "");
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_STR(collect(s, 250, 10, &n), "c:b* d:c*");
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(collect(s, 250, 1, &n), "c:b*");
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(collect(s, 1000, 100, &n), "c:b* d:c* c:a* c:f* c:d*");
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_STR(collect(s, 1000, 0, &n), "");

    uint64_t fp = hc_store_entry_footprint(1, 1);
    CHECK_EQ_INT(hc_store_memory(s), 6 * fp);
    hc_apply_result_t r;
    hc_cmd_t x = mk(HC_OP_EXPIRE, "c", "b", 1);
    CHECK_EQ_INT(hc_store_apply(s, &x, 7, 250, &r), 0);
    CHECK_EQ_INT(r.existed, 1);
    CHECK_EQ_INT(hc_store_memory(s), 5 * fp);
    CHECK_EQ_INT(stats_of(s, "c").expirations, 1);
    CHECK_EQ_INT(stats_of(s, "c").entries, 4);
    CHECK_EQ_INT(hc_store_apply(s, &x, 8, 250, &r), HC_ENOTFOUND);
    /* no expiry: EINVAL and nothing changes */
    CHECK_EQ_INT(op_key(s, HC_OP_EXPIRE, "c", "e", 9, 250), HC_EINVAL);
    CHECK_EQ_STR(get_str(s, "c", "e", 250, NULL), "v");
    /* not yet expired here: the leader decided, it goes */
    CHECK_EQ_INT(op_key(s, HC_OP_EXPIRE, "c", "a", 10, 250), 0);
    CHECK_EQ_INT(stats_of(s, "c").expirations, 2);
    /* guard: an entry whose expiry is later than the command's instant stays */
    x = mk(HC_OP_EXPIRE, "c", "d", 1);
    x.expire_at_ms = 450;
    CHECK_EQ_INT(hc_store_apply(s, &x, 11, 600, &r), HC_ECONFLICT);
    x.expire_at_ms = 500;
    CHECK_EQ_INT(hc_store_apply(s, &x, 12, 600, &r), 0);
    CHECK_EQ_STR(collect(s, 1000, 100, &n), "d:c* c:f*");
    CHECK_EQ_INT(hc_store_memory(s), 3 * fp);

    /* a put that changes an expiry reorders the index */
    CHECK_EQ_INT(put(s, "c", "f", "v", 150, 13, 0), 0);
    CHECK_EQ_STR(collect(s, 1000, 100, &n), "c:f* d:c*");
    CHECK_EQ_INT(put(s, "c", "f", "v", 0, 14, 0), 0);
    CHECK_EQ_STR(collect(s, 1000, 100, &n), "d:c*");
    hc_store_free(s);
}

/* Many expiring entries: collect reports exactly the expired ones, sorted, for any max. */
enum { MANY = 3000 };
static uint64_t many_expiry[MANY];

typedef struct {
    uint64_t now, last;
    size_t n;
    int bad;
} sorted_check_t;

static void check_sorted(void *ud, const char *cache, size_t cache_len, const void *key,
                         size_t klen, int expired)
{
    sorted_check_t *c = ud;
    char k[16];
    snprintf(k, sizeof(k), "%.*s", (int)klen, (const char *)key);
    uint64_t e = many_expiry[atoi(k)];
    if (!expired || e > c->now || e < c->last)
        c->bad++;
    c->last = e;
    c->n++;
}

static void test_ttl_collect_many(void)
{
    hc_store_t *s = hc_store_new(0);
    uint32_t x = 12345;
    for (int i = 0; i < MANY; i++) {
        x = x * 1103515245u + 12345u;
        many_expiry[i] = 1 + (x >> 8) % 5000;
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        REQUIRE(put(s, "c", k, "v", many_expiry[i], (uint64_t)i + 1, 0) == 0);
    }
    static const uint64_t nows[] = {0, 1, 2500, 5000};
    static const size_t maxes[] = {0, 1, 7, 1000, SIZE_MAX};
    for (size_t a = 0; a < 4; a++) {
        size_t expected = 0;
        for (int i = 0; i < MANY; i++)
            expected += many_expiry[i] <= nows[a];
        for (size_t b = 0; b < 5; b++) {
            sorted_check_t c = {nows[a], 0, 0, 0};
            size_t n = hc_store_collect_expired(s, nows[a], maxes[b], check_sorted, &c);
            size_t want = expected < maxes[b] ? expected : maxes[b];
            CHECK_EQ_INT(n, want);
            CHECK_EQ_INT(c.n, want);
            CHECK_EQ_INT(c.bad, 0);
        }
    }
    hc_store_free(s);
}

/* ---- memory accounting ------------------------------------------------------------------ */

static void test_footprint_formula(void)
{
    /* header 80 + key + value in one glibc chunk (max(32, round_up(n + 8, 16))), plus one hash
     * slot and one expiry slot of 8 bytes each */
    CHECK_EQ_INT(hc_store_entry_footprint(0, 0), 112);
    CHECK_EQ_INT(hc_store_entry_footprint(3, 5), 112);
    CHECK_EQ_INT(hc_store_entry_footprint(2, 1), 112);
    CHECK_EQ_INT(hc_store_entry_footprint(10, 10), 128);
    CHECK_EQ_INT(hc_store_entry_footprint(2, 110), 224);
    CHECK_EQ_INT(hc_store_entry_footprint(100, 0), 208);
    CHECK_EQ_INT(hc_store_entry_footprint(1, 1000), 1120);
}

static void test_memory_accounting(void)
{
    hc_store_t *s = hc_store_new(0);
    uint64_t want_a = 0, want_b = 0;
    uint64_t index = 0;
    for (size_t i = 0; i < 40; i++) {
        char k[32];
        snprintf(k, sizeof(k), "key-%zu", i);
        const char *cache = i % 3 ? "a" : "b";
        CHECK_EQ_INT(put(s, cache, k, xs(i * 37), i % 4 ? 0 : 10, ++index, 0), 0);
        (i % 3 ? &want_a : &want_b)[0] += hc_store_entry_footprint(strlen(k), i * 37);
    }
    CHECK_EQ_INT(stats_of(s, "a").memory, want_a);
    CHECK_EQ_INT(stats_of(s, "b").memory, want_b);
    CHECK_EQ_INT(hc_store_memory(s), want_a + want_b);
    hc_cache_stats_t t;
    hc_store_totals(s, &t);
    CHECK_EQ_INT(t.memory, want_a + want_b);
    CHECK_EQ_INT(t.entries, 40);

    /* replacing a value counts the difference, growing and shrinking */
    uint64_t before = hc_store_memory(s);
    CHECK_EQ_INT(put(s, "a", "key-1", xs(2000), 0, ++index, 0), 0);
    CHECK_EQ_INT(hc_store_memory(s),
                 before - hc_store_entry_footprint(5, 37) + hc_store_entry_footprint(5, 2000));
    CHECK_EQ_INT(put(s, "a", "key-1", "", 0, ++index, 0), 0);
    CHECK_EQ_INT(hc_store_memory(s),
                 before - hc_store_entry_footprint(5, 37) + hc_store_entry_footprint(5, 0));
    CHECK_EQ_INT(put(s, "a", "key-1", xs(37), 0, ++index, 0), 0);
    CHECK_EQ_INT(hc_store_memory(s), before);
    CHECK_EQ_STR(get_str(s, "a", "key-1", 0, NULL), xs(37));
    CHECK_EQ_INT(stats_of(s, "a").entries, 26);

    /* back to 0: deletes, an EXPIRE, an EVICT and a clear */
    for (size_t i = 0; i < 40; i += 3) {
        char k[32];
        snprintf(k, sizeof(k), "key-%zu", i);
        int rc = i % 4 ? op_key(s, HC_OP_DEL, "b", k, ++index, 0)
                       : op_key(s, HC_OP_EXPIRE, "b", k, ++index, 0);
        CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(stats_of(s, "b").memory, 0);
    CHECK_EQ_INT(stats_of(s, "b").entries, 0);
    CHECK_EQ_INT(hc_store_memory(s), want_a);
    CHECK_EQ_INT(op_key(s, HC_OP_EVICT, "a", "key-1", ++index, 0), 0);
    hc_cmd_t c = mk(HC_OP_CLEAR, "a", NULL, 0);
    CHECK_EQ_INT(hc_store_apply(s, &c, ++index, 0, NULL), 0);
    CHECK_EQ_INT(hc_store_memory(s), 0);
    hc_store_totals(s, &t);
    CHECK_EQ_INT(t.memory, 0);
    CHECK_EQ_INT(t.entries, 0);
    CHECK_EQ_INT(t.evictions, 1);
    CHECK_EQ_INT(t.expirations, 4);
    hc_store_free(s);
}

/* ---- eviction planning ------------------------------------------------------------------ */

static void fill4(hc_store_t *s, const char *cache)
{
    for (int i = 1; i <= 4; i++) {
        char k[4] = {'k', (char)('0' + i), 0, 0};
        REQUIRE(put(s, cache, k, "v", 0, (uint64_t)i, 0) == 0);
    }
}

static void test_evict_lru_order(void)
{
    hc_store_t *s = hc_store_new(4 * FP);
    int rc;
    fill4(s, "c");
    CHECK_EQ_INT(hc_store_memory(s), 4 * FP);
    hc_cmd_t p = mk_put("c", "k5", "v", 0);
    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k1");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k1"); /* planning changes nothing */
    CHECK_EQ_STR(get_str(s, "c", "k1", 0, NULL), "v");
    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k2");
    CHECK_EQ_INT(put(s, "c", "k2", "w", 0, 5, 0), 0); /* a write touches too */
    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k3");
    /* a miss does not touch anything */
    CHECK_EQ_STR(get_str(s, "c", "zz", 0, NULL), "<absent>");
    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k3");
    hc_cmd_t big = mk_put("c", "k5", xs(110), 0); /* footprint 2 * FP */
    CHECK_EQ_STR(plan(s, &big, 0, &rc), "c:k3 c:k4");
    /* INCR plans for the value it will write */
    hc_cmd_t inc = mk(HC_OP_INCR, "c", "n", 1);
    inc.incr_by = 1;
    CHECK_EQ_STR(plan(s, &inc, 0, &rc), "c:k3");
    CHECK_EQ_INT(rc, 0);

    /* the key being written is never a victim, and its old bytes count as freed */
    hc_cmd_t r3 = mk_put("c", "k3", xs(110), 0);
    CHECK_EQ_STR(plan(s, &r3, 0, &rc), "c:k4");
    r3.val = "x";
    r3.vlen = 1;
    CHECK_EQ_STR(plan(s, &r3, 0, &rc), "");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(hc_store_apply(s, &r3, 6, 0, NULL), 0); /* same size: fits without eviction */

    /* doomed writes need no room */
    hc_cmd_t cond = mk_put("c", "k9", "v", 0);
    cond.has_if_version = 1;
    cond.if_version = 77;
    CHECK_EQ_STR(plan(s, &cond, 0, &rc), "");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(hc_store_apply(s, &cond, 7, 0, NULL), HC_ECONFLICT);
    hc_store_free(s);
}

static void test_evict_expired_first(void)
{
    hc_store_t *s = hc_store_new(4 * FP);
    int rc;
    CHECK_EQ_INT(put(s, "c", "k1", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(s, "c", "k2", "v", 80, 2, 0), 0);
    CHECK_EQ_INT(put(s, "c", "k3", "v", 50, 3, 0), 0);
    CHECK_EQ_INT(put(s, "c", "k4", "v", 0, 4, 0), 0);
    hc_cmd_t p = mk_put("c", "k5", "v", 0);
    CHECK_EQ_STR(plan(s, &p, 10, &rc), "c:k1");
    CHECK_EQ_STR(plan(s, &p, 60, &rc), "c:k3*");
    CHECK_EQ_STR(plan(s, &p, 100, &rc), "c:k3*");
    hc_cmd_t big = mk_put("c", "k5", xs(110), 0);
    CHECK_EQ_STR(plan(s, &big, 60, &rc), "c:k3* c:k1");
    CHECK_EQ_STR(plan(s, &big, 100, &rc), "c:k3* c:k2*");
    hc_cmd_t bigger = mk_put("c", "k5", xs(200), 0);
    CHECK_EQ_STR(plan(s, &bigger, 100, &rc), "c:k3* c:k2* c:k1");
    /* an expired entry of the key being written is replaced, not reported */
    hc_cmd_t r3 = mk_put("c", "k3", xs(110), 0);
    CHECK_EQ_STR(plan(s, &r3, 100, &rc), "c:k2*");
    hc_store_free(s);
}

static void test_evict_cache_bound(void)
{
    int rc;
    /* only the cache's own bound */
    hc_store_t *s = hc_store_new(0);
    CHECK_EQ_INT(config(s, "A", 2 * FP, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b1", "v", 5, 1, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a1", "v", 0, 2, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a2", "v", 0, 3, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b2", "v", 0, 4, 0), 0);
    hc_cmd_t a3 = mk_put("A", "a3", "v", 0);
    CHECK_EQ_STR(plan(s, &a3, 10, &rc), "A:a1"); /* not B:b1, older and expired */
    hc_cmd_t a3big = mk_put("A", "a3", xs(110), 0);
    CHECK_EQ_STR(plan(s, &a3big, 10, &rc), "A:a1 A:a2");
    hc_cmd_t a3huge = mk_put("A", "a3", xs(111 + 16), 0);
    CHECK_EQ_STR(plan(s, &a3huge, 10, &rc), "");
    CHECK_EQ_INT(rc, HC_ENOMEM);
    CHECK_EQ_INT(hc_store_apply(s, &a3huge, 5, 10, NULL), HC_ENOMEM);
    hc_cmd_t b3 = mk_put("B", "b3", xs(1000), 0);
    CHECK_EQ_STR(plan(s, &b3, 10, &rc), "");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(hc_store_apply(s, &a3, 5, 10, NULL), HC_ENOMEM);
    CHECK_EQ_INT(hc_store_apply(s, &b3, 5, 10, NULL), 0);
    hc_store_free(s);

    /* both bounds */
    s = hc_store_new(4 * FP);
    CHECK_EQ_INT(config(s, "A", 2 * FP, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b1", "v", 5, 1, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a1", "v", 0, 2, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a2", "v", 0, 3, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b2", "v", 0, 4, 0), 0);
    CHECK_EQ_STR(plan(s, &a3, 0, &rc), "A:a1");
    hc_cmd_t b3small = mk_put("B", "b3", "v", 0);
    CHECK_EQ_STR(plan(s, &b3small, 0, &rc), "B:b1");
    CHECK_EQ_STR(plan(s, &b3small, 10, &rc), "B:b1*");
    CHECK_EQ_STR(plan(s, &a3big, 10, &rc), "A:a1 A:a2");
    hc_cmd_t a3mid = mk_put("A", "a3", xs(100), 0); /* footprint 208 */
    CHECK_EQ_INT(hc_store_entry_footprint(2, 100), 208);
    CHECK_EQ_STR(plan(s, &a3mid, 10, &rc), "A:a1 A:a2");
    CHECK_EQ_STR(get_str(s, "B", "b2", 0, NULL), "v");
    hc_cmd_t a1big = mk_put("A", "a1", xs(110), 0); /* replaces a1: cache needs a2 gone */
    CHECK_EQ_STR(plan(s, &a1big, 0, &rc), "A:a2");
    hc_store_free(s);

    /* the cache bound takes a1, the store bound then the expired b1: expired is reported first */
    s = hc_store_new(4 * FP);
    CHECK_EQ_INT(config(s, "A", 3 * FP, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a1", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a2", "v", 0, 2, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b1", "v", 5, 3, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b2", "v", 0, 4, 0), 0);
    CHECK_EQ_STR(plan(s, &a3big, 10, &rc), "B:b1* A:a1");
    CHECK_EQ_STR(plan(s, &a3big, 0, &rc), "A:a1 A:a2"); /* a2 is older than b1 */
    victims_t v = last_plan;
    for (int i = 0; i < v.n; i++)
        CHECK_EQ_INT(op_key(s, HC_OP_EVICT, v.list[i].cache, v.list[i].key, 5 + (uint64_t)i, 0), 0);
    CHECK_EQ_INT(hc_store_apply(s, &a3big, 9, 0, NULL), 0);
    CHECK_EQ_INT(stats_of(s, "A").memory, 2 * FP);
    CHECK_EQ_INT(hc_store_memory(s), 4 * FP);
    hc_store_free(s);
}

static void test_evict_global_order(void)
{
    hc_store_t *s = hc_store_new(4 * FP);
    int rc;
    CHECK_EQ_INT(put(s, "A", "a1", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b1", "v", 0, 2, 0), 0);
    CHECK_EQ_INT(put(s, "A", "a2", "v", 0, 3, 0), 0);
    CHECK_EQ_INT(put(s, "B", "b2", "v", 0, 4, 0), 0);
    hc_cmd_t c1 = mk_put("C", "c1", "v", 0);
    CHECK_EQ_STR(plan(s, &c1, 0, &rc), "A:a1");
    CHECK_EQ_STR(get_str(s, "A", "a1", 0, NULL), "v");
    CHECK_EQ_STR(plan(s, &c1, 0, &rc), "B:b1");
    hc_cmd_t c1big = mk_put("C", "c1", xs(110), 0);
    CHECK_EQ_STR(plan(s, &c1big, 0, &rc), "B:b1 A:a2");
    hc_cmd_t c1huge = mk_put("C", "c1", xs(290), 0); /* footprint 400 */
    CHECK_EQ_INT(hc_store_entry_footprint(2, 290), 400);
    CHECK_EQ_STR(plan(s, &c1huge, 0, &rc), "B:b1 A:a2 B:b2 A:a1");
    hc_store_free(s);
}

static void test_enomem_then_planned_evictions(void)
{
    hc_store_t *s = hc_store_new(4 * FP);
    int rc;
    fill4(s, "c");
    uint8_t d1[HC_DIGEST_BYTES], d2[HC_DIGEST_BYTES];
    hc_store_digest(s, "c", 1, d1);

    hc_cmd_t p = mk_put("c", "k5", xs(110), 0);
    CHECK_EQ_INT(hc_store_apply(s, &p, 5, 0, NULL), HC_ENOMEM);
    hc_cmd_t inc = mk(HC_OP_INCR, "c", "n", 1);
    inc.incr_by = 1;
    CHECK_EQ_INT(hc_store_apply(s, &inc, 5, 0, NULL), HC_ENOMEM);
    hc_cmd_t other = mk_put("other", "k", "v", 0);
    CHECK_EQ_INT(hc_store_apply(s, &other, 5, 0, NULL), HC_ENOMEM);
    CHECK_EQ_INT(hc_store_cache_info(s, "other", 5, NULL, NULL), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_store_memory(s), 4 * FP);
    CHECK_EQ_INT(stats_of(s, "c").entries, 4);
    hc_store_digest(s, "c", 1, d2);
    CHECK(memcmp(d1, d2, sizeof(d1)) == 0);

    CHECK_EQ_STR(plan(s, &p, 0, &rc), "c:k1 c:k2");
    victims_t v = last_plan;
    for (int i = 0; i < v.n; i++)
        CHECK_EQ_INT(op_key(s, v.list[i].expired ? HC_OP_EXPIRE : HC_OP_EVICT, v.list[i].cache,
                            v.list[i].key, 6 + (uint64_t)i, 0),
                     0);
    CHECK_EQ_INT(hc_store_apply(s, &p, 8, 0, NULL), 0);
    CHECK_EQ_INT(hc_store_memory(s), 4 * FP);
    CHECK_EQ_INT(stats_of(s, "c").evictions, 2);
    CHECK_EQ_INT(stats_of(s, "c").entries, 3);
    CHECK_EQ_STR(get_str(s, "c", "k1", 0, NULL), "<absent>");
    CHECK_EQ_STR(get_str(s, "c", "k5", 0, NULL), xs(110));

    /* bigger than the whole store: no plan can help */
    hc_cmd_t huge = mk_put("c", "k6", xs(1000), 0);
    CHECK_EQ_STR(plan(s, &huge, 0, &rc), "");
    CHECK_EQ_INT(rc, HC_ENOMEM);
    CHECK_EQ_INT(last_plan.n, 0);
    CHECK_EQ_INT(hc_store_apply(s, &huge, 9, 0, NULL), HC_ENOMEM);
    /* a write exactly at the bound fits */
    hc_store_t *t = hc_store_new(FP);
    CHECK_EQ_INT(put(t, "c", "k1", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(t, "c", "k2", "v", 0, 2, 0), HC_ENOMEM);
    CHECK_EQ_INT(put(t, "c", "k1", "w", 0, 3, 0), 0);
    hc_store_free(t);
    /* one byte over is over */
    t = hc_store_new(2 * FP - 1);
    CHECK_EQ_INT(put(t, "c", "k1", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(t, "c", "k2", "v", 0, 2, 0), HC_ENOMEM);
    CHECK_EQ_INT(config(t, "d", FP - 1, 0), 0);
    CHECK_EQ_INT(put(t, "d", "k1", "v", 0, 3, 0), HC_ENOMEM);
    hc_store_free(t);
    hc_store_free(s);
}

/* ---- digest ----------------------------------------------------------------------------- */

static void fill_digest(hc_store_t *s, int reverse, int churn)
{
    if (churn) /* grow the table, then empty it again: a different table size */
        for (int i = 0; i < 3000; i++) {
            char k[16];
            snprintf(k, sizeof(k), "junk%d", i);
            put(s, "d", k, "j", 0, 1, 0);
            if (i % 2)
                op_key(s, HC_OP_DEL, "d", k, 1, 0);
        }
    for (int j = 0; j < 500; j++) {
        int i = reverse ? 499 - j : j;
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "v%d", i * 7);
        put(s, "d", k, v, i % 5 ? 0 : 100000 + (uint64_t)i, 1000 + (uint64_t)i, 0);
    }
    if (churn)
        for (int i = 0; i < 3000; i += 2) {
            char k[16];
            snprintf(k, sizeof(k), "junk%d", i);
            op_key(s, HC_OP_DEL, "d", k, 1, 0);
        }
}

static void test_digest(void)
{
    hc_store_t *a = hc_store_new(0), *b = hc_store_new(0);
    uint8_t da[HC_DIGEST_BYTES], db[HC_DIGEST_BYTES], empty[HC_DIGEST_BYTES];
    hc_store_digest(a, "d", 1, empty);
    fill_digest(a, 0, 0);
    fill_digest(b, 1, 1);
    CHECK_EQ_INT(stats_of(b, "d").entries, 500);
    hc_store_digest(a, "d", 1, da);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) == 0);
    CHECK(memcmp(da, empty, sizeof(da)) != 0);
    /* reads (LRU order) change nothing */
    get_str(b, "d", "k10", 0, NULL);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) == 0);

    /* one value */
    CHECK_EQ_INT(put(b, "d", "k11", "v78", 0, 1011, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) != 0);
    CHECK_EQ_INT(put(b, "d", "k11", "v77", 0, 1011, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) == 0);
    /* the version only */
    CHECK_EQ_INT(put(b, "d", "k11", "v77", 0, 2000, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) != 0);
    CHECK_EQ_INT(put(b, "d", "k11", "v77", 0, 1011, 0), 0);
    /* the expiry only */
    CHECK_EQ_INT(put(b, "d", "k11", "v77", 5, 1011, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) != 0);
    CHECK_EQ_INT(put(b, "d", "k11", "v77", 0, 1011, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) == 0);
    /* the key/value boundary is part of the content */
    hc_store_t *p = hc_store_new(0), *q = hc_store_new(0);
    CHECK_EQ_INT(put(p, "d", "ab", "c", 0, 1, 0), 0);
    CHECK_EQ_INT(put(q, "d", "a", "bc", 0, 1, 0), 0);
    uint8_t dp[HC_DIGEST_BYTES], dq[HC_DIGEST_BYTES];
    hc_store_digest(p, "d", 1, dp);
    hc_store_digest(q, "d", 1, dq);
    CHECK(memcmp(dp, dq, sizeof(dp)) != 0);
    hc_store_free(p);
    hc_store_free(q);
    /* one entry more */
    CHECK_EQ_INT(put(b, "d", "extra", "", 0, 1, 0), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) != 0);

    /* an absent cache digests like an empty one; other caches do not matter */
    hc_cmd_t c = mk(HC_OP_CLEAR, "d", NULL, 0);
    CHECK_EQ_INT(hc_store_apply(b, &c, 3, 0, NULL), 0);
    hc_store_digest(b, "d", 1, db);
    CHECK(memcmp(db, empty, sizeof(db)) == 0);
    hc_store_digest(a, "nope", 4, db);
    CHECK(memcmp(db, empty, sizeof(db)) == 0);
    hc_store_free(a);
    hc_store_free(b);
}

/* ---- tables, stats ---------------------------------------------------------------------- */

static void test_large_table(void)
{
    hc_store_t *s = hc_store_new(0);
    enum { N = 100000 };
    char k[32], v[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(k, sizeof(k), "key:%d", i);
            snprintf(v, sizeof(v), "%d", i * 3 + round);
            REQUIRE(put(s, "big", k, v, 0, (uint64_t)i + 1, 0) == 0);
        }
        CHECK_EQ_INT(stats_of(s, "big").entries, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            snprintf(k, sizeof(k), "key:%d", i);
            snprintf(v, sizeof(v), "%d", i * 3 + round);
            bad += strcmp(get_str(s, "big", k, 0, NULL), v) != 0;
        }
        CHECK_EQ_INT(bad, 0);
        /* delete 99%: the table shrinks while lookups keep working */
        for (int i = 0; i < N; i++)
            if (i % 100 != 0) {
                snprintf(k, sizeof(k), "key:%d", i);
                bad += op_key(s, HC_OP_DEL, "big", k, 1, 0) != 0;
            }
        CHECK_EQ_INT(bad, 0);
        for (int i = 0; i < N; i++) {
            snprintf(k, sizeof(k), "key:%d", i);
            int found = strcmp(get_str(s, "big", k, 0, NULL), "<absent>") != 0;
            bad += found != (i % 100 == 0);
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(stats_of(s, "big").entries, N / 100);
        for (int i = 0; i < N; i += 100) {
            snprintf(k, sizeof(k), "key:%d", i);
            bad += op_key(s, HC_OP_DEL, "big", k, 1, 0) != 0;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(hc_store_memory(s), 0);
    }
    hc_store_free(s);
}

/* Inserts right after a shrink started: the resize in progress is finished, nothing is lost. */
static void test_table_shrink_then_grow(void)
{
    hc_store_t *s = hc_store_new(0);
    char k[32];
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "%d", i);
        bad += put(s, "t", k, k, 0, 1, 0) != 0;
    }
    for (int i = 5; i < 1000; i++) {
        snprintf(k, sizeof(k), "%d", i);
        bad += op_key(s, HC_OP_DEL, "t", k, 1, 0) != 0;
    }
    for (int i = 1000; i < 3000; i++) {
        snprintf(k, sizeof(k), "%d", i);
        bad += put(s, "t", k, k, 0, 1, 0) != 0;
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "%d", i);
        int present = i < 5 || i >= 1000;
        bad += strcmp(get_str(s, "t", k, 0, NULL), present ? k : "<absent>") != 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(stats_of(s, "t").entries, 2005);
    hc_store_free(s);
}

typedef struct {
    char names[8][8];
    int n;
    uint64_t entries[8];
} caches_seen_t;

static void see_cache(void *ud, const char *name, size_t name_len,
                      const hc_cache_settings_t *settings, const hc_cache_stats_t *stats)
{
    caches_seen_t *c = ud;
    if (c->n < 8) {
        snprintf(c->names[c->n], 8, "%.*s", (int)name_len, name);
        c->entries[c->n] = stats->entries;
    }
    c->n++;
}

static void test_stats_and_listing(void)
{
    hc_store_t *s = hc_store_new(1 << 20);
    CHECK_EQ_INT(hc_store_max_memory(s), 1 << 20);
    CHECK_EQ_INT(put(s, "b", "k", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(put(s, "ab", "k", "v", 10, 2, 0), 0);
    CHECK_EQ_INT(put(s, "ab", "k2", "v", 0, 3, 0), 0);
    CHECK_EQ_INT(config(s, "a", 4096, 0), 0);
    CHECK_EQ_INT(put(s, "B", "k", "v", 0, 4, 0), 0);
    caches_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    hc_store_foreach_cache(s, see_cache, &seen);
    CHECK_EQ_INT(seen.n, 4);
    CHECK_EQ_STR(seen.names[0], "B");
    CHECK_EQ_STR(seen.names[1], "a");
    CHECK_EQ_STR(seen.names[2], "ab");
    CHECK_EQ_STR(seen.names[3], "b");
    CHECK_EQ_INT(seen.entries[1], 0);
    CHECK_EQ_INT(seen.entries[2], 2);

    hc_cache_settings_t set;
    hc_cache_stats_t st;
    CHECK_EQ_INT(hc_store_cache_info(s, "a", 1, &set, &st), 0);
    CHECK_EQ_INT(set.max_memory, 4096);
    CHECK_EQ_INT(set.policy, HC_POLICY_INVALIDATE);
    CHECK_EQ_INT(hc_store_cache_info(s, "c", 1, &set, &st), HC_ENOTFOUND);
    hc_cmd_t cfg = mk(HC_OP_CACHE_CONFIG, "b", NULL, 0);
    cfg.settings.policy = HC_POLICY_SERVE_STALE;
    cfg.settings.max_stale_ms = 30000;
    CHECK_EQ_INT(hc_store_apply(s, &cfg, 5, 0, NULL), 0);
    CHECK_EQ_INT(hc_store_cache_info(s, "b", 1, &set, &st), 0);
    CHECK_EQ_INT(set.policy, HC_POLICY_SERVE_STALE);
    CHECK_EQ_INT(set.max_stale_ms, 30000);
    CHECK_EQ_INT(st.entries, 1); /* reconfiguring keeps the data */

    get_str(s, "ab", "k", 5, NULL);  /* hit */
    get_str(s, "ab", "k", 10, NULL); /* miss: expired */
    get_str(s, "ab", "zz", 0, NULL); /* miss */
    get_str(s, "ab", "k2", 0, NULL); /* hit */
    get_str(s, "b", "k", 0, NULL);   /* hit */
    get_str(s, "zz", "k", 0, NULL);  /* no cache: not counted */
    CHECK_EQ_INT(op_key(s, HC_OP_EXPIRE, "ab", "k", 6, 10), 0);
    CHECK_EQ_INT(op_key(s, HC_OP_EVICT, "ab", "k2", 7, 10), 0);
    st = stats_of(s, "ab");
    CHECK_EQ_INT(st.hits, 2);
    CHECK_EQ_INT(st.misses, 2);
    CHECK_EQ_INT(st.expirations, 1);
    CHECK_EQ_INT(st.evictions, 1);
    CHECK_EQ_INT(st.entries, 0);
    hc_cache_stats_t t;
    hc_store_totals(s, &t);
    CHECK_EQ_INT(t.hits, 3);
    CHECK_EQ_INT(t.misses, 2);
    CHECK_EQ_INT(t.entries, 2);
    CHECK_EQ_INT(t.memory, 2 * hc_store_entry_footprint(1, 1));
    CHECK_EQ_INT(t.evictions, 1);
    CHECK_EQ_INT(t.expirations, 1);
    hc_store_free(s);
    hc_store_free(NULL);
}

/* ---- snapshots -------------------------------------------------------------------------- */

static void null_victim(void *ud, const char *cache, size_t cache_len, const void *key, size_t klen,
                        int expired)
{
    (void)ud, (void)cache, (void)cache_len, (void)key, (void)klen, (void)expired;
}

static int digests_equal(hc_store_t *a, hc_store_t *b, const char *cache)
{
    uint8_t d1[HC_DIGEST_BYTES], d2[HC_DIGEST_BYTES];
    hc_store_digest(a, cache, strlen(cache), d1);
    hc_store_digest(b, cache, strlen(cache), d2);
    return memcmp(d1, d2, sizeof(d1)) == 0;
}

/* A store with two configured caches, binary keys (NUL bytes, empty key), expiring entries, an
 * empty value, a rewritten key and a deleted one. */
static hc_store_t *snap_source(void)
{
    hc_store_t *s = hc_store_new(1 << 24);
    if (s == NULL)
        return NULL;
    hc_cmd_t cfg = mk(HC_OP_CACHE_CONFIG, "b-cache", NULL, 0);
    cfg.settings.max_memory = 123456;
    cfg.settings.default_ttl_ms = 5000;
    cfg.settings.policy = HC_POLICY_SERVE_STALE;
    cfg.settings.max_stale_ms = 777;
    hc_store_apply(s, &cfg, 1, 1000, NULL);
    uint64_t idx = 2;
    static const unsigned char bk[] = {0, 1, 2, 0xff, 0};
    hc_cmd_t c = mk(HC_OP_PUT, "b-cache", bk, sizeof(bk));
    c.val = "\0\1binary";
    c.vlen = 8;
    hc_store_apply(s, &c, idx++, 1000, NULL); /* default TTL: expires at 6000 */
    c = mk(HC_OP_PUT, "b-cache", "", 0);
    c.val = "";
    c.vlen = 0;
    c.expire_at_ms = 99999;
    hc_store_apply(s, &c, idx++, 1000, NULL);
    for (int i = 0; i < 200; i++) {
        char k[16], v[32];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "value-%d", i * 7);
        put(s, "a-cache", k, v, i % 3 == 0 ? 50000 + (uint64_t)i : 0, idx++, 1000);
    }
    put(s, "a-cache", "k5", "rewritten", 0, idx++, 1000);
    op_key(s, HC_OP_DEL, "a-cache", "k6", idx++, 1000);
    hc_entry_view_t v;
    hc_store_get(s, "a-cache", 7, "k10", 3, 1000, &v); /* touch: LRU order changes */
    return s;
}

static void test_snapshot_roundtrip(void)
{
    hc_store_t *s = snap_source();
    REQUIRE(s != NULL);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_store_serialize(s, &b);
    REQUIRE(!b.failed);
    REQUIRE(b.len > 5 && memcmp(b.data, "HCSS", 4) == 0);
    hc_store_t *t = hc_store_new(1 << 24);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(hc_store_load(t, b.data, b.len), 0);
    CHECK(digests_equal(s, t, "a-cache"));
    CHECK(digests_equal(s, t, "b-cache"));
    CHECK_EQ_INT(hc_store_memory(t), hc_store_memory(s));
    hc_cache_settings_t set;
    hc_cache_stats_t st, st0;
    CHECK_EQ_INT(hc_store_cache_info(t, "b-cache", 7, &set, &st), 0);
    CHECK_EQ_INT(set.max_memory, 123456);
    CHECK_EQ_INT(set.default_ttl_ms, 5000);
    CHECK_EQ_INT(set.policy, HC_POLICY_SERVE_STALE);
    CHECK_EQ_INT(set.max_stale_ms, 777);
    CHECK_EQ_INT(hc_store_cache_info(s, "a-cache", 7, NULL, &st0), 0);
    CHECK_EQ_INT(hc_store_cache_info(t, "a-cache", 7, NULL, &st), 0);
    CHECK_EQ_INT(st.entries, st0.entries);
    CHECK_EQ_INT(st.memory, st0.memory);
    CHECK_EQ_INT(st.hits, 0); /* statistics are local */
    /* binary key, value, version and expiry survive */
    static const unsigned char bk[] = {0, 1, 2, 0xff, 0};
    hc_entry_view_t v, v0;
    REQUIRE(hc_store_get(t, "b-cache", 7, bk, sizeof(bk), 1000, &v) == 0);
    REQUIRE(hc_store_get(s, "b-cache", 7, bk, sizeof(bk), 1000, &v0) == 0);
    CHECK(v.len == 8 && memcmp(v.data, "\0\1binary", 8) == 0);
    CHECK_EQ_INT(v.version, v0.version);
    CHECK_EQ_INT(v.expire_at_ms, 6000);
    CHECK_EQ_INT(hc_store_get(t, "b-cache", 7, "", 0, 1000, &v), 0);
    CHECK_EQ_INT(v.len, 0);
    CHECK_EQ_INT(hc_store_get(t, "a-cache", 7, "k6", 2, 1000, &v), HC_ENOTFOUND);
    /* expiry works on the loaded store: reads hide, the collector finds the same entries */
    CHECK_EQ_INT(hc_store_get(t, "b-cache", 7, bk, sizeof(bk), 6000, &v), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_store_collect_expired(t, 60000, 1000, null_victim, NULL),
                 hc_store_collect_expired(s, 60000, 1000, null_victim, NULL));
    /* deterministic: serializing the loaded store gives the same bytes (LRU order kept) */
    hc_buf_t b2;
    hc_buf_init(&b2);
    hc_store_serialize(t, &b2);
    CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
    /* and the loaded store keeps working */
    CHECK_EQ_INT(put(t, "a-cache", "k5", "again", 0, 10000, 1000), 0);
    CHECK(!digests_equal(s, t, "a-cache"));
    /* only into an empty store */
    CHECK_EQ_INT(hc_store_load(t, b.data, b.len), HC_EINVAL);
    hc_buf_free(&b2);
    hc_buf_free(&b);
    hc_store_free(t);
    hc_store_free(s);
}

static void test_snapshot_empty_store(void)
{
    hc_store_t *s = hc_store_new(0), *t = hc_store_new(0);
    REQUIRE(s != NULL && t != NULL);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_store_serialize(s, &b);
    CHECK_EQ_INT(hc_store_load(t, b.data, b.len), 0);
    CHECK_EQ_INT(hc_store_memory(t), 0);
    hc_buf_free(&b);
    hc_store_free(t);
    hc_store_free(s);
}

static void test_snapshot_rejects_malformed(void)
{
    hc_store_t *s = snap_source();
    REQUIRE(s != NULL);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_store_serialize(s, &b);
    REQUIRE(!b.failed);
    hc_store_t *t = hc_store_new(1 << 24);
    REQUIRE(t != NULL);
    /* every truncation is rejected, and leaves the store empty and usable */
    for (size_t n = 0; n < b.len; n += (n < 64 ? 1 : 37)) {
        CHECK_EQ_INT(hc_store_load(t, b.data, n), HC_EINVAL);
        CHECK_EQ_INT(hc_store_memory(t), 0);
    }
    /* trailing garbage */
    char *x = malloc(b.len + 1);
    REQUIRE(x != NULL);
    memcpy(x, b.data, b.len);
    x[b.len] = 0;
    CHECK_EQ_INT(hc_store_load(t, x, b.len + 1), HC_EINVAL);
    /* bad magic, bad version */
    x[0] = 'X';
    CHECK_EQ_INT(hc_store_load(t, x, b.len), HC_EINVAL);
    x[0] = 'H';
    x[4] = 9;
    CHECK_EQ_INT(hc_store_load(t, x, b.len), HC_EINVAL);
    x[4] = HC_STORE_SNAP_VERSION;
    CHECK_EQ_INT(hc_store_load(t, x, b.len), 0);
    hc_store_free(t);
    t = hc_store_new(1 << 24);
    REQUIRE(t != NULL);
    /* single-byte corruption anywhere: rejected or loaded, never a crash (ASan) */
    uint32_t seed = 12345;
    for (int i = 0; i < 2000; i++) {
        memcpy(x, b.data, b.len);
        seed = seed * 1103515245u + 12345u;
        size_t at = (seed >> 8) % b.len;
        x[at] = (char)(x[at] ^ (char)(1 + (seed >> 24) % 255));
        int rc = hc_store_load(t, x, b.len);
        CHECK(rc == 0 || rc == HC_EINVAL);
        if (rc == 0) {
            hc_store_free(t);
            t = hc_store_new(1 << 24);
            REQUIRE(t != NULL);
        }
    }
    /* garbage */
    static const char junk[] = "HCSS\1\2\377\377\377\377\377\377\377\377";
    CHECK_EQ_INT(hc_store_load(t, junk, sizeof(junk) - 1), HC_EINVAL);
    CHECK_EQ_INT(hc_store_load(t, NULL, 0), HC_EINVAL);
    free(x);
    hc_buf_free(&b);
    hc_store_free(t);
    hc_store_free(s);
}

static void test_snapshot_duplicates_rejected(void)
{
    /* a cache whose entries repeat a key, and caches out of name order */
    hc_store_t *s = hc_store_new(0);
    REQUIRE(s != NULL);
    put(s, "c", "k", "v", 0, 1, 0);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_store_serialize(s, &b);
    /* layout: header(5) CACHE(9 + 1+1+25) ENTRY(9 + 20+1+1) END(9 + 16) */
    size_t cache_rec = 9 + 1 + 1 + 25, entry_rec = 9 + 20 + 1 + 1;
    REQUIRE(b.len == 5 + cache_rec + entry_rec + 25);
    hc_buf_t d;
    hc_buf_init(&d);
    hc_buf_append(&d, b.data, 5 + cache_rec + entry_rec);
    hc_buf_append(&d, b.data + 5 + cache_rec, entry_rec); /* the entry twice */
    hc_buf_append(&d, b.data + 5 + cache_rec + entry_rec, 25);
    hc_store_t *t = hc_store_new(0);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(hc_store_load(t, d.data, d.len), HC_EINVAL);
    hc_buf_reset(&d);
    hc_buf_append(&d, b.data, 5 + cache_rec);
    hc_buf_append(&d, b.data + 5, cache_rec); /* the cache twice */
    hc_buf_append(&d, b.data + 5 + cache_rec, entry_rec + 25);
    CHECK_EQ_INT(hc_store_load(t, d.data, d.len), HC_EINVAL);
    CHECK_EQ_INT(hc_store_memory(t), 0);
    hc_buf_free(&d);
    hc_buf_free(&b);
    hc_store_free(t);
    hc_store_free(s);
}

static hc_test_t tests[] = {
    {"roundtrip_binary_keys", test_roundtrip_binary_keys},
    {"absent_and_invalid", test_absent_and_invalid},
    {"versions_and_conditions", test_versions_and_conditions},
    {"incr", test_incr},
    {"clear", test_clear},
    {"invalidate", test_invalidate},
    {"ttl_visibility", test_ttl_visibility},
    {"ttl_collect_and_expire", test_ttl_collect_and_expire},
    {"ttl_collect_many", test_ttl_collect_many},
    {"footprint_formula", test_footprint_formula},
    {"memory_accounting", test_memory_accounting},
    {"evict_lru_order", test_evict_lru_order},
    {"evict_expired_first", test_evict_expired_first},
    {"evict_cache_bound", test_evict_cache_bound},
    {"evict_global_order", test_evict_global_order},
    {"enomem_then_planned_evictions", test_enomem_then_planned_evictions},
    {"digest", test_digest},
    {"large_table", test_large_table},
    {"table_shrink_then_grow", test_table_shrink_then_grow},
    {"stats_and_listing", test_stats_and_listing},
    {"snapshot_roundtrip", test_snapshot_roundtrip},
    {"snapshot_empty_store", test_snapshot_empty_store},
    {"snapshot_rejects_malformed", test_snapshot_rejects_malformed},
    {"snapshot_duplicates_rejected", test_snapshot_duplicates_rejected},
};

HC_TEST_MAIN(tests)
