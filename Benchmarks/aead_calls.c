// What one AEAD chunk costs through libcrypto's EVP calls, provider path against the direct path
// vmessd uses (Sources/CShims/DirectCiphers.c), with the call sequence of Sources/Shared/Crypto/
// AEADCipher.swift: re-set the nonce on a keyed context, update, final, get or set the tag.
//
//     cc -O2 -o /tmp/aead_calls Benchmarks/aead_calls.c -lcrypto && /tmp/aead_calls
//
// Prints the best of five runs per size, and checks that every open succeeded and restored the
// plaintext. Not part of the test suite: a figure for Benchmarks/README.md, and a quick way to see
// whether a newer libcrypto still needs the direct path.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static unsigned char plain[16384], sealed[16384], work[16384], tag0[16];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void run(const EVP_CIPHER *c, int n, int size, const char *name) {
    unsigned char key[32] = {1}, iv[12] = {2}, tag[16];
    int outl, ok = 0;
    EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
    EVP_CipherInit_ex2(e, c, key, NULL, 1, NULL);
    EVP_CipherInit_ex2(d, c, key, NULL, 0, NULL);
    EVP_CipherInit_ex2(e, NULL, NULL, iv, 1, NULL);
    EVP_CipherUpdate(e, sealed, &outl, plain, size);
    EVP_CipherFinal_ex(e, work, &outl);
    EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, tag0);
    double best_seal = 1e9, best_open = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            EVP_CipherInit_ex2(e, NULL, NULL, iv, 1, NULL);
            EVP_CipherUpdate(e, work, &outl, plain, size);
            EVP_CipherFinal_ex(e, work, &outl);
            EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, tag);
        }
        double t1 = now();
        for (int i = 0; i < n; i++) {
            EVP_CipherInit_ex2(d, NULL, NULL, iv, 0, NULL);
            EVP_CipherUpdate(d, work, &outl, sealed, size);
            EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, 16, tag0);
            ok += EVP_CipherFinal_ex(d, work, &outl) == 1;
        }
        double t2 = now();
        if (t1 - t0 < best_seal) best_seal = t1 - t0;
        if (t2 - t1 < best_open) best_open = t2 - t1;
    }
    printf("%-28s %5d B: seal %6.0f ns, open %6.0f ns per chunk; opened %d/%d, plaintext %s\n", name, size,
           best_seal / n * 1e9, best_open / n * 1e9, ok, 5 * n, memcmp(work, plain, size) == 0 ? "restored" : "WRONG");
    EVP_CIPHER_CTX_free(e);
    EVP_CIPHER_CTX_free(d);
}

int main(void) {
    for (int i = 0; i < 16384; i++) plain[i] = (unsigned char)(i * 7);
    struct { const char *name; EVP_CIPHER *cipher; } ciphers[] = {
        {"AES-128-GCM provider", EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL)},
        {"AES-128-GCM direct", EVP_CIPHER_meth_dup(EVP_aes_128_gcm())},
        {"ChaCha20-Poly1305 provider", EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL)},
        {"ChaCha20-Poly1305 direct", EVP_CIPHER_meth_dup(EVP_chacha20_poly1305())},
    };
    int sizes[] = {16, 2048, 16384};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++)
            run(ciphers[j].cipher, sizes[k] < 100 ? 400000 : sizes[k] < 4000 ? 100000 : 20000, sizes[k], ciphers[j].name);
    return 0;
}
