/* main.c: the inference server. Binds the generated model to the serial protocol. */
#include "edge_demo.h"
#include "edge_model_config.h"
#include "edge_port.h"
#include "edge_protocol.h"

/* Byte buffers, aligned for any element type the model's input/output may have. */
static uint8_t model_input[EDGE_MODEL_INPUT_BYTES] __attribute__((aligned(8)));
static uint8_t model_output[EDGE_MODEL_OUTPUT_BYTES] __attribute__((aligned(8)));
/* +1 keeps the array legal when a model needs no arena at all. */
static uint8_t model_arena[EDGE_MODEL_ARENA_SIZE + 1] __attribute__((aligned(16)));

int main(void) {
  const edge_port_t *port = edge_port_init();
  const edge_model_t model = {
      .name = EDGE_MODEL_NAME,
      .input_size = EDGE_MODEL_INPUT_BYTES,
      .output_size = EDGE_MODEL_OUTPUT_BYTES,
      .arena_size = EDGE_MODEL_ARENA_SIZE,
      .run = edge_model_run,
      .input = model_input,
      .output = model_output,
      .arena = model_arena,
  };
#if EDGE_DEMO_AT_BOOT
  edge_demo(port, &model, edge_sample_input, EDGE_MODEL_OUTPUT_IS_FLOAT);
#endif
  edge_protocol_serve(port, &model);
  edge_port_exit(0);
  return 0;
}
