// brink::Session: load a model once, run it many times.
//
//   auto session = brink::Session::load("model.onnx", {.num_threads = 2});
//   if (!session) { /* session.status().message() says why, naming the node/op/input */ }
//   auto outputs = (*session)->run({{"image", image_tensor}});
//
// Loading does every check up front: each reason the model cannot run (an unsupported op,
// dtype or opset, a shape that cannot be inferred) is reported at load, all of them in one
// Status, so `run` only fails for bad feeds. A Session is safe to `run` from several
// threads at once: run keeps no state between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "brink/status.h"
#include "brink/tensor.h"

namespace brink {

namespace ir {
struct Model;
}

// Which kernels run the integer layers of a quantized model (brink.QConv: the fused
// DequantizeLinear -> Conv -> QuantizeLinear of a QDQ model).
enum class Int8Kernels {
  // Integer kernels, except on small layers where the float kernels (dequantize, FP32
  // convolution, quantize: the QDQ model's own float semantics) measure faster at load on
  // this machine: "INT8 only where faster". Large layers always run integer kernels.
  kWhereFaster,
  kInteger,  // integer kernels for every layer that has one (exact, the same on every ISA)
  kFloat,    // float kernels for every such layer (to tell kernel error from quantization's)
};

struct SessionOptions {
  int num_threads = 1;         // threads a run may use; 0 picks the number of cores
  bool fold_constants = true;  // evaluate nodes whose inputs are all constant at load
  // Graph optimizations before compiling (src/passes/optimize.h): 0 none; 1 folding, fusion,
  // dead-code removal; 2 also the NHWC layout for convolutions.
  int optimization_level = 2;
  // Fixed sizes for symbolic input dims, by dim name ("batch" -> 1). Dims not listed stay
  // symbolic and are resolved at each run.
  std::vector<std::pair<std::string, int64_t>> dim_values;
  // .brink packages only: a public key file (brink keygen); the package must carry a valid
  // signature by that key. Empty: an unsigned package is accepted, a signed one is checked
  // against the key it carries (integrity, not trust). Every check runs before any kernel.
  std::string package_public_key;
  // .brink packages only: the key file (brink keygen --encryption) of an encrypted package.
  std::string package_key;
  // .brink packages only: keep the model's weights and activation arena within this many
  // bytes (0: no bound). A package whose weights and arena exceed it runs layer by layer:
  // each layer's weights are read from the mapped file when it runs and dropped after, so
  // resident weights stay near one layer's (runs then re-read them from the page cache).
  // Refused at load when the largest layer and the arena alone exceed it.
  int64_t max_memory_bytes = 0;
  Int8Kernels int8_kernels = Int8Kernels::kWhereFaster;
};

// "faster", "integer", "float" (the --int8-kernels values); anything else is an error.
Result<Int8Kernels> parse_int8_kernels(const std::string& name);
const char* int8_kernels_name(Int8Kernels k);

// Name, element type and shape of a model input or output. A dim is -1 when symbolic;
// dim_names then holds its name ("" when anonymous). `shape` is empty and `rank_known`
// false when even the rank is unknown.
struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
  bool rank_known = true;
  std::string shape_string() const;  // "[batch, 3, 224, 224]"
};

using NamedTensor = std::pair<std::string, Tensor>;

class CompiledModel;

class Session {
 public:
  // Loads a .onnx file or a .brink package (told apart by content, not by name).
  static Result<std::unique_ptr<Session>> load(const std::string& path,
                                               const SessionOptions& options = {});
  // Builds a session from an already imported model (used by tools and tests).
  static Result<std::unique_ptr<Session>> from_model(ir::Model model,
                                                     const SessionOptions& options = {});
  // Wraps a model compiled elsewhere (the .brink loader compiles with its packed weights).
  static std::unique_ptr<Session> from_compiled(std::unique_ptr<CompiledModel> compiled);
  ~Session();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;

  // Runs the model on `feeds` (every input, by name; each exactly once). Returns the
  // outputs in outputs() order. Wrong names, dtypes or shapes are reported, all at once,
  // before anything runs.
  Result<std::vector<Tensor>> run(const std::vector<NamedTensor>& feeds) const;

  // The compiled form, for tools that report on it (brink info).
  const CompiledModel& compiled() const { return *compiled_; }

 private:
  explicit Session(std::unique_ptr<CompiledModel> compiled);
  std::unique_ptr<CompiledModel> compiled_;
};

}  // namespace brink
