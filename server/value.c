/* value.c: hc_value_free, shared by libhacache (remote client) and libhacache_node (embedded
 * node), like err.c: one object of its own so a program may link both libraries statically. */
#include "hacache.h"

#include <stdlib.h>
#include <string.h>

void hc_value_free(hc_value_t *v)
{
    if (v != NULL) {
        free(v->data);
        memset(v, 0, sizeof(*v));
    }
}
