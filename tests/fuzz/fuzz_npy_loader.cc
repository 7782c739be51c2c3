// libFuzzer target: the .npy and .npz readers must refuse any malformed bytes cleanly.
#include <cstddef>
#include <cstdint>

#include "loader/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)brink::npy::parse_npy(data, size, "fuzz.npy");
  (void)brink::npy::parse_npz(data, size, "fuzz.npz");
  return 0;
}
