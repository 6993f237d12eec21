// JSON numbers read as integers without undefined behaviour: cpprestsdk's
// to_int64()/as_integer() cast a double (1e300, -1e19) to an integer type
// it does not fit, which is undefined (found by fuzz/agent_protocol_fuzzer).
#pragma once

#include <cpprest/json.h>

#include <cstdint>
#include <optional>

namespace pgrs {

// `v` as an int64_t: an integer, or a double holding a whole number in
// range (5.0, 1e3). nullopt for anything else: not a number, 5.5, 1e300.
std::optional<int64_t> JsonInt64(const web::json::value& v);
// The same within int's range.
std::optional<int> JsonInt32(const web::json::value& v);

}  // namespace pgrs
