// What the CPU we run on can do, detected once, and which kernel ISA to use.
//
// Kernels are compiled for several ISAs in one binary (files named *_avx512.cc, *_avx2.cc,
// *_neon.cc get the matching compiler flags) and pick one at prepare time with best_isa().
// The environment variable BRINK_ISA=portable|avx2|avx512|neon caps the choice: tests use it
// to run every variant on one machine, and users use it to rule out a misbehaving path.
#pragma once

#include <string>
#include <vector>

namespace brink {

// The kernel variants this build contains: CMake's BRINK_KERNEL_ISAS, by default every one
// the architecture has (a selective device build keeps those of its packages' target). A
// variant that is not built is never dispatched to: isa_supported() says no.
#if !defined(BRINK_BUILD_AVX2)
#if defined(__x86_64__)
#define BRINK_BUILD_AVX2 1
#define BRINK_BUILD_AVX512 1
#define BRINK_BUILD_AVX512VNNI 1
#else
#define BRINK_BUILD_AVX2 0
#define BRINK_BUILD_AVX512 0
#define BRINK_BUILD_AVX512VNNI 0
#endif
#endif
// Portable kernels (plain C++, any CPU) are built unless a one-target device build leaves them
// out (BRINK_KERNEL_ISAS without "portable"); such a runtime refuses CPUs and packages its
// built variants cannot serve, and never falls back.
#if !defined(BRINK_BUILD_PORTABLE)
#define BRINK_BUILD_PORTABLE 1
#endif
#if !defined(BRINK_BUILD_NEON)
#if defined(__aarch64__)
#define BRINK_BUILD_NEON 1
#else
#define BRINK_BUILD_NEON 0
#endif
#endif

enum class Isa {
  kPortable = 0,  // plain C++, any CPU
  kAvx2 = 1,      // x86-64 AVX2 + FMA + F16C (x86-64-v3)
  kAvx512 = 2,    // x86-64 AVX-512 F/BW/VL/DQ (x86-64-v4)
  kNeon = 3,      // aarch64 Advanced SIMD
};

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx_vnni = false;
  bool neon = false;
  bool neon_dotprod = false;
  int logical_cores = 1;
  int physical_cores = 1;
  std::string brand;  // CPU model name when the OS tells it, else ""
};

const CpuFeatures& cpu_features();

// True when this machine (and this build) can run kernels of `isa`.
bool isa_supported(Isa isa);
// The widest supported ISA, capped by BRINK_ISA when set (an unknown or unsupported value
// there is ignored with a warning on stderr once).
Isa best_isa();
// Supported ISAs, narrowest first (kPortable first when built).
std::vector<Isa> supported_isas();
const char* isa_name(Isa isa);

// `isa` when this machine runs it, else the variant kernels fall back to: portable, or in a
// build without portable kernels the best built variant (best_isa()).
Isa usable_isa(Isa isa);
// Why `isa` cannot run here ("this CPU lacks AVX-512 F/BW/VL/DQ", "this runtime was built
// without its portable kernels"); "" when it can.
std::string isa_unsupported_reason(Isa isa);
// A dispatcher was asked for a kernel variant this build does not contain: a bug, since
// usable_isa() never returns one. Says which on stderr and aborts.
[[noreturn]] void isa_not_built(Isa isa);

// `return expr;` for the portable variant of a dispatcher, or isa_not_built() in a build
// without portable kernels (so that nothing references them and the linker drops them).
#if BRINK_BUILD_PORTABLE
#define BRINK_RETURN_PORTABLE(expr) return expr
#else
#define BRINK_RETURN_PORTABLE(expr) ::brink::isa_not_built(::brink::Isa::kPortable)
#endif

}  // namespace brink
