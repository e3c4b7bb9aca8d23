/* names.c: see names.h. */
#include "names.h"

int hc_cache_name_ok(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > HC_CACHE_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-')) {
            return 0;
        }
    }
    return 1;
}
