/* hacache.h: the public C interface of libhacache (error codes now; client and embedded node
 * APIs are added by later issues, see SPEC section 7). */
#ifndef HACACHE_H
#define HACACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_VERSION_STRING "0.1.0"

/* Error codes: 0 is success, every error is negative. X(name, value, message). */
#define HC_ERRNO_MAP(X)                                                                            \
    X(ENOTFOUND, -1, "not found")                                                                  \
    X(EUNAVAILABLE, -2, "unavailable")                                                             \
    X(ETIMEDOUT, -3, "deadline exceeded")                                                          \
    X(EAUTH, -4, "authentication failed")                                                          \
    X(EINVAL, -5, "invalid argument")                                                              \
    X(ETOOLARGE, -6, "too large")                                                                  \
    X(EUNKNOWN_OUTCOME, -7, "outcome of the write is unknown")                                     \
    X(ECONFLICT, -8, "condition failed")                                                           \
    X(ENOMEM, -9, "does not fit within the memory bound")                                          \
    X(ENOTINT, -10, "value is not an integer")                                                     \
    X(EOVERFLOW, -11, "integer overflow")                                                          \
    X(ESHUTDOWN, -12, "shutting down")                                                             \
    X(EINTERNAL, -13, "internal error")                                                            \
    X(EBUSY, -14, "send queue full, retry later")

enum {
#define HC_ERR_ENUM_(name, value, msg) HC_##name = (value),
    HC_ERRNO_MAP(HC_ERR_ENUM_)
#undef HC_ERR_ENUM_
};

/* Returns a static string describing err (0 or a negative HC_E* code). */
const char *hc_strerror(int err);

/* Ack level of a write (SPEC section 3). */
typedef enum { HC_ACK_QUORUM = 0, HC_ACK_ONCE, HC_ACK_LEADER, HC_ACK_NONE } hc_ack_t;

#ifdef __cplusplus
}
#endif
#endif
