// loadgen: an independent native load generator for the echo benchmarks (one thread, epoll, Linux).
//
// Load mode (default):
//   loadgen --port P [--host 127.0.0.1] [--transport tcp|ws|udp] [--path /ws] [--conns N] [--depth D]
//           [--size BYTES] [--warmup S] [--duration S] [--drain S] [--server-pid PID] [--udp-timeout S]
//           [--busy-poll 1]
//   Opens N connections (UDP: N connected sockets) and keeps D packages in flight on each. The payload of
//   package n on connection c is derived from (c, n), so every echoed byte is verified. After `warmup` seconds it
//   measures for `duration` seconds: completed round trips, latency (send -> whole echo received, per package)
//   and, with --server-pid, the server's CPU time (utime+stime from /proc/PID/stat, all threads) over exactly
//   that window. Then it stops sending and waits up to `drain` seconds for every package in flight (TCP and
//   WebSocket: a missing one is an error; UDP: see loadgen_udp.c). Prints one JSON line on stdout; "errors" > 0
//   means the run is invalid. "loadgen_blocked" counts the times the load generator blocked in the window (each
//   ended with a wake-up, which on loopback the waking side's CPU pays for: the server's, for an echo);
//   `--busy-poll 1` never blocks (it polls in a loop and uses its whole CPU), so the server wakes nobody.
//   - tcp: a package is a 4-byte big-endian length and `size` payload bytes (the echo server's framing).
//   - ws:  HTTP/1.1 upgrade on --path, then one masked binary message of `size` bytes per package; the echo
//          must be one unmasked binary message with the same bytes (loadgen_ws.c).
//   - udp: one datagram per package: the 4-byte length and the payload (the library's UDP echo framing).
//
// Idle mode (tcp):
//   loadgen --idle N --port P [--host] [--size 64] [--concurrency 256] [--hold S]
//   See loadgen_idle.c.
//
// Build: gcc -O2 -Wall -o loadgen loadgen.c loadgen_stream.c loadgen_ws.c loadgen_udp.c loadgen_idle.c
// (bench/run.mjs does this into bench/.build/).
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// ---- options -------------------------------------------------------------------------------------------------

const char *opt_host = "127.0.0.1", *opt_transport = "tcp", *opt_path = "/ws";
int opt_port = 0, opt_conns = 1, opt_depth = 1, opt_size = 64, opt_server_pid = 0, opt_idle = 0;
int opt_concurrency = 256;
/** 1: poll without ever blocking (see wait_events). */
static int opt_busy_poll = 0;
double opt_warmup = 1.0, opt_duration = 5.0, opt_drain = 5.0, opt_hold = 300.0, opt_udp_timeout = 0.2;
int transport = T_TCP;

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host H] [--transport tcp|ws|udp] [--path /ws] [--conns N] [--depth D]\n"
          "               [--size B] [--warmup S] [--duration S] [--drain S] [--server-pid PID] [--udp-timeout S]\n"
          "               [--busy-poll 1]\n"
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
    else if (!strcmp(a, "--path")) opt_path = v;
    else if (!strcmp(a, "--busy-poll")) opt_busy_poll = atoi(v);
    else if (!strcmp(a, "--udp-timeout")) opt_udp_timeout = atof(v);
    else usage();
  }
  if (opt_port <= 0 || opt_conns < 1 || opt_depth < 1 || opt_size < 0 || opt_concurrency < 1) usage();
  if (!strcmp(opt_transport, "tcp")) transport = T_TCP;
  else if (!strcmp(opt_transport, "ws")) transport = T_WS;
  else if (!strcmp(opt_transport, "udp")) transport = T_UDP;
  else {
    fprintf(stderr, "loadgen: unknown --transport %s (tcp, ws, udp)\n", opt_transport);
    exit(2);
  }
  if (opt_idle > 0 && transport != T_TCP) {
    fprintf(stderr, "loadgen: --idle is implemented for tcp only\n");
    exit(2);
  }
  if (transport == T_UDP && (opt_size < 8 || opt_size > 65507 - 4)) {
    fprintf(stderr, "loadgen: udp needs 8 <= --size <= 65503 (the tag, and one datagram)\n");
    exit(2);
  }
}

// ---- helpers -------------------------------------------------------------------------------------------------

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** Times this process blocked (voluntary context switches): each one ended with a wake-up by the kernel. */
static long self_blocked(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nvcsw : 0;
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

void raise_nofile(long want) {
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

int server_addr(struct sockaddr_in *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)opt_port);
  if (inet_pton(AF_INET, opt_host, &addr->sin_addr) != 1) {
    fprintf(stderr, "loadgen: bad --host %s (IPv4 literal)\n", opt_host);
    return -1;
  }
  return 0;
}

int open_socket(struct sockaddr_in *addr, int nonblock_connect) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock_connect ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)addr, sizeof *addr) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  if (!nonblock_connect) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// ---- payload -------------------------------------------------------------------------------------------------

static uint8_t *pattern;

void init_pattern(int size) {
  pattern = malloc((size_t)size + 512);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < size + 512; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pattern[i] = (uint8_t)(x >> 24);
  }
}

void fill_payload(uint8_t *dst, int size, uint32_t id, uint64_t seq) {
  uint64_t tag = (uint64_t)id << 40 | (seq & 0xFFFFFFFFFFull);
  int head = size < 8 ? size : 8;
  for (int i = 0; i < head; i++) dst[i] = (uint8_t)(tag >> (8 * i));
  if (size > 8) memcpy(dst + 8, pattern + ((seq * 7 + id) & 255), (size_t)size - 8);
}

int check_payload(const uint8_t *src, int size, uint32_t id, uint64_t seq) {
  uint64_t tag = (uint64_t)id << 40 | (seq & 0xFFFFFFFFFFull);
  int head = size < 8 ? size : 8;
  for (int i = 0; i < head; i++)
    if (src[i] != (uint8_t)(tag >> (8 * i))) return 0;
  if (size > 8 && memcmp(src + 8, pattern + ((seq * 7 + id) & 255), (size_t)size - 8) != 0) return 0;
  return 1;
}

// ---- errors and counters -------------------------------------------------------------------------------------

uint64_t errors, mismatches, conn_errors, lost;
uint64_t msgs, bytes_in, reads, writes;
char first_error[256];

void note_error(const char *what, uint32_t id, int err) {
  errors++;
  if (!first_error[0])
    snprintf(first_error, sizeof first_error, "conn %u: %s%s%s", id, what, err ? ": " : "", err ? strerror(err) : "");
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
void record(uint64_t v) {
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

// ---- measurement window --------------------------------------------------------------------------------------

int phase = WARMUP;
static uint64_t t_measure, t_end, measured_ns, lg_cpu0, lg_cpu;
static long lg_blocked0, lg_blocked;
static long long srv0 = -1, srv1 = -1, busy0[MAX_CPUS], busy1[MAX_CPUS];
static int ncpu;

static void begin_measure(uint64_t now) {
  phase = MEASURE;
  srv0 = proc_cpu_ticks(opt_server_pid);
  lg_cpu0 = self_cpu_ns();
  lg_blocked0 = self_blocked();
  ncpu = cpu_busy_ticks(busy0);
  t_measure = now;
  t_end = now + (uint64_t)(opt_duration * 1e9);
}

static void end_measure(uint64_t now) {
  cpu_busy_ticks(busy1);
  srv1 = proc_cpu_ticks(opt_server_pid);
  lg_cpu = self_cpu_ns() - lg_cpu0;
  lg_blocked = self_blocked() - lg_blocked0;
  measured_ns = now - t_measure;
}

void window_init(uint64_t t0) {
  t_measure = t0 + (uint64_t)(opt_warmup * 1e9);
  if (opt_warmup <= 0) begin_measure(t0);
}

int window_tick(uint64_t now) {
  if (phase == WARMUP && now >= t_measure) begin_measure(now);
  else if (phase == MEASURE && now >= t_end) {
    end_measure(now);
    phase = DRAIN;
    return 1;
  }
  return 0;
}

void window_abort(uint64_t now) {
  if (phase == MEASURE) end_measure(now);
  else if (phase == WARMUP) measured_ns = 0;
  phase = DONE;
}

void check_stall(uint64_t now, uint64_t progress, int alive) {
  static uint64_t last_progress, last_count;
  if (last_progress == 0 || progress != last_count) {
    last_count = progress;
    last_progress = now;
  } else if (phase < DRAIN && now - last_progress > 5000000000ull) {
    note_error("no echo at all for 5 s", 0, 0);
    window_abort(now);
  }
  if (!alive && phase != DONE) {
    note_error("every connection failed", 0, 0);
    window_abort(now);
  }
}

int wait_events(int epfd, struct epoll_event *events, int max, int timeout_ms, uint64_t *now) {
  int n;
  if (opt_busy_poll) {
    // Never block: the server then never has to wake this process (on loopback the server's CPU pays for that).
    uint64_t until = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    do {
      n = epoll_wait(epfd, events, max, 0);
      *now = now_ns();
    } while (n == 0 && *now < until);
  } else {
    n = epoll_wait(epfd, events, max, timeout_ms);
    *now = now_ns();
  }
  if (n >= 0) return n;
  if (errno == EINTR) return 0;
  note_error("epoll_wait", 0, errno);
  window_abort(*now);
  return -1;
}

void watch_fd(int epfd, int fd, uint32_t events, void *ptr) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void print_load_result(const char *extra) {
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
         "\"loadgen_blocked\":%ld,\"busy_poll\":%d,"
         "\"client_reads_per_msg\":%.4f,\"client_writes_per_msg\":%.4f,"
         "\"errors\":%llu,\"mismatches\":%llu,\"conn_errors\":%llu,\"lost\":%llu,\"first_error\":\"%s\"%s}\n",
         opt_transport, opt_conns, opt_depth, opt_size, secs, (unsigned long long)msgs, mps,
         mps * opt_size / 1e6, hist_count ? (double)hist_sum / hist_count / 1000.0 : 0, percentile_us(0.50),
         percentile_us(0.90), percentile_us(0.99), percentile_us(0.999), hist_max / 1000.0, busy_json, srv_cpu,
         (srv_cpu >= 0 && msgs > 0) ? srv_cpu / ((double)msgs / 1e6) : -1, lg_cpu / 1e9, lg_blocked, opt_busy_poll,
         msgs ? (double)reads / msgs : 0, msgs ? (double)writes / msgs : 0, (unsigned long long)errors,
         (unsigned long long)mismatches, (unsigned long long)conn_errors, (unsigned long long)lost, first_error,
         extra);
  fflush(stdout);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  parse_args(argc, argv);
  if (opt_idle > 0) return run_idle();
  return transport == T_UDP ? run_udp_load() : run_stream_load();
}
