// loadgen: an independent native load generator for the echo benchmarks (one thread, epoll).
//
// Load mode (default):
//   loadgen --port P [--host 127.0.0.1] [--conns N] [--depth D] [--size BYTES] [--warmup S] [--duration S]
//           [--server-pid PID] [--drain S] [--transport tcp]
//   Opens N connections and keeps D packages in flight on each. A package is a 4-byte big-endian length and
//   `size` payload bytes; the payload is derived from (connection id, per-connection sequence number), so every
//   echoed byte is verified. After `warmup` seconds it measures for `duration` seconds: completed round trips,
//   latency (send -> whole echo received, per package) and, with --server-pid, the server's CPU time
//   (utime+stime from /proc/PID/stat, all threads) over exactly that window. Then it stops sending, waits up to
//   `drain` seconds for every package in flight to come back (a missing one is an error) and closes.
//   Prints one JSON line on stdout. "errors" > 0 means the run is invalid.
//
// Idle mode:
//   loadgen --idle N --port P [--host] [--size 64] [--concurrency 256] [--hold S]
//   Opens N connections (at most `concurrency` connecting at once), makes one verified echo round trip on each
//   (so the server has accepted and used every one), prints {"mode":"idle","ready":N,...} and then holds them
//   all open, idle, until a line or EOF arrives on stdin (or `hold` seconds pass). A connection the server
//   closes meanwhile counts as "dropped". Then it resets them all (SO_LINGER 0: no TIME_WAIT pile-up) and
//   prints a final JSON line.
//
// Transports: only tcp. TODO(ws): HTTP upgrade + masked client frames, one package per binary message.
// TODO(udp): one package per datagram, loss accounted separately from mismatches.
//
// Build: gcc -O2 -o loadgen loadgen.c   (bench/run.mjs does this into bench/.build/)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// ---- options -------------------------------------------------------------------------------------------------

static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static int opt_conns = 1;
static int opt_depth = 1;
static int opt_size = 64;
static double opt_warmup = 1.0;
static double opt_duration = 5.0;
static double opt_drain = 5.0;
static int opt_server_pid = 0;
static int opt_idle = 0;
static int opt_concurrency = 256;
static double opt_hold = 300.0;
static const char *opt_transport = "tcp";

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host H] [--conns N] [--depth D] [--size B] [--warmup S] [--duration S]\n"
          "               [--drain S] [--server-pid PID] [--transport tcp]\n"
          "       loadgen --idle N --port P [--host H] [--size B] [--concurrency C] [--hold S]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--host")) opt_host = v;
    else if (!strcmp(a, "--port")) opt_port = atoi(v);
    else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
    else if (!strcmp(a, "--depth")) opt_depth = atoi(v);
    else if (!strcmp(a, "--size")) opt_size = atoi(v);
    else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
    else if (!strcmp(a, "--duration")) opt_duration = atof(v);
    else if (!strcmp(a, "--drain")) opt_drain = atof(v);
    else if (!strcmp(a, "--server-pid")) opt_server_pid = atoi(v);
    else if (!strcmp(a, "--idle")) opt_idle = atoi(v);
    else if (!strcmp(a, "--concurrency")) opt_concurrency = atoi(v);
    else if (!strcmp(a, "--hold")) opt_hold = atof(v);
    else if (!strcmp(a, "--transport")) opt_transport = v;
    else usage();
  }
  if (opt_port <= 0 || opt_conns < 1 || opt_depth < 1 || opt_size < 0 || opt_concurrency < 1) usage();
  if (strcmp(opt_transport, "tcp") != 0) {
    // TODO(ws, udp): implement the client side of the other transports here.
    fprintf(stderr, "loadgen: transport %s is not implemented yet (tcp only)\n", opt_transport);
    exit(2);
  }
}

// ---- helpers -------------------------------------------------------------------------------------------------

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t self_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** utime+stime of a process (all threads), in clock ticks; -1 if unreadable. */
static long long proc_cpu_ticks(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2;  // field 3 (state)
  unsigned long long utime = 0, stime = 0;
  // fields 3..13 skipped, 14 = utime, 15 = stime
  if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
  return (long long)(utime + stime);
}

/** Busy time (user+nice+system+irq+softirq+steal) of each CPU from /proc/stat, in clock ticks. Returns the count. */
#define MAX_CPUS 64
static int cpu_busy_ticks(long long *busy) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f) && n < MAX_CPUS) {
    int cpu;
    unsigned long long u, ni, sy, id, io, irq, sirq, st;
    if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &u, &ni, &sy, &id, &io, &irq, &sirq,
               &st) != 9 || cpu != n)
      continue;
    busy[n++] = (long long)(u + ni + sy + irq + sirq + st);
  }
  fclose(f);
  return n;
}

static void raise_nofile(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if ((long)rl.rlim_cur >= want) return;
  struct rlimit next = {(rlim_t)want, rl.rlim_max > (rlim_t)want ? rl.rlim_max : (rlim_t)want};
  if (setrlimit(RLIMIT_NOFILE, &next) != 0) {
    next.rlim_max = rl.rlim_max;
    next.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &next);
  }
}

static int open_socket(struct sockaddr_in *addr, int nonblock_connect) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock_connect ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)addr, sizeof *addr) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  if (!nonblock_connect) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// ---- payload -------------------------------------------------------------------------------------------------

// Payload of package `seq` on connection `id`: bytes [0,8) = (id << 40 | seq) little-endian (as far as the size
// allows), the rest = pattern[off .. off + size - 8) with off = (seq * 7 + id) & 255 over a pseudo-random pattern.
static uint8_t *pattern;

static void init_pattern(int size) {
  pattern = malloc((size_t)size + 512);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < size + 512; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pattern[i] = (uint8_t)(x >> 24);
  }
}

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}
static inline uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void fill_payload(uint8_t *dst, int size, uint32_t id, uint64_t seq) {
  uint64_t tag = (uint64_t)id << 40 | (seq & 0xFFFFFFFFFFull);
  int head = size < 8 ? size : 8;
  for (int i = 0; i < head; i++) dst[i] = (uint8_t)(tag >> (8 * i));
  if (size > 8) memcpy(dst + 8, pattern + ((seq * 7 + id) & 255), (size_t)size - 8);
}

static inline int check_payload(const uint8_t *src, int size, uint32_t id, uint64_t seq) {
  uint64_t tag = (uint64_t)id << 40 | (seq & 0xFFFFFFFFFFull);
  int head = size < 8 ? size : 8;
  for (int i = 0; i < head; i++)
    if (src[i] != (uint8_t)(tag >> (8 * i))) return 0;
  if (size > 8 && memcmp(src + 8, pattern + ((seq * 7 + id) & 255), (size_t)size - 8) != 0) return 0;
  return 1;
}

// ---- latency histogram (log-linear, ~0.8 % resolution) ---------------------------------------------------------

#define HBUCKETS (256 + 56 * 128)
static uint64_t hist[HBUCKETS];
static uint64_t hist_count, hist_sum, hist_max;

static inline int bucket_of(uint64_t v) {
  if (v < 256) return (int)v;
  int e = 63 - __builtin_clzll(v);
  return 256 + (e - 8) * 128 + (int)((v >> (e - 7)) & 127);
}
static uint64_t bucket_value(int b) {
  if (b < 256) return (uint64_t)b;
  int e = (b - 256) / 128 + 8, sub = (b - 256) % 128;
  uint64_t lo = (uint64_t)(128 + sub) << (e - 7);
  return lo + ((1ull << (e - 7)) >> 1);
}
static inline void record(uint64_t v) {
  hist[bucket_of(v)]++;
  hist_count++;
  hist_sum += v;
  if (v > hist_max) hist_max = v;
}
static double percentile_us(double q) {
  if (hist_count == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)hist_count);
  if (rank >= hist_count) rank = hist_count - 1;
  uint64_t seen = 0;
  for (int b = 0; b < HBUCKETS; b++) {
    seen += hist[b];
    if (seen > rank) return (double)bucket_value(b) / 1000.0;
  }
  return (double)hist_max / 1000.0;
}

// ---- load mode -----------------------------------------------------------------------------------------------

typedef struct {
  int fd;
  uint32_t id;
  int dead;
  int want_out;
  uint8_t *tx;
  size_t tx_off, tx_len, tx_cap;
  uint8_t *rx;
  size_t rx_len, rx_cap;
  uint64_t send_seq, recv_seq;
  uint64_t *sent_at;  // ring of depth send times
} conn_t;

enum { WARMUP, MEASURE, DRAIN, DONE };
static int phase = WARMUP;
static int epfd;
static uint64_t errors, mismatches, conn_errors, lost;
static uint64_t msgs, bytes_in, reads, writes;  // counted during MEASURE only
static char first_error[256];

static void note_error(const char *what, conn_t *c, int err) {
  errors++;
  if (!first_error[0])
    snprintf(first_error, sizeof first_error, "conn %u: %s%s%s", c ? c->id : 0, what, err ? ": " : "",
             err ? strerror(err) : "");
}

static void kill_conn(conn_t *c) {
  if (c->dead) return;
  c->dead = 1;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
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
      conn_errors++;
      note_error("write", c, errno);
      kill_conn(c);
      return;
    }
    if (phase == MEASURE) writes++;
    c->tx_off += (size_t)n;
  }
  c->tx_off = c->tx_len = 0;
  set_out(c, 0);
}

static void refill(conn_t *c, uint64_t now) {
  if (phase >= DRAIN || c->dead) return;
  uint64_t depth = (uint64_t)opt_depth;
  if (c->send_seq - c->recv_seq >= depth) return;
  if (c->tx_off > 0) {  // compact unsent bytes to the front
    memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
    c->tx_len -= c->tx_off;
    c->tx_off = 0;
  }
  size_t frame = 4 + (size_t)opt_size;
  while (c->send_seq - c->recv_seq < depth) {
    uint8_t *p = c->tx + c->tx_len;
    put_be32(p, (uint32_t)opt_size);
    fill_payload(p + 4, opt_size, c->id, c->send_seq);
    c->sent_at[c->send_seq % depth] = now;
    c->send_seq++;
    c->tx_len += frame;
  }
  flush_tx(c);
}

static void on_readable(conn_t *c, uint64_t now) {
  ssize_t n = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    conn_errors++;
    note_error("read", c, errno);
    kill_conn(c);
    return;
  }
  if (n == 0) {
    conn_errors++;
    note_error("server closed the connection", c, 0);
    kill_conn(c);
    return;
  }
  if (phase == MEASURE) {
    reads++;
    bytes_in += (uint64_t)n;
  }
  c->rx_len += (size_t)n;
  size_t off = 0, frame = 4 + (size_t)opt_size;
  uint64_t depth = (uint64_t)opt_depth;
  while (c->rx_len - off >= 4) {
    uint32_t len = get_be32(c->rx + off);
    if (len != (uint32_t)opt_size) {
      mismatches++;
      note_error("bad length field in echo", c, 0);
      kill_conn(c);
      return;
    }
    if (c->rx_len - off < frame) break;
    if (c->recv_seq >= c->send_seq) {
      mismatches++;
      note_error("echo of a package never sent", c, 0);
      kill_conn(c);
      return;
    }
    if (!check_payload(c->rx + off + 4, opt_size, c->id, c->recv_seq)) {
      mismatches++;
      note_error("echoed payload differs", c, 0);
      kill_conn(c);
      return;
    }
    if (phase == MEASURE) {
      record(now - c->sent_at[c->recv_seq % depth]);
      msgs++;
    }
    c->recv_seq++;
    off += frame;
  }
  if (off > 0) {
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
  }
  refill(c, now);
}

static int run_load(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
  if (inet_pton(AF_INET, opt_host, &addr.sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad --host %s (IPv4 literal)\n", opt_host);
    return 2;
  }
  raise_nofile(opt_conns + 64);
  init_pattern(opt_size);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  conn_t *conns = calloc((size_t)opt_conns, sizeof(conn_t));
  size_t frame = 4 + (size_t)opt_size;
  for (int i = 0; i < opt_conns; i++) {
    conn_t *c = &conns[i];
    c->id = (uint32_t)i + 1;
    c->fd = open_socket(&addr, 0);  // blocking connect: a handful of connections
    if (c->fd < 0) {
      c->dead = 1;
      conn_errors++;
      note_error("connect", c, errno);
      continue;
    }
    c->tx_cap = frame * (size_t)opt_depth;
    c->tx = malloc(c->tx_cap);
    c->rx_cap = frame * 2 > 65536 ? frame * 2 : 65536;
    c->rx = malloc(c->rx_cap);
    c->sent_at = calloc((size_t)opt_depth, sizeof(uint64_t));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  }
  uint64_t t0 = now_ns();
  uint64_t t_measure = t0 + (uint64_t)(opt_warmup * 1e9);
  uint64_t t_end = t_measure + (uint64_t)(opt_duration * 1e9);
  uint64_t t_drain_end = 0, measured_ns = 0, lg_cpu0 = 0, lg_cpu = 0;
  long long srv0 = -1, srv1 = -1, busy0[MAX_CPUS] = {0}, busy1[MAX_CPUS] = {0};
  int ncpu = 0;
  for (int i = 0; i < opt_conns; i++) refill(&conns[i], t0);
  if (opt_warmup <= 0) {
    phase = MEASURE;
    srv0 = proc_cpu_ticks(opt_server_pid);
    lg_cpu0 = self_cpu_ns();
    ncpu = cpu_busy_ticks(busy0);
  }

  struct epoll_event events[512];
  uint64_t last_progress = t0, last_msgs_total = 0, msgs_total = 0;
  while (phase != DONE) {
    int n = epoll_wait(epfd, events, 512, 5);
    uint64_t now = now_ns();
    if (n < 0 && errno != EINTR) {
      note_error("epoll_wait", NULL, errno);
      break;
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
      if (c->dead) continue;
      if (events[i].events & EPOLLOUT) flush_tx(c);
      if (!c->dead && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c, now);
    }
    if (phase == WARMUP && now >= t_measure) {
      phase = MEASURE;
      srv0 = proc_cpu_ticks(opt_server_pid);
      lg_cpu0 = self_cpu_ns();
      ncpu = cpu_busy_ticks(busy0);
      t_measure = now;
    } else if (phase == MEASURE && now >= t_end) {
      cpu_busy_ticks(busy1);
      srv1 = proc_cpu_ticks(opt_server_pid);
      lg_cpu = self_cpu_ns() - lg_cpu0;
      measured_ns = now - t_measure;
      phase = DRAIN;
      t_drain_end = now + (uint64_t)(opt_drain * 1e9);
    }
    if (phase == DRAIN) {
      int busy = 0;
      for (int i = 0; i < opt_conns; i++)
        if (!conns[i].dead && conns[i].recv_seq < conns[i].send_seq) busy = 1;
      if (!busy) phase = DONE;
      else if (now >= t_drain_end) {
        for (int i = 0; i < opt_conns; i++)
          if (!conns[i].dead) lost += conns[i].send_seq - conns[i].recv_seq;
        note_error("packages still in flight after the drain timeout", NULL, 0);
        phase = DONE;
      }
    }
    // Stall detection: no round trip completed anywhere for 5 s while load is on.
    msgs_total = 0;
    for (int i = 0; i < opt_conns; i++) msgs_total += conns[i].recv_seq;
    if (msgs_total != last_msgs_total) {
      last_msgs_total = msgs_total;
      last_progress = now;
    } else if (phase < DRAIN && now - last_progress > 5000000000ull) {
      note_error("no progress for 5 s", NULL, 0);
      cpu_busy_ticks(busy1);
      srv1 = proc_cpu_ticks(opt_server_pid);
      lg_cpu = self_cpu_ns() - lg_cpu0;
      measured_ns = now - t_measure;
      phase = DONE;
    }
    int alive = 0;
    for (int i = 0; i < opt_conns; i++) alive += !conns[i].dead;
    if (!alive && phase != DONE) {
      note_error("every connection failed", NULL, 0);
      if (!measured_ns) measured_ns = now - t_measure;
      phase = DONE;
    }
  }
  for (int i = 0; i < opt_conns; i++) kill_conn(&conns[i]);

  double secs = measured_ns / 1e9;
  double tick = (double)sysconf(_SC_CLK_TCK);
  double srv_cpu = (srv0 >= 0 && srv1 >= 0) ? (double)(srv1 - srv0) / tick : -1;
  double mps = secs > 0 ? (double)msgs / secs : 0;
  char busy_json[MAX_CPUS * 16 + 8];
  int bl = snprintf(busy_json, sizeof busy_json, "[");
  for (int i = 0; i < ncpu; i++)
    bl += snprintf(busy_json + bl, sizeof busy_json - (size_t)bl, "%s%.3f", i ? "," : "", (busy1[i] - busy0[i]) / tick);
  snprintf(busy_json + bl, sizeof busy_json - (size_t)bl, "]");
  printf("{\"mode\":\"load\",\"transport\":\"%s\",\"conns\":%d,\"depth\":%d,\"size\":%d,\"seconds\":%.3f,"
         "\"msgs\":%llu,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
         "\"lat_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},"
         "\"cpu_busy_s\":%s,\"server_cpu_s\":%.3f,\"server_cpu_s_per_mpkg\":%.4f,\"loadgen_cpu_s\":%.3f,"
         "\"client_reads_per_msg\":%.4f,\"client_writes_per_msg\":%.4f,"
         "\"errors\":%llu,\"mismatches\":%llu,\"conn_errors\":%llu,\"lost\":%llu,\"first_error\":\"%s\"}\n",
         opt_transport, opt_conns, opt_depth, opt_size, secs, (unsigned long long)msgs, mps,
         mps * opt_size / 1e6, hist_count ? (double)hist_sum / hist_count / 1000.0 : 0, percentile_us(0.50),
         percentile_us(0.90), percentile_us(0.99), percentile_us(0.999), hist_max / 1000.0, busy_json, srv_cpu,
         (srv_cpu >= 0 && msgs > 0) ? srv_cpu / ((double)msgs / 1e6) : -1, lg_cpu / 1e9,
         msgs ? (double)reads / msgs : 0, msgs ? (double)writes / msgs : 0, (unsigned long long)errors,
         (unsigned long long)mismatches, (unsigned long long)conn_errors, (unsigned long long)lost, first_error);
  fflush(stdout);
  return errors ? 1 : 0;
}

// ---- idle mode -----------------------------------------------------------------------------------------------

typedef struct {
  int fd;
  uint32_t id;
  int state;  // 0 connecting, 1 ping sent, 2 ready (idle), 3 failed
  size_t got;
} idle_t;

static int run_idle(void) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
  if (inet_pton(AF_INET, opt_host, &addr.sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad --host %s (IPv4 literal)\n", opt_host);
    return 2;
  }
  int n = opt_idle;
  raise_nofile(n + 64);
  init_pattern(opt_size);
  epfd = epoll_create1(EPOLL_CLOEXEC);
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
        note_error("connect", NULL, errno);
        continue;
      }
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
      epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
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
          note_error("connect", NULL, err);
          bad = 1;
        } else {
          put_be32(buf, (uint32_t)opt_size);
          fill_payload(buf + 4, opt_size, c->id, 0);
          if (write(c->fd, buf, frame) != (ssize_t)frame) {
            note_error("ping write", NULL, errno);
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
          note_error("ping read", NULL, r < 0 ? errno : 0);
          bad = 1;
        } else {
          c->got += (size_t)r;
          if (c->got > frame) {
            mismatches++;
            note_error("echo longer than the ping", NULL, 0);
            bad = 1;
          } else if (c->got == frame) {
            if (get_be32(in) != (uint32_t)opt_size || !check_payload(in + 4, opt_size, c->id, 0)) {
              mismatches++;
              note_error("ping echo differs", NULL, 0);
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
        note_error("server closed an idle connection during setup", NULL, 0);
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
      note_error("setup took longer than 120 s", NULL, 0);
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
  if (dropped) note_error("server closed idle connections", NULL, 0);
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

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  parse_args(argc, argv);
  return opt_idle > 0 ? run_idle() : run_load();
}
