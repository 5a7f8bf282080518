#include "models/t5/relative_position.h"

#include <algorithm>
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
                                 int64_t num_buckets, int64_t max_distance, int64_t q_offset,
                                 Device device) {
  using Key = std::tuple<int64_t, int64_t, bool, int64_t, int64_t, int64_t, int, int>;
  static std::mutex mu;
  // Never destroyed: device tables must not be freed after the device allocator is gone
  // at exit.
  static auto& cache = *new std::map<Key, Tensor>();
  const Key key{q_len,
                k_len,
                bidirectional,
                num_buckets,
                max_distance,
                q_offset,
                static_cast<int>(device.type),
                device.index};
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
  if (!device.is_cpu()) t = t.to(device);
  std::lock_guard<std::mutex> lock(mu);
  // Incremental decoding makes a new key per step; bound the table count.
  if (cache.size() >= 512) cache.clear();
  cache.emplace(key, t);
  return t;
}

Tensor relative_position_buckets(const Tensor& q_pos, const Tensor& k_pos, bool bidirectional,
                                 int64_t num_buckets, int64_t max_distance) {
  SP_CHECK(q_pos.dim() == 2 && k_pos.dim() == 2 && q_pos.size(0) == k_pos.size(0),
           "[T5] positions must be [batch, length] with one batch size, got queries ",
           describe(q_pos), " and keys ", describe(k_pos));
  const int64_t B = q_pos.size(0), Tq = q_pos.size(1), Tk = k_pos.size(1);
  const std::vector<int64_t> qp = q_pos.to_vector<int64_t>(), kp = k_pos.to_vector<int64_t>();
  // The bucket of every distance that occurs, looked up per pair: the float32 log runs
  // once per distance instead of once per (query, key).
  int64_t lo = 0, hi = 0;
  if (!qp.empty() && !kp.empty()) {
    const auto [qmin, qmax] = std::minmax_element(qp.begin(), qp.end());
    const auto [kmin, kmax] = std::minmax_element(kp.begin(), kp.end());
    lo = *kmin - *qmax;
    hi = *kmax - *qmin;
  }
  SP_CHECK(hi - lo < (int64_t{1} << 24), "[T5] positions span ", lo, " .. ", hi,
           ": expected positions within a sequence");
  std::vector<int64_t> table(static_cast<size_t>(hi - lo + 1));
  for (int64_t r = lo; r <= hi; ++r)
    table[r - lo] = relative_position_bucket(r, bidirectional, num_buckets, max_distance);
  // i32: [B, Tq, Tk] is the largest index tensor a packed batch makes.
  std::vector<int32_t> b(static_cast<size_t>(B * Tq * Tk));
  for (int64_t n = 0; n < B; ++n)
    for (int64_t i = 0; i < Tq; ++i) {
      const int64_t q = qp[n * Tq + i];
      int32_t* row = b.data() + (n * Tq + i) * Tk;
      for (int64_t j = 0; j < Tk; ++j)
        row[j] = static_cast<int32_t>(table[kp[n * Tk + j] - q - lo]);
    }
  return Tensor::from_vector(b, Shape{B, Tq, Tk});
}

}  // namespace sp
