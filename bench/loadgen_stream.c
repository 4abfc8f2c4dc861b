// loadgen_stream.c: load mode over a byte stream, TCP or WebSocket (see loadgen.c for the command line).
//
// Every connection keeps exactly `depth` packages in flight: as soon as echoes arrive it sends as many new ones
// (in one write). TCP: a package is a 4-byte big-endian length and the payload. WebSocket: after the upgrade
// handshake, a package is one masked binary frame holding the payload, and its echo must be one unmasked binary
// frame with the same bytes; pings from the server are answered with pongs, a close frame is an error. Echoes
// must come back in order; each one is verified byte for byte (length, order, content).
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
  uint32_t mask;  // WebSocket masking key of this connection's frames
  uint8_t *tx;
  size_t tx_off, tx_len, tx_cap;
  uint8_t *rx;
  size_t rx_len, rx_cap;
  uint64_t send_seq, recv_seq;
  uint64_t *sent_at;  // ring of depth send times
} conn_t;

static int epfd;
static size_t tx_frame;  // bytes one package takes on the wire, client -> server
/** Room for control frames (pongs) on top of `depth` packages in the send buffer. */
#define TX_SLACK 1024

static void kill_conn(conn_t *c) {
  if (c->dead) return;
  c->dead = 1;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

static void fail_conn(conn_t *c, const char *what, int err, int mismatch) {
  if (mismatch) mismatches++;
  else conn_errors++;
  note_error(what, c->id, err);
  kill_conn(c);
}

static void set_out(conn_t *c, int on) {
  if (c->want_out == on || c->dead) return;
  c->want_out = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_tx(conn_t *c) {
  while (c->tx_off < c->tx_len) {
    ssize_t n = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        set_out(c, 1);
        return;
      }
      fail_conn(c, "write", errno, 0);
      return;
    }
    if (phase == MEASURE) writes++;
    c->tx_off += (size_t)n;
  }
  c->tx_off = c->tx_len = 0;
  set_out(c, 0);
}

/** Moves unsent bytes to the front of the send buffer. */
static void compact_tx(conn_t *c) {
  if (c->tx_off == 0) return;
  memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
  c->tx_len -= c->tx_off;
  c->tx_off = 0;
}

/** Appends package `seq` to the send buffer in the transport's framing. */
static void encode_package(conn_t *c, uint64_t seq) {
  uint8_t *p = c->tx + c->tx_len;
  if (transport == T_TCP) {
    put_be32(p, (uint32_t)opt_size);
    fill_payload(p + 4, opt_size, c->id, seq);
  } else {
    size_t h = ws_client_header_len((size_t)opt_size);
    fill_payload(p + h, opt_size, c->id, seq);
    ws_client_frame(p, 2, (size_t)opt_size, c->mask);
  }
  c->tx_len += tx_frame;
}

static void refill(conn_t *c, uint64_t now) {
  if (phase >= DRAIN || c->dead) return;
  uint64_t depth = (uint64_t)opt_depth;
  if (c->send_seq - c->recv_seq >= depth) return;
  compact_tx(c);
  while (c->send_seq - c->recv_seq < depth) {
    c->sent_at[c->send_seq % depth] = now;
    encode_package(c, c->send_seq++);
  }
  flush_tx(c);
}

/** An echoed package's payload arrived: verify it, record its latency. 0 when the connection was failed. */
static int on_package(conn_t *c, const uint8_t *payload, size_t len, uint64_t now) {
  if (len != (size_t)opt_size) {
    fail_conn(c, "echo has the wrong length", 0, 1);
    return 0;
  }
  if (c->recv_seq >= c->send_seq) {
    fail_conn(c, "echo of a package never sent", 0, 1);
    return 0;
  }
  if (!check_payload(payload, opt_size, c->id, c->recv_seq)) {
    fail_conn(c, "echoed payload differs", 0, 1);
    return 0;
  }
  if (phase == MEASURE) {
    record(now - c->sent_at[c->recv_seq % (uint64_t)opt_depth]);
    msgs++;
  }
  c->recv_seq++;
  return 1;
}

/** Parses complete frames at the front of rx; returns the bytes consumed, or -1 when the connection failed. */
static long parse_rx(conn_t *c, uint64_t now) {
  size_t off = 0;
  while (off < c->rx_len) {
    const uint8_t *p = c->rx + off;
    size_t avail = c->rx_len - off;
    if (transport == T_TCP) {
      if (avail < 4) break;
      uint32_t len = get_be32(p);
      if (len != (uint32_t)opt_size) {
        fail_conn(c, "bad length field in echo", 0, 1);
        return -1;
      }
      if (avail < 4 + (size_t)len) break;
      if (!on_package(c, p + 4, len, now)) return -1;
      off += 4 + (size_t)len;
      continue;
    }
    ws_frame_t f;
    const char *why = "";
    int r = ws_parse(p, avail, &f, &why);
    if (r < 0) {
      fail_conn(c, why, 0, 1);
      return -1;
    }
    if (r == 0) {
      if (f.frame_len > c->rx_cap) {
        fail_conn(c, "server frame larger than the receive buffer", 0, 1);
        return -1;
      }
      break;
    }
    if (f.opcode == 2 && f.fin) {
      if (!on_package(c, f.payload, f.len, now)) return -1;
    } else if (f.opcode == 9) {  // ping: answer with a pong carrying the same data
      compact_tx(c);
      uint8_t *q = c->tx + c->tx_len;
      size_t h = ws_client_header_len(f.len);
      if (c->tx_len + h + f.len > c->tx_cap) {
        fail_conn(c, "no room for a pong", 0, 0);
        return -1;
      }
      memcpy(q + h, f.payload, f.len);
      ws_client_frame(q, 10, f.len, c->mask);
      c->tx_len += h + f.len;
      flush_tx(c);
      if (c->dead) return -1;
    } else if (f.opcode == 10) {
      // unsolicited pong: ignore
    } else if (f.opcode == 8) {
      char what[96];
      int code = f.len >= 2 ? (f.payload[0] << 8 | f.payload[1]) : 0;
      snprintf(what, sizeof what, "server sent a close frame (code %d)", code);
      fail_conn(c, what, 0, 0);
      return -1;
    } else {
      fail_conn(c, f.opcode == 1 ? "echo is a text message" : "fragmented or unknown frame", 0, 1);
      return -1;
    }
    off += f.frame_len;
  }
  return (long)off;
}

static void on_readable(conn_t *c, uint64_t now) {
  ssize_t n = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    fail_conn(c, "read", errno, 0);
    return;
  }
  if (n == 0) {
    fail_conn(c, "server closed the connection", 0, 0);
    return;
  }
  if (phase == MEASURE) {
    reads++;
    bytes_in += (uint64_t)n;
  }
  c->rx_len += (size_t)n;
  long off = parse_rx(c, now);
  if (off < 0) return;
  if (off > 0) {
    memmove(c->rx, c->rx + off, c->rx_len - (size_t)off);
    c->rx_len -= (size_t)off;
  }
  refill(c, now);
}

/** Connects connection `c` (blocking connect and, for WebSocket, handshake: a handful of connections). */
static int connect_conn(conn_t *c, struct sockaddr_in *addr) {
  c->fd = open_socket(addr, 0);
  if (c->fd < 0) return -1;
  if (transport == T_WS) {
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
    char why[160];
    if (ws_handshake(c->fd, c->rx, c->rx_cap, &c->rx_len, why, sizeof why) != 0) {
      note_error(why, c->id, 0);
      close(c->fd);
      c->fd = -1;
      return -2;
    }
    fcntl(c->fd, F_SETFL, fl);
  }
  return 0;
}

int run_stream_load(void) {
  struct sockaddr_in addr;
  if (server_addr(&addr) != 0) return 2;
  raise_nofile(opt_conns + 64);
  init_pattern(opt_size);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  conn_t *conns = calloc((size_t)opt_conns, sizeof(conn_t));
  tx_frame = transport == T_TCP ? 4 + (size_t)opt_size : ws_client_header_len((size_t)opt_size) + (size_t)opt_size;
  size_t rx_frame = transport == T_TCP ? 4 + (size_t)opt_size : 10 + (size_t)opt_size;
  for (int i = 0; i < opt_conns; i++) {
    conn_t *c = &conns[i];
    c->id = (uint32_t)i + 1;
    c->mask = 0x9E3779B9u * c->id | 1;
    c->tx_cap = tx_frame * (size_t)opt_depth + TX_SLACK;
    c->tx = malloc(c->tx_cap);
    c->rx_cap = rx_frame * 2 > 65536 ? rx_frame * 2 : 65536;
    c->rx = malloc(c->rx_cap);
    c->sent_at = calloc((size_t)opt_depth, sizeof(uint64_t));
    int r = connect_conn(c, &addr);
    if (r != 0) {
      c->dead = 1;
      conn_errors++;
      if (r == -1) note_error("connect", c->id, errno);
      continue;
    }
    watch_fd(epfd, c->fd, EPOLLIN, c);
  }
  uint64_t t0 = now_ns(), t_drain_end = 0;
  window_init(t0);
  for (int i = 0; i < opt_conns; i++) refill(&conns[i], t0);

  struct epoll_event events[512];
  while (phase != DONE) {
    uint64_t now;
    int n = wait_events(epfd, events, 512, 5, &now);
    if (n < 0) break;
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
      if (c->dead) continue;
      if (events[i].events & EPOLLOUT) flush_tx(c);
      if (!c->dead && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c, now);
    }
    if (window_tick(now)) t_drain_end = now + (uint64_t)(opt_drain * 1e9);
    if (phase == DRAIN) {
      int busy = 0;
      for (int i = 0; i < opt_conns; i++)
        if (!conns[i].dead && conns[i].recv_seq < conns[i].send_seq) busy = 1;
      if (!busy) phase = DONE;
      else if (now >= t_drain_end) {
        for (int i = 0; i < opt_conns; i++)
          if (!conns[i].dead) lost += conns[i].send_seq - conns[i].recv_seq;
        note_error("packages still in flight after the drain timeout", 0, 0);
        phase = DONE;
      }
    }
    uint64_t msgs_total = 0;
    int alive = 0;
    for (int i = 0; i < opt_conns; i++) {
      msgs_total += conns[i].recv_seq;
      alive += !conns[i].dead;
    }
    check_stall(now, msgs_total, alive);
  }
  for (int i = 0; i < opt_conns; i++) kill_conn(&conns[i]);
  print_load_result("");
  return errors ? 1 : 0;
}
