/* edge_protocol.h: the serial protocol between the edge-sdk host tools and a board.
 *
 * Framing (all integers little-endian):
 *   request  : 0xA5 | cmd u8 | seq u8 | len u16 | payload[len] | crc32 u32   (crc over cmd..payload)
 *   response : 0x5A | cmd u8 | seq u8 | status u8 | len u16 | payload[len] | crc32 u32
 *              (crc over cmd..payload)
 * The CRC is the IEEE 802.3 CRC-32 (zlib's crc32). seq is the host's number for the request, echoed
 * in its reply, so the host takes only the reply to the request it sent: a late reply to an
 * earlier try, or to a command that gave up, can never be taken for another (before version 2,
 * an input written in one inference could be answered by the previous one's late reply).
 * A request with a bad CRC is answered with EDGE_STATUS_BAD_CRC and ignored, so the host can
 * resend it. Bytes before a start byte are skipped. A request whose bytes stop coming for
 * EDGE_INTERBYTE_TIMEOUT_MS is dropped, and answered BAD_CRC if its command and seq came. The bytes of a dropped or bad-CRC frame after
 * its start byte are scanned again for a start byte, so a noise byte that looked like a start
 * byte costs nothing more than the wait.
 * Every command is idempotent (the same request twice has the same effect and reply as once), so
 * the host resends any request whose exchange failed. After a lost reply it first sends zero
 * bytes, enough to complete a frame a board whose port cannot time out may be half-way through
 * (answered BAD_CRC), which are then skipped as bytes before a start byte. RUN and RUN_TO are
 * answered twice: STARTED at once, then the result, so a lost RUN costs the host a reply's timeout
 * and not an inference's. The host sends nothing while an inference runs (a polled UART would
 * lose it).
 * Python's side is edge_sdk/device/protocol.py; keep the two in step.
 */
#ifndef EDGE_PROTOCOL_H_
#define EDGE_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

#define EDGE_PROTOCOL_VERSION 2u
#define EDGE_REQUEST_START 0xA5u
#define EDGE_RESPONSE_START 0x5Au
#define EDGE_MAX_PAYLOAD 1024u

/* How long the board waits for the next byte of a request it has begun to read. A frame is
   written in one go by the host, so a gap this long means a byte was lost. */
#ifndef EDGE_INTERBYTE_TIMEOUT_MS
#define EDGE_INTERBYTE_TIMEOUT_MS 200u
#endif

/* read_byte's answers other than a byte. */
#define EDGE_READ_CLOSED (-1)
#define EDGE_READ_TIMEOUT (-2)

enum edge_command {
  EDGE_CMD_INFO = 0x01,        /* -> version, sizes, timer description, model name */
  EDGE_CMD_WRITE_INPUT = 0x02, /* offset u32 | bytes */
  EDGE_CMD_RUN = 0x03,         /* -> result i32 | ticks u64 */
  EDGE_CMD_READ_OUTPUT = 0x04, /* offset u32 | length u16 -> bytes */
  EDGE_CMD_PING = 0x05,        /* echoes the payload */
  EDGE_CMD_EXIT = 0x06,        /* answers, then leaves the server (QEMU: ends the emulator) */
  EDGE_CMD_PROFILE = 0x07,     /* -> count u32 | ticks u32 x count: the timer at the end of each
                                  layer of the last RUN (firmware built with EDGE_PROFILE; else
                                  count is 0) */
  EDGE_CMD_RUN_TO = 0x08,      /* layer u16 -> bytes u32: run until that layer has ended, keep
                                  its output for READ_TRACE (firmware built with EDGE_TRACE;
                                  else, or if the layer does not exist, bytes is 0) */
  EDGE_CMD_READ_TRACE = 0x09,  /* offset u32 | length u16 -> bytes of that layer's output */
  EDGE_CMD_RESET = 0x0A,       /* zero the arena: a stateful model (LSTM, SVDF) starts over */
};

/* Layers whose end the firmware records (the reply must fit EDGE_MAX_PAYLOAD). */
#define EDGE_PROFILE_MAX_LAYERS 255u

enum edge_status {
  EDGE_STATUS_OK = 0,
  EDGE_STATUS_BAD_CRC = 1,
  EDGE_STATUS_BAD_COMMAND = 2,
  EDGE_STATUS_BAD_ARGUMENT = 3,
  EDGE_STATUS_RUN_FAILED = 4,
  EDGE_STATUS_STARTED = 5, /* RUN and RUN_TO: sent as the inference begins; the answer follows.
                              The host tells a lost request (no notice) from a long inference. */
};

/* How RUN's tick count should be read (sent in INFO). */
enum edge_timer_kind {
  EDGE_TIMER_NONE = 0,
  EDGE_TIMER_CYCLES = 1,      /* core cycles (DWT->CYCCNT) */
  EDGE_TIMER_SYSTICK = 2,     /* SysTick ticks at timer_hz; under QEMU -icount, virtual time */
  EDGE_TIMER_NANOSECONDS = 3, /* host wall clock */
  EDGE_TIMER_CLOCK = 4,       /* ticks of a clock at timer_hz that is not the core's (an RTC,
                                 micros()): time only, not cycles */
  EDGE_TIMER_SYSTICK_EMULATED = 5, /* SysTick on a core whose cycle counter is there but never
                                      moves: an emulator's (QEMU -icount: instructions) */
};

/* What a port provides: byte I/O and a free-running tick counter. */
typedef struct {
  /* 0..255; EDGE_READ_CLOSED when the link closed; EDGE_READ_TIMEOUT when timeout_ms passed with
     no byte (timeout_ms 0: wait for ever). A port with no clock may ignore the timeout. */
  int (*read_byte)(uint32_t timeout_ms);
  void (*write)(const uint8_t *data, size_t n);
  void (*timer_start)(void);
  uint64_t (*timer_ticks)(void);              /* ticks since timer_start */
  uint32_t timer_hz;
  uint8_t timer_kind;
} edge_port_t;

/* What the model provides (see the generated edge_model_config.h). Sizes are in bytes. */
typedef struct {
  const char *name;
  uint32_t input_size, output_size, arena_size;
  int (*run)(const void *input, void *output, uint8_t *arena);
  uint8_t *input;
  uint8_t *output;
  uint8_t *arena;
} edge_model_t;

/* Called by a model built with -DEDGE_PROFILE after each layer (see the generated model.c). */
void edge_profile_layer(uint32_t layer);

/* Called by a model built with -DEDGE_TRACE after each layer with that layer's output; a
   non-zero return stops the run there (the model returns 1). */
int edge_trace_layer(uint32_t layer, const void *data, uint32_t bytes);

/* Serve requests until EXIT or until the link closes. */
void edge_protocol_serve(const edge_port_t *port, const edge_model_t *model);

uint32_t edge_crc32(uint32_t crc, const uint8_t *data, size_t n);

#endif /* EDGE_PROTOCOL_H_ */
