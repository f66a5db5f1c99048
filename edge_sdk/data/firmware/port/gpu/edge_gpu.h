/* edge_gpu.h: replay a compiled model's kernel launches on a GPU (CUDA or OpenCL).
 *
 * The generated <model>.c describes everything statically: the device code (PTX or OpenCL C),
 * one buffer per tensor/weight table (weights carry their host data), and the launches in
 * order, each with its grid, block and buffer arguments. A backend (edge_gpu_cuda.c or
 * edge_gpu_opencl.c) turns that into driver calls. The driver library is opened with dlopen,
 * so the program builds without the CUDA toolkit or an OpenCL SDK and links nothing GPU-specific.
 */
#ifndef EDGE_GPU_H_
#define EDGE_GPU_H_

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name;  /* for messages: "input", "l3_weights", ... */
  size_t bytes;
  const void *data;  /* weights: uploaded once at start-up; NULL: activations / scratch */
} edge_gpu_buffer;

typedef struct {
  const char *kernel;      /* entry point in the device code */
  uint32_t grid[3];        /* blocks (CUDA) = work groups (OpenCL) */
  uint32_t block[3];       /* threads per block = work-group size */
  uint32_t num_args;
  const uint16_t *args;    /* indices into the buffer table, in parameter order */
} edge_gpu_launch;

typedef struct {
  const char *model;
  const char *code;        /* NUL-terminated PTX or OpenCL C */
  const edge_gpu_buffer *buffers;
  uint32_t num_buffers;
  const edge_gpu_launch *launches;
  uint32_t num_launches;
  uint32_t num_inputs, num_outputs;
  const uint16_t *inputs;  /* buffer indices of the model's inputs, in the model's order */
  const uint16_t *outputs; /* ... and of its outputs */
} edge_gpu_program;

/* Run one inference: the first call sets the device up (context, code, buffers, weights); on
 * failure it prints one line to stderr saying what to do and returns non-zero. */
int edge_gpu_run(const edge_gpu_program *program, void **state, const void *const *inputs,
                 void *const *outputs);

#endif /* EDGE_GPU_H_ */
