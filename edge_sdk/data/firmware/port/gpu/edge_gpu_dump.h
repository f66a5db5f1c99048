/* edge_gpu_dump.h: EDGE_GPU_DUMP=DIR writes every device buffer to DIR/<name>.bin after each
 * run (activations, weights, scratch), to compare a layer with a reference when debugging. */
#ifndef EDGE_GPU_DUMP_H_
#define EDGE_GPU_DUMP_H_
#include <stdio.h>
#include <stdlib.h>

static int edge_gpu_dump(const char *dir, const char *name, const void *data, size_t bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
    fprintf(stderr, "edge-sdk: cannot write %s (EDGE_GPU_DUMP)\n", path);
    return 1;
  }
  return 0;
}
#endif /* EDGE_GPU_DUMP_H_ */
