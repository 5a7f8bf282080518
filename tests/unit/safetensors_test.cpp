// safetensors reader and writer: bit-exact round trips, zero-copy, conversions, the
// committed reference file written by Python's safetensors, and a battery of corrupt files.
#include "models/io/safetensors.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "test_util.h"

#ifndef SP_FIXTURES_DIR
#define SP_FIXTURES_DIR ""
#endif

namespace sp {
namespace {

namespace fs = std::filesystem;

std::string fixtures_dir() {
  if (std::string(SP_FIXTURES_DIR).size()) return SP_FIXTURES_DIR;
  return (fs::path(__FILE__).parent_path().parent_path() / "fixtures").string();
}

// A fresh directory, removed with everything in it.
std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

uint64_t header_length(const std::vector<uint8_t>& file) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file[i];
  return n;
}

// A file with a hand-written header (padded with spaces to a multiple of 8 unless told
// otherwise) and a data buffer of data_bytes bytes counting 0, 1, 2, ...
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + h.size() + data_bytes);
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  if (!h.empty()) std::memcpy(out.data() + 8, h.data(), h.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + h.size() + i] = static_cast<uint8_t>(i);
  return out;
}

std::vector<uint8_t> with_length(uint64_t n, size_t total) {
  std::vector<uint8_t> out(total, ' ');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  return out;
}

// The file must be refused with a message naming it and the problem.
void expect_corrupt(const std::vector<uint8_t>& bytes, const std::string& problem) {
  try {
    SafetensorsFile::from_bytes(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted a file that should fail with: " << problem;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[safetensors] bad.safetensors: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << "message was: " << msg;
  }
}

// A CPU tensor holding exactly these bytes.
Tensor raw_tensor(const Shape& shape, DType dtype, const void* bytes) {
  Tensor t = Tensor::empty(shape, dtype);
  if (t.nbytes()) std::memcpy(t.data_ptr(), bytes, static_cast<size_t>(t.nbytes()));
  return t;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const Tensor c = kernels::contiguous(t);
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  return {p, p + c.nbytes()};
}

uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }

// The values of scripts/make_safetensors_fixture.py's FIXTURE table, for the dtypes
// softprompt has, in the order its EXPORTED list expects (bool first, so that the writer's
// alignment ordering of the buffer matters).
std::vector<std::pair<std::string, Tensor>> python_table() {
  const float f32[] = {0.0f, 1.5f, -2.25f, 3.4028234663852886e38f, 1.401298464324817e-45f, -0.0f};
  const uint16_t bf16[] = {0x3F80, 0xC020, 0x7F80, 0x0001};
  const uint16_t f16[] = {0x3C00, 0x7BFF, 0x0001};  // 1, 65504, 2^-24
  const double f64[] = {3.141592653589793, -1e300};
  const int32_t i32[] = {std::numeric_limits<int32_t>::min(), -1, 0,
                         std::numeric_limits<int32_t>::max()};
  const int64_t i64[] = {std::numeric_limits<int64_t>::min(), 42,
                         std::numeric_limits<int64_t>::max()};
  const uint8_t b[] = {1, 0, 1, 1};
  const float scalar = 7.0f;
  const float q[] = {1, 2, 3, 4};
  return {
      {"bool", raw_tensor({4}, DType::boolean, b)},
      {"bf16", raw_tensor({4}, DType::bf16, bf16)},
      {"f32", raw_tensor({2, 3}, DType::f32, f32)},
      {"f16", raw_tensor({3}, DType::f16, f16)},
      {"f64", raw_tensor({2}, DType::f64, f64)},
      {"i32", raw_tensor({2, 2}, DType::i32, i32)},
      {"i64", raw_tensor({3}, DType::i64, i64)},
      {"scalar", raw_tensor({}, DType::f32, &scalar)},
      {"empty", Tensor::empty({0, 3}, DType::f32)},
      {"encoder.block.0.layer.0.SelfAttention.q.weight", raw_tensor({2, 2}, DType::f32, q)},
  };
}

// --- round trips ---------------------------------------------------------------------

TEST(Safetensors, round_trip_every_dtype_bit_exact) {
  const auto table = python_table();
  // A NaN with a payload and a subnormal must survive too.
  const uint32_t odd_bits[] = {0x7FC00001u, 0x80000001u};
  std::vector<std::pair<std::string, Tensor>> tensors = table;
  tensors.emplace_back("odd_f32", raw_tensor({2}, DType::f32, odd_bits));

  TempDir dir;
  const std::string path = dir / "all.safetensors";
  save_safetensors(path, tensors);
  const SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_EQ(f.size(), tensors.size());
  for (const auto& [name, want] : tensors) {
    const Tensor got = f.tensor(name);
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(bytes_of(got), bytes_of(want)) << name;
    EXPECT_EQ(f.info(name).dtype, safetensors_dtype_name(want.dtype())) << name;
  }
  // The same bytes through the in-memory serialiser.
  EXPECT_EQ(read_all(path), serialize_safetensors(tensors));
}

TEST(Safetensors, names_keep_the_given_order_and_data_is_aligned) {
  const uint8_t b[] = {1, 0, 1};
  const uint16_t h[] = {1, 2, 3};
  const double d[] = {1.5, -2.5};
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"z_bool", raw_tensor({3}, DType::boolean, b)},
      {"a_bf16", raw_tensor({3}, DType::bf16, h)},
      {"m_f64", raw_tensor({2}, DType::f64, d)}};
  const SafetensorsFile f = SafetensorsFile::from_bytes(serialize_safetensors(tensors));
  EXPECT_EQ(f.names(), (std::vector<std::string>{"z_bool", "a_bf16", "m_f64"}));
  // Largest elements first in the buffer.
  EXPECT_EQ(f.info("m_f64").begin, 0u);
  EXPECT_EQ(f.info("a_bf16").begin, 16u);
  EXPECT_EQ(f.info("z_bool").begin, 22u);
  for (const auto& [name, t] : tensors) {
    const auto span = f.bytes(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(span.data()) % t.element_size(), 0u) << name;
  }
}

TEST(Safetensors, header_is_padded_with_spaces_to_a_multiple_of_8) {
  for (int len = 1; len <= 9; ++len) {
    const float v = 1.0f;
    const std::vector<uint8_t> file =
        serialize_safetensors({{std::string(len, 'x'), raw_tensor({1}, DType::f32, &v)}});
    const uint64_t n = header_length(file);
    EXPECT_EQ(n % 8, 0u) << "name length " << len;
    const std::string header(file.begin() + 8, file.begin() + 8 + n);
    const size_t close = header.find_last_of('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << header;
    EXPECT_LT(n - close - 1, 8u) << header;
    EXPECT_EQ(file.size(), 8 + n + 4);
  }
}

TEST(Safetensors, metadata_defaults_to_format_pt_and_round_trips) {
  const float v = 2.0f;
  const Tensor t = raw_tensor({1}, DType::f32, &v);
  const SafetensorsFile plain = SafetensorsFile::from_bytes(serialize_safetensors({{"t", t}}));
  EXPECT_EQ(plain.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));

  const SafetensorsFile custom = SafetensorsFile::from_bytes(
      serialize_safetensors({{"t", t}}, {{"step", "100"}, {"note", "caf\xc3\xa9 \"q\""}}));
  EXPECT_EQ(custom.metadata(),
            (std::map<std::string, std::string>{
                {"format", "pt"}, {"step", "100"}, {"note", "caf\xc3\xa9 \"q\""}}));

  const SafetensorsFile mlx =
      SafetensorsFile::from_bytes(serialize_safetensors({{"t", t}}, {{"format", "mlx"}}));
  EXPECT_EQ(mlx.metadata().at("format"), "mlx");
}

TEST(Safetensors, writes_non_contiguous_tensors_row_major) {
  const float v[] = {1, 2, 3, 4, 5, 6};
  const Tensor t = kernels::transpose(raw_tensor({2, 3}, DType::f32, v), 0, 1);  // [3, 2]
  const SafetensorsFile f = SafetensorsFile::from_bytes(serialize_safetensors({{"t", t}}));
  const Tensor got = f.tensor("t");
  EXPECT_EQ(got.shape(), (Shape{3, 2}));
  EXPECT_EQ(got.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Safetensors, writer_rejects_bad_names_and_tensors) {
  const float v = 1.0f;
  const Tensor t = raw_tensor({1}, DType::f32, &v);
  EXPECT_THROW_MSG(serialize_safetensors({{"a", t}, {"a", t}}), "duplicate tensor name 'a'");
  EXPECT_THROW_MSG(serialize_safetensors({{"__metadata__", t}}), "'__metadata__' is reserved");
  EXPECT_THROW_MSG(serialize_safetensors({{"", t}}), "empty name");
  EXPECT_THROW_MSG(serialize_safetensors({{"u", Tensor()}}), "tensor 'u' is undefined");
  EXPECT_THROW_MSG(serialize_safetensors({{"bad\xff", t}}), "cannot write the header");
}

// --- zero-copy and conversions ------------------------------------------------------------

TEST(Safetensors, zero_copy_views_the_mapping_and_copies_do_not) {
  const float v[] = {1, 2, 3, 4};
  TempDir dir;
  const std::string path = dir / "w.safetensors";
  save_safetensors(path, {{"w", raw_tensor({2, 2}, DType::f32, v)}});

  Tensor view, copy;
  {
    const SafetensorsFile f = SafetensorsFile::open(path);
    const uint8_t* mapped = f.bytes("w").data();
    view = f.tensor("w", std::nullopt, /*zero_copy=*/true);
    copy = f.tensor("w");
    EXPECT_EQ(view.data_ptr(), mapped);
    EXPECT_NE(copy.data_ptr(), mapped);
    // Asking for the stored dtype explicitly is still zero-copy.
    EXPECT_EQ(f.tensor("w", DType::f32, true).data_ptr(), mapped);
    // A conversion cannot be.
    EXPECT_NE(f.tensor("w", DType::f64, true).data_ptr(), mapped);
  }
  // The view keeps the mapping alive after the file object is gone.
  EXPECT_EQ(view.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  copy.data<float>()[0] = 9;  // a copy is writable
  EXPECT_EQ(copy.to_vector<float>(), (std::vector<float>{9, 2, 3, 4}));
}

TEST(Safetensors, misaligned_data_is_copied_even_for_zero_copy) {
  // "a" (2 bytes) pushes "b" (F32) to buffer offset 2: not 4-aligned.
  std::vector<uint8_t> file = make_file(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},)"
                                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                                        6);
  const float x = -3.5f;
  const uint64_t n = header_length(file);
  std::memcpy(file.data() + 8 + n + 2, &x, 4);
  const SafetensorsFile f = SafetensorsFile::from_bytes(file);
  ASSERT_NE(reinterpret_cast<uintptr_t>(f.bytes("b").data()) % 4, 0u);
  const Tensor b = f.tensor("b", std::nullopt, true);
  EXPECT_NE(b.data_ptr(), f.bytes("b").data());
  EXPECT_EQ(b.item<float>(), -3.5f);
  EXPECT_EQ(f.tensor("b", DType::f64).item<double>(), -3.5);
}

TEST(Safetensors, bf16_and_f16_on_disk_load_as_f32_exactly) {
  // bf16: 1, -2.5, inf, smallest subnormal, -0, 3.140625, largest finite
  const uint16_t bf[] = {0x3F80, 0xC020, 0x7F80, 0x0001, 0x8000, 0x4049, 0x7F7F};
  // f16: 1, 65504, 2^-24, -2, 0.333251953125
  const uint16_t h[] = {0x3C00, 0x7BFF, 0x0001, 0xC000, 0x3555};
  const SafetensorsFile f = SafetensorsFile::from_bytes(serialize_safetensors(
      {{"bf", raw_tensor({7}, DType::bf16, bf)}, {"h", raw_tensor({5}, DType::f16, h)}}));
  const Tensor a = f.tensor("bf", DType::f32);
  ASSERT_EQ(a.dtype(), DType::f32);
  const std::vector<float> av = a.to_vector<float>();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(f32_bits(av[i]), static_cast<uint32_t>(bf[i]) << 16) << i;
  const std::vector<float> hv = f.tensor("h", DType::f32).to_vector<float>();
  EXPECT_EQ(hv, (std::vector<float>{1.0f, 65504.0f, 0x1p-24f, -2.0f, 0.333251953125f}));
  // And down again: f32 on disk asked as bf16 rounds to nearest even.
  const float g[] = {1.0f + 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-9f};  // tie -> even (1.0), above -> up
  const SafetensorsFile f32 =
      SafetensorsFile::from_bytes(serialize_safetensors({{"g", raw_tensor({2}, DType::f32, g)}}));
  const Tensor down = f32.tensor("g", DType::bf16);
  EXPECT_EQ(down.dtype(), DType::bf16);
  EXPECT_EQ(down.to_vector<float>(), (std::vector<float>{1.0f, 1.0f + 0x1p-7f}));
}

TEST(Safetensors, bool_bytes_other_than_0_and_1_are_normalised_in_a_copy) {
  const std::vector<uint8_t> file =
      make_file(R"({"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})", 4);
  std::vector<uint8_t> edited = file;
  edited[8 + header_length(file) + 1] = 2;  // bytes 0, 2, 2, 3
  const SafetensorsFile f = SafetensorsFile::from_bytes(edited);
  const Tensor m = f.tensor("m", std::nullopt, true);
  EXPECT_NE(m.data_ptr(), f.bytes("m").data());
  const auto* p = static_cast<const uint8_t*>(m.data_ptr());
  EXPECT_EQ(std::vector<uint8_t>(p, p + 4), (std::vector<uint8_t>{0, 1, 1, 1}));
}

// --- the reference file written by Python's safetensors -------------------------------

TEST(Safetensors, reads_the_python_reference_file_exactly) {
  const SafetensorsFile f =
      SafetensorsFile::open(fixtures_dir() + "/safetensors_reference.safetensors");
  EXPECT_EQ(f.size(), 18u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("generator"), "scripts/make_safetensors_fixture.py");
  for (const auto& [name, want] : python_table()) {
    const Tensor got = f.tensor(name);
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(bytes_of(got), bytes_of(want)) << name;
  }
  EXPECT_EQ(f.tensor("bf16", DType::f32).to_vector<float>(),
            (std::vector<float>{1.0f, -2.5f, std::numeric_limits<float>::infinity(), 0x1p-133f}));
  // Types softprompt lacks widen exactly.
  EXPECT_EQ(f.tensor("u8").dtype(), DType::i32);
  EXPECT_EQ(f.tensor("u8").to_vector<int32_t>(), (std::vector<int32_t>{0, 127, 255}));
  EXPECT_EQ(f.tensor("i8").to_vector<int32_t>(), (std::vector<int32_t>{-128, -1, 127}));
  EXPECT_EQ(f.tensor("i16").to_vector<int32_t>(), (std::vector<int32_t>{-32768, 32767}));
  EXPECT_EQ(f.tensor("u16").to_vector<int32_t>(), (std::vector<int32_t>{0, 65535}));
  EXPECT_EQ(f.tensor("u32").dtype(), DType::i64);
  EXPECT_EQ(f.tensor("u32").to_vector<int64_t>(), (std::vector<int64_t>{0, 4294967295}));
  EXPECT_EQ(f.tensor("u64").to_vector<int64_t>(),
            (std::vector<int64_t>{0, std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(f.tensor("f8_e4m3").dtype(), DType::f32);
  EXPECT_EQ(f.tensor("f8_e4m3").to_vector<float>(),
            (std::vector<float>{1.0f, -2.0f, 448.0f, 0x1p-9f}));
  EXPECT_EQ(f.tensor("f8_e5m2").to_vector<float>(), (std::vector<float>{1.0f, 57344.0f, 0x1p-16f}));
  EXPECT_EQ(f.tensor("u8", DType::f32).to_vector<float>(), (std::vector<float>{0, 127, 255}));
  EXPECT_EQ(f.info("f8_e5m2").dtype, "F8_E5M2");
}

// Writes python_table() for scripts/make_safetensors_fixture.py --verify when
// SP_SAFETENSORS_EXPORT names a path; always checks the file with our reader.
TEST(Safetensors, export_for_python) {
  TempDir dir;
  const char* env = std::getenv("SP_SAFETENSORS_EXPORT");
  const std::string path = env && *env ? std::string(env) : dir / "export.safetensors";
  const auto table = python_table();
  save_safetensors(path, table);
  const SafetensorsFile f = SafetensorsFile::open(path);
  std::vector<std::string> names;
  for (const auto& [name, t] : table) {
    names.push_back(name);
    EXPECT_EQ(bytes_of(f.tensor(name)), bytes_of(t)) << name;
  }
  EXPECT_EQ(f.names(), names);
}

// --- atomic writes ---------------------------------------------------------------------

TEST(Safetensors, failed_write_leaves_the_existing_file_and_no_temp_file) {
  TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  const float small = 1.0f;
  save_safetensors(path, {{"old", raw_tensor({1}, DType::f32, &small)}});
  const std::vector<uint8_t> before = read_all(path);

  // A file-size limit makes write() fail part-way (EFBIG) instead of raising SIGXFSZ.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit low = old_limit;
  low.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);
  const Tensor big = Tensor::zeros({1 << 16}, DType::f32);  // 256 KiB
  EXPECT_THROW_MSG(save_safetensors(path, {{"new", big}}), "cannot write");
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ::signal(SIGXFSZ, SIG_DFL);

  EXPECT_EQ(read_all(path), before);
  for (const auto& e : fs::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  EXPECT_TRUE(SafetensorsFile::open(path).contains("old"));
}

TEST(Safetensors, write_replaces_and_reports_a_missing_directory) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  const float a = 1.0f, b = 2.0f;
  save_safetensors(path, {{"a", raw_tensor({1}, DType::f32, &a)}});
  const SafetensorsFile old = SafetensorsFile::open(path);  // mapped while replaced
  save_safetensors(path, {{"b", raw_tensor({1}, DType::f32, &b)}});
  EXPECT_EQ(old.tensor("a").item<float>(), 1.0f);
  EXPECT_EQ(SafetensorsFile::open(path).tensor("b").item<float>(), 2.0f);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
  EXPECT_THROW_MSG(
      save_safetensors(dir / "no/such/dir/x.safetensors", {{"a", raw_tensor({1}, DType::f32, &a)}}),
      "cannot create the temporary file");
}

// --- corrupt and unusual files ----------------------------------------------------------

const char* kGood = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

TEST(Safetensors, accepts_well_formed_edge_cases) {
  EXPECT_EQ(SafetensorsFile::from_bytes(make_file("{}", 0)).size(), 0u);
  // Zero-size tensors share an offset; unpadded headers and extra keys are fine.
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      make_file(R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                R"("s":{"dtype":"I64","shape":[],"data_offsets":[0,8],"extra":1},)"
                R"("z":{"dtype":"F16","shape":[0],"data_offsets":[8,8]}})",
                8, /*pad=*/false));
  EXPECT_EQ(f.tensor("e").shape(), (Shape{0, 5}));
  EXPECT_EQ(f.tensor("s").shape(), Shape{});
  EXPECT_EQ(f.tensor("s").item<int64_t>(), 0x0706050403020100);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"e", "s", "z"}));
}

// The reference reader (safetensors' Rust core, behind Python's safe_open) takes
// "__metadata__": null as no metadata.
TEST(Safetensors, null_metadata_reads_as_none) {
  const SafetensorsFile f = SafetensorsFile::from_bytes(make_file(
      R"({"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.names(), std::vector<std::string>{"a"});
  EXPECT_EQ(f.tensor("a").shape(), Shape{1});
}

TEST(Safetensors, rejects_truncated_files) {
  expect_corrupt({1, 2, 3, 4, 5}, "file is 5 bytes, too short for the 8-byte header length");
  expect_corrupt({}, "file is 0 bytes");
  expect_corrupt(with_length(100, 20),
                 "header length 100 reaches beyond the end of the file (20 bytes)");
  std::vector<uint8_t> cut = make_file(kGood, 16);
  cut.resize(cut.size() - 3);
  expect_corrupt(cut,
                 "tensor 'a' data_offsets [0, 16] reach beyond the end of the file: the data "
                 "buffer holds 13 bytes");
}

TEST(Safetensors, rejects_huge_header_lengths) {
  expect_corrupt(with_length(200'000'000, 64),
                 "header length 200000000 exceeds the limit of 100000000 bytes");
  expect_corrupt(with_length(~uint64_t{0}, 64), "exceeds the limit");
  expect_corrupt(with_length(100'000'000, 64), "reaches beyond the end of the file");
}

TEST(Safetensors, rejects_headers_that_are_not_a_json_object) {
  expect_corrupt(make_file("{not json", 0), "header is not valid JSON");
  expect_corrupt(make_file("", 0), "header is not valid JSON");
  expect_corrupt(make_file("{\"a\xff\":1}", 0), "header is not valid JSON");
  expect_corrupt(make_file(std::string(kGood) + "x", 16), "header is not valid JSON");
  // A NUL would end the JSON parser's input early and let what follows through.
  expect_corrupt(make_file(std::string("{}") + std::string(1, '\0') + "{\"b\":garbage", 0),
                 "header holds a NUL byte at offset 2: not valid JSON text");
  expect_corrupt(make_file("[1,2]", 0), "header must be a JSON object, got array [1,2]");
  expect_corrupt(make_file("\"text\"", 0), "header must be a JSON object, got string");
  expect_corrupt(make_file(std::string(200, '[') + std::string(200, ']'), 0),
                 "nests deeper than 16 levels");
  expect_corrupt(make_file(R"({"__metadata__":{"k":1}})", 0),
                 "__metadata__ value for 'k' must be a string, got number");
  expect_corrupt(make_file(R"({"__metadata__":[1]})", 0),
                 "__metadata__ must be an object of strings");
}

TEST(Safetensors, rejects_malformed_entries) {
  auto entry = [](const std::string& body) { return make_file("{\"a\":" + body + "}", 16); };
  expect_corrupt(entry("3"),
                 "tensor 'a' must be an object with dtype, shape and data_offsets, got number");
  expect_corrupt(entry(R"({"shape":[4],"data_offsets":[0,16]})"), "tensor 'a' has no dtype");
  expect_corrupt(entry(R"({"dtype":7,"shape":[4],"data_offsets":[0,16]})"),
                 "tensor 'a' dtype must be a string");
  expect_corrupt(entry(R"({"dtype":"F33","shape":[4],"data_offsets":[0,16]})"),
                 "tensor 'a' has unknown dtype 'F33' (known: BOOL, U8, I8");
  expect_corrupt(entry(R"({"dtype":"f32","shape":[4],"data_offsets":[0,16]})"),
                 "unknown dtype 'f32'");
  expect_corrupt(entry(R"({"dtype":"F32","data_offsets":[0,16]})"), "tensor 'a' has no shape");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]})"),
                 "tensor 'a' shape must be a list of non-negative integers, got [2,-2]");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4.0],"data_offsets":[0,16]})"),
                 "shape must be a list of non-negative integers, got [4.0]");
  expect_corrupt(entry(R"({"dtype":"F32","shape":["4"],"data_offsets":[0,16]})"),
                 "shape must be a list");
  expect_corrupt(entry(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})"),
                 "shape must be a list");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4]})"), "tensor 'a' has no data_offsets");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[0]})"),
                 "tensor 'a' data_offsets must be two non-negative integers [begin, end], got [0]");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[-1,16]})"),
                 "data_offsets must be two");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16.5]})"),
                 "data_offsets must be two");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551615]})"),
                 "data_offsets must be two");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[8,4]})"),
                 "tensor 'a' data_offsets [8, 4] end before they begin");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16],"dtype":"F32"})"),
                 "duplicate key 'dtype' in the header entry 'a'");
}

TEST(Safetensors, rejects_wrong_byte_counts_and_overflowing_shapes) {
  expect_corrupt(
      make_file(R"({"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12),
      "tensor 'a.weight' data_offsets [0, 12] hold 12 bytes, but F32 [2, 2] needs 16");
  expect_corrupt(
      make_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],)"
                R"("data_offsets":[0,16]}})",
                16),
      "has more elements than fit in 64 bits");
  expect_corrupt(
      make_file(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,16]}})", 16),
      "needs more bytes than fit in 64 bits");
  expect_corrupt(make_file(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2),
                 "F4 [3] is not a whole number of bytes (12 bits)");
  // Sub-byte types count bits: F4 [4] is 2 bytes.
  EXPECT_EQ(SafetensorsFile::from_bytes(
                make_file(R"({"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", 2))
                .info("a")
                .nbytes(),
            2u);
}

TEST(Safetensors, rejects_offsets_that_do_not_tile_the_buffer) {
  expect_corrupt(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                           24),
                 "tensor 'b' data_offsets [8, 24] overlap tensor 'a' [0, 16]");
  expect_corrupt(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                           16),
                 "tensor 'b' data_offsets [0, 16] overlap tensor 'a' [0, 16]");
  expect_corrupt(make_file(R"({"b":{"dtype":"F32","shape":[4],"data_offsets":[20,36]},)"
                           R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                           36),
                 "gap of 4 bytes between tensor 'a' [0, 16] and tensor 'b' [20, 36]");
  expect_corrupt(
      make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}})", 20),
      "tensor 'a' data_offsets [4, 20] start at 4: the first tensor must start at byte 0");
  expect_corrupt(make_file(kGood, 20),
                 "4 trailing bytes after the last tensor: tensors end at byte 16 of a data buffer "
                 "of 20 bytes");
  expect_corrupt(make_file("{}", 3), "3 trailing bytes after the last tensor");
  expect_corrupt(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                 "tensor 'a' data_offsets [0, 16] reach beyond the end of the file");
  expect_corrupt(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("a":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})",
                           32),
                 "duplicate tensor name 'a' in the header");
}

TEST(Safetensors, loading_errors_name_the_tensor) {
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      make_file(R"({"deep":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]},)"
                R"("e8":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[1,2]},)"
                R"("big":{"dtype":"U64","shape":[1],"data_offsets":[8,16]},)"
                R"("pad":{"dtype":"U8","shape":[6],"data_offsets":[2,8]}})",
                16),
      "x.safetensors");
  EXPECT_THROW_MSG(f.tensor("deep"), "[safetensors] x.safetensors: tensor 'deep' has 9 dims");
  EXPECT_THROW_MSG(f.tensor("e8"), "tensor 'e8' has dtype F8_E8M0, which softprompt cannot load");
  // Byte 15 of the buffer counts up to 15: the U64 is 0x0f0e0d0c0b0a0908 < 2^63, loads.
  EXPECT_EQ(f.tensor("big").item<int64_t>(), 0x0f0e0d0c0b0a0908);
  EXPECT_THROW_MSG(f.tensor("nope"),
                   "no tensor named 'nope' (the file holds 4 tensors: deep, e8, big, pad)");
  std::vector<uint8_t> high =
      make_file(R"({"u":{"dtype":"U64","shape":[1],"data_offsets":[0,8]}})", 8);
  high.back() = 0x80;
  EXPECT_THROW_MSG(SafetensorsFile::from_bytes(high).tensor("u"), "does not fit i64");
}

TEST(Safetensors, open_reports_missing_and_odd_files) {
  TempDir dir;
  EXPECT_THROW_MSG(SafetensorsFile::open(dir / "none.safetensors"),
                   "none.safetensors: cannot open: No such file");
  EXPECT_THROW_MSG(SafetensorsFile::open(dir.path.string()), "not a regular file");
  write_all(dir / "empty.safetensors", {});
  EXPECT_THROW_MSG(SafetensorsFile::open(dir / "empty.safetensors"), "file is 0 bytes");
  write_all(dir / "bad.safetensors", make_file(kGood, 12));
  EXPECT_THROW_MSG(
      SafetensorsFile::open(dir / "bad.safetensors"),
      "bad.safetensors: tensor 'a' data_offsets [0, 16] reach beyond the end of the file");
}

// Every truncation and every single-byte corruption of a valid file either opens or
// throws sp::Error: never a crash (run under ASan/UBSan to make this bite).
TEST(Safetensors, survives_every_truncation_and_byte_flip) {
  const std::vector<uint8_t> good = serialize_safetensors(python_table());
  int opened = 0;
  for (size_t n = 0; n < good.size(); ++n) {
    try {
      SafetensorsFile::from_bytes(std::vector<uint8_t>(good.begin(), good.begin() + n));
      ++opened;
    } catch (const Error&) {}
  }
  EXPECT_EQ(opened, 0);
  const size_t header_end = 8 + header_length(good);
  for (size_t i = 0; i < header_end; ++i) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<uint8_t> bad = good;
      bad[i] ^= x;
      try {
        const SafetensorsFile f = SafetensorsFile::from_bytes(bad);
        for (const std::string& name : f.names()) f.tensor(name);
      } catch (const Error&) {}
    }
  }
}

}  // namespace
}  // namespace sp
