/* glob.h: Redis-style glob patterns over byte strings (SCAN ... MATCH). */
#ifndef HC_GLOB_H
#define HC_GLOB_H

#include <stddef.h>
#include <stdint.h>

/* 1 when str (slen bytes) matches pat (plen bytes), else 0. Case-sensitive, byte by byte:
 *   *      any run of bytes, including none
 *   ?      any one byte
 *   [abc]  one of the listed bytes; [^abc] any other byte; [a-z] a range (either order);
 *          inside, \x stands for x; a class missing its ']' runs to the end of the pattern
 *   \x     x itself (a trailing \ is a plain backslash)
 *   other  itself
 * Iterative, constant space: only the last '*' is ever returned to, so the time is
 * O(plen * slen) in the worst case and O(plen + slen) for the usual "prefix*" patterns.
 * When work is not NULL, the pattern bytes examined are added to *work, so a caller matching
 * many strings can bound the total. */
int hc_glob_match(const void *pat, size_t plen, const void *str, size_t slen, uint64_t *work);

#endif
