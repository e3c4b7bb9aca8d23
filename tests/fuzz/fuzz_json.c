/* fuzz_json.c: hacachectl's JSON reader stays in bounds on any input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static size_t walk(const hj_t *v, int depth)
{
    size_t n = 0;
    if (depth > HJ_MAX_DEPTH + 1) {
        abort(); /* the parser bounds nesting */
    }
    for (; v; v = v->next) {
        if (v->type == HJ_STRING && v->str[v->len] != '\0') {
            abort();
        }
        n += 1 + walk(v->child, depth + 1);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    hj_t *j = hj_parse((const char *)data, size, err, sizeof(err));
    if (j != NULL) {
        (void)walk(j, 0);
        (void)hj_str(j, "error", NULL);
        (void)hj_num(j, "term", 0);
        hj_free(j);
    } else if (err[0] == '\0') {
        abort(); /* a failure always says why */
    }
    return 0;
}
