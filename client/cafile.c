/* cafile.c: see cafile.h. */
#include "cafile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hacache.h"

int hcc_cafile_validate(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = 0, valid = 0, rv = 0;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL) {
            unsigned long e = ERR_peek_last_error();
            if (n > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                break; /* the end of the bundle */
            }
            char why[160];
            ERR_error_string_n(e, why, sizeof(why));
            if (n == 0) {
                snprintf(err, errlen, "no PEM certificate in it (%s)", why);
            } else {
                snprintf(err, errlen, "certificate %d does not parse (%s)", n + 1, why);
            }
            rv = -1;
            break;
        }
        n++;
        if (X509_cmp_current_time(X509_get0_notBefore(x)) < 0 &&
            X509_cmp_current_time(X509_get0_notAfter(x)) > 0) {
            valid++;
        }
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (rv == 0 && valid == 0) {
        snprintf(err, errlen, "none of its %d certificates is valid now (expired or not yet valid)",
                 n);
        rv = -1;
    }
    return rv;
}

/* Reads the file (bounded) into a malloc'd NUL-terminated buffer; 0 or -1 with err. */
static int read_file(const char *path, struct stat *st, char **out, size_t *len, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || st->st_size > (off_t)HCC_CAFILE_MAX_BYTES) {
        snprintf(err, errlen, "%s",
                 st->st_size > (off_t)HCC_CAFILE_MAX_BYTES ? "larger than 1 MiB" : "cannot stat");
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st->st_size + 1, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL && n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int hcc_cafile_init(hcc_cafile_t *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    char why[200];
    if ((f->path = strdup(path)) == NULL) {
        return HC_ENOMEM;
    }
    if (read_file(path, &f->seen, &f->pem, &f->len, why, sizeof(why)) != 0 ||
        hcc_cafile_validate(f->pem, f->len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "CA file %s: %s", path, why);
        hcc_cafile_free(f);
        return HC_EINVAL;
    }
    return 0;
}

void hcc_cafile_free(hcc_cafile_t *f)
{
    free(f->path);
    free(f->pem);
    memset(f, 0, sizeof(*f));
}

int hcc_cafile_refresh(hcc_cafile_t *f)
{
    struct stat st;
    if (stat(f->path, &st) != 0) {
        /* gone for a moment (a swap in progress) or for good: the old bundle stays */
        return 0;
    }
    if (same_file(&st, &f->seen)) {
        return 0;
    }
    char *pem = NULL;
    size_t len = 0;
    char why[200];
    if (read_file(f->path, &st, &pem, &len, why, sizeof(why)) != 0 ||
        hcc_cafile_validate(pem, len, why, sizeof(why)) != 0) {
        free(pem);
        f->seen = st; /* not tried again until it changes once more */
        snprintf(f->err, sizeof(f->err), "CA file %s rejected, the old bundle stays: %s", f->path,
                 why);
        return -1;
    }
    free(f->pem);
    f->pem = pem;
    f->len = len;
    f->seen = st;
    f->reloads++;
    f->err[0] = '\0';
    return 1;
}
