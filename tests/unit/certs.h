/* certs.h: test certificates made in-process with OpenSSL (unit tests only): a CA or a leaf for
 * a key, with chosen validity and subjectAltName, and PEM files of them. */
#ifndef HC_TEST_CERTS_H
#define HC_TEST_CERTS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <time.h>

static inline void hct_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext != NULL) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

/* A certificate for `key` valid [from, to], signed by issuer/issuer_key (self-signed when
 * issuer is NULL); a CA when is_ca; with subjectAltName `san` when not NULL. Serial numbers are
 * unique within the process. The caller frees it with X509_free. */
static inline X509 *hct_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                             time_t from, time_t to, int is_ca, const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    ASN1_TIME_set(X509_getm_notBefore(x), from);
    ASN1_TIME_set(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509 *ci = issuer ? issuer : x;
    if (is_ca) {
        hct_add_ext(x, ci, NID_basic_constraints, "critical,CA:TRUE");
        hct_add_ext(x, ci, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        hct_add_ext(x, ci, NID_basic_constraints, "CA:FALSE");
    }
    if (san != NULL) {
        hct_add_ext(x, ci, NID_subject_alt_name, san);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
}

/* Writes certificates a and b (either may be NULL) and then key (may be NULL) to path. */
static inline void hct_write_pem(const char *path, X509 *a, X509 *b, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return;
    }
    if (a != NULL) {
        PEM_write_X509(f, a);
    }
    if (b != NULL) {
        PEM_write_X509(f, b);
    }
    if (key != NULL) {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
}

#endif
