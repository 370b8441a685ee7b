// A plain TCP relay in C: the kernel's share of what any proxy server pays per connection and per
// byte, with nothing of a protocol on top. Benchmarks/floor.py builds and measures it; see
// Benchmarks/README.md, "Floors".
//
//   floor_relay LISTEN_PORT TARGET_PORT BUFFER_BYTES
//
// One thread, level-triggered epoll, non-blocking sockets on 127.0.0.1; per connection two
// sockets and one buffer per direction of BUFFER_BYTES. A direction reads only while its buffer
// is empty (backpressure), and a read's bytes are written before the next read. EOF is passed on
// as a half-close; the pair closes when both directions have ended or either fails. Runs until
// killed.
#define _GNU_SOURCE  // accept4
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct side;
struct conn {
    struct side *a, *b;  // a: accepted client, b: dialed target
    int ended;           // directions that have finished (0, 1, 2)
};
struct side {
    int fd;
    struct conn *conn;
    struct side *peer;
    char *buf;           // bytes read from this side, waiting to go to the peer
    size_t len, off;
    int eof, connecting;
};

static size_t bufsize;
static int ep;

static void set_events(struct side *s) {
    struct epoll_event ev = {.data.ptr = s};
    if (s->connecting) ev.events = EPOLLOUT;
    else {
        if (!s->eof && s->len == 0) ev.events |= EPOLLIN;     // room to read
        if (s->peer->len > s->peer->off) ev.events |= EPOLLOUT; // the peer's bytes wait for us
    }
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void close_conn(struct conn *c) {
    close(c->a->fd);
    close(c->b->fd);
    free(c->a->buf);
    free(c->b->buf);
    free(c->a);
    free(c->b);
    free(c);
}

// Writes what `from` read to its peer. Returns -1 on error.
static int flush_to_peer(struct side *from) {
    while (from->off < from->len) {
        ssize_t w = write(from->peer->fd, from->buf + from->off, from->len - from->off);
        if (w < 0) return (errno == EAGAIN) ? 0 : -1;
        from->off += (size_t)w;
    }
    from->len = from->off = 0;
    if (from->eof) {
        shutdown(from->peer->fd, SHUT_WR);
        from->conn->ended++;
    }
    return 0;
}

static int on_readable(struct side *s) {
    ssize_t n = read(s->fd, s->buf, bufsize);
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if (n == 0) s->eof = 1;
    s->len = (size_t)n;
    s->off = 0;
    return flush_to_peer(s);
}

static struct side *new_side(int fd, struct conn *c) {
    struct side *s = calloc(1, sizeof *s);
    s->fd = fd;
    s->conn = c;
    s->buf = malloc(bufsize);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor_relay LISTEN_PORT TARGET_PORT BUFFER_BYTES\n");
        return 2;
    }
    int lport = atoi(argv[1]), tport = atoi(argv[2]);
    bufsize = (size_t)atol(argv[3]);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    struct sockaddr_in target = addr;
    target.sin_port = htons((uint16_t)tport);

    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&addr, sizeof addr) || listen(l, 4096)) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev);

    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        for (int i = 0; i < n; i++) {
            struct side *s = events[i].data.ptr;
            if (s == NULL) {  // the listener
                int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0) continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (connect(t, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
                    close(fd);
                    close(t);
                    continue;
                }
                struct conn *c = calloc(1, sizeof *c);
                c->a = new_side(fd, c);
                c->b = new_side(t, c);
                c->a->peer = c->b;
                c->b->peer = c->a;
                c->b->connecting = 1;
                struct epoll_event ea = {.events = 0, .data.ptr = c->a}, eb = {.events = EPOLLOUT, .data.ptr = c->b};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ea);  // the client waits until the target is connected
                epoll_ctl(ep, EPOLL_CTL_ADD, t, &eb);
                continue;
            }
            struct conn *c = s->conn;
            int failed = 0;
            if (s->connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) failed = 1;
                s->connecting = 0;
            } else {
                // An error, or a hang-up after this side's EOF (nothing can move any more): done.
                if ((events[i].events & EPOLLERR) || ((events[i].events & EPOLLHUP) && s->eof)) failed = 1;
                if (!failed && (events[i].events & EPOLLOUT) && s->peer->len > s->peer->off)
                    failed = flush_to_peer(s->peer) < 0;
                if (!failed && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->eof && s->len == 0)
                    failed = on_readable(s) < 0;
            }
            if (failed || c->ended == 2) {
                close_conn(c);
                continue;
            }
            set_events(c->a);
            set_events(c->b);
        }
    }
}
