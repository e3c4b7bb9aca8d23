/* err.c: the message table of the HC_E* codes. */
#include "hacache.h"

const char *hc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define HC_ERR_CASE_(name, value, msg)                                                             \
    case HC_##name:                                                                                \
        return msg;
        HC_ERRNO_MAP(HC_ERR_CASE_)
#undef HC_ERR_CASE_
    }
    return "unknown error";
}
