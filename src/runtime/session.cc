#include "brink/session.h"

#include "runtime/compiled_model.h"

namespace brink {

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
