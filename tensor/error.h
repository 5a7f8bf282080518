#pragma once
// sp::Error and SP_CHECK: how every public API reports bad input.
// Messages start with the op in brackets and name the values:
//   [matmul] inner dims differ: a is [4, 8], b is [7, 3]
#include <new>
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

// An error in what the user asked for (a flag, a setting, an output directory that holds
// another run) rather than in running it: the command-line tool exits with status 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// What a command or a run reports for an exception: its message, except for the standard
// library's std::bad_alloc (a std::vector or string too large to hold), whose message
// names nothing.
inline std::string error_text(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return str_cat("out of host memory (", e.what(),
                   "): a size asked for (a batch size, a sequence, prompt or vocabulary length, "
                   "a number of examples) is more than this machine can hold");
  return e.what();
}

// A parser's message cut to 300 characters: nlohmann::json quotes the token it stopped at,
// which in a malformed file can be megabytes long.
inline std::string parse_error_text(const std::exception& e) {
  constexpr size_t kMax = 300;
  std::string why = e.what();
  if (why.size() > kMax) why = why.substr(0, kMax) + "...";
  return why;
}

}  // namespace sp

// SP_CHECK(cond, "[op] what went wrong: ", value, ...) throws sp::Error when cond is false.
#define SP_CHECK(cond, ...)                               \
  do {                                                    \
    if (!(cond)) [[unlikely]] ::sp::fail(::sp::str_cat(__VA_ARGS__)); \
  } while (0)
