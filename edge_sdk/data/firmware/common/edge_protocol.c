/* edge_protocol.c: the board side of the serial protocol (see edge_protocol.h). */
#include "edge_protocol.h"

#include <string.h>

static uint8_t rx[EDGE_MAX_PAYLOAD + 8];
static uint8_t tx[EDGE_MAX_PAYLOAD + 16];

/* Per-layer timing of the last RUN (EDGE_PROFILE builds): the timer when each layer ended. */
static const edge_port_t *profile_port;
static uint32_t profile_ticks[EDGE_PROFILE_MAX_LAYERS];
static uint32_t profile_count;

void edge_profile_layer(uint32_t layer) {
  if (profile_port != 0 && layer < EDGE_PROFILE_MAX_LAYERS) {
    profile_ticks[layer] = (uint32_t)profile_port->timer_ticks();
    if (layer + 1u > profile_count) profile_count = layer + 1u;
  }
}

/* Tracing (EDGE_TRACE builds): the layer RUN_TO stops after, and what it produced there. */
static int32_t trace_stop = -1;
static const uint8_t *trace_data;
static uint32_t trace_bytes;

int edge_trace_layer(uint32_t layer, const void *data, uint32_t bytes) {
  if ((int32_t)layer != trace_stop) return 0;
  trace_data = (const uint8_t *)data;
  trace_bytes = bytes;
  return 1;
}

uint32_t edge_crc32(uint32_t crc, const uint8_t *data, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* The request being answered: its command and sequence number, echoed in the reply. */
#define REQUEST_HEADER 4u /* cmd, seq, len u16 */
#define RESPONSE_HEADER 5u /* cmd, seq, status, len u16 */

static void respond(const edge_port_t *port, uint8_t status, const uint8_t *payload, uint16_t len) {
  tx[0] = EDGE_RESPONSE_START;
  tx[1] = rx[0];
  tx[2] = rx[1];
  tx[3] = status;
  tx[4] = (uint8_t)len;
  tx[5] = (uint8_t)(len >> 8);
  if (len) memcpy(&tx[1 + RESPONSE_HEADER], payload, len);
  put_u32(&tx[1 + RESPONSE_HEADER + len], edge_crc32(0, &tx[1], (size_t)len + RESPONSE_HEADER));
  port->write(tx, 1u + RESPONSE_HEADER + len + 4u);
}

/* Bytes taken off the link for a frame that then failed (bad CRC, or cut short by the
   inter-byte timeout), which are scanned again for a start byte before more is read: the start
   byte that began the failed frame may have been noise, with the real request right behind it. */
static uint8_t replay[sizeof(rx)];
static uint32_t replay_pos, replay_len;

static int next_byte(const edge_port_t *port, uint32_t timeout_ms) {
  if (replay_pos < replay_len) return replay[replay_pos++];
  return port->read_byte(timeout_ms);
}

/* Puts rx[0..got) back in front of what is still unread in replay. */
static void rescan(uint32_t got) {
  uint32_t rest = replay_len - replay_pos;
  memmove(&replay[got], &replay[replay_pos], rest); /* got < replay_pos whenever rest > 0 */
  memcpy(replay, rx, got);
  replay_pos = 0;
  replay_len = got + rest;
}

/* Reads one request into rx: rx[0] = cmd, rx[1] = seq, rx[2..3] = len, rx[4..] = payload.
   Returns the payload length, -1 when the link closed, -2 on a CRC error. A frame whose next
   byte does not come within EDGE_INTERBYTE_TIMEOUT_MS is dropped and its bytes scanned again,
   so a frame is never left half-read waiting for bytes that will not come; it is answered
   BAD_CRC (with the command and number it began with, so the host resends at once instead of
   after its own timeout) once those two bytes came. */
static int read_request(const edge_port_t *port) {
  int c;
  for (;;) {
    do {
      c = next_byte(port, 0);
      if (c == EDGE_READ_CLOSED) return -1;
    } while (c != EDGE_REQUEST_START);
    uint32_t got = 0, want = REQUEST_HEADER;
    while (got < want) {
      c = next_byte(port, EDGE_INTERBYTE_TIMEOUT_MS);
      if (c < 0) break;
      rx[got++] = (uint8_t)c;
      if (got == REQUEST_HEADER) {
        uint32_t len = (uint32_t)rx[2] | ((uint32_t)rx[3] << 8);
        if (len > EDGE_MAX_PAYLOAD) {
          rescan(got);
          return -2;
        }
        want = REQUEST_HEADER + len + 4u;
      }
    }
    if (c == EDGE_READ_CLOSED) return -1;
    if (got < want) { /* timed out: a byte was lost */
      rescan(got);
      if (got >= 2) return -2; /* answered BAD_CRC, so the host resends at once */
      continue;
    }
    uint32_t len = want - REQUEST_HEADER - 4u;
    if (edge_crc32(0, rx, len + REQUEST_HEADER) != get_u32(&rx[REQUEST_HEADER + len])) {
      rescan(got);
      return -2;
    }
    return (int)len;
  }
}

void edge_protocol_serve(const edge_port_t *port, const edge_model_t *model) {
  uint8_t out[32];
  for (;;) {
    int len = read_request(port);
    if (len == -1) return;
    uint8_t cmd = rx[0];
    const uint8_t *payload = &rx[REQUEST_HEADER];
    if (len == -2) {
      respond(port, EDGE_STATUS_BAD_CRC, 0, 0);
      continue;
    }
    switch (cmd) {
      case EDGE_CMD_INFO: {
        size_t name_len = strlen(model->name);
        if (name_len > EDGE_MAX_PAYLOAD - 20u) name_len = EDGE_MAX_PAYLOAD - 20u;
        uint8_t info[EDGE_MAX_PAYLOAD];
        info[0] = EDGE_PROTOCOL_VERSION;
        info[1] = port->timer_kind;
        info[2] = 0;
        info[3] = 0;
        put_u32(&info[4], model->input_size);
        put_u32(&info[8], model->output_size);
        put_u32(&info[12], model->arena_size);
        put_u32(&info[16], port->timer_hz);
        memcpy(&info[20], model->name, name_len);
        respond(port, EDGE_STATUS_OK, info, (uint16_t)(20u + name_len));
        break;
      }
      case EDGE_CMD_WRITE_INPUT: {
        uint32_t offset = len >= 4 ? get_u32(payload) : 0xFFFFFFFFu;
        uint32_t n = (uint32_t)len - 4u;
        if (len < 4 || offset > model->input_size || n > model->input_size - offset) {
          respond(port, EDGE_STATUS_BAD_ARGUMENT, 0, 0);
          break;
        }
        memcpy(model->input + offset, payload + 4, n);
        respond(port, EDGE_STATUS_OK, 0, 0);
        break;
      }
      case EDGE_CMD_RUN: {
        respond(port, EDGE_STATUS_STARTED, 0, 0);
        profile_port = port;
        profile_count = 0;
        port->timer_start();
        int result = model->run(model->input, model->output, model->arena);
        uint64_t ticks = port->timer_ticks();
        put_u32(&out[0], (uint32_t)result);
        put_u32(&out[4], (uint32_t)ticks);
        put_u32(&out[8], (uint32_t)(ticks >> 32));
        respond(port, result == 0 ? EDGE_STATUS_OK : EDGE_STATUS_RUN_FAILED, out, 12);
        break;
      }
      case EDGE_CMD_READ_OUTPUT: {
        uint32_t offset = len >= 6 ? get_u32(payload) : 0xFFFFFFFFu;
        uint32_t n = len >= 6 ? ((uint32_t)payload[4] | ((uint32_t)payload[5] << 8)) : 0u;
        if (len < 6 || n > EDGE_MAX_PAYLOAD || offset > model->output_size ||
            n > model->output_size - offset) {
          respond(port, EDGE_STATUS_BAD_ARGUMENT, 0, 0);
          break;
        }
        respond(port, EDGE_STATUS_OK, model->output + offset, (uint16_t)n);
        break;
      }
      case EDGE_CMD_RUN_TO: {
        if (len < 2) {
          respond(port, EDGE_STATUS_BAD_ARGUMENT, 0, 0);
          break;
        }
        respond(port, EDGE_STATUS_STARTED, 0, 0);
        trace_stop = (int32_t)((uint32_t)payload[0] | ((uint32_t)payload[1] << 8));
        trace_data = 0;
        trace_bytes = 0;
        (void)model->run(model->input, model->output, model->arena);
        trace_stop = -1;
        put_u32(&out[0], trace_data ? trace_bytes : 0u);
        respond(port, EDGE_STATUS_OK, out, 4);
        break;
      }
      case EDGE_CMD_READ_TRACE: {
        uint32_t offset = len >= 6 ? get_u32(payload) : 0xFFFFFFFFu;
        uint32_t n = len >= 6 ? ((uint32_t)payload[4] | ((uint32_t)payload[5] << 8)) : 0u;
        if (len < 6 || trace_data == 0 || n > EDGE_MAX_PAYLOAD || offset > trace_bytes ||
            n > trace_bytes - offset) {
          respond(port, EDGE_STATUS_BAD_ARGUMENT, 0, 0);
          break;
        }
        respond(port, EDGE_STATUS_OK, trace_data + offset, (uint16_t)n);
        break;
      }
      case EDGE_CMD_PROFILE: {
        static uint8_t reply[4u + 4u * EDGE_PROFILE_MAX_LAYERS];
        put_u32(&reply[0], profile_count);
        for (uint32_t i = 0; i < profile_count; ++i) put_u32(&reply[4u + 4u * i], profile_ticks[i]);
        respond(port, EDGE_STATUS_OK, reply, (uint16_t)(4u + 4u * profile_count));
        break;
      }
      case EDGE_CMD_RESET:
        memset(model->arena, 0, model->arena_size);
        respond(port, EDGE_STATUS_OK, 0, 0);
        break;
      case EDGE_CMD_PING:
        respond(port, EDGE_STATUS_OK, payload, (uint16_t)len);
        break;
      case EDGE_CMD_EXIT:
        respond(port, EDGE_STATUS_OK, 0, 0);
        return;
      default:
        respond(port, EDGE_STATUS_BAD_COMMAND, 0, 0);
        break;
    }
  }
}
