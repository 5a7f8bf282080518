// The spec loader on broken specs: thousands of seeded mutants of every shipped spec
// (values swapped for hostile ones, lines dropped, repeated, re-indented or cut short,
// stray bytes) must each load or fail with sp::Error, the error the CLI prints with its
// location. Any other exception (a std::out_of_range from a number, a YAML or JSON
// library's own) or a crash is a defect. Deterministic: the seeds are fixed.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/spec/spec.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Values a careless or hostile edit might leave behind.
const std::vector<std::string>& hostile_values() {
  static const std::vector<std::string> values = {"-1",
                                                  "0",
                                                  "-0",
                                                  "1e309",
                                                  "-1e309",
                                                  ".nan",
                                                  ".inf",
                                                  "1.5",
                                                  "abc",
                                                  "[]",
                                                  "{}",
                                                  "null",
                                                  "~",
                                                  "true",
                                                  "''",
                                                  "99999999999999999999999",
                                                  "-9223372036854775808",
                                                  "0x10",
                                                  "[1, [2]]",
                                                  "{a: 1}",
                                                  "'${UNDEFINED}'",
                                                  "${",
                                                  "&a 1",
                                                  "*b",
                                                  "!!binary AAAA",
                                                  "|",
                                                  ">"};
  return values;
}

// One mutant of lines: a single random edit.
std::string mutate(std::vector<std::string> lines, std::mt19937_64& rng) {
  if (lines.empty()) return "";
  auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  const size_t i = pick(lines.size());
  std::string& line = lines[i];
  switch (pick(7)) {
    case 0: {  // the value after a key's colon
      const size_t colon = line.find(": ");
      const std::string& v = hostile_values()[pick(hostile_values().size())];
      if (colon != std::string::npos) {
        line = line.substr(0, colon + 2) + v;
      } else if (line.find("- ") != std::string::npos) {
        line = line.substr(0, line.find("- ") + 2) + v;
      } else {
        line += v;
      }
      break;
    }
    case 1: lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i)); break;
    case 2: lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i), line); break;
    case 3: line = "  " + line; break;
    case 4:
      if (line.rfind("  ", 0) == 0) line = line.substr(2);
      break;
    case 5: {  // cut the text short
      const std::string text = join(lines);
      return text.substr(0, pick(text.size() + 1));
    }
    default: {  // a stray byte
      static const std::string bytes = std::string(":-[]{}#&*!|>'\"%@`,?\t\x01\xff", 22);
      line.insert(pick(line.size() + 1), 1, bytes[pick(bytes.size())]);
      break;
    }
  }
  return join(lines);
}

TEST(SpecMutation, EveryMutantLoadsOrFailsWithALocatedError) {
  const fs::path specs =
      fs::path(SP_FIXTURES_DIR).parent_path().parent_path() / "experiments" / "specs";
  ASSERT_TRUE(fs::is_directory(specs)) << specs;
  SpecLoadOptions options;
  options.check_paths = false;  // as --dry-run: no data or checkpoints here
  options.read_environment = false;
  int loaded = 0, refused = 0;
  for (const auto& entry : fs::recursive_directory_iterator(specs)) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    const std::vector<std::string> lines =
        lines_of(std::string(std::istreambuf_iterator<char>(in), {}));
    std::mt19937_64 rng(std::hash<std::string>{}(entry.path().filename().string()));
    for (int n = 0; n < 120; ++n) {
      const std::string text = mutate(lines, rng);
      try {
        parse_spec(text, entry.path().string(), options);
        ++loaded;
      } catch (const Error&) {
        ++refused;
      } catch (const std::exception& e) {
        ADD_FAILURE() << entry.path().filename() << " mutant " << n << " threw " << typeid(e).name()
                      << ": " << e.what() << "\n--- spec:\n"
                      << text;
      }
    }
  }
  EXPECT_GT(loaded, 0);  // some edits are harmless (a comment, a repeated blank line)
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace sp
