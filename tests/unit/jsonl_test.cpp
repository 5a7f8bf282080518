// The JSON-lines reader every data and predictions file goes through: a key given twice in
// one object (nlohmann::json would keep the last value silently) and a directory given as
// the file are errors that say so.
#include "experiments/inference/jsonl.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/tasks/predictions.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::vector<JsonlRecord> read(const std::string& text) {
  std::istringstream in(text);
  return read_jsonl(in, "d.jsonl");
}

TEST(JsonlReader, DuplicateKeyIsAnErrorNamingTheLineAndKey) {
  EXPECT_THROW_MSG(read("{\"id\": \"a\"}\n\n{\"id\": \"b\", \"prediction\": \"x\", "
                        "\"prediction\": \"y\"}\n"),
                   "d.jsonl:3: key \"prediction\" is given twice in one object");
  // In a nested object, and in an object inside an array.
  EXPECT_THROW_MSG(read("{\"a\": {\"b\": 1, \"c\": 2, \"b\": 3}}\n"), "d.jsonl:1: key \"b\"");
  EXPECT_THROW_MSG(read("{\"a\": [{\"k\": 1}, {\"k\": 1, \"k\": 2}]}\n"), "d.jsonl:1: key \"k\"");
  // The same key in different objects is no duplicate.
  const std::vector<JsonlRecord> r =
      read("{\"k\": {\"k\": 1}, \"a\": [{\"k\": 2}, {\"k\": 3}], \"b\": {\"k\": {}}}\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].value["a"][1]["k"], 3);
}

TEST(JsonlReader, PredictionsWithADuplicateKeyAreAnError) {
  TaskExample a;
  a.id = "t-validation-0";
  a.targets = "A";
  a.label = 0;
  std::istringstream in(
      "{\"id\": \"t-validation-0\", \"prediction\": \"A\", \"prediction\": \"B\"}\n");
  EXPECT_THROW_MSG(read_predictions(in, "p.jsonl", {a}),
                   "p.jsonl:1: key \"prediction\" is given twice in one object");
}

TEST(JsonlReader, DirectoryIsNamedAsSuch) {
  const fs::path dir = fs::temp_directory_path() / ("sp_jsonl_dir_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ifstream in(dir);
  JsonlReader reader(in, dir.string());
  EXPECT_THROW_MSG(reader.next(), dir.string() + ": is a directory, not a JSON-lines file");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sp
