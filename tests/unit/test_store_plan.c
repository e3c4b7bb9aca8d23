/* test_store_plan.c: the leader's plans in flight (server/store/store_plan.c). A "leader" store
 * plans writes and proposes them into a log (victims first, then the write) without applying them;
 * the log is applied later in random-sized pieces to the leader and to a "follower" store that
 * never plans. With the plans in flight accounted (hc_store_plan_doom / _reserve / _release), no
 * proposed write is ever refused at apply time (HC_ENOMEM), the bounds hold after every apply,
 * and both stores end identical. Without them (the control run), writes are refused. */
#include "test.h"

#include "hacache.h"
#include "store_helpers.h"
#include "store/store_int.h"

enum { P_KEYS = 200, P_LOG = 4096, P_ROUNDS = 3000 };
static const uint64_t p_max = 60 * FP, p_own_max = 15 * FP;

typedef struct {
    hc_cmd_t cmd;
    char cache[8];
    unsigned char key[8];
    char val[48];
    uint64_t index;
} p_entry_t;

static p_entry_t plog[P_LOG];
static size_t plog_n, plog_applied;
static uint64_t p_next_index = 100;
static uint64_t p_rng = 0x9e3779b97f4a7c15ull;

static uint64_t p_rnd(void)
{
    p_rng ^= p_rng >> 12;
    p_rng ^= p_rng << 25;
    p_rng ^= p_rng >> 27;
    return p_rng * 2685821657736338717ull;
}

static p_entry_t *p_append(hc_op_t op, const char *cache, const void *key, size_t klen, size_t vlen)
{
    if (plog_n >= P_LOG) {
        fprintf(stderr, "  the test's log is full\n");
        abort();
    }
    p_entry_t *e = &plog[plog_n];
    memset(e, 0, sizeof(*e));
    snprintf(e->cache, sizeof(e->cache), "%s", cache);
    memcpy(e->key, key, klen);
    memset(e->val, 'v', vlen);
    e->cmd = mk(op, e->cache, e->key, klen);
    e->cmd.val = e->val;
    e->cmd.vlen = vlen;
    e->index = p_next_index++;
    plog_n++;
    return e;
}

static void p_victim(void *ud, const char *cache, size_t cache_len, const void *key, size_t klen,
                     int expired)
{
    char name[8];
    snprintf(name, sizeof(name), "%.*s", (int)cache_len, cache);
    (void)ud;
    p_append(expired ? HC_OP_EXPIRE : HC_OP_EVICT, name, key, klen, 0);
}

/* What the leader does once it proposed them: the victims planned from log index `at` on. */
static void p_doom(hc_store_t *s, size_t at)
{
    for (size_t i = at; i < plog_n; i++)
        hc_store_plan_doom(s, plog[i].cmd.cache, plog[i].cmd.cache_len, plog[i].cmd.key,
                           plog[i].cmd.klen);
}

/* Applies the log up to `upto` to both stores; returns the number of refused writes. */
static int p_apply(hc_store_t *leader, hc_store_t *follower, size_t upto, int *over)
{
    int refused = 0;
    for (; plog_applied < upto; plog_applied++) {
        p_entry_t *e = &plog[plog_applied];
        hc_store_plan_release(leader, e->index);
        int a = hc_store_apply(leader, &e->cmd, e->index, 1, NULL);
        int b = hc_store_apply(follower, &e->cmd, e->index, 1, NULL);
        CHECK_EQ_INT(a, b);
        if (e->cmd.op == HC_OP_PUT && a == HC_ENOMEM)
            refused++;
        hc_cache_stats_t own;
        if (hc_store_memory(leader) > p_max ||
            (hc_store_cache_info(leader, "own", 3, NULL, &own) == 0 && own.memory > p_own_max))
            (*over)++;
    }
    return refused;
}

/* Rounds of: plan and propose 1..16 writes (random caches, keys, sizes; some DELs), read a few
 * keys (LRU touches, also of doomed entries), apply a random part of the log. */
static int p_run(int with_plans, int *over, int *planned_out)
{
    hc_store_t *leader = hc_store_new(p_max), *follower = hc_store_new(p_max);
    if (leader == NULL || follower == NULL || config(leader, "own", p_own_max, 0) != 0 ||
        config(follower, "own", p_own_max, 0) != 0)
        abort();
    int refused = 0;
    plog_n = plog_applied = 0;
    for (int round = 0; round < P_ROUNDS; round++) {
        if (plog_n > P_LOG - 200) { /* apply everything, start the log again */
            refused += p_apply(leader, follower, plog_n, over);
            CHECK(leader->doomed == 0 && leader->planned_free == 0 && leader->planned_growth == 0 &&
                  leader->resv_n == 0);
            plog_n = plog_applied = 0;
        }
        int k = 1 + (int)(p_rnd() % 16);
        for (int i = 0; i < k; i++) {
            const char *cache = p_rnd() % 3 == 0 ? "own" : "all";
            unsigned char key[3] = {'k', (unsigned char)(p_rnd() % P_KEYS), 0};
            if (p_rnd() % 10 == 0) {
                p_append(HC_OP_DEL, cache, key, 2, 0);
                continue;
            }
            hc_cmd_t put = mk(HC_OP_PUT, cache, key, 2);
            char val[48];
            memset(val, 'v', sizeof(val));
            put.val = val;
            put.vlen = 1 + p_rnd() % 40;
            size_t at = plog_n;
            int rc = hc_store_plan_put(leader, &put, 1, p_victim, with_plans ? leader : NULL);
            if (rc == HC_ENOMEM) {
                /* the writes in flight fill the whole bound: the leader refuses this one */
                CHECK(with_plans && at == plog_n);
                (*planned_out)++;
                continue;
            }
            CHECK_EQ_INT(rc, 0);
            if (with_plans)
                p_doom(leader, at);
            p_entry_t *w = p_append(HC_OP_PUT, cache, key, 2, put.vlen);
            if (with_plans)
                CHECK_EQ_INT(hc_store_plan_reserve(leader, &w->cmd, w->index, 1), 0);
        }
        for (int r = 0; r < 3; r++) {
            unsigned char key[3] = {'k', (unsigned char)(p_rnd() % P_KEYS), 0};
            hc_entry_view_t v;
            (void)hc_store_get(leader, p_rnd() % 2 ? "own" : "all", 3, key, 2, 1, &v);
        }
        size_t pending = plog_n - plog_applied;
        refused +=
            p_apply(leader, follower, plog_applied + (size_t)(p_rnd() % (pending + 1)), over);
    }
    refused += p_apply(leader, follower, plog_n, over);
    CHECK(leader->doomed == 0 && leader->planned_free == 0 && leader->planned_growth == 0);
    const char *names[2] = {"all", "own"};
    for (int i = 0; i < 2; i++) {
        uint8_t d1[HC_DIGEST_BYTES], d2[HC_DIGEST_BYTES];
        hc_store_digest(leader, names[i], 3, d1);
        hc_store_digest(follower, names[i], 3, d2);
        CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
    }
    hc_store_free(leader);
    hc_store_free(follower);
    return refused;
}

static void test_writes_in_flight_are_never_refused(void)
{
    int over = 0, full = 0;
    int refused = p_run(1, &over, &full);
    CHECK_EQ_INT(refused, 0);
    CHECK_EQ_INT(over, 0);
    /* the control: planning against the applied store alone refuses writes in flight */
    int over0 = 0, full0 = 0;
    int refused0 = p_run(0, &over0, &full0);
    fprintf(stderr,
            "  writes refused at apply: %d with the plans in flight, %d without; refused when "
            "planned (the writes in flight filled the bound): %d\n",
            refused, refused0, full);
    CHECK(refused0 > 100);
    CHECK(full < refused0 / 10);
}

/* A leadership change forgets the plans: doomed entries are planned again, counters return to 0,
 * and an apply of an eviction planned before still works. */
static void test_clear_forgets_every_plan(void)
{
    hc_store_t *s = hc_store_new(4 * FP);
    REQUIRE(s != NULL);
    const char *keys[4] = {"k1", "k2", "k3", "k4"};
    for (int i = 0; i < 4; i++)
        REQUIRE(put(s, "c", keys[i], "v", 0, (uint64_t)i + 1, 1) == 0);
    plog_n = plog_applied = 0;
    hc_cmd_t w = mk_put("c", "n1", "v", 0);
    REQUIRE(hc_store_plan_put(s, &w, 1, p_victim, NULL) == 0);
    p_doom(s, 0);
    CHECK_EQ_INT((int)plog_n, 1);
    CHECK_EQ_STR((const char *)plog[0].key, "k1"); /* least recently used */
    CHECK_EQ_INT(hc_store_plan_reserve(s, &w, 10, 1), 0);
    CHECK(s->doomed == 1 && s->planned_free == FP && s->planned_growth == FP);
    /* the next plan passes over k1 and counts the reserved growth: k2 and k3 */
    hc_cmd_t w2 = mk_put("c", "n2", "v", 0);
    REQUIRE(hc_store_plan_put(s, &w2, 1, p_victim, NULL) == 0);
    CHECK_EQ_INT((int)plog_n, 2);
    CHECK_EQ_STR((const char *)plog[1].key, "k2");
    hc_store_plan_clear(s);
    CHECK(s->doomed == 0 && s->planned_free == 0 && s->planned_growth == 0 && s->resv_n == 0);
    plog_n = 0;
    REQUIRE(hc_store_plan_put(s, &w2, 1, p_victim, NULL) == 0);
    CHECK_EQ_STR((const char *)plog[0].key, "k1"); /* planned again after the clear */
    CHECK_EQ_INT(op_key(s, HC_OP_EVICT, "c", "k1", 11, 1), 0);
    hc_store_plan_release(s, 11);
    hc_store_free(s);
}

/* An expiry the leader planned finds the entry written again with a later expiry: the EXPIRE
 * is refused and the entry no longer counts as freed. */
static void test_refused_expiry_undooms(void)
{
    hc_store_t *s = hc_store_new(0);
    REQUIRE(s != NULL);
    REQUIRE(put(s, "c", "k1", "v", 50, 1, 1) == 0);
    plog_n = plog_applied = 0;
    CHECK_EQ_INT((int)hc_store_collect_expired(s, 60, 10, p_victim, NULL), 1);
    p_doom(s, 0);
    plog[0].cmd.expire_at_ms = 60; /* the guard the fsm's planner sets: "expired at 60" */
    CHECK(s->doomed == 1 && s->planned_free == FP);
    REQUIRE(put(s, "c", "k1", "v", 500, 2, 60) == 0); /* written again, a later expiry */
    CHECK_EQ_INT(hc_store_apply(s, &plog[0].cmd, 3, 60, NULL), HC_ECONFLICT);
    CHECK(s->doomed == 0 && s->planned_free == 0);
    CHECK_EQ_INT((int)hc_store_collect_expired(s, 600, 10, p_victim, NULL), 1); /* plannable */
    hc_store_free(s);
}

static hc_test_t tests[] = {
    {"refused_expiry_undooms", test_refused_expiry_undooms},
    {"writes_in_flight_are_never_refused", test_writes_in_flight_are_never_refused},
    {"clear_forgets_every_plan", test_clear_forgets_every_plan},
};

HC_TEST_MAIN(tests)
