/* test_store_model.c: the store (server/store/store.c) against a simple model: random commands with
 * conditions, TTLs and evictions applied to both, and every read compared. */
#include "test.h"

#include <errno.h>

#include "hacache.h"
#include "store_helpers.h"

/* ---- randomized comparison against a model ---------------------------------------------- */

enum { M_CACHES = 3, M_KEYS = 64, M_VMAX = 40, M_OPS = 100000 };
static const char *const m_names[M_CACHES] = {"a", "bb", "c"};
static const uint64_t m_max_memory = 40 * FP, m_bb_max = 12 * FP, m_c_ttl = 150;

typedef struct {
    int present;
    unsigned char val[M_VMAX + 24];
    size_t vlen;
    uint64_t version, expire_at;
} m_entry_t;

static m_entry_t model[M_CACHES][M_KEYS];
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void m_key(int k, unsigned char out[3])
{
    out[0] = 'k';
    out[1] = 0; /* keys contain NUL */
    out[2] = (unsigned char)k;
}

static int m_live(const m_entry_t *e, uint64_t now)
{
    return e->present && (e->expire_at == 0 || e->expire_at > now);
}

static uint64_t m_fp(const m_entry_t *e)
{
    return e->present ? hc_store_entry_footprint(3, e->vlen) : 0;
}

static uint64_t m_cache_memory(int c)
{
    uint64_t m = 0;
    for (int k = 0; k < M_KEYS; k++)
        m += m_fp(&model[c][k]);
    return m;
}

/* Reference INCR parser, written differently from the store's on purpose. */
static int m_parse(const m_entry_t *e, int64_t *out)
{
    char buf[32];
    if (e->vlen == 0 || e->vlen > 20)
        return HC_ENOTINT;
    memcpy(buf, e->val, e->vlen);
    buf[e->vlen] = '\0';
    for (size_t i = 0; i < e->vlen; i++)
        if (!((buf[i] >= '0' && buf[i] <= '9') || (i == 0 && buf[i] == '-' && e->vlen > 1)))
            return HC_ENOTINT;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return HC_ENOTINT;
    *out = v;
    return 0;
}

typedef struct {
    int n, bad, seen_live;
    int cache[64], key[64], expired[64];
    uint64_t now;
} m_victims_t;

static void m_record(void *ud, const char *cache, size_t cache_len, const void *key, size_t klen,
                     int expired)
{
    m_victims_t *v = ud;
    int c = -1;
    for (int i = 0; i < M_CACHES; i++)
        if (strlen(m_names[i]) == cache_len && memcmp(m_names[i], cache, cache_len) == 0)
            c = i;
    const unsigned char *k = key;
    if (c < 0 || klen != 3 || k[0] != 'k' || k[1] != 0 || v->n >= 64) {
        v->bad++;
        return;
    }
    const m_entry_t *e = &model[c][k[2]];
    if (!e->present || expired != !m_live(e, v->now))
        v->bad++;
    if (expired && v->seen_live)
        v->bad++; /* expired victims come first */
    v->seen_live |= !expired;
    v->cache[v->n] = c;
    v->key[v->n] = k[2];
    v->expired[v->n] = expired;
    v->n++;
}

/* Applies the victims to the store and the model. */
static int m_apply_victims(hc_store_t *s, const m_victims_t *v, uint64_t *index, uint64_t now)
{
    int bad = 0;
    for (int i = 0; i < v->n; i++) {
        unsigned char kb[3];
        m_key(v->key[i], kb);
        hc_cmd_t c = mk(v->expired[i] ? HC_OP_EXPIRE : HC_OP_EVICT, m_names[v->cache[i]], kb, 3);
        bad += hc_store_apply(s, &c, ++*index, now, NULL) != 0;
        model[v->cache[i]][v->key[i]].present = 0;
    }
    return bad;
}

static void m_random_value(m_entry_t *e)
{
    uint64_t r = rnd() % 10;
    if (r < 5) {
        static const long long specials[] = {INT64_MAX, INT64_MIN, INT64_MAX - 3, 0, -1};
        long long v = r == 0 ? specials[rnd() % 5] : (long long)(rnd() % 2001) - 1000;
        e->vlen = (size_t)snprintf((char *)e->val, sizeof(e->val), "%lld", v);
    } else {
        e->vlen = rnd() % (M_VMAX + 1);
        for (size_t i = 0; i < e->vlen; i++)
            e->val[i] = (unsigned char)(rnd() % 4 == 0 ? 0 : 'a' + rnd() % 26);
    }
}

/* Counts a difference between the store and the model, saying where. */
#define MISMATCH()                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "  step %d: mismatch (line %d)\n", step, __LINE__);                        \
        mismatches++;                                                                              \
    } while (0)

static void test_model_random(void)
{
    hc_store_t *s = hc_store_new(m_max_memory);
    REQUIRE(s != NULL);
    memset(model, 0, sizeof(model));
    rng_state = 0x9E3779B97F4A7C15ull;
    uint64_t now = 1000, index = 0;
    REQUIRE(config(s, "bb", m_bb_max, 0) == 0);
    REQUIRE(config(s, "c", 0, m_c_ttl) == 0);
    int mismatches = 0, plans_with_victims = 0, enomem = 0, conflicts = 0;

    for (int step = 0; step < M_OPS && mismatches < 20; step++) {
        now += rnd() % 4;
        int c = (int)(rnd() % M_CACHES), k = (int)(rnd() % M_KEYS);
        unsigned char kb[3];
        m_key(k, kb);
        m_entry_t *e = &model[c][k];
        int live = m_live(e, now);
        uint64_t r = rnd() % 100;
        int rc, want;

        if (r < 45) { /* PUT or INCR, usually planned first */
            int is_incr = r >= 35;
            hc_cmd_t cmd = mk(is_incr ? HC_OP_INCR : HC_OP_PUT, m_names[c], kb, 3);
            m_entry_t next = *e;
            uint64_t x = rnd() % 20;
            cmd.expire_at_ms = x < 6 ? now + 1 + rnd() % 300 : x == 6 ? now : 0;
            uint64_t expiry = cmd.expire_at_ms;
            if (expiry == 0 && c == 2)
                expiry = now + m_c_ttl;
            want = 0;
            if (is_incr) {
                cmd.incr_by = rnd() % 50 == 0 ? INT64_MAX : (int64_t)(rnd() % 201) - 100;
                int64_t cur = 0, sum;
                if (live)
                    want = m_parse(e, &cur);
                if (want == 0 && __builtin_add_overflow(cur, cmd.incr_by, &sum))
                    want = HC_EOVERFLOW;
                if (want == 0) {
                    next.vlen = (size_t)snprintf((char *)next.val, sizeof(next.val), "%lld",
                                                 (long long)sum);
                    next.expire_at = live ? e->expire_at : expiry;
                }
            } else {
                m_random_value(&next);
                cmd.val = next.val;
                cmd.vlen = next.vlen;
                next.expire_at = expiry;
                uint64_t y = rnd() % 10;
                if (y == 0) {
                    cmd.if_absent = 1;
                    if (live)
                        want = HC_ECONFLICT;
                } else if (y == 1) {
                    cmd.has_if_version = 1;
                    uint64_t z = rnd() % 3;
                    cmd.if_version = z == 0 ? 0 : z == 1 ? e->version : e->version + 1;
                    int ok = cmd.if_version == 0 ? !live : live && e->version == cmd.if_version;
                    if (!ok)
                        want = HC_ECONFLICT;
                }
            }
            next.present = 1;
            next.version = index + 1;
            if (rnd() % 20 != 0) {
                m_victims_t v;
                memset(&v, 0, sizeof(v));
                v.now = now;
                rc = hc_store_plan_put(s, &cmd, now, m_record, &v);
                if (rc != 0 || v.bad != 0 || (want != 0 && v.n != 0)) {
                    fprintf(stderr, "  rc %d bad %d want %d n %d incr %d\n", rc, v.bad, want, v.n,
                            is_incr);
                    MISMATCH();
                }
                plans_with_victims += v.n > 0;
                if (m_apply_victims(s, &v, &index, now) != 0)
                    MISMATCH();
                next.version = index + 1;
            }
            if (want == 0) {
                /* the model's own fit check */
                uint64_t old = m_fp(e), nfp = hc_store_entry_footprint(3, next.vlen);
                uint64_t total = 0;
                for (int i = 0; i < M_CACHES; i++)
                    total += m_cache_memory(i);
                if (total - old + nfp > m_max_memory ||
                    (c == 1 && m_cache_memory(1) - old + nfp > m_bb_max))
                    want = HC_ENOMEM;
            }
            hc_apply_result_t res;
            rc = hc_store_apply(s, &cmd, ++index, now, &res);
            if (rc != want) {
                fprintf(stderr, "  step %d: write rc %d want %d\n", step, rc, want);
                MISMATCH();
            }
            if (rc == 0) {
                *e = next;
                if (res.version != index)
                    MISMATCH();
            }
            enomem += rc == HC_ENOMEM;
            conflicts += rc == HC_ECONFLICT;
        } else if (r < 55) { /* DEL, sometimes conditional */
            hc_cmd_t cmd = mk(HC_OP_DEL, m_names[c], kb, 3);
            want = live ? 0 : HC_ENOTFOUND;
            if (rnd() % 4 == 0) {
                cmd.has_if_version = 1;
                cmd.if_version = rnd() % 2 ? e->version : 0;
                int ok = cmd.if_version == 0 ? !live : live && e->version == cmd.if_version;
                if (!ok)
                    want = HC_ECONFLICT;
            }
            rc = hc_store_apply(s, &cmd, ++index, now, NULL);
            if (rc != want) {
                fprintf(stderr, "  step %d: del rc %d want %d\n", step, rc, want);
                MISMATCH();
            }
            if (rc == 0)
                e->present = 0;
        } else if (r < 85) { /* GET */
            hc_entry_view_t v;
            rc = hc_store_get(s, m_names[c], strlen(m_names[c]), kb, 3, now, &v);
            if (rc != (live ? 0 : HC_ENOTFOUND)) {
                fprintf(stderr, "  step %d: get rc %d live %d\n", step, rc, live);
                MISMATCH();
            } else if (rc == 0 && (v.len != e->vlen || memcmp(v.data, e->val, v.len) != 0 ||
                                   v.version != e->version || v.expire_at_ms != e->expire_at)) {
                fprintf(stderr, "  step %d: get value differs\n", step);
                MISMATCH();
            }
        } else if (r < 92) { /* the expiry timer */
            m_victims_t v;
            memset(&v, 0, sizeof(v));
            v.now = now;
            size_t max = rnd() % 6;
            size_t n = hc_store_collect_expired(s, now, max, m_record, &v);
            size_t expired = 0;
            for (int i = 0; i < M_CACHES; i++)
                for (int j = 0; j < M_KEYS; j++)
                    expired += model[i][j].present && !m_live(&model[i][j], now);
            if (n != (expired < max ? expired : max) || (int)n != v.n || v.bad != 0 || v.seen_live)
                MISMATCH();
            if (m_apply_victims(s, &v, &index, now) != 0)
                MISMATCH();
        } else if (r < 93) { /* CLEAR */
            hc_cmd_t cmd = mk(HC_OP_CLEAR, m_names[c], NULL, 0);
            hc_apply_result_t res;
            uint64_t n = 0;
            for (int j = 0; j < M_KEYS; j++) {
                n += model[c][j].present;
                model[c][j].present = 0;
            }
            if (hc_store_apply(s, &cmd, ++index, now, &res) != 0 || res.removed != n)
                MISMATCH();
        } else {                                                       /* EVICT of a random key */
            rc = op_key(s, HC_OP_EVICT, m_names[c], "", ++index, now); /* never present */
            hc_cmd_t cmd = mk(HC_OP_EVICT, m_names[c], kb, 3);
            want = e->present ? 0 : HC_ENOTFOUND;
            if (rc != HC_ENOTFOUND || hc_store_apply(s, &cmd, ++index, now, NULL) != want)
                MISMATCH();
            e->present = 0;
        }

        /* accounting after every step */
        uint64_t total = 0, total_entries = 0;
        for (int i = 0; i < M_CACHES; i++) {
            uint64_t mem = m_cache_memory(i), n = 0;
            for (int j = 0; j < M_KEYS; j++)
                n += model[i][j].present;
            hc_cache_stats_t st;
            memset(&st, 0, sizeof(st));
            hc_store_cache_info(s, m_names[i], strlen(m_names[i]), NULL, &st);
            if (st.memory != mem || st.entries != n) {
                fprintf(stderr, "  step %d: cache %s memory %" PRIu64 "/%" PRIu64 "\n", step,
                        m_names[i], st.memory, mem);
                MISMATCH();
            }
            total += mem;
            total_entries += n;
        }
        hc_cache_stats_t totals;
        hc_store_totals(s, &totals);
        if (hc_store_memory(s) != total || totals.entries != total_entries ||
            total > m_max_memory || m_cache_memory(1) > m_bb_max)
            MISMATCH();
    }
    CHECK_EQ_INT(mismatches, 0);
    /* the run exercised what it is meant to */
    CHECK(plans_with_victims > 1000);
    CHECK(enomem > 100);
    CHECK(conflicts > 100);

    /* a store rebuilt from the model has the same digests */
    hc_store_t *t = hc_store_new(0);
    for (int i = 0; i < M_CACHES; i++)
        for (int j = M_KEYS - 1; j >= 0; j--) {
            const m_entry_t *e = &model[i][j];
            if (!e->present)
                continue;
            unsigned char kb[3];
            m_key(j, kb);
            hc_cmd_t cmd = mk(HC_OP_PUT, m_names[i], kb, 3);
            cmd.val = e->val;
            cmd.vlen = e->vlen;
            cmd.expire_at_ms = e->expire_at;
            CHECK_EQ_INT(hc_store_apply(t, &cmd, e->version, 0, NULL), 0);
        }
    for (int i = 0; i < M_CACHES; i++) {
        uint8_t d1[HC_DIGEST_BYTES], d2[HC_DIGEST_BYTES];
        hc_store_digest(s, m_names[i], strlen(m_names[i]), d1);
        hc_store_digest(t, m_names[i], strlen(m_names[i]), d2);
        CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
    }
    hc_store_free(t);
    hc_store_free(s);
}

static hc_test_t tests[] = {
    {"model_random", test_model_random},
};

HC_TEST_MAIN(tests)
