#include "core/cpu_features.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define BRINK_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace brink {
namespace {

#if defined(BRINK_X86)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

// Calls fn(key, value) for each "key : value" line of /proc/cpuinfo (both trimmed); false
// when the file cannot be read. <cstdio>, not iostreams: this is in the device runtime.
template <class Fn>
bool for_each_cpuinfo_field(Fn&& fn) {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (f == nullptr) return false;
  char* line = nullptr;  // POSIX getline: lines of any length (the flags line is long)
  size_t capacity = 0;
  for (ssize_t n; (n = ::getline(&line, &capacity, f)) >= 0;) {
    const char* colon = static_cast<const char*>(std::memchr(line, ':', static_cast<size_t>(n)));
    if (colon == nullptr) continue;
    const auto trim = [](const char* b, const char* e) {
      while (b < e && (*b == ' ' || *b == '\t')) ++b;
      while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n')) --e;
      return std::string(b, e);
    };
    fn(trim(line, colon), trim(colon + 1, line + n));
  }
  std::free(line);
  std::fclose(f);
  return true;
}

// Physical cores from /proc/cpuinfo ("physical id" x "core id" pairs); falls back to the
// logical count where that file is missing or says nothing useful.
int count_physical_cores(int logical) {
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical = "0";
  for_each_cpuinfo_field([&](const std::string& key, std::string value) {
    if (key == "physical id") physical = std::move(value);
    if (key == "core id") cores.insert({physical, std::move(value)});
  });
  return cores.empty() ? logical : static_cast<int>(cores.size());
}

std::string read_brand() {
  std::string brand;
  for_each_cpuinfo_field([&](const std::string& key, std::string value) {
    if (key == "model name" && brand.empty()) brand = std::move(value);
  });
  return brand;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned hw = std::thread::hardware_concurrency();
  f.logical_cores = hw == 0 ? 1 : static_cast<int>(hw);
  f.physical_cores = count_physical_cores(f.logical_cores);
  f.brand = read_brand();
#if defined(BRINK_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  bool avx = (c >> 28) & 1;
  uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  bool ymm_state = (xcr0 & 0x6) == 0x6;
  bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = avx && ymm_state && ((b >> 5) & 1);
    f.avx512f = zmm_state && ((b >> 16) & 1);
    f.avx512dq = zmm_state && ((b >> 17) & 1);
    f.avx512bw = zmm_state && ((b >> 30) & 1);
    f.avx512vl = zmm_state && ((b >> 31) & 1);
    f.avx512vnni = zmm_state && ((c >> 11) & 1);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = ymm_state && ((a >> 4) & 1);
  if (!f.avx2) f.fma = f.f16c = false;
#elif defined(__aarch64__)
  f.neon = true;
#if defined(__ARM_FEATURE_DOTPROD)
  f.neon_dotprod = true;
#elif defined(__linux__)
  // SDOT/UDOT (Armv8.2 dotprod): HWCAP_ASIMDDP, bit 20 of AT_HWCAP.
  f.neon_dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;
#endif
#endif
  return f;
}

bool parse_isa(const char* s, Isa* out) {
  struct {
    const char* name;
    Isa isa;
  } names[] = {{"portable", Isa::kPortable},
               {"avx2", Isa::kAvx2},
               {"avx512", Isa::kAvx512},
               {"neon", Isa::kNeon}};
  for (const auto& n : names) {
    if (std::strcmp(s, n.name) == 0) {
      *out = n.isa;
      return true;
    }
  }
  return false;
}

Isa compute_best_isa() {
  Isa best = Isa::kPortable;
  for (Isa isa : supported_isas()) best = isa;
  const char* env = std::getenv("BRINK_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa wanted;
  if (!parse_isa(env, &wanted)) {
    std::fprintf(stderr,
                 "warning: BRINK_ISA='%s' is not one of portable, avx2, avx512, neon; using %s\n",
                 env, isa_name(best));
    return best;
  }
  if (!isa_supported(wanted)) {
    std::fprintf(stderr, "warning: BRINK_ISA=%s is not supported on this CPU; using %s\n", env,
                 isa_name(best));
    return best;
  }
  return wanted;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kPortable:
      return BRINK_BUILD_PORTABLE;
    case Isa::kAvx2:
#if defined(BRINK_X86) && BRINK_BUILD_AVX2
      return f.avx2 && f.fma && f.f16c;
#else
      return false;
#endif
    case Isa::kAvx512:
#if defined(BRINK_X86) && BRINK_BUILD_AVX512
      return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
#else
      return false;
#endif
    case Isa::kNeon:
#if defined(__aarch64__) && BRINK_BUILD_NEON
      return f.neon;
#else
      return false;
#endif
  }
  return false;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kPortable, Isa::kNeon, Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() {
  static const Isa isa = compute_best_isa();
  return isa;
}

Isa usable_isa(Isa isa) {
  if (isa_supported(isa)) return isa;
  return BRINK_BUILD_PORTABLE ? Isa::kPortable : best_isa();
}

std::string isa_unsupported_reason(Isa isa) {
  if (isa_supported(isa)) return "";
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kAvx2:
      if (!(f.avx2 && f.fma && f.f16c)) return "this CPU lacks AVX2 and FMA";
      break;
    case Isa::kAvx512:
      if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c))
        return "this CPU lacks AVX-512 F/BW/VL/DQ";
      break;
    case Isa::kNeon:
      if (!f.neon) return "not an aarch64 CPU";
      break;
    case Isa::kPortable:
      break;
  }
  // The CPU could: the build left the variant out (BRINK_KERNEL_ISAS).
  return std::string("this runtime was built without its ") + isa_name(isa) + " kernels";
}

void isa_not_built(Isa isa) {
  std::fprintf(stderr, "error: internal: kernel variant %s is not in this build\n", isa_name(isa));
  std::abort();
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable:
      return "portable";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kNeon:
      return "neon";
  }
  return "unknown";
}

}  // namespace brink
