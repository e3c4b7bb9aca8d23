/* test_store_scan.c: unit tests of the store's cursor scans (server/store/store.c hc_store_scan:
 * every key present from the first call to the last is reported, at least once and, with a stable
 * table, once, across growth, shrinking and random churn) and of the glob matcher of SCAN MATCH
 * (server/glob.c). */
#include "test.h"

#include "glob.h"
#include "hacache.h"
#include "store_helpers.h"

/* ---- scan ------------------------------------------------------------------------------- */

/* Keys of the scan tests are "s<n>" (present from the first call to the last: must be seen)
 * and "c<n>" (churn: written and deleted between calls). */
enum { SC_STABLE_MAX = 4096, SC_CHURN_MAX = 40000 };

typedef struct {
    int n_stable;
    int seen[SC_STABLE_MAX];          /* times each stable key was reported */
    unsigned char live[SC_CHURN_MAX]; /* churn keys present now */
    int ghosts;                       /* keys reported that are not in the cache now */
    int reported;                     /* keys reported by the current call */
    int stop_every; /* cb asks to stop after this many keys of a call (0: never) */
} scan_seen_t;

static int scan_record(void *ud, const void *key, size_t klen)
{
    scan_seen_t *sc = ud;
    char k[32];
    snprintf(k, sizeof(k), "%.*s", (int)(klen < 31 ? klen : 31), (const char *)key);
    int i = atoi(k + 1);
    if (k[0] == 's' && i >= 0 && i < sc->n_stable)
        sc->seen[i]++;
    else if (!(k[0] == 'c' && i >= 0 && i < SC_CHURN_MAX && sc->live[i]))
        sc->ghosts++;
    sc->reported++;
    return sc->stop_every != 0 && sc->reported % sc->stop_every == 0;
}

static void sc_put(hc_store_t *s, scan_seen_t *sc, char kind, int i)
{
    char k[32];
    snprintf(k, sizeof(k), "%c%d", kind, i);
    CHECK_EQ_INT(put(s, "sc", k, "v", 0, 1, 0), 0);
    if (kind == 'c')
        sc->live[i] = 1;
}

static void sc_del(hc_store_t *s, scan_seen_t *sc, char kind, int i)
{
    char k[32];
    snprintf(k, sizeof(k), "%c%d", kind, i);
    CHECK_EQ_INT(op_key(s, HC_OP_DEL, "sc", k, 1, 0), 0);
    if (kind == 'c')
        sc->live[i] = 0;
}

/* A full iteration with `count`, calling between(step) before every call after the first;
 * returns the number of calls (0 when it did not end within a generous bound). */
static int scan_all(hc_store_t *s, scan_seen_t *sc, size_t count,
                    void (*between)(hc_store_t *s, scan_seen_t *sc, int step))
{
    uint64_t cursor = 0;
    for (int calls = 1; calls < 1000000; calls++) {
        if (calls > 1 && between != NULL)
            between(s, sc, calls - 1);
        sc->reported = 0;
        cursor = hc_store_scan(s, "sc", 2, cursor, count, 0, scan_record, sc);
        if (cursor == 0)
            return calls;
    }
    return 0;
}

static int sc_missed(const scan_seen_t *sc)
{
    int missed = 0;
    for (int i = 0; i < sc->n_stable; i++)
        missed += sc->seen[i] == 0;
    return missed;
}

static int sc_dups(const scan_seen_t *sc)
{
    int dups = 0;
    for (int i = 0; i < sc->n_stable; i++)
        dups += sc->seen[i] > 1;
    return dups;
}

static scan_seen_t scan_state; /* large: not on the stack */

static scan_seen_t *sc_new(void)
{
    memset(&scan_state, 0, sizeof(scan_state));
    return &scan_state;
}

static int count_cb(void *ud, const void *key, size_t klen)
{
    (void)key;
    (void)klen;
    (*(int *)ud)++;
    return 0;
}

static void test_scan_missing_and_empty(void)
{
    hc_store_t *s = hc_store_new(0);
    int n = 0;
    CHECK_EQ_INT(hc_store_scan(s, "nope", 4, 0, 10, 0, count_cb, &n), 0);
    CHECK_EQ_INT(hc_store_scan(s, "nope", 4, 12345, 10, 0, count_cb, &n), 0);
    CHECK_EQ_INT(hc_store_scan(s, "", 0, 0, 10, 0, count_cb, &n), 0);
    CHECK_EQ_INT(config(s, "configured", 0, 0), 0); /* a cache that never held a key */
    CHECK_EQ_INT(hc_store_scan(s, "configured", 10, 0, 10, 0, count_cb, &n), 0);
    CHECK_EQ_INT(put(s, "sc", "k", "v", 0, 1, 0), 0);
    CHECK_EQ_INT(op_key(s, HC_OP_DEL, "sc", "k", 2, 0), 0); /* emptied: the table stays */
    uint64_t cursor = 0;
    int calls = 0;
    do {
        cursor = hc_store_scan(s, "sc", 2, cursor, 1, 0, count_cb, &n);
    } while (cursor != 0 && ++calls < 100);
    CHECK(calls < 100);
    CHECK_EQ_INT(put(s, "sc", "k", "v", 0, 3, 0), 0);
    hc_cmd_t clear = mk(HC_OP_CLEAR, "sc", NULL, 0);
    CHECK_EQ_INT(hc_store_apply(s, &clear, 4, 0, NULL), 0); /* cleared: no table */
    CHECK_EQ_INT(hc_store_scan(s, "sc", 2, 0, 10, 0, count_cb, &n), 0);
    CHECK_EQ_INT(n, 0);
    hc_store_free(s);
}

static void test_scan_one_key(void)
{
    hc_store_t *s = hc_store_new(0);
    scan_seen_t *sc = sc_new();
    sc->n_stable = 1;
    sc_put(s, sc, 's', 0);
    for (size_t count = 1; count <= 100; count *= 10) {
        sc->seen[0] = 0;
        int calls = scan_all(s, sc, count, NULL);
        CHECK(calls >= 1 && calls <= 8); /* 8 buckets: COUNT 1 may need several calls */
        CHECK_EQ_INT(sc->seen[0], 1);
    }
    /* a cursor from elsewhere (bits above the table's mask) still ends */
    sc->seen[0] = 0;
    uint64_t cursor = 0xdeadbeefcafe0000ull;
    int calls = 0;
    do {
        cursor = hc_store_scan(s, "sc", 2, cursor, 1, 0, scan_record, sc);
    } while (cursor != 0 && ++calls < 100);
    CHECK(calls < 100);
    CHECK_EQ_INT(sc->ghosts, 0);
    hc_store_free(s);
}

/* Expired entries are examined but never reported; the scan changes nothing: same LRU order
 * (the snapshot lists entries by recency), same statistics. */
static void test_scan_expired_and_read_only(void)
{
    hc_store_t *s = hc_store_new(0);
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof(k), "s%d", i);
        CHECK_EQ_INT(put(s, "sc", k, "v", i % 2 ? 1000 : 0, (uint64_t)i + 1, 0), 0);
    }
    hc_buf_t before, after;
    hc_buf_init(&before);
    hc_buf_init(&after);
    hc_store_serialize(s, &before);
    hc_cache_stats_t st0 = stats_of(s, "sc");
    scan_seen_t *sc = sc_new();
    sc->n_stable = 200;
    CHECK(scan_all(s, sc, 7, NULL) > 0); /* at 0: nothing has expired yet */
    CHECK_EQ_INT(sc_missed(sc), 0);
    memset(sc->seen, 0, sizeof(sc->seen));
    uint64_t cursor = 0;
    do {
        cursor = hc_store_scan(s, "sc", 2, cursor, 7, 1000, scan_record, sc);
    } while (cursor != 0);
    int odd = 0, even = 0;
    for (int i = 0; i < 200; i++) {
        odd += i % 2 && sc->seen[i] != 0;
        even += i % 2 == 0 && sc->seen[i] == 1;
    }
    CHECK_EQ_INT(odd, 0);
    CHECK_EQ_INT(even, 100);
    hc_store_serialize(s, &after);
    CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    hc_cache_stats_t st1 = stats_of(s, "sc");
    CHECK_EQ_INT(st1.hits, st0.hits);
    CHECK_EQ_INT(st1.misses, st0.misses);
    CHECK_EQ_INT(st1.entries, st0.entries);
    hc_buf_free(&before);
    hc_buf_free(&after);
    hc_store_free(s);
}

/* No writes: every key exactly once, COUNT bounds the work of a call, a large COUNT takes
 * everything at once, and a callback that stops early loses nothing. */
static void test_scan_stable_table(void)
{
    hc_store_t *s = hc_store_new(0);
    scan_seen_t *sc = sc_new();
    sc->n_stable = 1000;
    for (int i = 0; i < sc->n_stable; i++)
        sc_put(s, sc, 's', i);
    int calls = scan_all(s, sc, 10, NULL);
    CHECK(calls >= 1000 / 20 && calls <= 1000 / 10 + 1); /* about COUNT entries a call */
    CHECK_EQ_INT(sc_missed(sc), 0);
    CHECK_EQ_INT(sc_dups(sc), 0);
    CHECK_EQ_INT(sc->ghosts, 0);
    memset(sc->seen, 0, sizeof(sc->seen));
    CHECK_EQ_INT(scan_all(s, sc, 1000000, NULL), 1);
    CHECK_EQ_INT(sc_missed(sc), 0);
    CHECK_EQ_INT(sc_dups(sc), 0);
    memset(sc->seen, 0, sizeof(sc->seen));
    sc->stop_every = 1;
    CHECK(scan_all(s, sc, 1000000, NULL) > 1);
    CHECK_EQ_INT(sc_missed(sc), 0);
    CHECK_EQ_INT(sc_dups(sc), 0);
    hc_store_free(s);
}

static int churn_next, churn_per_step;

/* Between calls: new churn keys (the table doubles again and again, resizing mid-scan). */
static void churn_grow(hc_store_t *s, scan_seen_t *sc, int step)
{
    (void)step;
    for (int k = 0; k < churn_per_step && churn_next < SC_CHURN_MAX; k++)
        sc_put(s, sc, 'c', churn_next++);
}

/* Between calls: 300 churn keys deleted (the table halves again and again). */
static void churn_shrink(hc_store_t *s, scan_seen_t *sc, int step)
{
    (void)step;
    for (int k = 0; k < 300 && churn_next > 0; k++)
        sc_del(s, sc, 'c', --churn_next);
}

/* Between calls: random inserts and deletes, in bursts that grow and shrink the table. */
static uint64_t churn_rng;

static void churn_random(hc_store_t *s, scan_seen_t *sc, int step)
{
    int grow = (step / 40) % 2 == 0;
    for (int k = 0; k < 60; k++) {
        churn_rng = churn_rng * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((churn_rng >> 33) % 8000);
        int want = grow ? (churn_rng >> 20) % 4 != 0 : (churn_rng >> 20) % 4 == 0;
        if (want && !sc->live[i])
            sc_put(s, sc, 'c', i);
        else if (!want && sc->live[i])
            sc_del(s, sc, 'c', i);
    }
}

static void test_scan_while_growing(void)
{
    hc_store_t *s = hc_store_new(0);
    static const size_t counts[] = {1, 3, 10, 64};
    for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
        scan_seen_t *sc = sc_new();
        sc->n_stable = 300;
        for (int i = 0; i < sc->n_stable; i++)
            sc_put(s, sc, 's', i);
        churn_next = 0;
        churn_per_step = 10 * (int)counts[ci];
        CHECK(scan_all(s, sc, counts[ci], churn_grow) > 0);
        CHECK(churn_next > 1000); /* the table doubled at least twice during the scan */
        CHECK_EQ_INT(sc_missed(sc), 0);
        CHECK_EQ_INT(sc->ghosts, 0);
        hc_cmd_t clear = mk(HC_OP_CLEAR, "sc", NULL, 0);
        CHECK_EQ_INT(hc_store_apply(s, &clear, 1, 0, NULL), 0);
    }
    hc_store_free(s);
}

static void test_scan_while_shrinking(void)
{
    hc_store_t *s = hc_store_new(0);
    static const size_t counts[] = {1, 5, 30};
    for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
        scan_seen_t *sc = sc_new();
        sc->n_stable = 100;
        for (churn_next = 0; churn_next < 30000; churn_next++)
            sc_put(s, sc, 'c', churn_next);
        for (int i = 0; i < sc->n_stable; i++)
            sc_put(s, sc, 's', i);
        CHECK(scan_all(s, sc, counts[ci], churn_shrink) > 0);
        CHECK_EQ_INT(sc_missed(sc), 0);
        CHECK_EQ_INT(sc->ghosts, 0);
        for (int i = 0; i < churn_next; i++)
            sc_del(s, sc, 'c', i);
        for (int i = 0; i < sc->n_stable; i++)
            sc_del(s, sc, 's', i);
        CHECK_EQ_INT(stats_of(s, "sc").entries, 0);
    }
    hc_store_free(s);
}

static void test_scan_random_churn(void)
{
    hc_store_t *s = hc_store_new(0);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        scan_seen_t *sc = sc_new();
        sc->n_stable = 500;
        for (int i = 0; i < sc->n_stable; i++)
            sc_put(s, sc, 's', i);
        churn_rng = seed;
        for (int i = 0; i < 8000; i++) /* start from a random mix */
            if (i % (int)(seed + 1) == 0)
                sc_put(s, sc, 'c', i);
        sc->stop_every = seed % 3 == 0 ? 2 : 0;
        CHECK(scan_all(s, sc, (size_t)seed * 2 - 1, churn_random) > 0);
        CHECK_EQ_INT(sc_missed(sc), 0);
        CHECK_EQ_INT(sc->ghosts, 0);
        hc_cmd_t clear = mk(HC_OP_CLEAR, "sc", NULL, 0);
        CHECK_EQ_INT(hc_store_apply(s, &clear, 1, 0, NULL), 0);
    }
    hc_store_free(s);
}

/* ---- glob (SCAN MATCH) ------------------------------------------------------------------ */

static void test_glob(void)
{
    static const struct {
        const char *pat, *str;
        int want;
    } cases[] = {
        {"", "", 1},
        {"", "a", 0},
        {"*", "", 1},
        {"*", "anything", 1},
        {"***", "x", 1},
        {"a*", "abc", 1},
        {"a*", "bac", 0},
        {"*c", "abc", 1},
        {"*c", "abcd", 0},
        {"a*c", "ac", 1},
        {"a*c", "abcbc", 1},
        {"a*c", "abcb", 0},
        {"*a*b*c*", "xaxbxcx", 1},
        {"*a*b*c*", "xaxcxb", 0},
        {"user:*:name", "user:42:name", 1},
        {"user:*:name", "user:42:names", 0},
        {"h*llo", "heeeello", 1},
        {"?", "", 0},
        {"?", "a", 1},
        {"??", "a", 0},
        {"a?c", "abc", 1},
        {"a?c", "ac", 0},
        {"[abc]", "b", 1},
        {"[abc]", "d", 0},
        {"[abc]", "", 0},
        {"[^abc]", "d", 1},
        {"[^abc]", "a", 0},
        {"h[ae]llo", "hello", 1},
        {"h[^e]llo", "hello", 0},
        {"h[^e]llo", "hallo", 1},
        {"[a-z]", "m", 1},
        {"[a-z]", "M", 0},
        {"[z-a]", "m", 1}, /* a range either way round */
        {"[0-9a-f]x", "cx", 1},
        {"[a-]", "-", 0}, /* Redis: "a-]" is the range a..], the class then never closes */
        {"[a-]", "^", 1},
        {"[\\]]", "]", 1}, /* escaped inside a class */
        {"[\\]]", "\\", 0},
        {"[]", "]", 0}, /* an empty class matches nothing */
        {"[^]", "q", 1},
        {"[abc", "b", 1}, /* a class missing its ']' runs to the end */
        {"[", "[", 0},
        {"\\*", "*", 1},
        {"\\*", "a", 0},
        {"\\?", "?", 1},
        {"\\?", "x", 0},
        {"\\[a]", "[a]", 1},
        {"a\\", "a\\", 1}, /* a trailing backslash is itself */
        {"\\a", "a", 1},
        {"*\\*", "ab*", 1},
        {"*\\*", "ab", 0},
        {"Key", "key", 0}, /* case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t work = 0;
        int got = hc_glob_match(cases[i].pat, strlen(cases[i].pat), cases[i].str,
                                strlen(cases[i].str), &work);
        if (got != cases[i].want) {
            fprintf(stderr, "  glob \"%s\" on \"%s\": got %d\n", cases[i].pat, cases[i].str, got);
            hc_test_failures_++;
        }
    }
    /* bytes, not C strings */
    static const unsigned char bin_key[] = {'a', 0, 0xff, 'z'};
    CHECK_EQ_INT(hc_glob_match("a?\xff*", 4, bin_key, sizeof(bin_key), NULL), 1);
    CHECK_EQ_INT(hc_glob_match("a\0*", 3, bin_key, sizeof(bin_key), NULL), 1);
    CHECK_EQ_INT(hc_glob_match("[\x80-\xff]", 5, "\xfe", 1, NULL), 1);
    /* backtracking stays bounded: O(pattern * key), never exponential */
    char pat[128], key[4096];
    snprintf(pat, sizeof(pat), "%s", "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b");
    memset(key, 'a', sizeof(key));
    uint64_t work = 0;
    CHECK_EQ_INT(hc_glob_match(pat, strlen(pat), key, sizeof(key), &work), 0);
    CHECK(work <= (uint64_t)(strlen(pat) + 1) * (sizeof(key) + 1) + 1);
    memset(pat, 'a', sizeof(pat));
    pat[0] = '*';
    pat[sizeof(pat) - 1] = 'b';
    work = 0;
    CHECK_EQ_INT(hc_glob_match(pat, sizeof(pat), key, sizeof(key), &work), 0);
    CHECK(work <= (uint64_t)(sizeof(pat) + 1) * (sizeof(key) + 1) + 1);
    key[sizeof(key) - 1] = 'b';
    CHECK_EQ_INT(hc_glob_match(pat, sizeof(pat), key, sizeof(key), NULL), 1);
}

static hc_test_t tests[] = {
    {"scan_missing_and_empty", test_scan_missing_and_empty},
    {"scan_one_key", test_scan_one_key},
    {"scan_expired_and_read_only", test_scan_expired_and_read_only},
    {"scan_stable_table", test_scan_stable_table},
    {"scan_while_growing", test_scan_while_growing},
    {"scan_while_shrinking", test_scan_while_shrinking},
    {"scan_random_churn", test_scan_random_churn},
    {"glob", test_glob},
};

HC_TEST_MAIN(tests)
