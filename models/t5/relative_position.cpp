#include "models/t5/relative_position.h"

#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace sp {

int64_t relative_position_bucket(int64_t rel, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    num_buckets /= 2;
    bucket += rel > 0 ? num_buckets : 0;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  const int64_t max_exact = num_buckets / 2;
  if (rel < max_exact) return bucket + rel;
  // float32 throughout, as torch: log(rel.float() / max_exact) / log(md / max_exact) * (nb -
  // max_exact), where the Python-float divisor log(md / max_exact) enters as a float32 scalar.
  const float scaled = static_cast<float>(rel) / static_cast<float>(max_exact);
  const float denom = static_cast<float>(
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float v = std::log(scaled) / denom * static_cast<float>(num_buckets - max_exact);
  int64_t large = max_exact + static_cast<int64_t>(v);
  if (large > num_buckets - 1) large = num_buckets - 1;
  return bucket + large;
}

Tensor relative_position_buckets(int64_t q_len, int64_t k_len, bool bidirectional,
                                 int64_t num_buckets, int64_t max_distance, int64_t q_offset) {
  using Key = std::tuple<int64_t, int64_t, bool, int64_t, int64_t, int64_t>;
  static std::mutex mu;
  static std::map<Key, Tensor> cache;
  const Key key{q_len, k_len, bidirectional, num_buckets, max_distance, q_offset};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::vector<int64_t> b(static_cast<size_t>(q_len * k_len));
  for (int64_t i = 0; i < q_len; ++i)
    for (int64_t j = 0; j < k_len; ++j)
      b[i * k_len + j] =
          relative_position_bucket(j - (i + q_offset), bidirectional, num_buckets, max_distance);
  Tensor t = Tensor::from_vector(b, Shape{q_len, k_len});
  std::lock_guard<std::mutex> lock(mu);
  // Incremental decoding makes a new key per step; bound the table count.
  if (cache.size() >= 512) cache.clear();
  cache.emplace(key, t);
  return t;
}

}  // namespace sp
