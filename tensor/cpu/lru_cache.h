#pragma once
// LruCache: a bounded map that evicts the least recently used entry.
//
// Holds things that are expensive to build and cheap to keep (oneDNN primitives, plans).
// A hit costs one hash, one key compare and a list splice: no allocation.
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <utility>

namespace sp::cpu {

struct LruCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t evictions = 0;
  int64_t size = 0;
  int64_t capacity = 0;
};

template <typename Key, typename Value, typename Hash>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The value for key, now the most recent; null (a miss) when absent.
  Value* find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    items_.splice(items_.begin(), items_, it->second);
    return &it->second->second;
  }

  // Inserts (or replaces) key's value as the most recent, evicting the oldest when full.
  // The returned reference stays valid until the entry is evicted or the cache cleared.
  Value& insert(const Key& key, Value value) {
    if (auto it = index_.find(key); it != index_.end()) {
      it->second->second = std::move(value);
      items_.splice(items_.begin(), items_, it->second);
      return it->second->second;
    }
    while (items_.size() >= capacity_) evict_oldest();
    items_.emplace_front(key, std::move(value));
    index_.emplace(key, items_.begin());
    return items_.front().second;
  }

  void clear() {
    index_.clear();
    items_.clear();
  }
  void set_capacity(size_t capacity) {
    capacity_ = capacity < 1 ? 1 : capacity;
    while (items_.size() > capacity_) evict_oldest();
  }
  size_t size() const { return items_.size(); }
  size_t capacity() const { return capacity_; }
  LruCacheStats stats() const {
    LruCacheStats s = stats_;
    s.size = static_cast<int64_t>(items_.size());
    s.capacity = static_cast<int64_t>(capacity_);
    return s;
  }
  void reset_stats() { stats_ = {}; }

 private:
  void evict_oldest() {
    index_.erase(items_.back().first);
    items_.pop_back();
    ++stats_.evictions;
  }

  using Item = std::pair<Key, Value>;
  size_t capacity_;
  std::list<Item> items_;  // most recent first
  std::unordered_map<Key, typename std::list<Item>::iterator, Hash> index_;
  LruCacheStats stats_;
};

}  // namespace sp::cpu
