/* fuzz_glob.c: the glob matcher of SCAN ... MATCH takes untrusted patterns. The input is a
 * pattern and a string separated by the first NUL byte (no NUL: the input is both). Checks: no
 * out-of-bounds access (sanitizers), the work stays within (plen + 1) * (slen + 1) + 1, and for
 * small inputs the answer equals a reference that compiles the pattern into one-byte sets and
 * stars and matches them by dynamic programming. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"

#define REF_MAX 256

typedef struct {
    int star;
    uint8_t set[32]; /* bit b: byte b matches */
} token_t;

static void set_add(token_t *t, unsigned lo, unsigned hi)
{
    for (unsigned b = lo; b <= hi; b++) {
        t->set[b / 8] |= (uint8_t)(1u << (b % 8));
    }
}

/* The pattern as tokens (glob.h's syntax); returns how many. */
static size_t compile(const uint8_t *p, size_t n, token_t *out)
{
    size_t nt = 0;
    for (size_t i = 0; i < n;) {
        token_t *t = &out[nt++];
        memset(t, 0, sizeof(*t));
        if (p[i] == '*') {
            t->star = 1;
            i++;
        } else if (p[i] == '?') {
            set_add(t, 0, 255);
            i++;
        } else if (p[i] == '\\' && i + 1 < n) {
            set_add(t, p[i + 1], p[i + 1]);
            i += 2;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            int neg = j < n && p[j] == '^';
            j += (size_t)neg;
            for (; j < n && p[j] != ']';) {
                if (p[j] == '\\' && j + 1 < n) {
                    set_add(t, p[j + 1], p[j + 1]);
                    j += 2;
                } else if (j + 2 < n && p[j + 1] == '-') {
                    unsigned a = p[j], b = p[j + 2];
                    set_add(t, a < b ? a : b, a < b ? b : a);
                    j += 3;
                } else {
                    set_add(t, p[j], p[j]);
                    j++;
                }
            }
            if (neg) {
                for (int k = 0; k < 32; k++) {
                    t->set[k] = (uint8_t)~t->set[k];
                }
            }
            i = j < n ? j + 1 : n;
        } else {
            set_add(t, p[i], p[i]);
            i++;
        }
    }
    return nt;
}

static int reference(const uint8_t *p, size_t plen, const uint8_t *s, size_t slen)
{
    static token_t tok[REF_MAX];
    static uint8_t ok[REF_MAX + 1][REF_MAX + 1]; /* ok[i][j]: tokens i.. match s[j..] */
    size_t nt = compile(p, plen, tok);
    for (size_t i = nt + 1; i-- > 0;) {
        for (size_t j = slen + 1; j-- > 0;) {
            if (i == nt) {
                ok[i][j] = j == slen;
            } else if (tok[i].star) {
                ok[i][j] = ok[i + 1][j] || (j < slen && ok[i][j + 1]);
            } else {
                ok[i][j] = j < slen && (tok[i].set[s[j] / 8] >> (s[j] % 8) & 1) && ok[i + 1][j + 1];
            }
        }
    }
    return ok[0][0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *pat = data, *str = data;
    size_t plen = size, slen = size;
    if (nul != NULL) {
        plen = (size_t)(nul - data);
        str = nul + 1;
        slen = size - plen - 1;
    }
    uint64_t work = 0;
    int got = hc_glob_match(pat, plen, str, slen, &work);
    if (got != 0 && got != 1) {
        abort();
    }
    if (work > (uint64_t)(plen + 1) * (slen + 1) + 1) {
        abort();
    }
    if (plen <= REF_MAX && slen <= REF_MAX && got != reference(pat, plen, str, slen)) {
        abort();
    }
    return 0;
}
