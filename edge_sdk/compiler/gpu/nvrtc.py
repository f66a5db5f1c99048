"""CUDA C -> PTX with NVRTC, at compile time, so the board needs only the CUDA driver.

Why NVRTC and not TVM's other routes: ``nvcc`` is not on a machine without the CUDA toolkit,
and TVM 0.27's LLVM NVPTX backend emits a barrier call that its own LLVM rejects (any schedule
with shared memory fails). NVRTC ships on PyPI (``nvidia-cuda-nvrtc-cu12``) and we call it
through ctypes. We pin CUDA 12.2's NVRTC: its PTX (ISA 8.2) loads on every JetPack 6 driver and
on newer desktop drivers, which compile it for the GPU at hand (PTX is forward compatible).

``--fmad=false``: TFLite's softmax does its float multiplies and adds separately; a fused
multiply-add would round differently and break INT8 bit-exactness.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from edge_sdk.errors import ToolchainError

PIP_PACKAGE = "nvidia-cuda-nvrtc-cu12==12.2.140"
OPTIONS = ("-default-device", "--fmad=false", "-w")

# TVM's CUDA prelude includes libcu++ headers under NVRTC; those are not part of the NVRTC
# wheel, and the kernels need only the fixed-width integer types.
_TYPES = ("typedef signed char int8_t; typedef unsigned char uint8_t; typedef short int16_t;\n"
          "typedef unsigned short uint16_t; typedef int int32_t; typedef unsigned int uint32_t;\n"
          "typedef long long int64_t; typedef unsigned long long uint64_t;\n")


@cache
def _library() -> ctypes.CDLL:
    candidates = []
    try:
        import nvidia.cuda_nvrtc as pkg

        candidates += [Path(p) / "lib" / "libnvrtc.so.12" for p in pkg.__path__]
    except ImportError:
        pass
    candidates += [Path("libnvrtc.so.12"), Path("libnvrtc.so")]
    for path in candidates:
        try:
            return ctypes.CDLL(str(path))
        except OSError:
            continue
    raise ToolchainError(f"NVRTC (the CUDA runtime compiler) not found: pip install "
                         f"'{PIP_PACKAGE}' (or ./setup.sh), or install the CUDA toolkit")


def _standalone(source: str) -> str:
    # NVRTC declares the sm_61 intrinsics (__dp4a) itself; the toolkit header is not needed.
    source = source.replace("#include <sm_61_intrinsics.h>", "")
    start = source.find("#ifdef __CUDACC_RTC__")
    if start < 0:
        return source
    end = source.index("#endif", source.index("#include <cuda.h>", start)) + len("#endif")
    return source[:start] + _TYPES + source[end:]


@contextmanager
def _thread_locale_kept():
    """NVRTC switches the calling thread's C locale (``uselocale``) to "C" and leaves it so:
    after one compile, Python's default text encoding in that thread read ASCII, and a user's
    ``open(path).read()`` of any UTF-8 file failed. The thread's locale is put back after."""
    libc = ctypes.CDLL(None)
    libc.uselocale.restype, libc.uselocale.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    before = libc.uselocale(None)
    try:
        yield
    finally:
        libc.uselocale(before)


def compile_ptx(source: str, arch: str) -> str:
    """PTX for ``arch`` (``sm_87``) from TVM's CUDA C."""
    with _thread_locale_kept():
        return _compile_ptx(source, arch)


def _compile_ptx(source: str, arch: str) -> str:
    lib = _library()
    prog = ctypes.c_void_p()
    code = _standalone(source).encode()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), code, b"kernels.cu", 0, None, None):
        raise ToolchainError("NVRTC could not create a program")
    try:
        opts = [f"--gpu-architecture=compute_{arch.removeprefix('sm_').rstrip('a')}".encode(),
                *(o.encode() for o in OPTIONS)]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        if status:
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            first = next((ln for ln in log.value.decode(errors="replace").splitlines()
                          if "error" in ln), "no log")
            raise ToolchainError(f"NVRTC could not compile the generated CUDA kernels: {first}")
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
