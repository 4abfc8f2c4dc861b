// loadgen.h: what the parts of the load generator share (see loadgen.c for the command line and the method).
//
//   loadgen.c         main, options, /proc readers, payload pattern, latency histogram, measurement window, JSON
//   loadgen_stream.c  load mode over a byte stream: TCP (4-byte length + body) and WebSocket (binary messages)
//   loadgen_ws.c      the WebSocket client's wire format: upgrade handshake, masked frames, server frame parser
//   loadgen_udp.c     load mode over UDP: one package per datagram, losses re-primed after a timeout
//   loadgen_idle.c    idle mode (TCP): many connections, one verified round trip each, then held open
#ifndef LOADGEN_H
#define LOADGEN_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

// ---- options (loadgen.c) ----------------------------------------------------------------------------------------

extern const char *opt_host, *opt_transport, *opt_path;
extern int opt_port, opt_conns, opt_depth, opt_size, opt_server_pid, opt_idle, opt_concurrency;
extern double opt_warmup, opt_duration, opt_drain, opt_hold, opt_udp_timeout;

enum { T_TCP, T_WS, T_UDP };
extern int transport;  // from --transport

// ---- helpers (loadgen.c) ----------------------------------------------------------------------------------------

uint64_t now_ns(void);
void raise_nofile(long want);
/** Parses --host (an IPv4 literal) and --port into `addr`; 0 on success. */
int server_addr(struct sockaddr_in *addr);
/** A TCP socket with TCP_NODELAY, connecting to `addr` (blocking connect unless `nonblock_connect`); nonblocking. */
int open_socket(struct sockaddr_in *addr, int nonblock_connect);

// ---- payload (loadgen.c) ----------------------------------------------------------------------------------------

// Payload of package `seq` on connection `id`: bytes [0,8) = (id << 40 | seq) little-endian (as far as the size
// allows), the rest = pattern[off .. off + size - 8) with off = (seq * 7 + id) & 255 over a pseudo-random pattern.
void init_pattern(int size);
void fill_payload(uint8_t *dst, int size, uint32_t id, uint64_t seq);
int check_payload(const uint8_t *src, int size, uint32_t id, uint64_t seq);

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}
static inline uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// ---- errors and counters (loadgen.c) ----------------------------------------------------------------------------

extern uint64_t errors, mismatches, conn_errors, lost;
extern uint64_t msgs, bytes_in, reads, writes;  // counted during MEASURE only
extern char first_error[256];
/** Counts an error; the first one is kept as text (`id` 0 = not about one connection). */
void note_error(const char *what, uint32_t id, int err);

// ---- latency histogram (loadgen.c) ------------------------------------------------------------------------------

void record(uint64_t ns);

// ---- measurement window (loadgen.c) -----------------------------------------------------------------------------

// WARMUP -> MEASURE (after --warmup s) -> DRAIN (after --duration s more: no new packages, wait for those in
// flight) -> DONE. The server's CPU (/proc/PID/stat), the load generator's own CPU and every CPU's busy time
// (/proc/stat) are read at the exact edges of MEASURE.
enum { WARMUP, MEASURE, DRAIN, DONE };
extern int phase;
void window_init(uint64_t t0);
/** Advances WARMUP -> MEASURE -> DRAIN by the clock; returns 1 when DRAIN began in this call. */
int window_tick(uint64_t now);
/** Ends the window early (stall, every connection failed). */
void window_abort(uint64_t now);
/**
 * Once per event-loop turn of a load mode: `progress` counts the echoes so far, `alive` the connections still
 * open. Ends the window with an error after 5 s without any echo while load is on, or when none is alive.
 */
void check_stall(uint64_t now, uint64_t progress, int alive);
/** epoll_wait (up to `max` events, `timeout_ms`), sets *now; on failure notes it, ends the window and returns -1. */
int wait_events(int epfd, struct epoll_event *events, int max, int timeout_ms, uint64_t *now);
/** Registers `fd` with `epfd` for `events`, with `ptr` as its data. */
void watch_fd(int epfd, int fd, uint32_t events, void *ptr);
/** Prints the load result as one JSON line; `extra` is appended inside the object (",\"k\":v,…" or ""). */
void print_load_result(const char *extra);

// ---- the modes --------------------------------------------------------------------------------------------------

int run_stream_load(void);  // loadgen_stream.c (tcp, ws)
int run_udp_load(void);     // loadgen_udp.c
int run_idle(void);         // loadgen_idle.c (tcp)

// ---- WebSocket wire format (loadgen_ws.c) -----------------------------------------------------------------------

/** Client frame header length for a payload of `len` bytes (2 + extended length + 4 mask bytes). */
size_t ws_client_header_len(size_t len);
/** Writes a masked client frame (FIN, `opcode`) whose payload is already at dst + header length; masks it. */
void ws_client_frame(uint8_t *dst, int opcode, size_t len, uint32_t mask);
/** HTTP/1.1 upgrade on a connected blocking socket. Bytes read past the response go to rx (*rx_len). 0 = ok. */
int ws_handshake(int fd, uint8_t *rx, size_t rx_cap, size_t *rx_len, char *why, size_t why_len);

/** A server frame: opcode, payload (unmasked, in the receive buffer), and the frame's total length. */
typedef struct {
  int opcode;
  int fin;
  const uint8_t *payload;
  size_t len;
  size_t frame_len;
} ws_frame_t;
/** Parses one server frame at p[0..avail): 1 = complete frame, 0 = need more bytes, -1 = protocol error (why). */
int ws_parse(const uint8_t *p, size_t avail, ws_frame_t *f, const char **why);

#endif
