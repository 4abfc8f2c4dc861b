// loadgen_ws.c: the WebSocket client's wire format (RFC 6455): the HTTP/1.1 upgrade handshake, masked client
// frames, and a parser for the server's unmasked frames. No extensions are offered (no permessage-deflate), so
// every message is sent and echoed as it is.
#include "loadgen.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

size_t ws_client_header_len(size_t len) {
  return (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4;
}

/** XORs p[0..len) with the 4-byte masking key (key byte i % 4 on payload byte i), eight bytes at a time. */
static void mask_payload(uint8_t *p, size_t len, const uint8_t key[4]) {
  uint8_t k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  uint64_t k;
  memcpy(&k, k8, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= k;
    memcpy(p + i, &w, 8);
  }
  for (; i < len; i++) p[i] ^= key[i & 3];
}

void ws_client_frame(uint8_t *dst, int opcode, size_t len, uint32_t mask) {
  size_t h = 2;
  dst[0] = (uint8_t)(0x80 | opcode);  // FIN
  if (len < 126) {
    dst[1] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    dst[1] = 0x80 | 126;
    dst[2] = (uint8_t)(len >> 8), dst[3] = (uint8_t)len;
    h = 4;
  } else {
    dst[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) dst[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    h = 10;
  }
  uint8_t key[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask};
  memcpy(dst + h, key, 4);
  mask_payload(dst + h + 4, len, key);
}

int ws_parse(const uint8_t *p, size_t avail, ws_frame_t *f, const char **why) {
  f->frame_len = 0;
  if (avail < 2) return 0;
  f->fin = p[0] >> 7;
  f->opcode = p[0] & 0x0f;
  if (p[0] & 0x70) {
    *why = "server frame has RSV bits set (an extension was not negotiated)";
    return -1;
  }
  if (p[1] & 0x80) {
    *why = "server frame is masked";
    return -1;
  }
  size_t len = p[1] & 0x7f, h = 2;
  if (len == 126) {
    if (avail < 4) return 0;
    len = (size_t)p[2] << 8 | p[3];
    h = 4;
  } else if (len == 127) {
    if (avail < 10) return 0;
    uint64_t l = 0;
    for (int i = 0; i < 8; i++) l = l << 8 | p[2 + i];
    if (l > (1u << 30)) {
      *why = "server frame longer than 1 GiB";
      return -1;
    }
    len = (size_t)l;
    h = 10;
  }
  f->frame_len = h + len;
  if (avail < h + len) return 0;
  f->payload = p + h;
  f->len = len;
  return 1;
}

int ws_handshake(int fd, uint8_t *rx, size_t rx_cap, size_t *rx_len, char *why, size_t why_len) {
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char req[512];
  // The key is a fixed 16-byte nonce: the benchmark does not check Sec-WebSocket-Accept (status 101 suffices).
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   opt_path, opt_host, opt_port);
  if (write(fd, req, (size_t)n) != n) {
    snprintf(why, why_len, "handshake write: %s", strerror(errno));
    return -1;
  }
  size_t got = 0;
  for (;;) {
    if (got + 1 >= rx_cap) {
      snprintf(why, why_len, "handshake response too long");
      return -1;
    }
    ssize_t r = read(fd, rx + got, rx_cap - 1 - got);
    if (r <= 0) {
      snprintf(why, why_len, "handshake read: %s", r < 0 ? strerror(errno) : "connection closed");
      return -1;
    }
    got += (size_t)r;
    rx[got] = 0;
    char *end = strstr((char *)rx, "\r\n\r\n");
    if (!end) continue;
    if (strncmp((char *)rx, "HTTP/1.1 101", 12) != 0) {
      char *eol = strstr((char *)rx, "\r\n");
      snprintf(why, why_len, "upgrade refused: %.*s", (int)(eol - (char *)rx), (char *)rx);
      return -1;
    }
    size_t head = (size_t)(end + 4 - (char *)rx);
    memmove(rx, rx + head, got - head);  // bytes past the response belong to the frame stream
    *rx_len = got - head;
    break;
  }
  tv.tv_sec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return 0;
}
