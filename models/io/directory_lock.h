#pragma once
// An exclusive lock on DIR/.lock (flock) for the life of the object, so that two processes
// never write one output directory at once: interleaved checkpoints, a temporary directory
// removed under a live writer, doubled metrics lines. The kernel drops the lock when the
// holder exits, however it exits.
#include <string>

namespace sp {

class DirectoryLock {
 public:
  // tag starts the message, e.g. "[trainer]"; holder names what else would hold the lock in
  // it ("another `softprompt run`"). Throws when DIR/.lock cannot be created or is held.
  DirectoryLock(const std::string& dir, const std::string& tag, const std::string& holder);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace sp
