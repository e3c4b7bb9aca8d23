/* cafile.h: a CA bundle file a client verifies servers with, re-read when it changes on disk
 * (a Kubernetes secret update is a symlink swap): the new bundle is validated before it replaces
 * the old one, and a bad update keeps the old one. No locking: the caller serialises. */
#ifndef HCC_CAFILE_H
#define HCC_CAFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A bundle larger than this is refused. */
#define HCC_CAFILE_MAX_BYTES (1u << 20)

typedef struct {
    char *path;
    struct stat seen; /* of the file the bundle came from, or of the last rejected one */
    char *pem;        /* the bundle in force, NUL-terminated */
    size_t len;
    uint64_t reloads; /* successful re-reads after the first load */
    char err[256];    /* why the last update was rejected ("" if it was not) */
} hcc_cafile_t;

/* Loads and validates path. 0, or HC_EINVAL with a message in err; HC_ENOMEM. */
int hcc_cafile_init(hcc_cafile_t *f, const char *path, char *err, size_t errlen);
void hcc_cafile_free(hcc_cafile_t *f);
/* Re-reads the file if it changed since the last look: 1 when a new bundle is in force, 0 when
 * nothing changed, -1 when the change was rejected (f->err says why; the old bundle stays). */
int hcc_cafile_refresh(hcc_cafile_t *f);
/* Validates a PEM bundle: at least one certificate, every block parses, at least one currently
 * valid. 0 or -1 with a message in err. */
int hcc_cafile_validate(const char *pem, size_t len, char *err, size_t errlen);

#endif
