/* datadir.c: the files in CACHE_DATA_DIR: the raft hard state (term, vote) and the committed
 * configuration, each written durably before it counts. */
#include "cluster_int.h"
#include "datadir.h"

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int hc_hardstate_path(const char *dir, const char *host, uint16_t port, char *out, size_t cap)
{
    char h[300];
    size_t i = 0;
    for (; host[i] && i < sizeof(h) - 1; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
        h[i] = ok ? c : '_';
    }
    h[i] = '\0';
    int k = snprintf(out, cap, "%s/raft-%s_%u.state", dir, h, (unsigned)port);
    return k < 0 || (size_t)k >= cap ? HC_ETOOLARGE : 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rv = fsync(fd);
    close(fd);
    return rv;
}

/* Replaces path with body durably: temp file, fsync, rename, fsync of the directory. */
static int write_durably(const char *path, const char *body, int len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return HC_EINTERNAL;
    }
    ssize_t w = write(fd, body, (size_t)len);
    if (w != len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return HC_EINTERNAL;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0 || fsync_dir_of(path) != 0) {
        return HC_EINTERNAL;
    }
    return 0;
}

/* Reads a whole small file into buf (NUL-terminated). 0; HC_ENOTFOUND when absent;
 * HC_EINVAL when longer than cap - 1 bytes (no file we write is); HC_EINTERNAL (errno kept). */
static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errno == ENOENT ? HC_ENOTFOUND : HC_EINTERNAL;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return more ? HC_EINVAL : 0;
}

int hc_hardstate_save(const char *path, uint64_t term, uint64_t vote, bool novote)
{
    char body[128];
    int len = snprintf(body, sizeof(body),
                       "hacache raft hard state v1\nterm %" PRIu64 "\nvote %" PRIu64 "\n%s", term,
                       vote, novote ? "novote 1\n" : "");
    return write_durably(path, body, len);
}

int hc_members_save(const char *path, uint64_t index, uint64_t epoch, const raft_members_t *m)
{
    char body[64 + RAFT_MAX_MEMBERS * 32];
    int len =
        snprintf(body, sizeof(body),
                 "hacache raft members v1\nindex %" PRIu64 "\nepoch %" PRIu64 "\n", index, epoch);
    for (uint32_t i = 0; i < m->n && i < RAFT_MAX_MEMBERS; i++) {
        len += snprintf(body + len, sizeof(body) - (size_t)len, "%s %016" PRIx64 "\n",
                        m->m[i].role == RAFT_VOTER ? "voter" : "learner", m->m[i].id);
    }
    return write_durably(path, body, len);
}

int hc_members_load(const char *path, uint64_t *index, uint64_t *epoch, raft_members_t *m)
{
    char buf[64 + (RAFT_MAX_MEMBERS + 1) * 32];
    size_t n;
    int rv = read_small(path, buf, sizeof(buf), &n);
    if (rv != 0) {
        return rv;
    }
    unsigned long long ix, ep;
    int used = 0;
    if (sscanf(buf, "hacache raft members v1\nindex %llu\nepoch %llu\n%n", &ix, &ep, &used) != 2 ||
        used == 0) {
        return HC_EINVAL;
    }
    raft_members_t out;
    memset(&out, 0, sizeof(out));
    const char *p = buf + used;
    while (*p != '\0') {
        char role[8];
        unsigned long long id;
        int k = 0;
        if (out.n == RAFT_MAX_MEMBERS || sscanf(p, "%7s %16llx\n%n", role, &id, &k) != 2 ||
            k == 0 || p[k - 1] != '\n' || id == 0) {
            return HC_EINVAL;
        }
        if (strcmp(role, "voter") == 0) {
            out.m[out.n].role = RAFT_VOTER;
        } else if (strcmp(role, "learner") == 0) {
            out.m[out.n].role = RAFT_LEARNER;
        } else {
            return HC_EINVAL;
        }
        out.m[out.n++].id = id;
        p += k;
    }
    if (out.n == 0) {
        return HC_EINVAL;
    }
    *index = ix;
    *epoch = ep;
    *m = out;
    return 0;
}

/* A small file holding one nonzero 64-bit value in hex under a header line. */
static int hex_save(const char *path, const char *header, uint64_t v)
{
    char body[96];
    int len = snprintf(body, sizeof(body), "%s\nid %016" PRIx64 "\n", header, v);
    return write_durably(path, body, len);
}

static int hex_load(const char *path, const char *header, uint64_t *out)
{
    char buf[128];
    size_t n;
    int rv = read_small(path, buf, sizeof(buf), &n);
    if (rv != 0) {
        return rv;
    }
    size_t hl = strlen(header);
    unsigned long long v = 0;
    int used = 0;
    if (n <= hl || memcmp(buf, header, hl) != 0 ||
        sscanf(buf + hl, "\nid %16llx\n%n", &v, &used) != 1 || used == 0 ||
        buf[hl + (size_t)used] != '\0' || v == 0) {
        return HC_EINVAL;
    }
    *out = v;
    return 0;
}

int hc_id_save(const char *path, uint64_t id)
{
    return hex_save(path, "hacache raft id v1", id);
}

int hc_id_load(const char *path, uint64_t *id)
{
    return hex_load(path, "hacache raft id v1", id);
}

int hc_lifetime_save(const char *path, uint64_t lifetime)
{
    return hex_save(path, "hacache cluster lifetime v1", lifetime);
}

int hc_lifetime_load(const char *path, uint64_t *lifetime)
{
    return hex_load(path, "hacache cluster lifetime v1", lifetime);
}

int hc_hardstate_load(const char *path, uint64_t *term, uint64_t *vote, bool *novote)
{
    char buf[256];
    size_t n;
    int rv = read_small(path, buf, sizeof(buf), &n);
    if (rv != 0) {
        return rv;
    }
    char tail;
    unsigned long long t, v;
    int used = 0;
    if (sscanf(buf, "hacache raft hard state v1\nterm %llu\nvote %llu%c%n", &t, &v, &tail, &used) !=
            3 ||
        tail != '\n') {
        return HC_EINVAL;
    }
    const char *rest = buf + used;
    if (rest[0] != '\0' && strcmp(rest, "novote 1\n") != 0) {
        return HC_EINVAL;
    }
    *term = t;
    *vote = v;
    *novote = rest[0] != '\0';
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

/* CACHE_DATA_DIR exists (created 0700 if missing) and takes a file. */
int cl_prepare_data_dir(const char *dir)
{
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot create %s: %s\n", dir, strerror(errno));
        return HC_EINVAL;
    }
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/.hacache-write-test", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        fprintf(stderr, "hacached: CACHE_DATA_DIR: %s is not writable: %s\n", dir, strerror(e));
        return HC_EINVAL;
    }
    close(fd);
    unlink(probe);
    return 0;
}

void cl_persist_or_die(cluster_t *c, const raft_hard_state_t *hs)
{
    if (c->state_path[0] == '\0') {
        return; /* no CACHE_DATA_DIR: the next start is a new incarnation, with a new id */
    }
    if (hc_hardstate_save(c->state_path, hs->term, hs->vote, hs->novote) != 0) {
        /* Sending without the hard state on disk could make this node vote twice in a term
         * after a restart: stop instead. */
        hc_log(HC_LOG_ERROR, "cannot persist the raft hard state, stopping",
               HC_LS("path", c->state_path), HC_LS("error", strerror(errno)));
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot write %s: %s\n", c->state_path,
                strerror(errno));
        _exit(1);
    }
}

/* Keeps members_path equal to the configuration in effect at the commit index (raft restart
 * rule 6): saved when it or the epoch changed, once it is committed. A failed write is logged
 * and retried on the next change; the file is an optimisation of the restart, not a vote. */
void cl_save_committed_members(cluster_t *c)
{
    if (c->state_path[0] == '\0') {
        c->members_check = 0;
        return;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    if (!st.members_committed || st.commit == 0) {
        return; /* again on the next update */
    }
    c->members_check = 0;
    const raft_members_t *m = &st.members;
    int same = c->members_saved.n == m->n && c->members_saved_epoch == st.epoch;
    for (uint32_t i = 0; same && i < m->n; i++) {
        same = c->members_saved.m[i].id == m->m[i].id && c->members_saved.m[i].role == m->m[i].role;
    }
    if (same) {
        return;
    }
    if (hc_members_save(c->members_path, st.commit, st.epoch, m) != 0) {
        hc_log(HC_LOG_WARN, "cannot write the committed configuration file",
               HC_LS("path", c->members_path), HC_LS("error", strerror(errno)));
        return;
    }
    c->members_saved = *m;
    c->members_saved_epoch = st.epoch;
}
