#include "brink/session.h"

#include "runtime/compiled_model.h"

namespace brink {

Result<Int8Kernels> parse_int8_kernels(const std::string& name) {
  if (name == "faster") return Int8Kernels::kWhereFaster;
  if (name == "integer") return Int8Kernels::kInteger;
  if (name == "float") return Int8Kernels::kFloat;
  return invalid_argument("int8 kernels '" + name + "': expected faster, integer or float");
}

const char* int8_kernels_name(Int8Kernels k) {
  switch (k) {
    case Int8Kernels::kWhereFaster:
      return "faster";
    case Int8Kernels::kInteger:
      return "integer";
    case Int8Kernels::kFloat:
      return "float";
  }
  return "?";
}

Session::Session(std::unique_ptr<CompiledModel> compiled) : compiled_(std::move(compiled)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::from_model(ir::Model model,
                                                     const SessionOptions& options) {
  BRINK_ASSIGN_OR_RETURN(auto compiled, CompiledModel::compile(std::move(model), options));
  return std::unique_ptr<Session>(new Session(std::move(compiled)));
}

std::unique_ptr<Session> Session::from_compiled(std::unique_ptr<CompiledModel> compiled) {
  return std::unique_ptr<Session>(new Session(std::move(compiled)));
}

const std::vector<TensorInfo>& Session::inputs() const {
  return compiled_->inputs();
}
const std::vector<TensorInfo>& Session::outputs() const {
  return compiled_->outputs();
}

Result<std::vector<Tensor>> Session::run(const std::vector<NamedTensor>& feeds) const {
  return compiled_->run(feeds);
}

}  // namespace brink
