#define _GNU_SOURCE
#include "CShims.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <linux/filter.h>

#define VMESSD_MAX_FDS 64

ssize_t vmessd_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > VMESSD_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    char control[CMSG_SPACE(sizeof(int) * VMESSD_MAX_FDS)];
    if (nfds > 0) {
        memset(control, 0, sizeof(control));
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

ssize_t vmessd_recv_with_fds_flags(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds,
                                   int flags, int *truncated) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    char control[CMSG_SPACE(sizeof(int) * VMESSD_MAX_FDS)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    *nfds = 0;
    if (truncated) { *truncated = 0; }
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    if (n < 0) { return n; }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (*nfds < maxfds) {
                    fds[(*nfds)++] = fd;
                } else {
                    // A descriptor nobody will ever own would leak: close it and report truncation.
                    close(fd);
                    if (truncated) { *truncated = 1; }
                }
            }
        }
    }
    if (truncated && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) { *truncated = 1; }
    return n;
}

ssize_t vmessd_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds) {
    return vmessd_recv_with_fds_flags(sock, buf, len, fds, maxfds, nfds, 0, NULL);
}

int vmessd_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

// MARK: shared memory

_Static_assert(sizeof(pthread_mutex_t) <= 64, "a shared lock must fit its 64-byte cell");

size_t vmessd_shared_lock_size(void) { return sizeof(pthread_mutex_t); }

int vmessd_shared_lock_init(void *p) {
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r != 0) { return r; }
    r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    // Robust: a worker killed with SIGKILL while holding the lock must not wedge every other worker.
    if (r == 0) { r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST); }
    if (r == 0) { r = pthread_mutex_init((pthread_mutex_t *)p, &attr); }
    pthread_mutexattr_destroy(&attr);
    return r;
}

int vmessd_shared_lock(void *p) {
    int r = pthread_mutex_lock((pthread_mutex_t *)p);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent((pthread_mutex_t *)p);
        return 1;
    }
    return r;
}

void vmessd_shared_unlock(void *p) { pthread_mutex_unlock((pthread_mutex_t *)p); }

uint64_t vmessd_atomic_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
void vmessd_atomic_store_u64(uint64_t *p, uint64_t value) { __atomic_store_n(p, value, __ATOMIC_SEQ_CST); }
uint64_t vmessd_atomic_add_u64(uint64_t *p, uint64_t value) { return __atomic_fetch_add(p, value, __ATOMIC_SEQ_CST); }
uint64_t vmessd_atomic_exchange_u64(uint64_t *p, uint64_t value) { return __atomic_exchange_n(p, value, __ATOMIC_SEQ_CST); }
int vmessd_atomic_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// MARK: signals

int vmessd_signalfd(const sigset_t *mask) {
    return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

int vmessd_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(fd, &info, sizeof(info));
        if (n == (ssize_t)sizeof(info)) { return (int)info.ssi_signo; }
        if (n < 0 && errno == EINTR) { continue; }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { return 0; }
        if (n >= 0) { errno = EIO; }
        return -1;
    }
}

int vmessd_reuseport_steer(int fd, const uint32_t *indices, uint32_t count) {
    if (count == 0 || count > VMESSD_MAX_STEER) { errno = EINVAL; return -1; }
    // The kernel runs this for every SYN that reaches the group; an index it returns past the
    // group's end falls back to its usual hash, so a stale index is harmless.
    struct sock_filter code[3 + 2 * VMESSD_MAX_STEER];
    uint32_t n = 0;
    code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM));
    code[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count);
    int contiguous = 1;
    for (uint32_t j = 0; j < count; j++) { if (indices[j] != j) { contiguous = 0; break; } }
    if (contiguous) {
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
    } else {
        // A jump table: the j-th random pick returns indices[j].
        for (uint32_t j = 0; j < count; j++) {
            code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, j, 0, 1);
            code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, indices[j]);
        }
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, indices[0]);
    }
    struct sock_fprog program = { .len = (unsigned short)n, .filter = code };
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program));
}

int vmessd_set_process_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

int vmessd_open_path(const char *path) {
    return open(path, O_PATH | O_CLOEXEC);
}
