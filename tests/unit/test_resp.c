/* test_resp.c: unit tests of the RESP parser (server/resp.c): multibulk and inline commands,
 * frames split at every byte, pipelines, every bound and malformed input. */
#include "test.h"

#include "config.h"
#include "hacache.h"
#include "resp.h"

static const hc_resp_limits_t LIM = {
    .max_args = 8, .max_bulk = 32, .max_command = 64, .max_inline = 40};

/* Parses buf (n bytes) with LIM; returns the result code, fills *used, and the arguments joined
 * with '|' into out (for easy comparison). */
static int parse(const char *buf, size_t n, size_t *used, char *out, size_t cap)
{
    hc_resp_cmd_t cmd = {0};
    const char *err = NULL;
    int rv = hc_resp_parse(buf, n, &LIM, &cmd, used, &err);
    out[0] = '\0';
    if (rv == 1) {
        size_t o = 0;
        for (size_t i = 0; i < cmd.argc && o + cmd.argv[i].len + 2 < cap; i++) {
            if (i > 0) {
                out[o++] = '|';
            }
            memcpy(out + o, buf + cmd.argv[i].off, cmd.argv[i].len);
            o += cmd.argv[i].len;
        }
        out[o] = '\0';
    } else if (rv < 0 && err == NULL) {
        rv = 99; /* an error without a message fails the test */
    }
    hc_resp_cmd_free(&cmd);
    return rv;
}

static void test_multibulk(void)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    size_t used;
    char out[128];
    CHECK_EQ_INT(parse(in, sizeof(in) - 1, &used, out, sizeof(out)), 1);
    CHECK_EQ_INT(used, sizeof(in) - 1);
    CHECK_EQ_STR(out, "SET|k|hello");
}

static void test_binary_bulk(void)
{
    /* a bulk string may hold CRLF, NUL and '*' */
    static const char in[] = "*2\r\n$3\r\nGET\r\n$6\r\na\r\n\0*b\r\n";
    size_t used;
    hc_resp_cmd_t cmd = {0};
    const char *err;
    CHECK_EQ_INT(hc_resp_parse(in, sizeof(in) - 1, &LIM, &cmd, &used, &err), 1);
    CHECK_EQ_INT(used, sizeof(in) - 1);
    REQUIRE(cmd.argc == 2);
    CHECK_EQ_INT(cmd.argv[1].len, 6);
    CHECK(memcmp(in + cmd.argv[1].off, "a\r\n\0*b", 6) == 0);
    hc_resp_cmd_free(&cmd);
}

static void test_inline(void)
{
    static const struct {
        const char *in;
        int rv;
        size_t used;
        const char *args;
    } cases[] = {
        {"PING\r\n", 1, 6, "PING"},
        {"PING\n", 1, 5, "PING"},
        {"  SET \t k   v  \r\n", 1, 17, "SET|k|v"},
        {"\r\n", 1, 2, ""},
        {"\n", 1, 1, ""},
        {"GET k", 0, 0, ""},
        {"GET k\r", 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t used = 0;
        char out[128];
        int rv = parse(cases[i].in, strlen(cases[i].in), &used, out, sizeof(out));
        CHECK_EQ_INT(rv, cases[i].rv);
        if (rv == 1) {
            CHECK_EQ_INT(used, cases[i].used);
            CHECK_EQ_STR(out, cases[i].args);
        }
    }
}

static void test_empty_multibulk(void)
{
    size_t used;
    char out[16];
    CHECK_EQ_INT(parse("*0\r\n", 4, &used, out, sizeof(out)), 1);
    CHECK_EQ_INT(used, 4);
    CHECK_EQ_INT(parse("*-1\r\n", 5, &used, out, sizeof(out)), 1);
    CHECK_EQ_INT(used, 5);
    CHECK_EQ_INT(parse("*1\r\n$0\r\n\r\n", 10, &used, out, sizeof(out)), 1);
    CHECK_EQ_INT(used, 10);
    CHECK_EQ_STR(out, "");
}

/* A pipeline of mixed commands: every prefix that ends inside a command is "incomplete", and
 * the whole pipeline parses into the commands in order, each consuming exactly its bytes. */
static void test_split_everywhere_and_pipeline(void)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$4\r\nv\r\n1\r\n"
                             "PING\r\n"
                             "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n"
                             "ECHO  hi\n"
                             "*1\r\n$4\r\nQUIT\r\n";
    static const char *const want[] = {"SET|k1|v\r\n1", "PING", "GET|k1", "ECHO|hi", "QUIT"};
    size_t n = sizeof(in) - 1, pos = 0;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        size_t used;
        char out[128];
        REQUIRE(parse(in + pos, n - pos, &used, out, sizeof(out)) == 1);
        CHECK_EQ_STR(out, want[k]);
        for (size_t p = 0; p < used; p++) {
            size_t u2;
            char o2[128];
            int rv = parse(in + pos, p, &u2, o2, sizeof(o2));
            if (rv != 0) {
                fprintf(stderr, "  command %zu prefix %zu: rv %d\n", k, p, rv);
            }
            CHECK_EQ_INT(rv, 0);
        }
        pos += used;
    }
    CHECK_EQ_INT(pos, n);
}

static void test_bounds(void)
{
    static const struct {
        const char *in;
        int rv;
    } cases[] = {
        {"*9\r\n", HC_ETOOLARGE},        /* more than max_args, at once */
        {"*8\r\n", 0},                   /* at the bound: wait for more */
        {"*1\r\n$33\r\n", HC_ETOOLARGE}, /* bulk above max_bulk */
        {"*1\r\n$32\r\n", 0},            /* at the bound */
        {"*3\r\n$30\r\n012345678901234567890123456789\r\n$30\r\n", 0},
        {"*3\r\n$30\r\n012345678901234567890123456789\r\n$30\r\n"
         "012345678901234567890123456789\r\n$5\r\n",
         HC_ETOOLARGE},                                  /* 65 bytes > max_command */
        {"0123456789012345678901234567890123456789", 0}, /* 40 bytes inline: still waits */
        {"01234567890123456789012345678901234567890", HC_ETOOLARGE}, /* 41 without newline */
        {"a b c d e f g h\r\n", 1},                                  /* 8 inline words */
        {"a b c d e f g h i\r\n", HC_ETOOLARGE},                     /* 9 inline words */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t used;
        char out[128];
        int rv = parse(cases[i].in, strlen(cases[i].in), &used, out, sizeof(out));
        if (rv != cases[i].rv) {
            fprintf(stderr, "  case %zu: %s\n", i, cases[i].in);
        }
        CHECK_EQ_INT(rv, cases[i].rv);
    }
}

static void test_malformed(void)
{
    static const char *const cases[] = {
        "*x\r\n",
        "*\r\n",
        "*1\n$1\r\na\r\n",
        "*1\r\n:1\r\n",
        "*1\r\n$3\r\nabcXY",
        "*1\r\n$-1\r\n",
        "*1\r\n$3a\r\nabc\r\n",
        "*1\r\n$ 3\r\nabc\r\n",
        "*1111111111111111111111111111\r\n",
        "*1\r\n$3\rxabc\r\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t used;
        char out[128];
        int rv = parse(cases[i], strlen(cases[i]), &used, out, sizeof(out));
        if (rv != HC_EINVAL) {
            fprintf(stderr, "  case %zu: %s -> %d\n", i, cases[i], rv);
        }
        CHECK_EQ_INT(rv, HC_EINVAL);
    }
}

static void test_default_limits(void)
{
    hc_config_t c;
    hc_config_init(&c);
    c.max_key_size = 1024;
    c.max_value_size = 1 << 20;
    hc_resp_limits_t l;
    hc_resp_default_limits(&c, &l);
    CHECK_EQ_INT(l.max_bulk, (1 << 20) + 4096);
    CHECK(l.max_command > l.max_bulk);
    CHECK(l.max_args >= 1024);
    c.max_key_size = 64 * 1024;
    c.max_value_size = 100;
    hc_resp_default_limits(&c, &l);
    CHECK_EQ_INT(l.max_bulk, 64 * 1024 + 4096);
    hc_config_free(&c);
}

static hc_test_t tests[] = {
    {"multibulk", test_multibulk},
    {"binary_bulk", test_binary_bulk},
    {"inline", test_inline},
    {"empty_multibulk", test_empty_multibulk},
    {"split_everywhere_and_pipeline", test_split_everywhere_and_pipeline},
    {"bounds", test_bounds},
    {"malformed", test_malformed},
    {"default_limits", test_default_limits},
};

HC_TEST_MAIN(tests)
