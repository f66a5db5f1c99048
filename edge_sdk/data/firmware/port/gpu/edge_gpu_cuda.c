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
typedef void *CUstream;
typedef void *CUevent;
typedef void *CUgraph;
typedef void *CUgraphExec;
typedef unsigned long long CUdeviceptr;

static struct {
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetName)(char *, int, CUdevice);
  CUresult (*CtxCreate)(CUcontext *, unsigned, CUdevice);
  CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemAllocHost)(void **, size_t);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, CUstream, void **, void **);
  CUresult (*EventCreate)(CUevent *, unsigned);
  CUresult (*EventRecord)(CUevent, CUstream);
  CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*GetErrorString)(CUresult, const char **);
  /* CUDA graphs (driver 11.4+); without them every run enqueues its launches one by one. */
  CUresult (*StreamBeginCapture)(CUstream, int);
  CUresult (*StreamEndCapture)(CUstream, CUgraph *);
  CUresult (*GraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*GraphLaunch)(CUgraphExec, CUstream);
} cu;

/* How runs go, from the environment (read once, at set-up):
 *   EDGE_GPU_GRAPH=0    enqueue the launches one by one instead of replaying a CUDA graph
 *   EDGE_GPU_EMPTY=1    launch an empty kernel in place of each of the model's (same grid,
 *                       block and copies): the floor that launches and copies alone cost
 *   EDGE_GPU_PROFILE=1  time every launch with events (no graph); the mean per launch goes to
 *                       stderr as one JSON line when the program exits
 *   EDGE_GPU_INFO=1     one line on stderr at set-up: the GPU and the mode */
enum { MODE_GRAPH, MODE_STREAM, MODE_PROFILE };

typedef struct {
  CUcontext context;
  CUmodule module, empty_module;
  CUstream stream;
  CUgraphExec graph;
  int mode;
  CUdeviceptr *buffers;
  CUfunction *functions;
  void ***params; /* per launch: pointers to the CUdeviceptr of each argument */
  void **staging; /* per input, then per output: page-locked host copies, for async copies */
  CUevent *events;
  double *launch_ms;
  unsigned long profiled_runs;
} cuda_state;

/* An entry point with no body, for EDGE_GPU_EMPTY: compiled by the driver for any GPU. */
static const char empty_ptx[] =
    ".version 6.0\n.target sm_50\n.address_size 64\n.visible .entry edge_empty()\n{\n ret;\n}\n";

#include "edge_gpu_dump.h"

static int fail(const char *what, CUresult status) {
  const char *text = "unknown error";
  if (cu.GetErrorString) cu.GetErrorString(status, &text);
  fprintf(stderr, "edge-sdk: CUDA %s failed: %s (error %d)\n", what, text, status);
  return 1;
}

static int env_is(const char *name, const char *value) {
  const char *v = getenv(name);
  return v && strcmp(v, value) == 0;
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
  SYM(MemAllocHost, "cuMemAllocHost_v2")
  SYM(MemcpyHtoD, "cuMemcpyHtoD_v2") SYM(MemcpyDtoH, "cuMemcpyDtoH_v2")
  SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2") SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
  SYM(StreamCreate, "cuStreamCreate") SYM(StreamSynchronize, "cuStreamSynchronize")
  SYM(LaunchKernel, "cuLaunchKernel") SYM(GetErrorString, "cuGetErrorString")
  SYM(EventCreate, "cuEventCreate") SYM(EventRecord, "cuEventRecord")
  SYM(EventElapsedTime, "cuEventElapsedTime")
#undef SYM
  *(void **)&cu.StreamBeginCapture = dlsym(lib, "cuStreamBeginCapture_v2");
  *(void **)&cu.StreamEndCapture = dlsym(lib, "cuStreamEndCapture");
  *(void **)&cu.GraphInstantiate = dlsym(lib, "cuGraphInstantiateWithFlags");
  *(void **)&cu.GraphLaunch = dlsym(lib, "cuGraphLaunch");
  return 0;
}

/* One inference's work on the stream: inputs in, every launch, outputs out. */
static int enqueue(const edge_gpu_program *p, cuda_state *s) {
  CUresult r;
  for (uint32_t k = 0; k < p->num_inputs; ++k) {
    uint16_t b = p->inputs[k];
    if ((r = cu.MemcpyHtoDAsync(s->buffers[b], s->staging[k], p->buffers[b].bytes, s->stream)))
      return fail("input upload", r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    if (s->mode == MODE_PROFILE && (r = cu.EventRecord(s->events[i], s->stream)))
      return fail("event", r);
    if ((r = cu.LaunchKernel(s->functions[i], l->grid[0], l->grid[1], l->grid[2], l->block[0],
                             l->block[1], l->block[2], 0, s->stream, s->params[i], NULL)))
      return fail(l->kernel, r);
  }
  if (s->mode == MODE_PROFILE && (r = cu.EventRecord(s->events[p->num_launches], s->stream)))
    return fail("event", r);
  for (uint32_t k = 0; k < p->num_outputs; ++k) {
    uint16_t b = p->outputs[k];
    if ((r = cu.MemcpyDtoHAsync(s->staging[p->num_inputs + k], s->buffers[b],
                                p->buffers[b].bytes, s->stream)))
      return fail("output download", r);
  }
  return 0;
}

static const edge_gpu_program *profiled_program;
static cuda_state *profiled_state;

static void print_profile(void) {
  const edge_gpu_program *p = profiled_program;
  cuda_state *s = profiled_state;
  if (!p || !s || !s->profiled_runs) return;
  fprintf(stderr, "{\"profile_runs\": %lu, \"launches\": [", s->profiled_runs);
  for (uint32_t i = 0; i < p->num_launches; ++i)
    fprintf(stderr, "%s{\"kernel\": \"%s\", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u], "
            "\"us\": %.3f}", i ? ", " : "", p->launches[i].kernel, p->launches[i].grid[0],
            p->launches[i].grid[1], p->launches[i].grid[2], p->launches[i].block[0],
            p->launches[i].block[1], p->launches[i].block[2],
            1e3 * s->launch_ms[i] / (double)s->profiled_runs);
  fprintf(stderr, "]}\n");
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
  int empty = env_is("EDGE_GPU_EMPTY", "1");
  CUfunction empty_fn = NULL;
  if (empty) {
    if ((r = cu.ModuleLoadDataEx(&s->empty_module, empty_ptx, 0, NULL, NULL)))
      return fail("empty kernel load", r);
    if ((r = cu.ModuleGetFunction(&empty_fn, s->empty_module, "edge_empty")))
      return fail("edge_empty", r);
  }
  if ((r = cu.StreamCreate(&s->stream, 1 /* CU_STREAM_NON_BLOCKING */))) return fail("stream", r);
  s->buffers = calloc(p->num_buffers, sizeof *s->buffers);
  s->functions = calloc(p->num_launches, sizeof *s->functions);
  s->params = calloc(p->num_launches, sizeof *s->params);
  s->staging = calloc(p->num_inputs + p->num_outputs, sizeof *s->staging);
  s->events = calloc(p->num_launches + 1, sizeof *s->events);
  s->launch_ms = calloc(p->num_launches, sizeof *s->launch_ms);
  if (!s->buffers || !s->functions || !s->params || !s->staging || !s->events || !s->launch_ms)
    return fail("host allocation", 2);
  for (uint32_t i = 0; i < p->num_buffers; ++i) {
    const edge_gpu_buffer *b = &p->buffers[i];
    if ((r = cu.MemAlloc(&s->buffers[i], b->bytes ? b->bytes : 1))) return fail(b->name, r);
    if (b->data && (r = cu.MemcpyHtoD(s->buffers[i], b->data, b->bytes)))
      return fail(b->name, r);
  }
  for (uint32_t k = 0; k < p->num_inputs + p->num_outputs; ++k) {
    uint16_t b = k < p->num_inputs ? p->inputs[k] : p->outputs[k - p->num_inputs];
    if ((r = cu.MemAllocHost(&s->staging[k], p->buffers[b].bytes ? p->buffers[b].bytes : 1)))
      return fail("page-locked host memory", r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    if ((r = cu.ModuleGetFunction(&s->functions[i], s->module, l->kernel)))
      return fail(l->kernel, r);
    s->params[i] = calloc(l->num_args ? l->num_args : 1, sizeof(void *));
    if (!s->params[i]) return fail("host allocation", 2);
    for (uint32_t a = 0; a < l->num_args; ++a) s->params[i][a] = &s->buffers[l->args[a]];
    if (empty) s->functions[i] = empty_fn; /* same grid and block; its parameters unread */
  }
  int has_graphs = cu.StreamBeginCapture && cu.StreamEndCapture && cu.GraphInstantiate &&
                   cu.GraphLaunch;
  s->mode = env_is("EDGE_GPU_PROFILE", "1")                 ? MODE_PROFILE
            : env_is("EDGE_GPU_GRAPH", "0") || !has_graphs ? MODE_STREAM
                                                            : MODE_GRAPH;
  if (s->mode == MODE_PROFILE) {
    for (uint32_t i = 0; i <= p->num_launches; ++i)
      if ((r = cu.EventCreate(&s->events[i], 0))) return fail("event", r);
    profiled_program = p;
    profiled_state = s;
    atexit(print_profile);
  }
  if (s->mode == MODE_GRAPH) { /* record one inference once; each run replays it */
    CUgraph graph;
    if ((r = cu.StreamBeginCapture(s->stream, 2 /* CU_STREAM_CAPTURE_MODE_RELAXED */)))
      return fail("graph capture", r);
    if (enqueue(p, s)) return 1;
    if ((r = cu.StreamEndCapture(s->stream, &graph))) return fail("graph capture", r);
    if ((r = cu.GraphInstantiate(&s->graph, graph, 0))) return fail("graph instantiation", r);
  }
  if (env_is("EDGE_GPU_INFO", "1"))
    fprintf(stderr, "edge-sdk: %s on %s: %u launches, %s%s\n", p->model, name, p->num_launches,
            s->mode == MODE_GRAPH ? "one CUDA graph" : s->mode == MODE_PROFILE ? "profiled"
                                                                                : "one stream",
            empty ? ", empty kernels" : "");
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
  for (uint32_t k = 0; k < p->num_inputs; ++k)
    memcpy(s->staging[k], inputs[k], p->buffers[p->inputs[k]].bytes);
  if (s->mode == MODE_GRAPH) {
    if ((r = cu.GraphLaunch(s->graph, s->stream))) return fail("graph launch", r);
  } else if (enqueue(p, s)) {
    return 1;
  }
  if ((r = cu.StreamSynchronize(s->stream))) return fail("inference", r);
  for (uint32_t k = 0; k < p->num_outputs; ++k)
    memcpy(outputs[k], s->staging[p->num_inputs + k], p->buffers[p->outputs[k]].bytes);
  if (s->mode == MODE_PROFILE) {
    for (uint32_t i = 0; i < p->num_launches; ++i) {
      float ms = 0.0f;
      if ((r = cu.EventElapsedTime(&ms, s->events[i], s->events[i + 1]))) return fail("event", r);
      s->launch_ms[i] += ms;
    }
    s->profiled_runs++;
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
