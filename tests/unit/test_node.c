/* test_node.c: the pieces of the cluster glue that can be tested without a loop: raft ids, the
 * hard state file, the raft message and command codecs, and the request-id dedupe window. */
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "hacache.h"
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
    CHECK_EQ_INT(hc_hardstate_load(path, &t, &v), HC_ENOTFOUND);
    REQUIRE(hc_hardstate_save(path, 7, 0xfeedfacecafebeefULL) == 0);
    REQUIRE(hc_hardstate_load(path, &t, &v) == 0);
    CHECK_EQ_INT(t, 7);
    CHECK(v == 0xfeedfacecafebeefULL);
    REQUIRE(hc_hardstate_save(path, 8, 0) == 0); /* replaced atomically */
    REQUIRE(hc_hardstate_load(path, &t, &v) == 0);
    CHECK_EQ_INT(t, 8);
    CHECK_EQ_INT(v, 0);
    /* corrupt / truncated files are refused, never read as zero */
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("hacache raft hard state v1\nterm 12\nvo", f);
    fclose(f);
    CHECK_EQ_INT(hc_hardstate_load(path, &t, &v), HC_EINVAL);
    /* no temp file left behind */
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    /* an unwritable place fails */
    char bad[4300];
    snprintf(bad, sizeof(bad), "%s/missing-dir/x.state", dir);
    CHECK_EQ_INT(hc_hardstate_save(bad, 1, 1), HC_EINTERNAL);
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
    REQUIRE(hc_raft_msg_encode(&m, &buf, &len) == 0);
    hc_raft_msg_decoded_t d;
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    const raft_message_t *g = &d.msg;
    CHECK_EQ_INT(g->type, RAFT_MSG_APPEND);
    CHECK(g->from == m.from && g->to == m.to && g->incarnation == m.incarnation);
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
    REQUIRE(hc_raft_msg_encode(&r, &buf, &len) == 0);
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
    REQUIRE(hc_raft_msg_encode(&r, &buf, &len) == 0);
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    CHECK_EQ_INT(d.msg.type, RAFT_MSG_PREVOTE);
    CHECK_EQ_INT(d.msg.vote.last_index, 100);
    CHECK_EQ_INT(d.msg.vote.last_term, 7);
    CHECK_EQ_INT(d.msg.flags, RAFT_MSGF_RECOVERING);
    hc_raft_msg_decoded_free(&d);

    memset(&r, 0, sizeof(r));
    r.type = RAFT_MSG_VOTE_RESP;
    r.vote_resp.granted = true;
    REQUIRE(hc_raft_msg_encode(&r, &buf, &len) == 0);
    REQUIRE(hc_raft_msg_decode(buf, len, &d) == 0);
    free(buf);
    CHECK(d.msg.vote_resp.granted);
    hc_raft_msg_decoded_free(&d);

    /* garbage and unknown types are refused */
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    CHECK_EQ_INT(hc_raft_msg_decode(junk, sizeof(junk), &d), HC_EINVAL);
    memset(&r, 0, sizeof(r));
    r.type = 99;
    REQUIRE(hc_raft_msg_encode(&r, &buf, &len) == 0);
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

static hc_test_t tests[] = {
    {"node_ids", test_node_ids},
    {"hardstate_roundtrip", test_hardstate_roundtrip},
    {"raft_message_roundtrip", test_raft_message_roundtrip},
    {"command_meta_roundtrip", test_command_meta_roundtrip},
    {"dedupe_window", test_dedupe_window},
};

HC_TEST_MAIN(tests)
