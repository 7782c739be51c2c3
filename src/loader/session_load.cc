// Session::load lives in the toolchain library because reading .onnx needs protobuf;
// the runtime library (brink_rt) stays free of it.
#include "brink/session.h"
#include "onnx/onnx_io.h"

namespace brink {

Result<std::unique_ptr<Session>> Session::load(const std::string& path,
                                               const SessionOptions& options) {
  BRINK_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load_onnx_file(path));
  auto session = from_model(std::move(model), options);
  if (!session.is_ok()) return session.status().with_context(path);
  return session;
}

}  // namespace brink
