// Matching a VMess AEAD AuthID against many users (vmess-protocol.md §5.4): one AES-128 block
// decryption per user. Through EVP that costs ~110 ns a user (parameter plumbing per call), so 10,000
// users multiply a handshake's cost several times. Here the decryption round keys of every user sit
// in one array and the block is decrypted with AES-NI, four users interleaved so the aesdec
// latency is hidden; a candidate is a user whose plaintext starts with a timestamp near `now`. The
// caller then runs the exact check (CRC32 and the ±120 s window) on each candidate, so what is
// accepted does not change; the scan only skips users whose plaintext cannot pass.
//
// Compiled for any x86-64: the AES-NI functions carry a target attribute and are only called after
// vmessd_aesni_available() said yes; other machines keep the EVP path.

#include "include/CShims.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int vmessd_aesni_available(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_AES) != 0;
}

__attribute__((target("aes,sse2")))
static __m128i expand_step(__m128i key, __m128i assist) {
    assist = _mm_shuffle_epi32(assist, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

#define EXPAND(i, rcon) k[i] = expand_step(k[i - 1], _mm_aeskeygenassist_si128(k[i - 1], rcon))

__attribute__((target("aes,sse2")))
void vmessd_aes128_decryption_keys(const uint8_t key[16], uint8_t out[VMESSD_AES128_DECRYPTION_KEYS_SIZE]) {
    __m128i k[11];
    k[0] = _mm_loadu_si128((const __m128i *)key);
    EXPAND(1, 0x01); EXPAND(2, 0x02); EXPAND(3, 0x04); EXPAND(4, 0x08); EXPAND(5, 0x10);
    EXPAND(6, 0x20); EXPAND(7, 0x40); EXPAND(8, 0x80); EXPAND(9, 0x1b); EXPAND(10, 0x36);
    // The equivalent inverse cipher: the last round key first, InvMixColumns on the middle ones.
    _mm_storeu_si128((__m128i *)out, k[10]);
    for (int i = 1; i < 10; i++) _mm_storeu_si128((__m128i *)(out + 16 * i), _mm_aesimc_si128(k[10 - i]));
    _mm_storeu_si128((__m128i *)(out + 160), k[0]);
}

/// The first 8 plaintext bytes as a big-endian timestamp, and whether it is within `window` of `now`
/// (unsigned arithmetic: wraps instead of overflowing, whatever the client put there).
__attribute__((target("aes,sse2")))
static int near(__m128i plain, uint64_t now, uint64_t window) {
    uint64_t t = __builtin_bswap64((uint64_t)_mm_cvtsi128_si64(plain));
    return t - now + window <= 2 * window;
}

__attribute__((target("aes,sse2")))
size_t vmessd_authid_scan(const uint8_t block[16], const uint8_t *keys, size_t count, int64_t now, uint64_t window,
                          uint32_t *candidates, size_t capacity) {
    const __m128i in = _mm_loadu_si128((const __m128i *)block);
    const uint64_t n = (uint64_t)now;
    size_t found = 0;
    size_t i = 0;
    for (; i + 4 <= count && found + 4 <= capacity; i += 4) {
        const uint8_t *k0 = keys + i * VMESSD_AES128_DECRYPTION_KEYS_SIZE;
        const uint8_t *k1 = k0 + VMESSD_AES128_DECRYPTION_KEYS_SIZE;
        const uint8_t *k2 = k1 + VMESSD_AES128_DECRYPTION_KEYS_SIZE;
        const uint8_t *k3 = k2 + VMESSD_AES128_DECRYPTION_KEYS_SIZE;
        __m128i x0 = _mm_xor_si128(in, _mm_loadu_si128((const __m128i *)k0));
        __m128i x1 = _mm_xor_si128(in, _mm_loadu_si128((const __m128i *)k1));
        __m128i x2 = _mm_xor_si128(in, _mm_loadu_si128((const __m128i *)k2));
        __m128i x3 = _mm_xor_si128(in, _mm_loadu_si128((const __m128i *)k3));
        for (int r = 1; r < 10; r++) {
            x0 = _mm_aesdec_si128(x0, _mm_loadu_si128((const __m128i *)(k0 + 16 * r)));
            x1 = _mm_aesdec_si128(x1, _mm_loadu_si128((const __m128i *)(k1 + 16 * r)));
            x2 = _mm_aesdec_si128(x2, _mm_loadu_si128((const __m128i *)(k2 + 16 * r)));
            x3 = _mm_aesdec_si128(x3, _mm_loadu_si128((const __m128i *)(k3 + 16 * r)));
        }
        x0 = _mm_aesdeclast_si128(x0, _mm_loadu_si128((const __m128i *)(k0 + 160)));
        x1 = _mm_aesdeclast_si128(x1, _mm_loadu_si128((const __m128i *)(k1 + 160)));
        x2 = _mm_aesdeclast_si128(x2, _mm_loadu_si128((const __m128i *)(k2 + 160)));
        x3 = _mm_aesdeclast_si128(x3, _mm_loadu_si128((const __m128i *)(k3 + 160)));
        if (near(x0, n, window)) candidates[found++] = (uint32_t)i;
        if (near(x1, n, window)) candidates[found++] = (uint32_t)(i + 1);
        if (near(x2, n, window)) candidates[found++] = (uint32_t)(i + 2);
        if (near(x3, n, window)) candidates[found++] = (uint32_t)(i + 3);
    }
    for (; i < count && found < capacity; i++) {
        const uint8_t *k = keys + i * VMESSD_AES128_DECRYPTION_KEYS_SIZE;
        __m128i x = _mm_xor_si128(in, _mm_loadu_si128((const __m128i *)k));
        for (int r = 1; r < 10; r++) x = _mm_aesdec_si128(x, _mm_loadu_si128((const __m128i *)(k + 16 * r)));
        x = _mm_aesdeclast_si128(x, _mm_loadu_si128((const __m128i *)(k + 160)));
        if (near(x, n, window)) candidates[found++] = (uint32_t)i;
    }
    return found;
}

#else

int vmessd_aesni_available(void) { return 0; }
void vmessd_aes128_decryption_keys(const uint8_t key[16], uint8_t out[VMESSD_AES128_DECRYPTION_KEYS_SIZE]) {
    (void)key; (void)out;
}
size_t vmessd_authid_scan(const uint8_t block[16], const uint8_t *keys, size_t count, int64_t now, uint64_t window,
                          uint32_t *candidates, size_t capacity) {
    (void)block; (void)keys; (void)count; (void)now; (void)window; (void)candidates; (void)capacity;
    return 0;
}

#endif
