// AtomicFile: readers see the old file or the whole new one; temporaries never pile up.
#include "models/io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {
namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void touch(const fs::path& p) { std::ofstream(p) << "partial"; }

// The id of a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(AtomicFile, failed_write_keeps_the_old_file_and_leaves_no_temporary) {
  TempDir dir;
  const fs::path path = dir.path / "a.json";
  write_file_atomic(path.string(), "old", "[test]");
  {
    AtomicFile f(path.string(), "[test]");
    f.write("new, but never committed");
  }
  EXPECT_EQ(read_all(path), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
}

TEST(AtomicFile, commit_removes_temporaries_of_dead_writers_of_the_same_file) {
  TempDir dir;
  const fs::path path = dir.path / "a.json";
  const std::string dead = std::to_string(dead_pid());
  const std::string alive = std::to_string(::getppid());
  touch(dir.path / ("a.json.tmp." + dead));         // a writer killed mid-write
  touch(dir.path / ("a.json.tmp." + dead + ".7"));  // ... with its serial
  touch(dir.path / ("a.json.tmp." + alive));        // a writer still running
  touch(dir.path / ("b.json.tmp." + dead));   // another file's
  touch(dir.path / "a.json.tmp.notapid");     // not ours
  touch(dir.path / ("a.json.tmp." + dead + "x"));
  write_file_atomic(path.string(), "new", "[test]");
  EXPECT_EQ(read_all(path), "new");
  EXPECT_FALSE(fs::exists(dir.path / ("a.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(dir.path / ("a.json.tmp." + dead + ".7")));
  EXPECT_TRUE(fs::exists(dir.path / ("a.json.tmp." + alive)));
  EXPECT_TRUE(fs::exists(dir.path / ("b.json.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir.path / "a.json.tmp.notapid"));
  EXPECT_TRUE(fs::exists(dir.path / ("a.json.tmp." + dead + "x")));
}

// Two writers of one path in one process (a checkpoint thread and a final save, say) each
// get their own temporary file: the one committed last wins whole.
TEST(AtomicFile, two_writers_of_one_path_do_not_mix) {
  TempDir dir;
  const fs::path path = dir.path / "a.json";
  AtomicFile first(path.string(), "[test]");
  AtomicFile second(path.string(), "[test]");
  first.write("first writer");
  second.write("2nd");
  first.commit();
  EXPECT_EQ(read_all(path), "first writer");
  second.commit();
  EXPECT_EQ(read_all(path), "2nd");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
}

TEST(AtomicFile, missing_directory_is_a_clear_error) {
  TempDir dir;
  EXPECT_THROW_MSG(
      write_file_atomic((dir.path / "no" / "a.json").string(), "x", "[test]"),
      "[test] " + (dir.path / "no" / "a.json").string() + ": cannot create the temporary file");
}

}  // namespace
}  // namespace sp
