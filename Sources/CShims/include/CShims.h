#ifndef VMESSD_CSHIMS_H
#define VMESSD_CSHIMS_H
// Tiny C helpers for what Swift cannot import: CMSG_* macros and a few prefixed wrappers.
#include <stddef.h>
#include "vmessd_malloc.h"
#include <sys/types.h>

/// Sends `len` bytes plus up to `nfds` file descriptors (SCM_RIGHTS) on a connected AF_UNIX socket.
/// Returns what sendmsg returns; errno is left as sendmsg set it.
ssize_t vmessd_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// Receives one message and up to `maxfds` descriptors (close-on-exec). `*nfds` gets the count.
ssize_t vmessd_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds);

/// Creates an anonymous memory file (memfd_create with MFD_CLOEXEC). Returns -1 and errno on failure.
int vmessd_memfd_create(const char *name);

#endif
