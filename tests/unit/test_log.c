/* test_log.c: log lines are single lines in logfmt or valid-looking JSON, levels filter. */
#include "log.h"
#include "hacache.h"
#include "test.h"

#include <stdio.h>

static char *capture(hc_log_level_t threshold, hc_log_format_t fmt, hc_log_level_t level,
                     const char *msg, const char *val)
{
    static char buf[8192];
    FILE *f = tmpfile();
    if (f == NULL) {
        return NULL;
    }
    hc_log_setup(threshold, fmt, f);
    hc_log(level, msg, HC_LS("peer", val), HC_LI("n", -3), HC_LB("ok", 1));
    hc_log_setup(HC_LOG_INFO, HC_LOG_TEXT, NULL);
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_logfmt(void)
{
    char *s = capture(HC_LOG_INFO, HC_LOG_TEXT, HC_LOG_INFO, "peer connected", "a:1");
    REQUIRE(s != NULL);
    CHECK(strstr(s, "level=info") != NULL);
    CHECK(strstr(s, "msg=\"peer connected\"") != NULL);
    CHECK(strstr(s, " peer=a:1 n=-3 ok=true\n") != NULL);
    CHECK(strchr(s, '\n') == s + strlen(s) - 1); /* exactly one line */
}

static void test_logfmt_quotes_and_newlines(void)
{
    char *s = capture(HC_LOG_INFO, HC_LOG_TEXT, HC_LOG_WARN, "m", "x y\n\"z\"");
    REQUIRE(s != NULL);
    CHECK(strstr(s, "peer=\"x y\\n\\\"z\\\"\"") != NULL);
    CHECK(strchr(s, '\n') == s + strlen(s) - 1);
}

static void test_json(void)
{
    char *s = capture(HC_LOG_DEBUG, HC_LOG_JSON, HC_LOG_DEBUG, "hello", "q\"v");
    REQUIRE(s != NULL);
    CHECK(s[0] == '{');
    CHECK(strstr(s, "\"level\":\"debug\"") != NULL);
    CHECK(strstr(s, "\"msg\":\"hello\"") != NULL);
    CHECK(strstr(s, "\"peer\":\"q\\\"v\",\"n\":-3,\"ok\":true}\n") != NULL);
}

static void test_level_filter(void)
{
    char *s = capture(HC_LOG_WARN, HC_LOG_TEXT, HC_LOG_INFO, "hidden", "x");
    REQUIRE(s != NULL);
    CHECK_EQ_STR(s, "");
    s = capture(HC_LOG_WARN, HC_LOG_TEXT, HC_LOG_ERROR, "shown", "x");
    CHECK(strstr(s, "level=error") != NULL);
}

static void test_parse(void)
{
    hc_log_level_t l;
    hc_log_format_t f;
    CHECK(hc_log_level_parse("TRACE", &l) == 0 && l == HC_LOG_TRACE);
    CHECK(hc_log_level_parse("warn", &l) == 0 && l == HC_LOG_WARN);
    CHECK_EQ_INT(hc_log_level_parse("verbose", &l), HC_EINVAL);
    CHECK(hc_log_format_parse("json", &f) == 0 && f == HC_LOG_JSON);
    CHECK(hc_log_format_parse("text", &f) == 0 && f == HC_LOG_TEXT);
    CHECK_EQ_INT(hc_log_format_parse("xml", &f), HC_EINVAL);
}

typedef struct {
    int calls;
    hc_log_level_t level;
    char line[512];
} sink_t;

static void sink(void *ud, hc_log_level_t level, const char *line)
{
    sink_t *k = ud;
    k->calls++;
    k->level = level;
    snprintf(k->line, sizeof(k->line), "%s", line);
}

/* A sink gets each line (no newline) instead of the stream; unset only removes its own. */
static void test_sink(void)
{
    sink_t a = {0}, b = {0};
    hc_log_setup(HC_LOG_INFO, HC_LOG_TEXT, NULL);
    hc_log_set_sink(sink, &a);
    hc_log(HC_LOG_WARN, "to the sink", HC_LU("n", 7));
    hc_log(HC_LOG_DEBUG, "filtered", HC_LU("n", 8));
    CHECK_EQ_INT(a.calls, 1);
    CHECK_EQ_INT(a.level, HC_LOG_WARN);
    CHECK(strstr(a.line, "level=warn msg=\"to the sink\" n=7") != NULL);
    CHECK(strchr(a.line, '\n') == NULL);
    hc_log_unset_sink(sink, &b); /* not b's: a stays */
    hc_log(HC_LOG_INFO, "again");
    CHECK_EQ_INT(a.calls, 2);
    CHECK_EQ_INT(b.calls, 0);
    hc_log_unset_sink(sink, &a);
    char *s = capture(HC_LOG_INFO, HC_LOG_TEXT, HC_LOG_INFO, "to the stream", "x");
    REQUIRE(s != NULL);
    CHECK(strstr(s, "to the stream") != NULL);
    CHECK_EQ_INT(a.calls, 2);
}

static hc_test_t tests[] = {
    {"logfmt", test_logfmt}, {"logfmt_quotes_and_newlines", test_logfmt_quotes_and_newlines},
    {"json", test_json},     {"level_filter", test_level_filter},
    {"parse", test_parse},   {"sink", test_sink},
};
HC_TEST_MAIN(tests)
