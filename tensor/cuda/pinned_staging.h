#pragma once
// A pool of pinned (page-locked) host buffers for copies between pageable host memory and
// a device. A host -> device copy memcpys into a block and queues an async DMA from it on
// the device's stream; the block is reused only after an event recorded behind that DMA
// has completed, so the caller returns (and may overwrite its own buffer) while the GPU
// still reads the block. Blocks are at most kChunkBytes (bigger copies go chunk by chunk,
// which also overlaps the host memcpy with the DMA) and the pool holds at most
// kMaxPoolBytes: past that, acquire waits for the oldest block still in flight, or, when
// other threads hold every block, for one of them to release it. A caller that already
// holds a block must not wait for others' (every thread could be holding one and waiting):
// it asks with try_acquire, which says "none" then, and releases its own before acquire.
#include <cuda_runtime.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace sp::cuda {

class PinnedStaging {
 public:
  static constexpr size_t kChunkBytes = size_t{8} << 20;
  static constexpr size_t kMaxPoolBytes = size_t{64} << 20;
  static constexpr size_t kMinBlockBytes = size_t{64} << 10;

  struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;
    cudaEvent_t event = nullptr;  // recorded behind the last copy that used the block
    int event_device = -1;        // the device event was created on
    bool held = false;            // between acquire and release
    bool recorded = false;        // event marks work that may not have finished
    uint64_t last_use = 0;        // release order, to wait for the oldest first
  };

  // The process-wide pool (never destroyed: pinned memory outlives static tensors).
  static PinnedStaging& instance();

  // A block of at least nbytes (<= kChunkBytes) that no queued copy still uses.
  Block* acquire(size_t nbytes);
  // As acquire, but null where acquire would wait for another thread to release a block
  // (waiting for a copy in flight to finish is fine: it finishes whatever threads do).
  Block* try_acquire(size_t nbytes);
  // Records block's event on stream (of device): the work queued there so far uses it.
  void record(Block* block, cudaStream_t stream, int device);
  // Waits for the work recorded by the last record().
  void wait(Block* block);
  // Returns block to the pool; it is handed out again once its recorded work is done.
  void release(Block* block);

  // Bytes of pinned memory the pool holds (for tests).
  size_t pool_bytes() const;

 private:
  PinnedStaging() = default;
  Block* acquire(size_t nbytes, bool wait_for_holders);
  // Whether block's recorded work has finished (then clears recorded).
  bool idle(Block* block);

  mutable std::mutex mu_;
  std::condition_variable released_;  // signalled by release()
  std::vector<std::unique_ptr<Block>> blocks_;
  size_t pool_bytes_ = 0;
  uint64_t uses_ = 0;
};

// RAII: a block acquired from the pool, released when it goes out of scope.
class StagingBlock {
 public:
  explicit StagingBlock(size_t nbytes)
      : block_(PinnedStaging::instance().acquire(nbytes)) {}
  // A block when one is to be had without waiting for other threads' (see try_acquire).
  static std::optional<StagingBlock> try_acquire(size_t nbytes) {
    PinnedStaging::Block* b = PinnedStaging::instance().try_acquire(nbytes);
    if (b == nullptr) return std::nullopt;
    return StagingBlock(b);
  }
  ~StagingBlock() {
    if (block_ != nullptr) PinnedStaging::instance().release(block_);
  }
  StagingBlock(StagingBlock&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  StagingBlock(const StagingBlock&) = delete;
  StagingBlock& operator=(const StagingBlock&) = delete;
  StagingBlock& operator=(StagingBlock&&) = delete;

  void* data() const { return block_->ptr; }
  void record(cudaStream_t stream, int device) {
    PinnedStaging::instance().record(block_, stream, device);
  }
  void wait() { PinnedStaging::instance().wait(block_); }

 private:
  explicit StagingBlock(PinnedStaging::Block* block) : block_(block) {}
  PinnedStaging::Block* block_;
};

}  // namespace sp::cuda
