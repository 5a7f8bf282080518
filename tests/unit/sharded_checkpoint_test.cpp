// Sharded checkpoints: model.safetensors.index.json reading and validation, the
// CheckpointReader over single and sharded layouts, and save_checkpoint's sharding.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/io/sharded.h"
#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::set<std::string> files_in(const TempDir& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.path)) out.insert(e.path().filename().string());
  return out;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// n f32 values start, start + 1, ...
Tensor counting(int64_t n, float start) {
  Tensor t = Tensor::empty({n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

// 16, 64, 16, 32 bytes: with 32-byte shards "b" is oversized and gets a shard alone.
std::vector<std::pair<std::string, Tensor>> four_tensors() {
  return {{"a", counting(4, 0)},
          {"b", counting(16, 100)},
          {"c", counting(4, 200)},
          {"d", counting(8, 300)}};
}

const char* kShard1 = "model-00001-of-00003.safetensors";
const char* kShard2 = "model-00002-of-00003.safetensors";
const char* kShard3 = "model-00003-of-00003.safetensors";

TEST(ShardedCheckpoint, saves_shards_greedily_and_reads_them_back) {
  TempDir dir;
  CheckpointSaveOptions opt;
  opt.max_shard_bytes = 32;
  const auto written = save_checkpoint(dir.path.string(), four_tensors(), opt);
  // huggingface_hub's split: b (64 > 32) alone first; a + c fill 32; d starts a new shard.
  EXPECT_EQ(written, (std::vector<std::string>{kShard1, kShard2, kShard3, kSafetensorsIndexName}));
  EXPECT_EQ(SafetensorsFile::open(dir / kShard1).names(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(SafetensorsFile::open(dir / kShard2).names(), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(SafetensorsFile::open(dir / kShard3).names(), (std::vector<std::string>{"d"}));
  EXPECT_EQ(SafetensorsFile::open(dir / kShard2).metadata().at("format"), "pt");

  const nlohmann::json index = nlohmann::json::parse(read_text(dir / kSafetensorsIndexName));
  EXPECT_EQ(index["metadata"]["total_size"], 128);
  EXPECT_EQ(index["weight_map"],
            (nlohmann::json{{"a", kShard2}, {"b", kShard1}, {"c", kShard2}, {"d", kShard3}}));

  const CheckpointReader r = CheckpointReader::open(dir.path.string());
  EXPECT_TRUE(r.sharded());
  EXPECT_TRUE(r.warnings().empty());
  EXPECT_EQ(r.files().size(), 3u);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
  for (const auto& [name, t] : four_tensors()) {
    EXPECT_EQ(r.tensor(name).to_vector<float>(), t.to_vector<float>()) << name;
    EXPECT_EQ(r.info(name).dtype, "F32");
  }
  EXPECT_EQ(r.tensor("d", DType::f64).to_vector<double>(),
            (std::vector<double>{300, 301, 302, 303, 304, 305, 306, 307}));
  EXPECT_EQ(r.file_of("c").path(), dir / kShard2);
  EXPECT_THROW_MSG(r.tensor("zz"), "no tensor named 'zz' in this checkpoint (4 tensors)");
  // The index file itself is a valid entry point too.
  EXPECT_EQ(CheckpointReader::open(dir / kSafetensorsIndexName).size(), 4u);
}

TEST(ShardedCheckpoint, single_file_when_everything_fits_and_stale_files_are_removed) {
  TempDir dir;
  CheckpointSaveOptions small;
  small.max_shard_bytes = 32;
  save_checkpoint(dir.path.string(), four_tensors(), small);
  write_text(dir / "config.json", "{}");  // not ours: must survive
  write_text(dir / "model-00009-of-00009.safetensors.bak", "x");

  const auto written = save_checkpoint(dir.path.string(), four_tensors());  // 5 GB shards: one file
  EXPECT_EQ(written, (std::vector<std::string>{kSafetensorsSingleName}));
  EXPECT_EQ(files_in(dir),
            (std::set<std::string>{"config.json", "model-00009-of-00009.safetensors.bak",
                                   kSafetensorsSingleName}));
  const CheckpointReader r = CheckpointReader::open(dir.path.string());
  EXPECT_FALSE(r.sharded());
  EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(r.tensor("b").to_vector<float>(), counting(16, 100).to_vector<float>());
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(CheckpointReader::open(dir / kSafetensorsSingleName).size(), 4u);

  // And back to shards: the single file goes, or readers would prefer it.
  save_checkpoint(dir.path.string(), four_tensors(), small);
  EXPECT_EQ(files_in(dir).count(kSafetensorsSingleName), 0u);
  EXPECT_TRUE(CheckpointReader::open(dir.path.string()).sharded());
}

TEST(ShardedCheckpoint, save_rejects_duplicates_and_creates_the_directory) {
  TempDir dir;
  EXPECT_THROW_MSG(save_checkpoint(dir / "x", {{"a", counting(1, 0)}, {"a", counting(1, 0)}}),
                   "duplicate tensor name 'a'");
  const auto written = save_checkpoint(dir / "new/sub", {{"a", counting(2, 5)}});
  EXPECT_EQ(CheckpointReader::open(dir / "new/sub").tensor("a").to_vector<float>(),
            (std::vector<float>{5, 6}));
}

TEST(ShardedCheckpoint, failed_resave_keeps_the_old_checkpoint_whole) {
  // Re-saving with the same shard count rewrites the same shard names. A save that fails
  // on shard 2 must not have replaced shard 1 already: the old index would then read the
  // new "a" beside the old "b", a silent mix of two checkpoints.
  TempDir dir;
  CheckpointSaveOptions opt;
  opt.max_shard_bytes = 16;
  save_checkpoint(dir.path.string(), {{"a", counting(4, 0)}, {"b", counting(4, 10)}}, opt);
  const std::set<std::string> before = files_in(dir);
  ASSERT_EQ(before.size(), 3u);  // two shards and the index

  EXPECT_THROW_MSG(
      save_checkpoint(dir.path.string(),
                      {{"a", counting(4, 100)}, {"__metadata__", counting(4, 110)}}, opt),
      "'__metadata__' is reserved");
  EXPECT_EQ(files_in(dir), before);  // and no temporary files left behind
  const CheckpointReader r = CheckpointReader::open(dir.path.string());
  EXPECT_EQ(r.tensor("a").to_vector<float>(), counting(4, 0).to_vector<float>());
  EXPECT_EQ(r.tensor("b").to_vector<float>(), counting(4, 10).to_vector<float>());

  // A save that succeeds replaces both shards.
  save_checkpoint(dir.path.string(), {{"a", counting(4, 100)}, {"b", counting(4, 110)}}, opt);
  EXPECT_EQ(files_in(dir), before);
  const CheckpointReader after = CheckpointReader::open(dir.path.string());
  EXPECT_EQ(after.tensor("a").to_vector<float>(), counting(4, 100).to_vector<float>());
  EXPECT_EQ(after.tensor("b").to_vector<float>(), counting(4, 110).to_vector<float>());
}

// Readers prefer model.safetensors to the index: a sharded save over a single-file one
// removes the single file before the index exists, so a save that fails at the index
// leaves no checkpoint to read (an error) rather than the old weights (silently).
TEST(ShardedCheckpoint, failed_index_write_after_a_single_file_save_leaves_no_old_weights) {
  TempDir dir;
  save_checkpoint(dir.path.string(), four_tensors());
  ASSERT_TRUE(fs::exists(dir / kSafetensorsSingleName));
  fs::create_directories(fs::path(dir / kSafetensorsIndexName) / "blocker");  // blocks the rename
  CheckpointSaveOptions small;
  small.max_shard_bytes = 32;
  EXPECT_ANY_THROW(save_checkpoint(dir.path.string(), four_tensors(), small));
  EXPECT_FALSE(fs::exists(dir / kSafetensorsSingleName));
  EXPECT_ANY_THROW(CheckpointReader::open(dir.path.string()));
}

class ShardedIndexErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    CheckpointSaveOptions opt;
    opt.max_shard_bytes = 32;
    save_checkpoint(dir.path.string(), four_tensors(), opt);
  }
  void write_index(const std::string& text) { write_text(dir / kSafetensorsIndexName, text); }
  TempDir dir;
};

TEST_F(ShardedIndexErrors, missing_shard) {
  fs::remove(dir / kShard2);
  EXPECT_THROW_MSG(
      CheckpointReader::open(dir.path.string()),
      "shard 'model-00002-of-00003.safetensors' (holding 2 tensors, e.g. 'a') is missing");
}

TEST_F(ShardedIndexErrors, name_absent_from_its_shard) {
  write_index(
      R"({"metadata":{"total_size":128},"weight_map":{"a":"model-00002-of-00003.safetensors",
      "b":"model-00001-of-00003.safetensors","c":"model-00002-of-00003.safetensors",
      "d":"model-00001-of-00003.safetensors"}})");
  EXPECT_THROW_MSG(
      CheckpointReader::open(dir.path.string()),
      "tensor 'd' is mapped to shard 'model-00001-of-00003.safetensors', which has no such tensor");
}

TEST_F(ShardedIndexErrors, total_size_mismatch_warns_or_fails_when_strict) {
  write_index(
      R"({"metadata":{"total_size":100},"weight_map":{"a":"model-00002-of-00003.safetensors",
      "b":"model-00001-of-00003.safetensors","c":"model-00002-of-00003.safetensors",
      "d":"model-00003-of-00003.safetensors"}})");
  const CheckpointReader r = CheckpointReader::open(dir.path.string());
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0],
            "metadata.total_size is 100, but the tensors in the weight_map hold 128 bytes");
  EXPECT_THROW_MSG(CheckpointReader::open(dir.path.string(), {.strict = true}),
                   "metadata.total_size is 100");
}

TEST_F(ShardedIndexErrors, unlisted_tensors_are_ignored_with_a_warning) {
  // No metadata at all is fine; "c" is left out of the map.
  write_index(R"({"weight_map":{"a":"model-00002-of-00003.safetensors",
      "b":"model-00001-of-00003.safetensors","d":"model-00003-of-00003.safetensors"}})");
  const CheckpointReader r = CheckpointReader::open(dir.path.string());
  EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_FALSE(r.contains("c"));
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0],
            "tensor 'c' in shard 'model-00002-of-00003.safetensors' is not in the weight_map and "
            "is ignored");
  EXPECT_THROW_MSG(CheckpointReader::open(dir.path.string(), {.strict = true}),
                   "tensor 'c' in shard");
}

TEST_F(ShardedIndexErrors, malformed_index_files) {
  const std::string idx = dir / kSafetensorsIndexName;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "index is not valid JSON"},
      {"[1]", "index must be a JSON object, got array"},
      {R"({"metadata":{}})", "index has no \"weight_map\""},
      {R"({"weight_map":[]})", "\"weight_map\" must be an object, got array"},
      {R"({"weight_map":{}})", "\"weight_map\" is empty"},
      {R"({"weight_map":{"a":3}})", "weight_map entry 'a' must name a shard file, got number"},
      {R"({"weight_map":{"a":"../model-00002-of-00003.safetensors"}})",
       "names '../model-00002-of-00003.safetensors': shards must be plain file names"},
      {R"({"weight_map":{"a":"/etc/passwd"}})", "shards must be plain file names"},
      {R"({"weight_map":{"a":"x.safetensors","a":"y.safetensors"}})", "duplicate key 'a'"},
      {R"({"metadata":{"total_size":-5},"weight_map":{"a":"x"}})",
       "metadata.total_size must be a non-negative integer, got -5"},
      {R"({"metadata":[],"weight_map":{"a":"x"}})", "\"metadata\" must be an object, got array"},
  };
  for (const auto& [text, message] : cases) {
    write_index(text);
    try {
      CheckpointReader::open(dir.path.string());
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("[checkpoint] " + idx + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(message), std::string::npos) << "for " << text << "\nmessage was: " << msg;
    }
  }
  // A whole float total_size (some writers produce them) is accepted.
  write_index(
      R"({"metadata":{"total_size":128.0},"weight_map":{"a":"model-00002-of-00003.safetensors",
      "b":"model-00001-of-00003.safetensors","c":"model-00002-of-00003.safetensors",
      "d":"model-00003-of-00003.safetensors"}})");
  EXPECT_TRUE(CheckpointReader::open(dir.path.string()).warnings().empty());
}

TEST_F(ShardedIndexErrors, corrupt_shard_names_the_shard) {
  std::vector<char> bytes(12, 0);
  bytes[0] = 100;
  std::ofstream(dir / kShard3, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW_MSG(CheckpointReader::open(dir.path.string()),
                   "[safetensors] " + (dir / kShard3) +
                       ": header length 100 reaches beyond the end of the file");
}

TEST(ShardedCheckpoint, directory_without_a_checkpoint) {
  TempDir dir;
  EXPECT_THROW_MSG(CheckpointReader::open(dir.path.string()),
                   "no model.safetensors or model.safetensors.index.json in this directory");
  EXPECT_THROW_MSG(CheckpointReader::open(dir / "missing.json"), "missing.json: no such file");
}

}  // namespace
}  // namespace sp
