// lowbit's one exception hierarchy. Every error carries the context a user needs to find the bad
// input: the file, the tensor, its shape and the reason.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

/// Where an error happened. Empty fields are simply left out of the message.
struct ErrorContext {
  std::string file;
  std::string tensor;
  std::vector<std::size_t> shape;
};

/// Base of every exception lowbit throws.
class error : public std::runtime_error {
 public:
  explicit error(std::string reason, ErrorContext context = {})
      : std::runtime_error(compose(reason, context)),
        reason_(std::move(reason)),
        context_(std::move(context)) {}

  const std::string& reason() const noexcept { return reason_; }
  const ErrorContext& context() const noexcept { return context_; }

 private:
  static std::string compose(const std::string& reason, const ErrorContext& context) {
    std::string message;
    if (!context.file.empty()) message += "file '" + context.file + "': ";
    if (!context.tensor.empty()) message += "tensor '" + context.tensor + "': ";
    if (!context.shape.empty()) {
      message += "shape [";
      for (std::size_t i = 0; i < context.shape.size(); ++i)
        message += (i ? ", " : "") + std::to_string(context.shape[i]);
      message += "]: ";
    }
    return message + reason;
  }

  std::string reason_;
  ErrorContext context_;
};

/// A caller passed arguments that cannot work together (a bad Scheme, mismatched shapes).
class invalid_argument : public error {
 public:
  using error::error;
};

/// The data itself cannot be represented: NaN or Inf where a finite value is needed, a NaN encoded
/// into a format that has no NaN.
class invalid_value : public error {
 public:
  using error::error;
};

/// A file could not be read or written, or its contents are malformed.
class io_error : public error {
 public:
  using error::error;
};

/// The requested operation is not supported for this input (a backend that cannot run a Scheme).
class unsupported : public error {
 public:
  using error::error;
};

namespace detail {

/// "[rows, cols]", as the shapes in lowbit's messages are written.
inline std::string shape_text(std::size_t rows, std::size_t cols) {
  // (append, not operator+: GCC 12 reports a false -Wrestrict on the chain of temporaries)
  std::string text = "[";
  text.append(std::to_string(rows)).append(", ").append(std::to_string(cols)).append("]");
  return text;
}

}  // namespace detail

}  // namespace lowbit
