#pragma once
// sp::Error and SP_CHECK: how every public API reports bad input.
// Messages start with the op in brackets and name the values:
//   [matmul] inner dims differ: a is [4, 8], b is [7, 3]
#include <sstream>
#include <stdexcept>
#include <string>

namespace sp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& msg) { throw Error(msg); }

}  // namespace sp

// SP_CHECK(cond, "[op] what went wrong: ", value, ...) throws sp::Error when cond is false.
#define SP_CHECK(cond, ...)                               \
  do {                                                    \
    if (!(cond)) [[unlikely]] ::sp::fail(::sp::str_cat(__VA_ARGS__)); \
  } while (0)
