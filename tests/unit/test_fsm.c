/* test_fsm.c: the protocol 3 commands of the state machine (BATCH, GET, SET_TTL, XX, KEEPTTL,
 * values as results) through the codec and hc_fsm_apply_vals, replica against replica. */
#include "codec.h"
#include "fsm.h"
#include "hacache.h"
#include "test.h"

#define NOW 1000000ull

static hc_cmd_t put(const char *k, const char *v)
{
    return (hc_cmd_t){.op = HC_OP_PUT,
                      .cache = "c",
                      .cache_len = 1,
                      .key = k,
                      .klen = strlen(k),
                      .val = v,
                      .vlen = strlen(v)};
}

static hc_cmd_t keyed(hc_op_t op, const char *k)
{
    return (hc_cmd_t){.op = op, .cache = "c", .cache_len = 1, .key = k, .klen = strlen(k)};
}

/* Encodes and decodes cmd (what every replica applies), then applies it to f. */
static int apply_wire(hc_fsm_t *f, const hc_cmd_t *cmd, uint64_t index, uint64_t now,
                      hc_apply_result_t *res, hc_buf_t *vals)
{
    uint8_t *buf;
    size_t len;
    if (hc_cmd_encode(cmd, &buf, &len) != 0) {
        return -1000;
    }
    hc_cmd_decoded_t d;
    int rv = hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d);
    free(buf);
    if (rv != 0) {
        return -1001;
    }
    hc_buf_reset(vals);
    rv = hc_fsm_apply_vals(f, &d.cmd, NULL, index, now, res, vals);
    hc_cmd_decoded_free(&d);
    return rv;
}

static int rec(const hc_buf_t *vals, size_t *pos, hc_val_t *v)
{
    return hc_vals_next(vals, pos, v);
}

static int val_is(const hc_val_t *v, const char *s)
{
    return v->has_value && v->len == strlen(s) && memcmp(v->value, s, v->len) == 0;
}

static void test_codec_batch_roundtrip(void)
{
    hc_cmd_t subs[3] = {put("a", "1"), keyed(HC_OP_GET, "a"), keyed(HC_OP_SET_TTL, "a")};
    subs[0].if_present = 1;
    subs[0].keep_ttl = 1;
    subs[0].want_old = 1;
    subs[2].ttl_ms = 5000;
    subs[2].no_default_ttl = 1;
    hc_cmd_t b = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = subs, .nsub = 3};
    CHECK_EQ_INT(hc_cmd_proto(&b), 3);
    CHECK_EQ_INT(hc_cmd_proto(&subs[0]), 3);
    hc_cmd_t plain = put("a", "1");
    CHECK_EQ_INT(hc_cmd_proto(&plain), 2);
    CHECK_EQ_INT(hc_cmd_has_vals(&plain), 0);
    CHECK_EQ_INT(hc_cmd_has_vals(&b), 1);
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode(&b, &buf, &len) == 0);
    hc_cmd_decoded_t d;
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    free(buf);
    REQUIRE(d.cmd.op == HC_OP_BATCH && d.cmd.nsub == 3);
    CHECK(d.cmd.sub[0].op == HC_OP_PUT && d.cmd.sub[0].if_present && d.cmd.sub[0].keep_ttl &&
          d.cmd.sub[0].want_old && d.cmd.sub[0].vlen == 1);
    CHECK(d.cmd.sub[1].op == HC_OP_GET && d.cmd.sub[1].klen == 1);
    CHECK(d.cmd.sub[2].op == HC_OP_SET_TTL && d.cmd.sub[2].ttl_ms == 5000 &&
          d.cmd.sub[2].no_default_ttl);
    hc_cmd_decoded_free(&d);

    /* a batch inside a batch, a batch without commands and a CLEAR in a batch are refused */
    hc_cmd_t nested = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = &b, .nsub = 1};
    REQUIRE(hc_cmd_encode(&nested, &buf, &len) == 0);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    free(buf);
    hc_cmd_t empty = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1};
    REQUIRE(hc_cmd_encode(&empty, &buf, &len) == 0);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    free(buf);
    hc_cmd_t clear = {.op = HC_OP_CLEAR, .cache = "c", .cache_len = 1};
    hc_cmd_t with_clear = {
        .op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = &clear, .nsub = 1};
    REQUIRE(hc_cmd_encode(&with_clear, &buf, &len) == 0);
    CHECK_EQ_INT(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d), HC_EINVAL);
    free(buf);
}

static void test_batch_results_in_order(void)
{
    hc_fsm_t *f = hc_fsm_new(0, 64);
    REQUIRE(f != NULL);
    hc_buf_t vals;
    hc_buf_init(&vals);
    hc_apply_result_t res;
    hc_cmd_t p0 = put("n", "abc");
    REQUIRE(apply_wire(f, &p0, 1, NOW, &res, &vals) == 0);
    CHECK(res.vals == NULL); /* a plain PUT has no records */

    /* MULTI: SET x 1, INCR x, GET x, INCR n (not an integer), DEL x nope, GET x */
    hc_cmd_t subs[7] = {put("x", "1"),          keyed(HC_OP_INCR, "x"), keyed(HC_OP_GET, "x"),
                        keyed(HC_OP_INCR, "n"), keyed(HC_OP_DEL, "x"),  keyed(HC_OP_DEL, "nope"),
                        keyed(HC_OP_GET, "x")};
    subs[1].incr_by = 41;
    subs[3].incr_by = 1;
    hc_cmd_t b = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = subs, .nsub = 7};
    REQUIRE(apply_wire(f, &b, 2, NOW, &res, &vals) == 0);
    REQUIRE(res.vals == &vals);
    size_t pos = 0;
    hc_val_t v;
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && !v.has_value);
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && v.integer == 42);
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && val_is(&v, "42") && v.integer == 0); /* no expiry */
    REQUIRE(rec(&vals, &pos, &v));
    CHECK_EQ_INT(v.status, HC_ENOTINT); /* its own error; the others still apply */
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && v.integer == 1);
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == HC_ENOTFOUND && v.integer == 0);
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == HC_ENOTFOUND && !v.has_value);
    CHECK(!rec(&vals, &pos, &v));
    hc_entry_view_t view;
    CHECK_EQ_INT(hc_store_get(hc_fsm_store(f), "c", 1, "x", 1, NOW, &view), HC_ENOTFOUND);
    CHECK_EQ_INT(hc_store_get(hc_fsm_store(f), "c", 1, "n", 1, NOW, &view), 0);
    hc_buf_free(&vals);
    hc_fsm_free(f);
}

static void test_set_options_and_ttl(void)
{
    hc_fsm_t *f = hc_fsm_new(0, 64);
    REQUIRE(f != NULL);
    hc_buf_t vals;
    hc_buf_init(&vals);
    hc_apply_result_t res;
    hc_entry_view_t view;
    size_t pos;
    hc_val_t v;
    uint64_t idx = 1;

    /* XX on an absent key: refused, nothing written; with GET: nil */
    hc_cmd_t xx = put("k", "v1");
    xx.if_present = 1;
    xx.want_old = 1;
    CHECK_EQ_INT(apply_wire(f, &xx, idx++, NOW, &res, &vals), HC_ECONFLICT);
    pos = 0;
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == HC_ECONFLICT && !v.has_value);
    CHECK_EQ_INT(hc_store_get(hc_fsm_store(f), "c", 1, "k", 1, NOW, &view), HC_ENOTFOUND);

    /* SET EX 10 s, then SET GET KEEPTTL: old value back, expiry kept */
    hc_cmd_t p = put("k", "v1");
    p.ttl_ms = 10000;
    REQUIRE(apply_wire(f, &p, idx++, NOW, &res, &vals) == 0);
    hc_cmd_t keep = put("k", "v2");
    keep.keep_ttl = 1;
    keep.want_old = 1;
    keep.if_present = 1;
    REQUIRE(apply_wire(f, &keep, idx++, NOW + 5, &res, &vals) == 0);
    pos = 0;
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && val_is(&v, "v1"));
    REQUIRE(hc_store_get(hc_fsm_store(f), "c", 1, "k", 1, NOW, &view) == 0);
    CHECK(view.expire_at_ms == NOW + 10000 && view.len == 2);

    /* PERSIST (SET_TTL without a TTL) removes it; a second PERSIST conflicts */
    hc_cmd_t persist = keyed(HC_OP_SET_TTL, "k");
    REQUIRE(apply_wire(f, &persist, idx++, NOW + 10, &res, &vals) == 0);
    REQUIRE(hc_store_get(hc_fsm_store(f), "c", 1, "k", 1, NOW + 20000, &view) == 0);
    CHECK(view.expire_at_ms == 0 && view.len == 2 && memcmp(view.data, "v2", 2) == 0);
    CHECK_EQ_INT(apply_wire(f, &persist, idx++, NOW + 10, &res, &vals), HC_ECONFLICT);
    /* EXPIRE: relative to the entry's now, value kept; absent key: not found */
    hc_cmd_t exp = keyed(HC_OP_SET_TTL, "k");
    exp.ttl_ms = 3000;
    REQUIRE(apply_wire(f, &exp, idx++, NOW + 100, &res, &vals) == 0);
    pos = 0;
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && v.integer == 1);
    REQUIRE(hc_store_get(hc_fsm_store(f), "c", 1, "k", 1, NOW, &view) == 0);
    CHECK(view.expire_at_ms == NOW + 3100);
    hc_cmd_t exp_absent = keyed(HC_OP_SET_TTL, "none");
    exp_absent.ttl_ms = 3000;
    CHECK_EQ_INT(apply_wire(f, &exp_absent, idx++, NOW, &res, &vals), HC_ENOTFOUND);

    /* GETDEL: DEL with the old value */
    hc_cmd_t gd = keyed(HC_OP_DEL, "k");
    gd.want_old = 1;
    REQUIRE(apply_wire(f, &gd, idx++, NOW + 200, &res, &vals) == 0);
    pos = 0;
    REQUIRE(rec(&vals, &pos, &v));
    CHECK(v.status == 0 && val_is(&v, "v2") && v.integer == 1);
    CHECK_EQ_INT(hc_store_get(hc_fsm_store(f), "c", 1, "k", 1, NOW, &view), HC_ENOTFOUND);
    hc_buf_free(&vals);
    hc_fsm_free(f);
}

/* Two replicas applying the same entries end byte-identical; a retried id gets no values. */
static void test_replicas_agree_and_retries(void)
{
    hc_fsm_t *a = hc_fsm_new(0, 64), *b = hc_fsm_new(0, 64);
    REQUIRE(a != NULL && b != NULL);
    hc_buf_t vals;
    hc_buf_init(&vals);
    hc_apply_result_t res;
    hc_cmd_t subs[3] = {put("m1", "a"), put("m2", "b"), keyed(HC_OP_SET_TTL, "m1")};
    subs[0].ttl_ms = 700;
    subs[2].ttl_ms = 900;
    hc_cmd_t mset = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = subs, .nsub = 3};
    const uint8_t rid[16] = {7};
    for (int r = 0; r < 2; r++) {
        hc_fsm_t *f = r ? b : a;
        REQUIRE(hc_fsm_apply_vals(f, &mset, rid, 5, NOW, &res, &vals) == 0);
        CHECK(res.vals == &vals);
        hc_buf_reset(&vals);
    }
    uint8_t da[HC_DIGEST_BYTES], db[HC_DIGEST_BYTES];
    hc_store_digest(hc_fsm_store(a), "c", 1, da);
    hc_store_digest(hc_fsm_store(b), "c", 1, db);
    CHECK(memcmp(da, db, sizeof(da)) == 0);
    hc_entry_view_t view;
    REQUIRE(hc_store_get(hc_fsm_store(a), "c", 1, "m1", 2, NOW, &view) == 0);
    CHECK(view.expire_at_ms == NOW + 900);
    /* the same request id again: not applied again, first status, values not kept */
    hc_buf_reset(&vals);
    CHECK_EQ_INT(hc_fsm_apply_vals(a, &mset, rid, 6, NOW + 50, &res, &vals), 0);
    CHECK(res.vals == NULL && vals.len == 0);
    REQUIRE(hc_store_get(hc_fsm_store(a), "c", 1, "m1", 2, NOW, &view) == 0);
    CHECK(view.version == 5);
    hc_buf_free(&vals);
    hc_fsm_free(a);
    hc_fsm_free(b);
}

/* MSET's room is planned for the batch as a whole: too big for the bound is refused before
 * anything is written; otherwise the planned victims make every write of it fit. */
static void test_batch_room_planned_whole(void)
{
    hc_fsm_t *f = hc_fsm_new(8192, 64);
    REQUIRE(f != NULL);
    static char big[3000];
    memset(big, 'x', sizeof(big));
    hc_cmd_t subs[3];
    const char *keys[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        subs[i] = put(keys[i], "");
        subs[i].val = big;
        subs[i].vlen = sizeof(big);
    }
    hc_cmd_t mset3 = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = subs, .nsub = 3};
    hc_cmd_list_t room = {0};
    CHECK_EQ_INT(hc_fsm_plan_put(f, &mset3, NOW, &room), HC_ENOMEM);
    hc_cmd_list_free(&room);

    /* six small entries first; a 2-key MSET then evicts enough for both keys */
    static char small[1000];
    memset(small, 'y', sizeof(small));
    uint64_t idx = 1;
    hc_apply_result_t res;
    for (int i = 0; i < 6; i++) {
        char k[4] = {'o', (char)('0' + i), 0};
        hc_cmd_t p = put(k, "");
        p.val = small;
        p.vlen = sizeof(small);
        REQUIRE(hc_fsm_apply(f, &p, NULL, idx++, NOW, &res) == 0);
    }
    hc_cmd_t mset2 = {.op = HC_OP_BATCH, .cache = "c", .cache_len = 1, .sub = subs, .nsub = 2};
    memset(&room, 0, sizeof(room));
    REQUIRE(hc_fsm_plan_put(f, &mset2, NOW, &room) == 0);
    CHECK(room.n >= 2);
    for (size_t i = 0; i < room.n; i++) {
        hc_fsm_apply(f, &room.v[i], NULL, idx++, NOW, &res);
    }
    hc_cmd_list_free(&room);
    hc_buf_t vals;
    hc_buf_init(&vals);
    REQUIRE(hc_fsm_apply_vals(f, &mset2, NULL, idx++, NOW, &res, &vals) == 0);
    size_t pos = 0;
    hc_val_t v;
    for (int i = 0; i < 2; i++) {
        REQUIRE(hc_vals_next(&vals, &pos, &v));
        CHECK_EQ_INT(v.status, 0);
    }
    hc_buf_free(&vals);
    hc_fsm_free(f);
}

static hc_test_t tests[] = {
    {"batch_room_planned_whole", test_batch_room_planned_whole},
    {"codec_batch_roundtrip", test_codec_batch_roundtrip},
    {"batch_results_in_order", test_batch_results_in_order},
    {"set_options_and_ttl", test_set_options_and_ttl},
    {"replicas_agree_and_retries", test_replicas_agree_and_retries},
};
HC_TEST_MAIN(tests)
