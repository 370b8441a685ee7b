#ifndef VMESSD_CSHIMS_H
#define VMESSD_CSHIMS_H
// Tiny C helpers for what Swift cannot import: CMSG_* macros, process-shared locks and atomics on
// shared memory, signalfd, and a few prefixed wrappers.
#include <stddef.h>
#include "vmessd_malloc.h"
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

/// Sends `len` bytes plus up to `nfds` file descriptors (SCM_RIGHTS) on a connected AF_UNIX socket.
/// Returns what sendmsg returns; errno is left as sendmsg set it.
ssize_t vmessd_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// Receives one message and up to `maxfds` descriptors (close-on-exec). `*nfds` gets the count.
/// Descriptors beyond `maxfds` are closed. `*truncated` is set when the message or its descriptors
/// did not fit (MSG_TRUNC / MSG_CTRUNC). `flags` go to recvmsg (e.g. MSG_DONTWAIT).
ssize_t vmessd_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds);
ssize_t vmessd_recv_with_fds_flags(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds,
                                   int flags, int *truncated);

/// Creates an anonymous memory file (memfd_create with MFD_CLOEXEC). Returns -1 and errno on failure.
int vmessd_memfd_create(const char *name);

// MARK: shared memory

/// Bytes a process-shared lock takes in shared memory (sizeof(pthread_mutex_t)).
size_t vmessd_shared_lock_size(void);
/// Initializes a process-shared, robust mutex at `p` (suitably aligned, zeroed memory). 0 or an errno.
int vmessd_shared_lock_init(void *p);
/// Locks. Returns 0, or 1 when the previous owner died holding the lock (the lock is then made
/// consistent again and held by the caller: the data it protects may be half-written), or an errno.
int vmessd_shared_lock(void *p);
void vmessd_shared_unlock(void *p);

/// Sequentially consistent atomics on naturally aligned 64-bit words in shared memory.
uint64_t vmessd_atomic_load_u64(const uint64_t *p);
void vmessd_atomic_store_u64(uint64_t *p, uint64_t value);
/// Returns the value before the addition.
uint64_t vmessd_atomic_add_u64(uint64_t *p, uint64_t value);
/// Stores `value`, returns what was there (a counter read and reset in one step).
uint64_t vmessd_atomic_exchange_u64(uint64_t *p, uint64_t value);
/// 1 if *p was `expected` and is now `desired`.
int vmessd_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired);

// MARK: signals

/// signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK).
int vmessd_signalfd(const sigset_t *mask);
/// Reads one signalfd_siginfo: the signal number, 0 when none is pending (EAGAIN), -1 and errno.
int vmessd_signalfd_read(int fd);

// MARK: process

/// prctl(PR_SET_NAME): the calling thread's name, which for the main thread is the process's `comm`
/// (ps, top, pgrep). 0, or -1 and errno.
int vmessd_set_process_name(const char *name);
/// open(path, O_PATH | O_CLOEXEC) (O_PATH needs _GNU_SOURCE, which Swift's Glibc does not define): a
/// descriptor that names a file without reading it, enough to execute it. The fd, or -1 and errno.
int vmessd_open_path(const char *path);

// MARK: sockets

/// Most sockets a steering program picks among (its jump table stays far below BPF_MAXINSNS).
#define VMESSD_MAX_STEER 1024

/// Attaches a classic BPF program to the SO_REUSEPORT group of listening socket `fd` that sends each
/// new connection to one of the group's sockets `indices[0..<count]` (positions in the order they
/// joined), picked at random: SO_ATTACH_REUSEPORT_CBPF with "ld rand; mod #count" and then "ret a"
/// when the indices are 0..<count, else a jump table. 0, or -1 and errno.
int vmessd_reuseport_steer(int fd, const uint32_t *indices, uint32_t count);

// MARK: AuthID matching (AuthIDScan.c)

#define VMESSD_AES128_DECRYPTION_KEYS_SIZE 176

/// 1 when the CPU has AES-NI (then the two functions below may be called), else 0.
int vmessd_aesni_available(void);
/// The 11 AES-128 decryption round keys (equivalent inverse cipher) of `key`, for vmessd_authid_scan.
void vmessd_aes128_decryption_keys(const uint8_t key[16], uint8_t out[VMESSD_AES128_DECRYPTION_KEYS_SIZE]);
/// Decrypts `block` under each of `count` users' round keys (`keys`: count × 176 bytes) and writes the
/// index of every user whose plaintext starts with a big-endian time within `window` seconds of `now`
/// to `candidates` (at most `capacity`, which should be >= 4). Returns how many were written; the scan
/// stops early when `candidates` is full.
size_t vmessd_authid_scan(const uint8_t block[16], const uint8_t *keys, size_t count, int64_t now, uint64_t window,
                          uint32_t *candidates, size_t capacity);

// MARK: AEAD ciphers without provider plumbing (DirectCiphers.c)

#define VMESSD_DIRECT_AES_128_GCM 1
#define VMESSD_DIRECT_CHACHA20_POLY1305 2

/// A new EVP_CIPHER (to be used as `EVP_CIPHER *`) whose calls go straight to libcrypto's built-in
/// implementation of `which`, or NULL when this libcrypto has no such path. Kept for the process's
/// life once chosen (one per algorithm); freed with the function below when it is not.
void *vmessd_direct_aead_cipher(int which);
/// Frees what vmessd_direct_aead_cipher returned (when it is not used after all).
void vmessd_direct_aead_cipher_free(void *cipher);

#endif
