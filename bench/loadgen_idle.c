// loadgen_idle.c: idle mode (TCP), the memory-per-session test.
//
//   loadgen --idle N --port P [--host] [--size 64] [--concurrency 256] [--hold S]
//   Opens N connections (at most `concurrency` connecting at once), makes one verified echo round trip on each
//   (so the server has accepted and used every one), prints {"mode":"idle","ready":N,...} and then holds them
//   all open, idle, until a line or EOF arrives on stdin (or `hold` seconds pass). A connection the server
//   closes meanwhile counts as "dropped". Then it resets them all (SO_LINGER 0: no TIME_WAIT pile-up) and
//   prints a final JSON line.
#include "loadgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int fd;
  uint32_t id;
  int state;  // 0 connecting, 1 ping sent, 2 ready (idle), 3 failed
  size_t got;
} idle_t;

int run_idle(void) {
  struct sockaddr_in addr;
  if (server_addr(&addr) != 0) return 2;
  int n = opt_idle;
  raise_nofile(n + 64);
  init_pattern(opt_size);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  idle_t *cs = calloc((size_t)n, sizeof(idle_t));
  size_t frame = 4 + (size_t)opt_size;
  uint8_t *buf = malloc(frame), *in = malloc(frame + 1);
  int next = 0, inprog = 0, ready = 0, failed = 0;
  uint64_t t0 = now_ns(), deadline = t0 + 120000000000ull;
  struct epoll_event events[512];
  while (ready + failed < n) {
    while (next < n && inprog < opt_concurrency) {
      idle_t *c = &cs[next];
      c->id = (uint32_t)next + 1;
      next++;
      c->fd = open_socket(&addr, 1);
      if (c->fd < 0) {
        c->state = 3;
        failed++;
        note_error("connect", c->id, errno);
        continue;
      }
      watch_fd(epfd, c->fd, EPOLLOUT, c);
      inprog++;
    }
    int k = epoll_wait(epfd, events, 512, 100);
    for (int i = 0; i < k; i++) {
      idle_t *c = events[i].data.ptr;
      int bad = 0;
      if (c->state == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          note_error("connect", 0, err);
          bad = 1;
        } else {
          put_be32(buf, (uint32_t)opt_size);
          fill_payload(buf + 4, opt_size, c->id, 0);
          if (write(c->fd, buf, frame) != (ssize_t)frame) {
            note_error("ping write", 0, errno);
            bad = 1;
          } else {
            c->state = 1;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
          }
        }
      } else if (c->state == 1) {
        ssize_t r = read(c->fd, in + c->got, frame + 1 - c->got);
        if (r <= 0) {
          if (r < 0 && errno == EAGAIN) continue;
          note_error("ping read", 0, r < 0 ? errno : 0);
          bad = 1;
        } else {
          c->got += (size_t)r;
          if (c->got > frame) {
            mismatches++;
            note_error("echo longer than the ping", 0, 0);
            bad = 1;
          } else if (c->got == frame) {
            if (get_be32(in) != (uint32_t)opt_size || !check_payload(in + 4, opt_size, c->id, 0)) {
              mismatches++;
              note_error("ping echo differs", 0, 0);
              bad = 1;
            } else {
              c->state = 2;
              ready++;
              inprog--;
              // Stay registered for EPOLLIN only to notice a server-side close while idle.
              struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
              epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            }
          }
        }
      } else if (c->state == 2) {
        note_error("server closed an idle connection during setup", 0, 0);
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        ready--;
        c->state = 3;
        failed++;
        continue;
      }
      if (bad) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = 3;
        failed++;
        inprog--;
      }
    }
    if (now_ns() > deadline) {
      note_error("setup took longer than 120 s", 0, 0);
      break;
    }
  }
  double setup_s = (now_ns() - t0) / 1e9;
  printf("{\"mode\":\"idle\",\"phase\":\"ready\",\"requested\":%d,\"ready\":%d,\"failed\":%d,\"setup_s\":%.3f,"
         "\"errors\":%llu,\"first_error\":\"%s\"}\n",
         n, ready, failed, setup_s, (unsigned long long)errors, first_error);
  fflush(stdout);

  // Hold: wait for stdin (line or EOF) or the hold time; count idle connections the server closes.
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
  int stdin_ok = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev) == 0;
  int dropped = 0;
  uint64_t hold_end = now_ns() + (uint64_t)(opt_hold * 1e9);
  for (int done = 0; !done && now_ns() < hold_end;) {
    int k = epoll_wait(epfd, events, 512, stdin_ok ? 1000 : 100);
    for (int i = 0; i < k; i++) {
      idle_t *c = events[i].data.ptr;
      if (!c) {
        done = 1;
        continue;
      }
      if (c->state == 2) {
        dropped++;
        c->state = 3;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  if (dropped) note_error("server closed idle connections", 0, 0);
  struct linger lg = {1, 0};
  int closed = 0;
  for (int i = 0; i < n; i++) {
    if (cs[i].fd < 0 || cs[i].state == 0) continue;
    setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(cs[i].fd);
    closed++;
  }
  printf("{\"mode\":\"idle\",\"phase\":\"closed\",\"closed\":%d,\"dropped\":%d,\"errors\":%llu,\"first_error\":\"%s\"}\n",
         closed, dropped, (unsigned long long)errors, first_error);
  fflush(stdout);
  return errors ? 1 : 0;
}
