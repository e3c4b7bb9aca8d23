/* datadir.h: the files cluster mode keeps in CACHE_DATA_DIR, exported for tests: the raft hard
 * state (term, vote) and the committed configuration. */
#ifndef HC_CLUSTER_DATADIR_H
#define HC_CLUSTER_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* The hard state file: dir/raft-<host>_<port>.state (characters other than [A-Za-z0-9.-] in the
 * host become '_'). 0 or HC_ETOOLARGE. */
int hc_hardstate_path(const char *dir, const char *host, uint16_t port, char *out, size_t cap);
/* Writes (term, vote, novote) durably: temp file, fsync, rename, fsync of the directory. 0 or
 * HC_EINTERNAL (errno kept). novote (raft_hard_state_t: this id once started without its hard
 * state and never votes again) is an extra line "novote 1" that older versions ignore. */
int hc_hardstate_save(const char *path, uint64_t term, uint64_t vote, bool novote);
/* 0 with *term, *vote, *novote; HC_ENOTFOUND when the file does not exist; HC_EINVAL when it is
 * corrupt; HC_EINTERNAL when it cannot be read. */
int hc_hardstate_load(const char *path, uint64_t *term, uint64_t *vote, bool *novote);

/* The raft id file (path + ".id" next to the hard state): this node's raft id when it is not
 * the legacy hc_node_id_of(host:port), i.e. when the node joined as a new incarnation. Text
 * "hacache raft id v1 / id <hex>". Written durably before raft runs under that id; 0 or
 * HC_EINTERNAL. Load: 0, HC_ENOTFOUND, HC_EINVAL (corrupt), HC_EINTERNAL. */
int hc_id_save(const char *path, uint64_t id);
int hc_id_load(const char *path, uint64_t *id);

/* The cluster lifetime file (path + ".lifetime"): the id of the cluster lifetime this node
 * belongs to (raft/incarnation.h inc_lifetime_id), "hacache cluster lifetime v1 / id <hex>".
 * Written before raft runs in that lifetime; a separate file, so that older builds, which do
 * not know it, ignore it. Same results as hc_id_save / hc_id_load. */
int hc_lifetime_save(const char *path, uint64_t lifetime);
int hc_lifetime_load(const char *path, uint64_t *lifetime);

/* The committed configuration file, next to the hard state file (path + ".members"): the raft
 * configuration this node last saw committed, the commit index it saw it in effect at and the
 * epoch of that log (raft_start_t.members, members_index, members_epoch). Text:
 *   hacache raft members v1 / index N / epoch E / one "voter <id hex>" or "learner <id hex>"
 *   line per member (at most RAFT_MAX_MEMBERS).
 * Written durably like the hard state; 0 or HC_EINTERNAL. */
int hc_members_save(const char *path, uint64_t index, uint64_t epoch, const raft_members_t *m);
/* 0 with the fields; HC_ENOTFOUND when absent; HC_EINVAL when corrupt or when it names more
 * members than a configuration holds; HC_EINTERNAL when it cannot be read. */
int hc_members_load(const char *path, uint64_t *index, uint64_t *epoch, raft_members_t *m);

#endif
