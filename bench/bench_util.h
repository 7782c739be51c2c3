// Command-line helpers shared by the kernel micro-benchmarks (bench/*_bench.cc).
#pragma once

#include <string>
#include <vector>

#include "core/cpu_features.h"

namespace brink::bench {

// "1,2" -> {"1", "2"}.
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

// An ISA by the name isa_name gives it ("avx512", "avx2", "neon", "portable").
inline bool parse_isa(const std::string& s, Isa* isa) {
  for (Isa i : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kNeon})
    if (s == isa_name(i)) {
      *isa = i;
      return true;
    }
  return false;
}

}  // namespace brink::bench
