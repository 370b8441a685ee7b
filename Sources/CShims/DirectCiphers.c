// AEAD ciphers without OpenSSL 3's per-call parameter plumbing (Sources/Shared/Crypto/Ciphers.swift).
//
// A cipher fetched from a provider turns every per-chunk call into OSSL_PARAM traffic: setting the
// nonce asks the provider for the IV length, setting or reading the tag goes through its
// set/get_ctx_params, each a walk of string keys (strcmp). For a 2 KiB chunk, the size Go clients
// write, that is ~150 ns of ~1 µs. libcrypto still carries the built-in EVP_CIPHER tables (the
// same AES-NI/VAES and ChaCha assembly) and calls their functions directly when a cipher is a
// method object: EVP_CIPHER_meth_dup makes one from the built-in table. Those calls are deprecated
// in 3.0, not removed; a libcrypto built without them gives NULL here and vmessd keeps the fetched
// provider cipher (Ciphers.swift also checks the direct cipher against the provider's at start-up).
// Bypassing providers also bypasses a FIPS provider configured as the default; VMess is not a FIPS
// protocol (its KDF, SHAKE128 masking and legacy MD5), so nothing is lost there.

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include "include/CShims.h"

void *vmessd_direct_aead_cipher(int which) {
#if defined(OPENSSL_NO_DEPRECATED_3_0)
    (void)which;
    return NULL;
#else
    switch (which) {
    case VMESSD_DIRECT_AES_128_GCM: return EVP_CIPHER_meth_dup(EVP_aes_128_gcm());
    case VMESSD_DIRECT_CHACHA20_POLY1305: return EVP_CIPHER_meth_dup(EVP_chacha20_poly1305());
    default: return NULL;
    }
#endif
}

void vmessd_direct_aead_cipher_free(void *cipher) {
#if !defined(OPENSSL_NO_DEPRECATED_3_0)
    EVP_CIPHER_meth_free(cipher);
#else
    (void)cipher;
#endif
}
