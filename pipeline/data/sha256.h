/*
 * sha256.h - SHA-256 (FIPS 180-4), streaming, for the hashes of imported dataset files.
 */
#ifndef LATHE_SHA256_H
#define LATHE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t block[64];
    size_t fill;
} lt_sha256;

void lt_sha256_init(lt_sha256 *c);
void lt_sha256_update(lt_sha256 *c, const void *data, size_t n);
/* Writes the 32-byte digest; hex (if non-NULL) gets 64 lowercase hex digits and a NUL. */
void lt_sha256_final(lt_sha256 *c, uint8_t digest[32], char hex[65]);

#endif
