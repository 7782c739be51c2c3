// Status and Result<T>: how every Brink library function reports failure.
//
// Library code never throws across its API and never aborts on bad input. A failed call
// returns a Status whose message names the thing that was wrong (node name, op type,
// input name, file offset) and what was expected versus found, so the CLI can print it
// as one line.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace brink {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something wrong (input name, shape, dtype)
  kInvalidModel,     // the model file is malformed or inconsistent
  kUnsupported,      // well-formed, but Brink cannot run it (op, dtype, opset)
  kNotFound,         // a file or a named thing does not exist
  kIoError,          // reading or writing a file failed
  kInternal,         // a bug in Brink
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<message>" prefixed with context, e.g. "node 'conv1' (Conv): <message>".
  Status with_context(const std::string& context) const {
    if (is_ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status invalid_model(std::string m) {
  return {StatusCode::kInvalidModel, std::move(m)};
}
inline Status unsupported(std::string m) {
  return {StatusCode::kUnsupported, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status io_error(std::string m) {
  return {StatusCode::kIoError, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.is_ok() && "Result constructed from an ok Status without a value");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace brink

#define BRINK_CONCAT_INNER(a, b) a##b
#define BRINK_CONCAT(a, b) BRINK_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define BRINK_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::brink::Status brink_status_ = (expr);           \
    if (!brink_status_.is_ok()) return brink_status_; \
  } while (0)

// `BRINK_ASSIGN_OR_RETURN(auto x, f())`: unwraps a Result or returns its Status.
#define BRINK_ASSIGN_OR_RETURN(lhs, expr)                  \
  auto BRINK_CONCAT(brink_result_, __LINE__) = (expr);     \
  if (!BRINK_CONCAT(brink_result_, __LINE__).is_ok())      \
    return BRINK_CONCAT(brink_result_, __LINE__).status(); \
  lhs = std::move(BRINK_CONCAT(brink_result_, __LINE__)).value()
