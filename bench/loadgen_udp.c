// loadgen_udp.c: load mode over UDP (see loadgen.c for the command line).
//
// `conns` connected UDP sockets, each keeping `depth` packages in flight. A package is one datagram: the 4-byte
// big-endian length and the payload (the framing of the library's UDP echo: one length-prefixed package per
// datagram). Sends and receives are batched (sendmmsg / recvmmsg) to keep the load generator's cost per
// datagram low. UDP may drop or reorder datagrams, so an echo may come back in any order: each one is matched
// by the (socket, sequence number) tag in its payload against that socket's packages in flight and verified
// byte for byte. A package whose echo has not come back after --udp-timeout seconds (default 0.2) counts as a
// timeout and frees its slot, so the pipeline is primed again at once; an echo that still arrives later counts
// as "late". lost = timeouts - late. Losses do not make a run invalid (they are reported: loss rate); wrong
// bytes, a datagram that was never sent, socket errors or 5 s without any echo do.
//
// An echo that arrives after the echo of a package sent later on the same socket counts as "reordered" (within
// the measured window): the kernel keeps loopback datagrams in order, so these are the server's doing (e.g.
// concurrent sends that the runtime completes out of order).
//
// The kernel's count of UDP receive-buffer overflows on the whole machine (RcvbufErrors in /proc/net/snmp)
// over the run is reported too, which shows where datagrams were dropped. The load generator's own sockets get a
// 1 MiB receive buffer; the servers keep the default (net.core.rmem_default).
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int fd;
  uint32_t id;
  int dead;
  int want_out;
  uint64_t send_seq;  // next sequence number
  uint64_t seen_hi;   // 1 + the highest sequence number echoed so far (0: none)
  int n_out;          // packages in flight
  uint64_t *out_seq;  // their sequence numbers and send times (unordered, `depth` entries)
  uint64_t *out_at;
} usock_t;

#define RX_BATCH 32
static int epfd;
static size_t dgram;  // bytes of one datagram
static uint8_t *txbuf, *rxbuf;
static struct mmsghdr *tx_mm, rx_mm[RX_BATCH];
static struct iovec *tx_iov, rx_iov[RX_BATCH];
static uint64_t sent, timeouts, late, received, reordered;

/** RcvbufErrors of the Udp line in /proc/net/snmp (whole machine); -1 if unreadable. */
static long long udp_rcvbuf_errors(void) {
  FILE *f = fopen("/proc/net/snmp", "r");
  if (!f) return -1;
  char head[1024], vals[1024];
  long long out = -1;
  while (fgets(head, sizeof head, f)) {
    if (strncmp(head, "Udp:", 4) != 0) continue;
    if (!fgets(vals, sizeof vals, f)) break;
    char *hs, *vs;
    char *h = strtok_r(head, " \n", &hs), *v = strtok_r(vals, " \n", &vs);
    while (h && v) {
      if (!strcmp(h, "RcvbufErrors")) out = atoll(v);
      h = strtok_r(NULL, " \n", &hs);
      v = strtok_r(NULL, " \n", &vs);
    }
    break;
  }
  fclose(f);
  return out;
}

static void fail_sock(usock_t *s, const char *what, int err, int mismatch) {
  if (mismatch) mismatches++;
  else conn_errors++;
  note_error(what, s->id, err);
  if (s->dead) return;
  s->dead = 1;
  s->n_out = 0;
  epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
}

static void set_out(usock_t *s, int on) {
  if (s->want_out == on || s->dead) return;
  s->want_out = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = s};
  epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

/** Sends new packages until `depth` are in flight (one sendmmsg). */
static void refill(usock_t *s, uint64_t now) {
  if (phase >= DRAIN || s->dead) return;
  int k = opt_depth - s->n_out;
  if (k <= 0) return;
  for (int i = 0; i < k; i++) {
    uint8_t *p = txbuf + (size_t)i * dgram;
    put_be32(p, (uint32_t)opt_size);
    fill_payload(p + 4, opt_size, s->id, s->send_seq + (uint64_t)i);
  }
  int r = sendmmsg(s->fd, tx_mm, (unsigned)k, 0);
  if (r < 0) {
    if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) return set_out(s, 1);
    return fail_sock(s, "send", errno, 0);
  }
  if (phase == MEASURE) writes++;
  for (int i = 0; i < r; i++) {
    s->out_seq[s->n_out] = s->send_seq++;
    s->out_at[s->n_out++] = now;
  }
  sent += (uint64_t)r;
  set_out(s, r < k);
}

/** One echoed datagram. 0 when the socket was failed. */
static int on_datagram(usock_t *s, const uint8_t *p, size_t n, int flags, uint64_t now) {
  if ((flags & MSG_TRUNC) || n != dgram || get_be32(p) != (uint32_t)opt_size) {
    fail_sock(s, "echo has the wrong length", 0, 1);
    return 0;
  }
  uint64_t tag = 0;
  for (int i = 7; i >= 0; i--) tag = tag << 8 | p[4 + i];
  uint64_t seq = tag & 0xFFFFFFFFFFull;
  if ((uint32_t)(tag >> 40) != s->id || seq >= s->send_seq) {
    fail_sock(s, "echo of a package never sent on this socket", 0, 1);
    return 0;
  }
  if (!check_payload(p + 4, opt_size, s->id, seq)) {
    fail_sock(s, "echoed payload differs", 0, 1);
    return 0;
  }
  received++;
  if (seq + 1 < s->seen_hi) {
    if (phase == MEASURE) reordered++;
  } else {
    s->seen_hi = seq + 1;
  }
  for (int j = 0; j < s->n_out; j++) {
    if (s->out_seq[j] != seq) continue;
    if (phase == MEASURE) {
      record(now - s->out_at[j]);
      msgs++;
      bytes_in += n;
    }
    s->n_out--;
    s->out_seq[j] = s->out_seq[s->n_out];
    s->out_at[j] = s->out_at[s->n_out];
    return 1;
  }
  late++;  // its slot timed out already
  return 1;
}

static void on_readable(usock_t *s, uint64_t now) {
  for (;;) {
    int r = recvmmsg(s->fd, rx_mm, RX_BATCH, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return fail_sock(s, "receive", errno, 0);  // e.g. ECONNREFUSED: the server's port is closed
    }
    if (phase == MEASURE) reads++;
    for (int i = 0; i < r; i++) {
      if (!on_datagram(s, rxbuf + (size_t)i * (dgram + 1), rx_mm[i].msg_len, rx_mm[i].msg_hdr.msg_flags, now))
        return;
    }
    if (r < RX_BATCH) break;
  }
  refill(s, now);
}

/** Gives up on packages in flight for longer than the timeout, then primes the pipeline again. */
static void expire(usock_t *s, uint64_t now, uint64_t timeout_ns) {
  if (s->dead) return;
  int expired = 0;
  for (int j = 0; j < s->n_out;) {
    if (now - s->out_at[j] < timeout_ns) {
      j++;
      continue;
    }
    s->n_out--;
    s->out_seq[j] = s->out_seq[s->n_out];
    s->out_at[j] = s->out_at[s->n_out];
    expired++;
  }
  if (!expired) return;
  timeouts += (uint64_t)expired;
  refill(s, now);
}

int run_udp_load(void) {
  struct sockaddr_in addr;
  if (server_addr(&addr) != 0) return 2;
  raise_nofile(opt_conns + 64);
  init_pattern(opt_size);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  dgram = 4 + (size_t)opt_size;
  txbuf = malloc(dgram * (size_t)opt_depth);
  tx_mm = calloc((size_t)opt_depth, sizeof *tx_mm);
  tx_iov = calloc((size_t)opt_depth, sizeof *tx_iov);
  for (int i = 0; i < opt_depth; i++) {
    tx_iov[i] = (struct iovec){txbuf + (size_t)i * dgram, dgram};
    tx_mm[i].msg_hdr.msg_iov = &tx_iov[i];
    tx_mm[i].msg_hdr.msg_iovlen = 1;
  }
  rxbuf = malloc((dgram + 1) * RX_BATCH);  // one spare byte: a longer echo shows as too long
  for (int i = 0; i < RX_BATCH; i++) {
    rx_iov[i] = (struct iovec){rxbuf + (size_t)i * (dgram + 1), dgram + 1};
    rx_mm[i].msg_hdr.msg_iov = &rx_iov[i];
    rx_mm[i].msg_hdr.msg_iovlen = 1;
  }
  usock_t *socks = calloc((size_t)opt_conns, sizeof(usock_t));
  long long rcvbuf0 = udp_rcvbuf_errors();
  for (int i = 0; i < opt_conns; i++) {
    usock_t *s = &socks[i];
    s->id = (uint32_t)i + 1;
    s->out_seq = calloc((size_t)opt_depth, sizeof(uint64_t));
    s->out_at = calloc((size_t)opt_depth, sizeof(uint64_t));
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rcvbuf = 1 << 20;
    if (s->fd >= 0) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
      s->dead = 1;
      conn_errors++;
      note_error("socket/connect", s->id, errno);
      continue;
    }
    watch_fd(epfd, s->fd, EPOLLIN, s);
  }
  uint64_t timeout_ns = (uint64_t)(opt_udp_timeout * 1e9);
  uint64_t t0 = now_ns(), t_drain_end = 0, last_expire = t0;
  window_init(t0);
  for (int i = 0; i < opt_conns; i++) refill(&socks[i], t0);

  struct epoll_event events[512];
  while (phase != DONE) {
    uint64_t now;
    int n = wait_events(epfd, events, 512, 2, &now);
    if (n < 0) break;
    for (int i = 0; i < n; i++) {
      usock_t *s = events[i].data.ptr;
      if (s->dead) continue;
      if (events[i].events & EPOLLOUT) refill(s, now);
      if (!s->dead && (events[i].events & (EPOLLIN | EPOLLERR))) on_readable(s, now);
    }
    if (now - last_expire >= 2000000) {
      last_expire = now;
      for (int i = 0; i < opt_conns; i++) expire(&socks[i], now, timeout_ns);
    }
    if (window_tick(now)) t_drain_end = now + (uint64_t)(opt_drain * 1e9);
    int alive = 0, busy = 0;
    for (int i = 0; i < opt_conns; i++) {
      alive += !socks[i].dead;
      busy |= !socks[i].dead && socks[i].n_out > 0;
    }
    if (phase == DRAIN && (!busy || now >= t_drain_end)) phase = DONE;  // expire() empties the pipelines
    check_stall(now, received, alive);
  }
  for (int i = 0; i < opt_conns; i++)
    if (!socks[i].dead) close(socks[i].fd);
  long long rcvbuf1 = udp_rcvbuf_errors();
  lost = timeouts > late ? timeouts - late : 0;
  char extra[512];
  snprintf(extra, sizeof extra,
           ",\"udp\":{\"sent\":%llu,\"received\":%llu,\"timeouts\":%llu,\"late\":%llu,\"loss_rate\":%.6f,"
           "\"timeout_ms\":%.0f,\"rcvbuf_errors\":%lld,\"reordered\":%llu}",
           (unsigned long long)sent, (unsigned long long)received, (unsigned long long)timeouts,
           (unsigned long long)late, sent ? (double)lost / (double)sent : 0, opt_udp_timeout * 1000,
           rcvbuf0 >= 0 && rcvbuf1 >= 0 ? rcvbuf1 - rcvbuf0 : -1, (unsigned long long)reordered);
  print_load_result(extra);
  return errors ? 1 : 0;
}
