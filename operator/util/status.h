// Errors as values. A Status says whether an operation worked and, when it
// did not, what the caller may do about it (its code) and a message for a
// person. Result<T> carries either a value or a failed Status.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pgrs {

enum class StatusCode {
  kOk,
  kInvalid,      // bad input: stop, tell the user; retrying cannot help
  kNotFound,     // the object does not exist
  kConflict,     // stale view: re-read, then retry
  kUnavailable,  // transient: retry later (network, process not up yet)
  kInternal,     // a bug or an unexpected failure
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Invalid(std::string m) { return Status(StatusCode::kInvalid, std::move(m)); }
  static Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
  static Status Conflict(std::string m) { return Status(StatusCode::kConflict, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
  static Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns this status with `context` prepended to its message.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace pgrs

#define PGRS_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::pgrs::Status pgrs_status_ = (expr);   \
    if (!pgrs_status_.ok()) return pgrs_status_; \
  } while (0)
