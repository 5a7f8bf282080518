#pragma once
// The on-disk layout of a trainer's checkpoints, shared by the trainer and tools that read
// its runs:
//
//   <out_dir>/checkpoints/step-<s>/      a complete checkpoint (renamed into place whole)
//   <out_dir>/checkpoints/latest         "step-<s>\n", replaced atomically after the rename
//   <out_dir>/checkpoints/.tmp-*         a checkpoint being written (or left by a crash)
//
// A directory is renamed to step-<s> only after every file in it is written and flushed,
// so any step-<s> directory is complete; `latest` names the one to resume from.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sp::checkpoint_dir {

// "step-<s>".
std::string name(int64_t step);
// The step of a "step-<s>" name, or nullopt for any other name.
std::optional<int64_t> parse_name(const std::string& name);
// The steps of the step-<s> directories under dir, ascending (empty when dir is missing).
std::vector<int64_t> list_steps(const std::string& dir);
// The step `latest` names when it names an existing directory; else the newest step-<s>
// directory holding state.json (a crash between the rename and the pointer update); else
// nullopt.
std::optional<int64_t> resume_step(const std::string& dir);
// Replaces dir/latest atomically with "step-<s>\n".
void write_latest(const std::string& dir, int64_t step);
// Removes every entry of dir whose name starts with ".tmp-" (left by a crash).
void remove_temporaries(const std::string& dir);

// Flushes a file or directory to disk (fsync); best effort for directories.
void sync_path(const std::string& path);
// Makes the fully written directory tmp appear as final: flushes tmp, swaps it with an
// existing final in one step (renameat2 RENAME_EXCHANGE, so final is complete at every
// moment; where the file system lacks the exchange, the old one is moved aside first),
// removes the old directory and flushes the parent. tag starts messages.
void commit_directory(const std::string& tmp, const std::string& final_path, const char* tag);
// A fresh, empty temporary directory "<parent>/.tmp-<what>-<pid>".
std::string make_temporary(const std::string& parent, const std::string& what, const char* tag);

}  // namespace sp::checkpoint_dir
