/* smoke_cmds.h: the command language shared by the client drivers client_smoke.c (synchronous)
 * and aclient_smoke.c (asynchronous): how many words each command takes and how its arguments
 * read. Each driver runs the commands it knows (see its usage comment). */
#ifndef SMOKE_CMDS_H
#define SMOKE_CMDS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hacache.h"

static inline long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline hc_ack_t ack_of(const char *s)
{
    if (strcmp(s, "once") == 0) {
        return HC_ACK_ONCE;
    }
    if (strcmp(s, "leader") == 0) {
        return HC_ACK_LEADER;
    }
    return strcmp(s, "none") == 0 ? HC_ACK_NONE : HC_ACK_QUORUM;
}

/* The command and its arguments: how many words; 0 for an unknown command. */
static inline int words_of(const char *cmd)
{
    static const struct {
        const char *name;
        int words;
    } commands[] = {{"put", 5},        {"get", 3},       {"del", 4},  {"incr", 5},
                    {"clear", 3},      {"getx", 4},      {"putx", 7}, {"putsize", 5},
                    {"delx", 5},       {"configure", 6}, {"info", 2}, {"consistency", 2},
                    {"cachestale", 3}, {"wait", 1},      {"bg", 1},   {"join", 1},
                    {"sleep", 2}};
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].words;
        }
    }
    return 0;
}

static inline hc_consistency_t consistency_of(const char *s)
{
    return strcmp(s, "leader") == 0         ? HC_READ_LEADER
           : strcmp(s, "linearizable") == 0 ? HC_READ_LINEARIZABLE
                                            : HC_READ_LOCAL;
}

/* "-", "absent" or "vN" into the condition fields */
static inline void condition_of(const char *s, int *if_absent, int *has_if_version,
                                uint64_t *if_version)
{
    *if_absent = strcmp(s, "absent") == 0;
    *has_if_version = s[0] == 'v';
    *if_version = *has_if_version ? strtoull(s + 1, NULL, 10) : 0;
}

/* getx's READ into the options of the read (NULL: none): default (NULL opts), nostale (the
 * client's consistency, no stale copy), local, leader, linearizable. */
static inline const hc_read_opts_t *read_opts_of(const char *s, hc_read_opts_t *ro)
{
    if (strcmp(s, "default") == 0) {
        return NULL;
    }
    if (strcmp(s, "nostale") == 0) {
        *ro = (hc_read_opts_t){.no_stale = 1};
    } else {
        *ro = (hc_read_opts_t){.has_consistency = 1, .consistency = consistency_of(s)};
    }
    return ro;
}

/* cachestale's MS: a number, or "default" (the client's limit again) */
static inline uint32_t cache_stale_of(const char *s)
{
    return strcmp(s, "default") == 0 ? HC_CACHE_STALE_DEFAULT : (uint32_t)strtoul(s, NULL, 10);
}

/* The line of a getx result (also a served stale copy's) */
#define GETX_FMT "getx rc=%d ms=%lld len=%zu stale=%d version=%llu has_ttl=%d ttl=%llu value=%s\n"

#endif
