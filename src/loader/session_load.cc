// Session::load lives in the toolchain library because reading .onnx needs protobuf;
// the runtime library (brink_rt) stays free of it. A .brink package (told apart by its
// magic, not its name) is verified and mapped by package::load_package_session.
#include "brink/session.h"
#include "onnx/onnx_io.h"
#include "package/package.h"

namespace brink {

Result<std::unique_ptr<Session>> Session::load(const std::string& path,
                                               const SessionOptions& options) {
  if (package::is_package_file(path)) {
    package::VerifyOptions verify;
    if (!options.package_public_key.empty()) {
      BRINK_ASSIGN_OR_RETURN(verify.trusted_key,
                             package::load_public_key(options.package_public_key));
    }
    if (!options.package_key.empty()) {
      BRINK_ASSIGN_OR_RETURN(verify.decryption_key,
                             package::load_encryption_key(options.package_key));
    }
    return package::load_package_session(path, options, verify);
  }
  BRINK_ASSIGN_OR_RETURN(ir::Model model, onnx_io::load_onnx_file(path));
  auto session = from_model(std::move(model), options);
  if (!session.is_ok()) return session.status().with_context(path);
  return session;
}

}  // namespace brink
