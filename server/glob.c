/* glob.c: see glob.h. */
#include "glob.h"

#define NO_STAR ((size_t)-1)

/* Whether byte c matches the class whose text starts at p[i], just after its '['. Sets *end to
 * the index just after the class (after its ']', or plen when it has none). */
static int class_matches(const unsigned char *p, size_t plen, size_t i, unsigned char c,
                         size_t *end)
{
    int negate = i < plen && p[i] == '^', found = 0;
    i += (size_t)negate;
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            found |= p[i + 1] == c;
            i += 2;
        } else if (i + 2 < plen && p[i + 1] == '-') {
            unsigned char lo = p[i], hi = p[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            found |= c >= lo && c <= hi;
            i += 3;
        } else {
            found |= p[i] == c;
            i++;
        }
    }
    *end = i < plen ? i + 1 : plen;
    return found != negate;
}

/* Whether byte c matches the one-byte token at p[i] (anything but '*'); *next is the index
 * after the token. */
static int token_matches(const unsigned char *p, size_t plen, size_t i, unsigned char c,
                         size_t *next)
{
    switch (p[i]) {
    case '?':
        *next = i + 1;
        return 1;
    case '[':
        return class_matches(p, plen, i + 1, c, next);
    case '\\':
        if (i + 1 < plen) {
            *next = i + 2;
            return p[i + 1] == c;
        }
        break; /* a trailing backslash stands for itself */
    default:
        break;
    }
    *next = i + 1;
    return p[i] == c;
}

/* Every token but '*' matches exactly one byte, so matching the pieces between stars at their
 * leftmost places is never worse than any other choice: on a mismatch it is enough to let the
 * last '*' absorb one more byte and try the rest of the pattern again from there. */
int hc_glob_match(const void *pat, size_t plen, const void *str, size_t slen, uint64_t *work)
{
    const unsigned char *p = pat, *s = str;
    size_t pi = 0, si = 0, star_pi = NO_STAR, star_si = 0;
    uint64_t examined = 0;
    int matched;
    for (;;) {
        if (pi < plen && p[pi] == '*') {
            size_t first = pi;
            while (pi < plen && p[pi] == '*') {
                pi++;
            }
            examined += pi - first;
            if (pi == plen) {
                matched = 1; /* a trailing star takes the rest */
                break;
            }
            star_pi = pi;
            star_si = si;
            continue;
        }
        if (si == slen) {
            matched = pi == plen;
            break;
        }
        size_t next;
        if (pi < plen) {
            int ok = token_matches(p, plen, pi, s[si], &next);
            examined += next - pi;
            if (ok) {
                pi = next;
                si++;
                continue;
            }
        }
        if (star_pi == NO_STAR) {
            matched = 0;
            break;
        }
        pi = star_pi; /* the last star takes one more byte */
        si = ++star_si;
    }
    if (work != NULL) {
        *work += examined + 1;
    }
    return matched;
}
