/* edge_gpu_cuda.c: the CUDA driver API backend of edge_gpu.h (Jetson, any NVIDIA GPU).
 *
 * libcuda.so.1 comes with the NVIDIA driver (JetPack on Jetson); it is opened at run time, so
 * the program cross-compiles with a plain gcc. The PTX is compiled for the GPU at hand by the
 * driver when the module loads (once per process). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_gpu.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef unsigned long long CUdeviceptr;

static struct {
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetName)(char *, int, CUdevice);
  CUresult (*CtxCreate)(CUcontext *, unsigned, CUdevice);
  CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, void *, void **, void **);
  CUresult (*GetErrorString)(CUresult, const char **);
} cu;

typedef struct {
  CUcontext context;
  CUmodule module;
  CUdeviceptr *buffers;
  CUfunction *functions;
  void ***params; /* per launch: pointers to the CUdeviceptr of each argument */
} cuda_state;

#include "edge_gpu_dump.h"

static int fail(const char *what, CUresult status) {
  const char *text = "unknown error";
  if (cu.GetErrorString) cu.GetErrorString(status, &text);
  fprintf(stderr, "edge-sdk: CUDA %s failed: %s (error %d)\n", what, text, status);
  return 1;
}

static int load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "edge-sdk: cannot load libcuda.so.1 (%s): install the NVIDIA driver "
                    "(JetPack on Jetson) or run on a machine with an NVIDIA GPU\n", dlerror());
    return 1;
  }
#define SYM(field, name)                                                        \
  if (!(*(void **)&cu.field = dlsym(lib, name))) {                              \
    fprintf(stderr, "edge-sdk: libcuda.so.1 has no %s: update the driver\n", name); \
    return 1;                                                                   \
  }
  SYM(Init, "cuInit") SYM(DeviceGet, "cuDeviceGet") SYM(DeviceGetName, "cuDeviceGetName")
  SYM(CtxCreate, "cuCtxCreate_v2") SYM(ModuleLoadDataEx, "cuModuleLoadDataEx")
  SYM(ModuleGetFunction, "cuModuleGetFunction") SYM(MemAlloc, "cuMemAlloc_v2")
  SYM(MemcpyHtoD, "cuMemcpyHtoD_v2") SYM(MemcpyDtoH, "cuMemcpyDtoH_v2")
  SYM(LaunchKernel, "cuLaunchKernel") SYM(GetErrorString, "cuGetErrorString")
#undef SYM
  return 0;
}

static int setup(const edge_gpu_program *p, cuda_state *s) {
  CUresult r;
  CUdevice dev;
  if (load_driver()) return 1;
  if ((r = cu.Init(0))) return fail("initialisation (is a GPU visible?)", r);
  if ((r = cu.DeviceGet(&dev, 0))) return fail("device query", r);
  if ((r = cu.CtxCreate(&s->context, 0, dev))) return fail("context creation", r);
  char name[128] = "";
  cu.DeviceGetName(name, sizeof name, dev);
  char log[4096] = "";
  int opts[2] = {5 /* CU_JIT_ERROR_LOG_BUFFER */, 6 /* ..._SIZE_BYTES */};
  void *vals[2] = {log, (void *)(size_t)sizeof log};
  if ((r = cu.ModuleLoadDataEx(&s->module, p->code, 2, opts, vals))) {
    fprintf(stderr, "edge-sdk: the GPU driver rejected the PTX on %s: %s\n", name, log);
    return fail("module load (driver older than CUDA 12.2?)", r);
  }
  s->buffers = calloc(p->num_buffers, sizeof *s->buffers);
  s->functions = calloc(p->num_launches, sizeof *s->functions);
  s->params = calloc(p->num_launches, sizeof *s->params);
  if (!s->buffers || !s->functions || !s->params) return fail("host allocation", 2);
  for (uint32_t i = 0; i < p->num_buffers; ++i) {
    const edge_gpu_buffer *b = &p->buffers[i];
    if ((r = cu.MemAlloc(&s->buffers[i], b->bytes ? b->bytes : 1))) return fail(b->name, r);
    if (b->data && (r = cu.MemcpyHtoD(s->buffers[i], b->data, b->bytes)))
      return fail(b->name, r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    if ((r = cu.ModuleGetFunction(&s->functions[i], s->module, l->kernel)))
      return fail(l->kernel, r);
    s->params[i] = calloc(l->num_args ? l->num_args : 1, sizeof(void *));
    if (!s->params[i]) return fail("host allocation", 2);
    for (uint32_t a = 0; a < l->num_args; ++a) s->params[i][a] = &s->buffers[l->args[a]];
  }
  return 0;
}

int edge_gpu_run(const edge_gpu_program *p, void **state, const void *const *inputs,
                 void *const *outputs) {
  CUresult r;
  if (!*state) {
    cuda_state *s = calloc(1, sizeof *s);
    if (!s || setup(p, s)) return 1;
    *state = s;
  }
  cuda_state *s = *state;
  for (uint32_t k = 0; k < p->num_inputs; ++k) {
    uint16_t b = p->inputs[k];
    if ((r = cu.MemcpyHtoD(s->buffers[b], inputs[k], p->buffers[b].bytes)))
      return fail("input upload", r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    if ((r = cu.LaunchKernel(s->functions[i], l->grid[0], l->grid[1], l->grid[2], l->block[0],
                             l->block[1], l->block[2], 0, NULL, s->params[i], NULL)))
      return fail(l->kernel, r);
  }
  /* Synchronous copy on the default stream: waits for the kernels. */
  for (uint32_t k = 0; k < p->num_outputs; ++k) {
    uint16_t b = p->outputs[k];
    if ((r = cu.MemcpyDtoH(outputs[k], s->buffers[b], p->buffers[b].bytes)))
      return fail("output download", r);
  }
  const char *dump = getenv("EDGE_GPU_DUMP");
  for (uint32_t i = 0; dump && i < p->num_buffers; ++i) {
    void *host = malloc(p->buffers[i].bytes ? p->buffers[i].bytes : 1);
    if (!host) return fail("host allocation", 2);
    if ((r = cu.MemcpyDtoH(host, s->buffers[i], p->buffers[i].bytes))) return fail("dump", r);
    if (edge_gpu_dump(dump, p->buffers[i].name, host, p->buffers[i].bytes)) return 1;
    free(host);
  }
  return 0;
}
