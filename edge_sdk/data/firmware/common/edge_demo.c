/* edge_demo.c: one inference on the built-in sample, reported as a line of text. */
#include "edge_demo.h"

#include <string.h>

static void put_str(const edge_port_t *port, const char *s) {
  port->write((const uint8_t *)s, strlen(s));
}

static void put_u64(const edge_port_t *port, uint64_t v) {
  char buf[21];
  int i = (int)sizeof buf - 1;
  buf[i] = '\0';
  do {
    buf[--i] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v && i > 0);
  put_str(port, &buf[i]);
}

static void put_i32(const edge_port_t *port, int32_t v) {
  if (v < 0) {
    put_str(port, "-");
    put_u64(port, (uint64_t)(-(int64_t)v));
  } else {
    put_u64(port, (uint64_t)v);
  }
}

void edge_demo(const edge_port_t *port, const edge_model_t *model, const uint8_t *sample,
               int output_is_float) {
  memcpy(model->input, sample, model->input_size);
  port->timer_start();
  int status = model->run(model->input, model->output, model->arena);
  uint64_t ticks = port->timer_ticks();

  uint32_t count = output_is_float ? model->output_size / 4u : model->output_size;
  uint32_t best = 0;
  int32_t best_score = 0;
  float best_f = 0.0f;
  for (uint32_t i = 0; i < count; ++i) {
    if (output_is_float) {
      float v;
      memcpy(&v, model->output + 4u * i, sizeof v);
      if (i == 0 || v > best_f) best = i, best_f = v;
    } else {
      int32_t v = (int8_t)model->output[i];
      if (i == 0 || v > best_score) best = i, best_score = v;
    }
  }
  put_str(port, "edge-sdk: ");
  put_str(port, model->name);
  if (status != 0) {
    put_str(port, ": inference failed\r\n");
    return;
  }
  put_str(port, ": top class ");
  put_u64(port, best);
  if (!output_is_float) {
    put_str(port, " (score ");
    put_i32(port, best_score);
    put_str(port, ")");
  }
  put_str(port, ", ");
  put_u64(port, ticks);
  switch (port->timer_kind) {
    case EDGE_TIMER_CYCLES: put_str(port, " cycles"); break;
    case EDGE_TIMER_NANOSECONDS: put_str(port, " ns"); break;
    case EDGE_TIMER_SYSTICK_EMULATED: put_str(port, " ticks (an emulator: instructions)"); break;
    default:
      put_str(port, " ticks at ");
      put_u64(port, port->timer_hz);
      put_str(port, " Hz");
  }
  put_str(port, "\r\n");
}
