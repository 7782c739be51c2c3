// libFuzzer target for the ONNX importer: any bytes must either load or fail with a
// one-line error, and whatever loads must export and re-import to the same bytes. The
// same bytes are also tried as a TensorProto (the test data's .pb files).
//
// Build: CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DBRINK_FUZZ=ON -DBRINK_TESTS=OFF
// Run:   ./build-fuzz/fuzz_onnx_loader tests/fuzz/corpus_onnx -max_len=65536
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "onnx/onnx_io.h"

namespace {

void fail(const char* what, const brink::Status& s) {
  std::fprintf(stderr, "fuzz_onnx_loader: %s: %s\n", what, s.message().c_str());
  std::abort();
}

void check_error(const brink::Status& s) {
  if (s.message().empty()) fail("error with an empty message", s);
  for (char c : s.message())
    if (c == '\n' || c == '\r') fail("error message spans lines", s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace brink;
  auto model = onnx_io::parse_onnx_bytes(data, size);
  if (model.is_ok()) {
    auto first = onnx_io::serialize_onnx(*model);
    if (!first) fail("export of a loaded model failed", first.status());
    auto again = onnx_io::parse_onnx_bytes(first->data(), first->size());
    if (!again) fail("re-import of an exported model failed", again.status());
    auto second = onnx_io::serialize_onnx(*again);
    if (!second) fail("second export failed", second.status());
    if (*first != *second) fail("round trip changed the model", Status::ok());
  } else {
    check_error(model.status());
  }
  auto tensor = onnx_io::parse_tensor_proto(data, size);
  if (tensor.is_ok()) {
    auto bytes = onnx_io::serialize_tensor_proto(*tensor, "t");
    if (!bytes) fail("export of a parsed tensor failed", bytes.status());
  } else {
    check_error(tensor.status());
  }
  return 0;
}
