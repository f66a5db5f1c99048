/* edge_gpu_opencl.c: the OpenCL backend of edge_gpu.h (Arm Mali, or any OpenCL 1.2 device).
 *
 * libOpenCL.so.1 (the ICD loader; on Mali boards the vendor's libmali) is opened at run time.
 * The first GPU device is used, else the first device of any kind (e.g. PoCL on a CPU);
 * EDGE_OPENCL_DEVICE=cpu|gpu|all chooses explicitly. The OpenCL C is compiled by the driver at
 * start-up, with correctly rounded float division (TFLite's softmax divides). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_gpu.h"

typedef int cl_int;
typedef unsigned int cl_uint;
typedef unsigned long cl_ulong;
typedef cl_ulong cl_bitfield;
typedef void *cl_platform_id, *cl_device_id, *cl_context, *cl_command_queue, *cl_mem,
    *cl_program, *cl_kernel, *cl_event;

#define CL_DEVICE_TYPE_CPU (1 << 1)
#define CL_DEVICE_TYPE_GPU (1 << 2)
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFF
#define CL_DEVICE_NAME 0x102B
#define CL_PROGRAM_BUILD_LOG 0x1183
#define CL_MEM_READ_WRITE (1 << 0)
#define CL_MEM_COPY_HOST_PTR (1 << 5)

static struct {
  cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
  cl_int (*GetDeviceIDs)(cl_platform_id, cl_bitfield, cl_uint, cl_device_id *, cl_uint *);
  cl_int (*GetDeviceInfo)(cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_context (*CreateContext)(const void *, cl_uint, const cl_device_id *, void *, void *,
                              cl_int *);
  cl_command_queue (*CreateCommandQueue)(cl_context, cl_device_id, cl_bitfield, cl_int *);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **, const size_t *,
                                        cl_int *);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *, void *,
                         void *);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_uint, size_t, void *, size_t *);
  cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
  cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void *);
  cl_mem (*CreateBuffer)(cl_context, cl_bitfield, size_t, void *, cl_int *);
  cl_int (*EnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *,
                               cl_uint, const cl_event *, cl_event *);
  cl_int (*EnqueueReadBuffer)(cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *,
                              cl_uint, const cl_event *, cl_event *);
  cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                                 const size_t *, const size_t *, cl_uint, const cl_event *,
                                 cl_event *);
} cl;

typedef struct {
  cl_command_queue queue;
  cl_mem *buffers;
  cl_kernel *kernels;
} opencl_state;

#include "edge_gpu_dump.h"

static int fail(const char *what, cl_int status) {
  fprintf(stderr, "edge-sdk: OpenCL %s failed (error %d)\n", what, status);
  return 1;
}

static int load_driver(void) {
  void *lib = dlopen("libOpenCL.so.1", RTLD_NOW);
  if (!lib) lib = dlopen("libOpenCL.so", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "edge-sdk: cannot load libOpenCL.so.1 (%s): install the GPU's OpenCL "
                    "driver (Mali: libmali; elsewhere e.g. apt-get install ocl-icd-libopencl1 "
                    "pocl-opencl-icd)\n", dlerror());
    return 1;
  }
#define SYM(field, name)                                                            \
  if (!(*(void **)&cl.field = dlsym(lib, name))) {                                  \
    fprintf(stderr, "edge-sdk: the OpenCL library has no %s: OpenCL 1.2 needed\n", name); \
    return 1;                                                                       \
  }
  SYM(GetPlatformIDs, "clGetPlatformIDs") SYM(GetDeviceIDs, "clGetDeviceIDs")
  SYM(GetDeviceInfo, "clGetDeviceInfo") SYM(CreateContext, "clCreateContext")
  SYM(CreateCommandQueue, "clCreateCommandQueue")
  SYM(CreateProgramWithSource, "clCreateProgramWithSource") SYM(BuildProgram, "clBuildProgram")
  SYM(GetProgramBuildInfo, "clGetProgramBuildInfo") SYM(CreateKernel, "clCreateKernel")
  SYM(SetKernelArg, "clSetKernelArg") SYM(CreateBuffer, "clCreateBuffer")
  SYM(EnqueueWriteBuffer, "clEnqueueWriteBuffer") SYM(EnqueueReadBuffer, "clEnqueueReadBuffer")
  SYM(EnqueueNDRangeKernel, "clEnqueueNDRangeKernel")
#undef SYM
  return 0;
}

static int pick_device(cl_device_id *device) {
  cl_platform_id platforms[16];
  cl_uint n = 0;
  if (cl.GetPlatformIDs(16, platforms, &n) || n == 0) {
    fprintf(stderr, "edge-sdk: no OpenCL platform found: install the GPU's OpenCL driver\n");
    return 1;
  }
  const char *want = getenv("EDGE_OPENCL_DEVICE");
  cl_bitfield order[2] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ALL};
  if (want && strcmp(want, "cpu") == 0) order[0] = order[1] = CL_DEVICE_TYPE_CPU;
  if (want && strcmp(want, "gpu") == 0) order[1] = CL_DEVICE_TYPE_GPU;
  if (want && strcmp(want, "all") == 0) order[0] = CL_DEVICE_TYPE_ALL;
  for (int k = 0; k < 2; ++k)
    for (cl_uint i = 0; i < n && i < 16; ++i) {
      cl_uint count = 0;
      if (cl.GetDeviceIDs(platforms[i], order[k], 1, device, &count) == 0 && count > 0) return 0;
    }
  fprintf(stderr, "edge-sdk: no OpenCL device of the kind asked for (EDGE_OPENCL_DEVICE=%s)\n",
          want ? want : "gpu, else any");
  return 1;
}

static int setup(const edge_gpu_program *p, opencl_state *s) {
  cl_int r = 0;
  cl_device_id device;
  if (load_driver() || pick_device(&device)) return 1;
  char name[256] = "";
  cl.GetDeviceInfo(device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
  fprintf(stderr, "edge-sdk: %s on OpenCL device '%s'\n", p->model, name);
  cl_context context = cl.CreateContext(NULL, 1, &device, NULL, NULL, &r);
  if (r) return fail("context creation", r);
  s->queue = cl.CreateCommandQueue(context, device, 0, &r);
  if (r) return fail("queue creation", r);
  const char *code = p->code;
  cl_program program = cl.CreateProgramWithSource(context, 1, &code, NULL, &r);
  if (r) return fail("program creation", r);
  if ((r = cl.BuildProgram(program, 1, &device, "-cl-fp32-correctly-rounded-divide-sqrt", NULL,
                           NULL))) {
    char log[4096] = "";
    cl.GetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    fprintf(stderr, "edge-sdk: the OpenCL compiler of '%s' rejected the kernels: %s\n", name, log);
    return fail("program build", r);
  }
  s->buffers = calloc(p->num_buffers, sizeof *s->buffers);
  s->kernels = calloc(p->num_launches, sizeof *s->kernels);
  if (!s->buffers || !s->kernels) return fail("host allocation", -6);
  for (uint32_t i = 0; i < p->num_buffers; ++i) {
    const edge_gpu_buffer *b = &p->buffers[i];
    s->buffers[i] = cl.CreateBuffer(context, CL_MEM_READ_WRITE | (b->data ? CL_MEM_COPY_HOST_PTR
                                                                          : 0),
                                    b->bytes ? b->bytes : 1, (void *)b->data, &r);
    if (r) return fail(b->name, r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    s->kernels[i] = cl.CreateKernel(program, l->kernel, &r);
    if (r) return fail(l->kernel, r);
    for (uint32_t a = 0; a < l->num_args; ++a)
      if ((r = cl.SetKernelArg(s->kernels[i], a, sizeof(cl_mem), &s->buffers[l->args[a]])))
        return fail(l->kernel, r);
  }
  return 0;
}

int edge_gpu_run(const edge_gpu_program *p, void **state, const void *const *inputs,
                 void *const *outputs) {
  cl_int r;
  if (!*state) {
    opencl_state *s = calloc(1, sizeof *s);
    if (!s || setup(p, s)) return 1;
    *state = s;
  }
  opencl_state *s = *state;
  for (uint32_t k = 0; k < p->num_inputs; ++k) {
    uint16_t b = p->inputs[k];
    if ((r = cl.EnqueueWriteBuffer(s->queue, s->buffers[b], 1, 0, p->buffers[b].bytes, inputs[k],
                                   0, NULL, NULL)))
      return fail("input upload", r);
  }
  for (uint32_t i = 0; i < p->num_launches; ++i) {
    const edge_gpu_launch *l = &p->launches[i];
    size_t local[3] = {l->block[0], l->block[1], l->block[2]};
    size_t global[3] = {(size_t)l->grid[0] * l->block[0], (size_t)l->grid[1] * l->block[1],
                        (size_t)l->grid[2] * l->block[2]};
    if ((r = cl.EnqueueNDRangeKernel(s->queue, s->kernels[i], 3, NULL, global, local, 0, NULL,
                                     NULL)))
      return fail(l->kernel, r);
  }
  /* Blocking read on an in-order queue: waits for the kernels. */
  for (uint32_t k = 0; k < p->num_outputs; ++k) {
    uint16_t b = p->outputs[k];
    if ((r = cl.EnqueueReadBuffer(s->queue, s->buffers[b], 1, 0, p->buffers[b].bytes, outputs[k],
                                  0, NULL, NULL)))
      return fail("output download", r);
  }
  const char *dump = getenv("EDGE_GPU_DUMP");
  for (uint32_t i = 0; dump && i < p->num_buffers; ++i) {
    void *host = malloc(p->buffers[i].bytes ? p->buffers[i].bytes : 1);
    if (!host) return fail("host allocation", -6);
    if ((r = cl.EnqueueReadBuffer(s->queue, s->buffers[i], 1, 0, p->buffers[i].bytes, host, 0,
                                  NULL, NULL)))
      return fail(p->buffers[i].name, r);
    if (edge_gpu_dump(dump, p->buffers[i].name, host, p->buffers[i].bytes)) return 1;
    free(host);
  }
  return 0;
}
