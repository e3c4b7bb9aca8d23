/* test_node.c: the pieces of the cluster glue that can be tested without a loop: raft ids, the
 * hard state file, the raft message and command codecs, the request-id dedupe window and the
 * node snapshot format. */
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "hacache.pb-c.h"
#include "hacache.h"
#include "cluster/cluster.h"
#include "cluster/datadir.h"
#include "fsm.h"
#include "node.h"
#include "test.h"

static void test_node_ids(void)
{
    REQUIRE(sodium_init() >= 0);
    uint64_t a = hc_node_id_of("127.0.0.1:7000");
    CHECK(a != 0);
    CHECK(a == hc_node_id_of("127.0.0.1:7000"));
    CHECK(a != hc_node_id_of("127.0.0.1:7001"));
    /* lowercase before hashing */
    CHECK(hc_node_id_of("Hacache-0.Hacache:7000") == hc_node_id_of("hacache-0.hacache:7000"));
}

static void test_hardstate_roundtrip(void)
{
    char dir[] = "/tmp/hc-test-node-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[4200];
    REQUIRE(hc_hardstate_path(dir, "127.0.0.1", 7000, path, sizeof(path)) == 0);
    char want[4200];
    snprintf(want, sizeof(want), "%s/raft-127.0.0.1_7000.state", dir);
    CHECK_EQ_STR(path, want);
    char p6[4200];
    REQUIRE(hc_hardstate_path(dir, "::1", 7000, p6, sizeof(p6)) == 0);
    CHECK(strstr(p6, "raft-__1_7000.state") != NULL);
    char tiny[8];
    CHECK_EQ_INT(hc_hardstate_path(dir, "h", 1, tiny, sizeof(tiny)), HC_ETOOLARGE);

    uint64_t t = 9, v = 9;
    bool nv = true;
    CHECK_EQ_INT(hc_hardstate_load(path, &t, &v, &nv), HC_ENOTFOUND);
    REQUIRE(hc_hardstate_save(path, 7, 0xfeedfacecafebeefULL, false) == 0);
    REQUIRE(hc_hardstate_load(path, &t, &v, &nv) == 0);
    CHECK_EQ_INT(t, 7);
    CHECK(v == 0xfeedfacecafebeefULL);
    CHECK(!nv);
    REQUIRE(hc_hardstate_save(path, 8, 0, false) == 0); /* replaced atomically */
    REQUIRE(hc_hardstate_load(path, &t, &v, &nv) == 0);
    CHECK_EQ_INT(t, 8);
    CHECK_EQ_INT(v, 0);
    /* an id that once lost its state stays without a vote across restarts */
    REQUIRE(hc_hardstate_save(path, 9, 3, true) == 0);
    REQUIRE(hc_hardstate_load(path, &t, &v, &nv) == 0);
    CHECK_EQ_INT(t, 9);
    CHECK_EQ_INT(v, 3);
    CHECK(nv);
    /* corrupt / truncated files are refused, never read as zero */
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("hacache raft hard state v1\nterm 12\nvo", f);
    fclose(f);
    CHECK_EQ_INT(hc_hardstate_load(path, &t, &v, &nv), HC_EINVAL);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("hacache raft hard state v1\nterm 12\nvote 0\nnovote 0\n", f);
    fclose(f);
    CHECK_EQ_INT(hc_hardstate_load(path, &t, &v, &nv), HC_EINVAL);
    /* no temp file left behind */
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    /* an unwritable place fails */
    char bad[4300];
    snprintf(bad, sizeof(bad), "%s/missing-dir/x.state", dir);
    CHECK_EQ_INT(hc_hardstate_save(bad, 1, 1, false), HC_EINTERNAL);
    unlink(path);
    rmdir(dir);
}

static void test_raft_message_roundtrip(void)
{
    static const char d1[] = "first", d2[] = "";
    raft_entry_t ents[2] = {
        {.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .data = d1, .len = sizeof(d1) - 1},
        {.term = 4, .index = 12, .type = RAFT_ENTRY_NOOP, .data = d2, .len = 0}};
    raft_message_t m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 0x1122334455667788ULL;
    m.to = 0x8877665544332211ULL;
    m.term = 4;
    m.incarnation = 0xdeadbeef00000001ULL;
    m.epoch = 9;
    m.flags = RAFT_MSGF_CAUGHT_UP | RAFT_MSGF_RESET;
    m.append.prev_index = 10;
    m.append.prev_term = 3;
    m.append.commit = 9;
    m.append.seq = 77;
    m.append.to_incarnation = 0x42;
    m.append.entries = ents;
    m.append.n_entries = 2;
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_raft_msg_encode(&m, 0x1234, &buf, &len) == 0);
    hc_raft_msg_decoded_t d;
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    CHECK(d.lifetime == 0x1234 || d.lifetime == 0);
    free(buf);
    const raft_message_t *g = &d.msg;
    CHECK_EQ_INT(g->type, RAFT_MSG_APPEND);
    CHECK(g->from == m.from && g->to == m.to && g->incarnation == m.incarnation);
    CHECK_EQ_INT(g->epoch, 9);
    CHECK_EQ_INT(g->term, 4);
    CHECK_EQ_INT(g->flags, m.flags);
    CHECK_EQ_INT(g->append.prev_index, 10);
    CHECK_EQ_INT(g->append.prev_term, 3);
    CHECK_EQ_INT(g->append.commit, 9);
    CHECK_EQ_INT(g->append.seq, 77);
    CHECK_EQ_INT(g->append.to_incarnation, 0x42);
    REQUIRE(g->append.n_entries == 2);
    CHECK_EQ_INT(g->append.entries[0].index, 11);
    CHECK_EQ_INT(g->append.entries[1].index, 12);
    CHECK_EQ_INT(g->append.entries[1].term, 4);
    CHECK_EQ_INT(g->append.entries[1].type, RAFT_ENTRY_NOOP);
    CHECK(g->append.entries[0].len == 5 && memcmp(g->append.entries[0].data, "first", 5) == 0);
    hc_raft_msg_decoded_free(&d);

    /* every other message type keeps its union arm */
    raft_message_t r;
    memset(&r, 0, sizeof(r));
    r.type = RAFT_MSG_APPEND_RESP;
    r.from = 1;
    r.to = 2;
    r.append_resp.success = false;
    r.append_resp.index = 5;
    r.append_resp.hint_index = 4;
    r.append_resp.hint_term = 2;
    r.append_resp.last_index = 6;
    r.append_resp.seq = 9;
    REQUIRE(hc_raft_msg_encode(&r, 0, &buf, &len) == 0);
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    CHECK(!d.msg.append_resp.success);
    CHECK_EQ_INT(d.msg.append_resp.index, 5);
    CHECK_EQ_INT(d.msg.append_resp.hint_index, 4);
    CHECK_EQ_INT(d.msg.append_resp.hint_term, 2);
    CHECK_EQ_INT(d.msg.append_resp.last_index, 6);
    CHECK_EQ_INT(d.msg.append_resp.seq, 9);
    hc_raft_msg_decoded_free(&d);

    memset(&r, 0, sizeof(r));
    r.type = RAFT_MSG_PREVOTE;
    r.from = 1;
    r.to = 2;
    r.flags = RAFT_MSGF_RECOVERING;
    r.vote.last_index = 100;
    r.vote.last_term = 7;
    r.vote.claim_index = 323;
    r.vote.claim_epoch = 2;
    r.vote.n_claim = 3;
    r.vote.claim[0] = 8;
    r.vote.claim[1] = 0xfedcba9876543210ull;
    r.vote.claim[2] = 3;
    REQUIRE(hc_raft_msg_encode(&r, 0, &buf, &len) == 0);
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    CHECK_EQ_INT(d.msg.type, RAFT_MSG_PREVOTE);
    CHECK_EQ_INT(d.msg.vote.last_index, 100);
    CHECK_EQ_INT(d.msg.vote.last_term, 7);
    CHECK_EQ_INT(d.msg.flags, RAFT_MSGF_RECOVERING);
    CHECK_EQ_INT(d.msg.vote.claim_index, 323);
    CHECK_EQ_INT(d.msg.vote.claim_epoch, 2);
    REQUIRE(d.msg.vote.n_claim == 3);
    CHECK(d.msg.vote.claim[0] == 8 && d.msg.vote.claim[1] == 0xfedcba9876543210ull &&
          d.msg.vote.claim[2] == 3);
    hc_raft_msg_decoded_free(&d);

    /* a claim longer than a configuration can be is refused, not truncated */
    {
        Hacache__RaftMessage pr = HACACHE__RAFT_MESSAGE__INIT;
        uint64_t ids[RAFT_MAX_MEMBERS + 1] = {0};
        pr.type = RAFT_MSG_VOTE;
        pr.n_claim = RAFT_MAX_MEMBERS + 1;
        pr.claim = ids;
        CHECK_EQ_INT(hc_raft_msg_from_pb(&pr, &d), HC_EINVAL);
        pr.n_claim = RAFT_MAX_MEMBERS;
        CHECK_EQ_INT(hc_raft_msg_from_pb(&pr, &d), 0);
        CHECK_EQ_INT(d.msg.vote.n_claim, RAFT_MAX_MEMBERS);
        free(d.entries);
    }

    memset(&r, 0, sizeof(r));
    r.type = RAFT_MSG_VOTE_RESP;
    r.vote_resp.granted = true;
    REQUIRE(hc_raft_msg_encode(&r, 0, &buf, &len) == 0);
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    CHECK(d.msg.vote_resp.granted);
    hc_raft_msg_decoded_free(&d);

    /* garbage and unknown types are refused */
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    CHECK_EQ_INT(hc_raft_msg_decode(junk, sizeof(junk), &d), HC_EINVAL);
    memset(&r, 0, sizeof(r));
    r.type = 99;
    REQUIRE(hc_raft_msg_encode(&r, 0, &buf, &len) == 0);
    CHECK_EQ_INT(hc_raft_msg_decode(buf, len, &d), HC_EINVAL);
    free(buf);
}

static void test_command_meta_roundtrip(void)
{
    hc_cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = HC_OP_PUT;
    c.cache = "c";
    c.cache_len = 1;
    c.key = "k";
    c.klen = 1;
    c.val = "v";
    c.vlen = 1;
    c.expire_at_ms = 123;
    hc_cmd_meta_t meta = {.has_request_id = 1, .now_ms = 1700000000000ULL};
    for (int i = 0; i < HC_REQUEST_ID_BYTES; i++) {
        meta.request_id[i] = (uint8_t)(i * 7 + 1);
    }
    uint8_t *buf;
    size_t len;
    REQUIRE(hc_cmd_encode_meta(&c, &meta, &buf, &len) == 0);
    hc_cmd_decoded_t d;
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    free(buf);
    CHECK(d.meta.has_request_id);
    CHECK(memcmp(d.meta.request_id, meta.request_id, HC_REQUEST_ID_BYTES) == 0);
    CHECK(d.meta.now_ms == meta.now_ms);
    CHECK_EQ_INT(d.cmd.expire_at_ms, 123);
    hc_cmd_decoded_free(&d);
    /* without meta: no request id, now 0 */
    REQUIRE(hc_cmd_encode(&c, &buf, &len) == 0);
    REQUIRE(hc_cmd_decode(buf, len, HC_CMD_MAX_ENCODED, &d) == 0);
    free(buf);
    CHECK(!d.meta.has_request_id);
    CHECK_EQ_INT(d.meta.now_ms, 0);
    hc_cmd_decoded_free(&d);
}

static void mkid(uint8_t id[16], uint32_t n)
{
    memset(id, 0, 16);
    /* vary the hashed prefix and the tail so bucket chains get exercised */
    memcpy(id, &n, sizeof(n));
    id[15] = (uint8_t)n;
}

static void test_dedupe_window(void)
{
    hc_dedupe_t *d = hc_dedupe_new(4);
    REQUIRE(d != NULL);
    uint8_t id[16];
    hc_dedupe_result_t r, got;
    for (uint32_t i = 1; i <= 4; i++) {
        mkid(id, i);
        CHECK(!hc_dedupe_find(d, id, NULL));
        memset(&r, 0, sizeof(r));
        r.index = 100 + i;
        r.status = i == 2 ? HC_ECONFLICT : 0;
        r.res.version = 100 + i;
        hc_dedupe_add(d, id, &r);
    }
    mkid(id, 2);
    REQUIRE(hc_dedupe_find(d, id, &got));
    CHECK_EQ_INT(got.index, 102);
    CHECK_EQ_INT(got.status, HC_ECONFLICT);
    /* a fifth id pushes the oldest out, the rest stay */
    mkid(id, 5);
    r.index = 105;
    r.status = 0;
    hc_dedupe_add(d, id, &r);
    mkid(id, 1);
    CHECK(!hc_dedupe_find(d, id, NULL));
    for (uint32_t i = 2; i <= 5; i++) {
        mkid(id, i);
        CHECK(hc_dedupe_find(d, id, &got));
        CHECK_EQ_INT(got.index, 100 + i);
    }
    /* many more: always exactly the last `cap` ids */
    for (uint32_t i = 6; i < 1000; i++) {
        mkid(id, i);
        r.index = i;
        hc_dedupe_add(d, id, &r);
    }
    for (uint32_t i = 1; i < 1000; i++) {
        mkid(id, i);
        CHECK_EQ_INT(hc_dedupe_find(d, id, NULL), i >= 996);
    }
    hc_dedupe_clear(d);
    mkid(id, 999);
    CHECK(!hc_dedupe_find(d, id, NULL));
    hc_dedupe_free(d);
}

static void test_dedupe_serialize(void)
{
    hc_dedupe_t *d = hc_dedupe_new(8), *e = hc_dedupe_new(8), *small = hc_dedupe_new(2);
    REQUIRE(d != NULL && e != NULL && small != NULL);
    uint8_t id[16];
    hc_dedupe_result_t r, got;
    for (uint32_t i = 1; i <= 11; i++) { /* wraps the ring: ids 4..11 stay */
        mkid(id, i);
        memset(&r, 0, sizeof(r));
        r.index = 1000 + i;
        r.status = i % 2 ? HC_ECONFLICT : 0;
        r.res.version = 2000 + i;
        r.res.integer = -(int64_t)i;
        r.res.existed = 1;
        r.res.removed = i;
        hc_dedupe_add(d, id, &r);
    }
    hc_buf_t b;
    hc_buf_init(&b);
    hc_dedupe_serialize(d, &b);
    REQUIRE(!b.failed);
    CHECK_EQ_INT(hc_dedupe_load(e, b.data, b.len), 0);
    for (uint32_t i = 1; i <= 11; i++) {
        mkid(id, i);
        int in = hc_dedupe_find(e, id, &got);
        CHECK_EQ_INT(in, i >= 4);
        if (in) {
            CHECK_EQ_INT(got.index, 1000 + i);
            CHECK_EQ_INT(got.status, i % 2 ? HC_ECONFLICT : 0);
            CHECK_EQ_INT(got.res.version, 2000 + i);
            CHECK_EQ_INT(got.res.integer, -(int64_t)i);
            CHECK_EQ_INT(got.res.removed, i);
        }
    }
    /* the loaded window keeps the age order: the next add evicts id 4 */
    mkid(id, 12);
    hc_dedupe_add(e, id, &r);
    mkid(id, 4);
    CHECK(!hc_dedupe_find(e, id, NULL));
    mkid(id, 5);
    CHECK(hc_dedupe_find(e, id, NULL));
    /* malformed: truncated, too many ids for the window, trailing bytes */
    CHECK_EQ_INT(hc_dedupe_load(e, b.data, b.len - 1), HC_EINVAL);
    CHECK_EQ_INT(hc_dedupe_load(e, b.data, 3), HC_EINVAL);
    CHECK_EQ_INT(hc_dedupe_load(small, b.data, b.len), HC_EINVAL);
    hc_buf_append(&b, "x", 1);
    CHECK_EQ_INT(hc_dedupe_load(e, b.data, b.len), HC_EINVAL);
    mkid(id, 5);
    CHECK(!hc_dedupe_find(e, id, NULL)); /* left empty */
    hc_buf_free(&b);
    hc_dedupe_free(d);
    hc_dedupe_free(e);
    hc_dedupe_free(small);
}

static void test_node_snapshot_roundtrip(void)
{
    hc_store_t *s = hc_store_new(0);
    hc_dedupe_t *d = hc_dedupe_new(16);
    REQUIRE(s != NULL && d != NULL);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        hc_cmd_t c = {.op = HC_OP_PUT,
                      .cache = "c",
                      .cache_len = 1,
                      .key = k,
                      .klen = strlen(k),
                      .val = "v",
                      .vlen = 1,
                      .expire_at_ms = i % 2 ? 0 : 90000};
        REQUIRE(hc_store_apply(s, &c, 10 + (uint64_t)i, 1000, NULL) == 0);
    }
    uint8_t id[16];
    hc_dedupe_result_t r = {.index = 42, .status = 0};
    mkid(id, 7);
    hc_dedupe_add(d, id, &r);
    hc_buf_t b;
    hc_buf_init(&b);
    hc_fsm_snapshot_write(s, d, &b);
    REQUIRE(!b.failed);
    hc_store_t *t = hc_store_new(0);
    hc_dedupe_t *e = hc_dedupe_new(16);
    REQUIRE(t != NULL && e != NULL);
    CHECK_EQ_INT(hc_fsm_snapshot_read(b.data, b.len, t, e), 0);
    uint8_t d1[HC_DIGEST_BYTES], d2[HC_DIGEST_BYTES];
    hc_store_digest(s, "c", 1, d1);
    hc_store_digest(t, "c", 1, d2);
    CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
    hc_dedupe_result_t got;
    CHECK(hc_dedupe_find(e, id, &got) && got.index == 42);
    hc_store_free(t);
    /* every truncation and trailing garbage rejected; the store stays empty */
    for (size_t n = 0; n < b.len; n++) {
        t = hc_store_new(0);
        REQUIRE(t != NULL);
        CHECK_EQ_INT(hc_fsm_snapshot_read(b.data, n, t, e), HC_EINVAL);
        CHECK_EQ_INT(hc_store_memory(t), 0);
        hc_store_free(t);
    }
    hc_buf_append(&b, "z", 1);
    t = hc_store_new(0);
    REQUIRE(t != NULL);
    CHECK_EQ_INT(hc_fsm_snapshot_read(b.data, b.len, t, e), HC_EINVAL);
    hc_store_free(t);
    hc_buf_free(&b);
    hc_store_free(s);
    hc_dedupe_free(d);
    hc_dedupe_free(e);
}

static void test_members_file(void)
{
    char dir[] = "/tmp/hc-members-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/raft-x.state.members", dir);
    uint64_t ix = 0, ep = 0;
    raft_members_t m, got;
    CHECK_EQ_INT(hc_members_load(path, &ix, &ep, &got), HC_ENOTFOUND);
    memset(&m, 0, sizeof(m));
    m.n = 3;
    m.m[0] = (raft_member_t){.id = 0x1122334455667788ull, .role = RAFT_VOTER};
    m.m[1] = (raft_member_t){.id = 2, .role = RAFT_LEARNER};
    m.m[2] = (raft_member_t){.id = 0xffffffffffffffffull, .role = RAFT_VOTER};
    REQUIRE(hc_members_save(path, 4711, 3, &m) == 0);
    REQUIRE(hc_members_load(path, &ix, &ep, &got) == 0);
    CHECK_EQ_INT(ix, 4711);
    CHECK_EQ_INT(ep, 3);
    REQUIRE(got.n == 3);
    for (int i = 0; i < 3; i++) {
        CHECK(got.m[i].id == m.m[i].id && got.m[i].role == m.m[i].role);
    }
    /* the full size round-trips; corrupt files are refused, not half read */
    m.n = RAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < m.n; i++) {
        m.m[i] = (raft_member_t){.id = 0xf000000000000000ull + i, .role = RAFT_VOTER};
    }
    REQUIRE(hc_members_save(path, 1, 0, &m) == 0);
    REQUIRE(hc_members_load(path, &ix, &ep, &got) == 0);
    CHECK_EQ_INT(got.n, RAFT_MAX_MEMBERS);
    static const char *bad[] = {
        "hacache raft members v1\nindex 1\nepoch 0\n", /* no member */
        "hacache raft members v1\nindex 1\nepoch 0\nvoter 0000000000000000\n",
        "hacache raft members v1\nindex 1\nepoch 0\nwitness 0000000000000001\n",
        "hacache raft members v1\nindex 1\nepoch 0\nvoter 01", /* truncated */
        "hacache raft members v2\nindex 1\nepoch 0\nvoter 0000000000000001\n",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        FILE *f = fopen(path, "w");
        REQUIRE(f != NULL);
        fputs(bad[k], f);
        fclose(f);
        CHECK_EQ_INT(hc_members_load(path, &ix, &ep, &got), HC_EINVAL);
    }
    FILE *f = fopen(path, "w"); /* more members than a configuration holds */
    REQUIRE(f != NULL);
    fputs("hacache raft members v1\nindex 1\nepoch 0\n", f);
    for (int i = 0; i <= RAFT_MAX_MEMBERS; i++) {
        fprintf(f, "voter %016x\n", i + 1);
    }
    fclose(f);
    CHECK_EQ_INT(hc_members_load(path, &ix, &ep, &got), HC_EINVAL);
    unlink(path);
    rmdir(dir);
}

static hc_test_t tests[] = {
    {"members_file", test_members_file},
    {"node_ids", test_node_ids},
    {"hardstate_roundtrip", test_hardstate_roundtrip},
    {"raft_message_roundtrip", test_raft_message_roundtrip},
    {"command_meta_roundtrip", test_command_meta_roundtrip},
    {"dedupe_window", test_dedupe_window},
    {"dedupe_serialize", test_dedupe_serialize},
    {"node_snapshot_roundtrip", test_node_snapshot_roundtrip},
};

HC_TEST_MAIN(tests)
