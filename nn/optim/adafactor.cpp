#include "nn/optim/adafactor.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "nn/optim/optim_kernels.h"
#include "tensor/cpu/parallel.h"

namespace sp::optim {

using detail::load;
using detail::store;
using detail::update_t;

namespace {

Shape without_axis(const Shape& shape, int axis) {
  Shape s = shape;
  s.erase(axis);
  return s;
}

// A factored parameter seen as [P0, Di, P1, Dj, P2] with i < j the two factored axes: the
// moment along axis i (mean over x) is indexed (p0, p1, y, p2), the one along axis j (mean
// over y) is indexed (p0, x, p1, p2): both are the shape without that axis, row-major.
struct Geometry {
  int64_t p0 = 1, di = 1, p1 = 1, dj = 1, p2 = 1;
  bool a0_is_i = true;                                      // the largest axis is the earlier one
  int64_t row_len() const { return p1 * dj * p2; }          // elements per (p0, x)
  int64_t moment_i_size() const { return p0 * row_len(); }  // mean over axis i
  int64_t moment_j_size() const { return p0 * di * p1 * p2; }  // mean over axis j
};

Geometry geometry(const Shape& shape, int a0, int a1) {
  Geometry g;
  const int i = std::min(a0, a1), j = std::max(a0, a1);
  for (int d = 0; d < shape.size(); ++d) {
    if (d < i)
      g.p0 *= shape[d];
    else if (d > i && d < j)
      g.p1 *= shape[d];
    else if (d > j)
      g.p2 *= shape[d];
  }
  g.di = shape[i];
  g.dj = shape[j];
  g.a0_is_i = a0 == i;
  return g;
}

template <typename P>
struct AdafactorStep {
  using C = update_t<P>;

  const AdafactorOptions& o;
  P* x;
  const P* g;
  int64_t n;
  double decay, rho;  // rho = 1 - decay
  std::vector<double>& scratch;

  // Factored: moments, factors, then the update. state: v_row, v_col[, m].
  void factored(const Geometry& geo, C* v_row, C* v_col, C* m, double lr) {
    const int64_t row_len = geo.row_len();
    // Blocks of rows per work item: enough work per item, and few column partials.
    const int64_t rows_per_item =
        std::min(geo.di, std::max<int64_t>(64, detail::kChunk / std::max<int64_t>(row_len, 1)));
    const int64_t blocks = (geo.di + rows_per_item - 1) / rows_per_item;
    const int64_t items = geo.p0 * blocks;
    const int64_t size_i = geo.moment_i_size(), size_j = geo.moment_j_size();
    scratch.resize(static_cast<size_t>(items * row_len + size_i + size_j + 2 * items));
    double* partial_i = scratch.data();           // [items, row_len]
    double* sum_i = partial_i + items * row_len;  // [size_i]
    double* sum_j = sum_i + size_i;               // [size_j]
    double* item_x2 = sum_j + size_j;             // [items] sum of x^2
    double* item_u2 = item_x2 + items;            // [items] sum of U^2
    const C eps1 = static_cast<C>(o.epsilon1);
    const bool scaled = o.multiply_by_parameter_scale;

    // Pass 1: sums of G along both axes, and of x^2.
    sp::cpu::parallel_for(items, rows_per_item * row_len * 3, [&](int64_t it0, int64_t it1) {
      for (int64_t it = it0; it < it1; ++it) {
        const int64_t q0 = it / blocks, b = it % blocks;
        double* part = partial_i + it * row_len;
        std::fill(part, part + row_len, 0.0);
        double x2 = 0;
        for (int64_t r = b * rows_per_item; r < std::min(geo.di, (b + 1) * rows_per_item); ++r) {
          const int64_t row = q0 * geo.di + r;
          const P* gr = g + row * row_len;
          double* sj = sum_j + row * geo.p1 * geo.p2;
          for (int64_t q1 = 0; q1 < geo.p1; ++q1) {
            const P* gq = gr + q1 * geo.dj * geo.p2;
            double* pq = part + q1 * geo.dj * geo.p2;
            if (geo.p2 == 1) {
              double acc = 0;
#pragma omp simd reduction(+ : acc)
              for (int64_t y = 0; y < geo.dj; ++y) {
                const C gv = load<C>(gq[y]);
                const double G = static_cast<double>(gv * gv + eps1);
                acc += G;
                pq[y] += G;
              }
              sj[q1] = acc;
            } else {
              double* sq = sj + q1 * geo.p2;
              std::fill(sq, sq + geo.p2, 0.0);
              for (int64_t y = 0; y < geo.dj; ++y)
                for (int64_t q2 = 0; q2 < geo.p2; ++q2) {
                  const C gv = load<C>(gq[y * geo.p2 + q2]);
                  const double G = static_cast<double>(gv * gv + eps1);
                  sq[q2] += G;
                  pq[y * geo.p2 + q2] += G;
                }
            }
          }
          if (scaled) {
            const P* xr = x + row * row_len;
#pragma omp simd reduction(+ : x2)
            for (int64_t k = 0; k < row_len; ++k) {
              const C v = load<C>(xr[k]);
              x2 += static_cast<double>(v * v);
            }
          }
        }
        item_x2[it] = x2;
      }
    });
    sp::cpu::parallel_for(size_i, blocks, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t q0 = k / row_len, l = k % row_len;
        double s = 0;
        for (int64_t b = 0; b < blocks; ++b) s += partial_i[(q0 * blocks + b) * row_len + l];
        sum_i[k] = s;
      }
    });

    // Moments and factors. factor_i is broadcast along axis i, factor_j along axis j.
    std::vector<C> factor_i(static_cast<size_t>(size_i)), factor_j(static_cast<size_t>(size_j));
    const C cd = static_cast<C>(decay), cr = static_cast<C>(rho);
    // v_row averages over a0 and keeps a1; v_col averages over a1.
    const double* mean_row = geo.a0_is_i ? sum_i : sum_j;
    const double* mean_col = geo.a0_is_i ? sum_j : sum_i;
    const double len_row = static_cast<double>(geo.a0_is_i ? geo.di : geo.dj);
    const double len_col = static_cast<double>(geo.a0_is_i ? geo.dj : geo.di);
    const int64_t n_row = geo.a0_is_i ? size_i : size_j, n_col = geo.a0_is_i ? size_j : size_i;
    for (int64_t k = 0; k < n_row; ++k)
      v_row[k] = cd * v_row[k] + cr * static_cast<C>(mean_row[k] / len_row);
    for (int64_t k = 0; k < n_col; ++k)
      v_col[k] = cd * v_col[k] + cr * static_cast<C>(mean_col[k] / len_col);
    C* row_factor = geo.a0_is_i ? factor_i.data() : factor_j.data();
    C* col_factor = geo.a0_is_i ? factor_j.data() : factor_i.data();
    // mean(v_row, a1) per batch index (p0, p1, p2); a1 is y in (p0, p1, y, p2) when a0 is
    // axis i, else x in (p0, x, p1, p2).
    const int64_t a1_len = geo.a0_is_i ? geo.dj : geo.di;
    for (int64_t q0 = 0; q0 < geo.p0; ++q0)
      for (int64_t q1 = 0; q1 < geo.p1; ++q1)
        for (int64_t q2 = 0; q2 < geo.p2; ++q2) {
          auto at = [&](int64_t a) {
            return geo.a0_is_i ? ((q0 * geo.p1 + q1) * geo.dj + a) * geo.p2 + q2
                               : ((q0 * geo.di + a) * geo.p1 + q1) * geo.p2 + q2;
          };
          double s = 0;
          for (int64_t a = 0; a < a1_len; ++a) s += static_cast<double>(v_row[at(a)]);
          const C mean = static_cast<C>(s / static_cast<double>(a1_len));
          for (int64_t a = 0; a < a1_len; ++a)
            row_factor[at(a)] = C(1) / std::sqrt(v_row[at(a)] / mean);
        }
    for (int64_t k = 0; k < n_col; ++k) col_factor[k] = C(1) / std::sqrt(v_col[k]);

    // Calls run(broadcast_fj, offset, count, fi, fj) for contiguous runs of elements: with
    // p2 == 1 a run is one (row, p1) line of dj elements sharing the scalar fj[0]; otherwise
    // a run is the p2 elements of one (row, p1, y), with fi and fj both contiguous along it.
    auto for_runs = [&](int64_t it, auto&& run) {
      const int64_t q0 = it / blocks, b = it % blocks;
      const C* fi0 = factor_i.data() + q0 * row_len;
      for (int64_t r = b * rows_per_item; r < std::min(geo.di, (b + 1) * rows_per_item); ++r) {
        const int64_t row = q0 * geo.di + r;
        const C* fj = factor_j.data() + row * geo.p1 * geo.p2;
        for (int64_t q1 = 0; q1 < geo.p1; ++q1) {
          const int64_t line = q1 * geo.dj * geo.p2;
          if (geo.p2 == 1) {
            run(std::true_type{}, row * row_len + line, geo.dj, fi0 + line, fj + q1);
          } else {
            for (int64_t y = 0; y < geo.dj; ++y)
              run(std::false_type{}, row * row_len + line + y * geo.p2, geo.p2,
                  fi0 + line + y * geo.p2, fj + q1 * geo.p2);
          }
        }
      }
    };

    // Pass 2: RMS(U), which needs the factors of every row.
    double clip = 1.0;
    if (o.clipping_threshold) {
      sp::cpu::parallel_for(items, rows_per_item * row_len * 2, [&](int64_t it0, int64_t it1) {
        for (int64_t it = it0; it < it1; ++it) {
          double u2 = 0;
          for_runs(it, [&](auto broadcast, int64_t off, int64_t count, const C* fi, const C* fj) {
            u2 += sum_u2<decltype(broadcast)::value>(g + off, count, fi, fj);
          });
          item_u2[it] = u2;
        }
      });
      double u2 = 0;
      for (int64_t it = 0; it < items; ++it) u2 += item_u2[it];
      clip = std::max(1.0, std::sqrt(u2 / static_cast<double>(n)) / *o.clipping_threshold);
    }
    double x2 = 0;
    if (scaled)
      for (int64_t it = 0; it < items; ++it) x2 += item_x2[it];
    const C k = step_scale(lr, x2, clip);

    // Pass 3: the update.
    sp::cpu::parallel_for(items, rows_per_item * row_len * 3, [&](int64_t it0, int64_t it1) {
      for (int64_t it = it0; it < it1; ++it)
        for_runs(it, [&](auto broadcast, int64_t off, int64_t count, const C* fi, const C* fj) {
          if constexpr (decltype(broadcast)::value)
            apply(off, count, k, m, BroadcastFactor{fi, fj[0]});
          else
            apply(off, count, k, m, PairFactor{fi, fj});
        });
    });
  }

  // g, fi[, fj]: [count] -> sum of (g fi fj)^2, fj[0] broadcast when kBroadcast.
  template <bool kBroadcast>
  static double sum_u2(const P* gp, int64_t count, const C* fi, const C* fj) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t y = 0; y < count; ++y) {
      const C u = load<C>(gp[y]) * fi[y] * fj[kBroadcast ? 0 : y];
      acc += static_cast<double>(u * u);
    }
    return acc;
  }

  // Unfactored: v = decay v + (1 - decay) G, U = g / sqrt(v). state: v[, m].
  void unfactored(C* v, C* m, double lr) {
    const C eps1 = static_cast<C>(o.epsilon1);
    const C cd = static_cast<C>(decay), cr = static_cast<C>(rho);
    const bool scaled = o.multiply_by_parameter_scale;
    const int64_t chunks = (n + detail::kChunk - 1) / detail::kChunk;
    scratch.assign(static_cast<size_t>(2 * chunks), 0.0);
    double* chunk_u2 = scratch.data();
    double* chunk_x2 = chunk_u2 + chunks;
    // Pass 1: the moments, RMS(U) and RMS(x).
    sp::cpu::parallel_for(chunks, detail::kChunk * 3, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t b = c * detail::kChunk, e = std::min(n, b + detail::kChunk);
        chunk_u2[c] = moments_unfactored(b, e, v, cd, cr, eps1);
        chunk_x2[c] = scaled ? sum_x2(b, e) : 0.0;
      }
    });
    double u2 = 0, x2 = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      u2 += chunk_u2[c];
      x2 += chunk_x2[c];
    }
    double clip = 1.0;
    if (o.clipping_threshold)
      clip = std::max(1.0, std::sqrt(u2 / static_cast<double>(n)) / *o.clipping_threshold);
    const C k = step_scale(lr, x2, clip);
    // Pass 2: the update.
    detail::chunked_for(n, 3,
                        [&](int64_t b, int64_t e) { apply(b, e - b, k, m, RsqrtFactor{v + b}); });
  }

  // g, v: [b, e) -> v updated, sum of U^2.
  double moments_unfactored(int64_t b, int64_t e, C* v, C cd, C cr, C eps1) {
    double u2 = 0;
#pragma omp simd reduction(+ : u2)
    for (int64_t i = b; i < e; ++i) {
      const C gv = load<C>(g[i]);
      const C vv = cd * v[i] + cr * (gv * gv + eps1);
      v[i] = vv;
      // U^2 = g^2 / v: no sqrt, so the loop vectorizes without -fno-math-errno.
      u2 += static_cast<double>(gv * gv / vv);
    }
    return u2;
  }

  // x: [b, e) -> sum of x^2
  double sum_x2(int64_t b, int64_t e) const {
    double x2 = 0;
#pragma omp simd reduction(+ : x2)
    for (int64_t i = b; i < e; ++i) {
      const C xv = load<C>(x[i]);
      x2 += static_cast<double>(xv * xv);
    }
    return x2;
  }

  // The factor on g per element of a run.
  struct BroadcastFactor {
    const C* fi;
    C fj;
    C operator()(int64_t y) const { return fi[y] * fj; }
  };
  struct PairFactor {
    const C* fi;
    const C* fj;
    C operator()(int64_t y) const { return fi[y] * fj[y]; }
  };
  struct RsqrtFactor {
    const C* v;
    C operator()(int64_t y) const { return C(1) / std::sqrt(v[y]); }
  };

  // lr * max(RMS(x), eps2) / clip: the factor on U.
  C step_scale(double lr, double x2, double clip) const {
    double scale = lr;
    if (o.multiply_by_parameter_scale)
      scale *= std::max(std::sqrt(x2 / static_cast<double>(n)), o.epsilon2);
    return static_cast<C>(scale / clip);
  }

  // x[off + y] for y < count: U = g * factor(y), S = k U (momentum), x = (1 - wd) x - S.
  template <typename Factor>
  void apply(int64_t off, int64_t count, C k, C* m, Factor factor) {
    P* xp = x + off;
    const P* gp = g + off;
    const C keep = static_cast<C>(1.0 - o.weight_decay_rate.value_or(0.0));
    if (m) {
      C* mp = m + off;
      const C b1 = static_cast<C>(*o.beta1), b1c = static_cast<C>(1.0 - *o.beta1);
#pragma omp simd
      for (int64_t y = 0; y < count; ++y) {
        const C s = b1 * mp[y] + b1c * (k * (load<C>(gp[y]) * factor(y)));
        mp[y] = s;
        xp[y] = store<P>(keep * load<C>(xp[y]) - s);
      }
    } else {
#pragma omp simd
      for (int64_t y = 0; y < count; ++y) {
        const C s = k * (load<C>(gp[y]) * factor(y));
        xp[y] = store<P>(keep * load<C>(xp[y]) - s);
      }
    }
  }
};

}  // namespace

Adafactor::Adafactor(std::vector<Tensor> params, std::vector<std::string> names,
                     AdafactorOptions options)
    : Optimizer("adafactor", std::move(params), std::move(names)), options_(std::move(options)) {
  const AdafactorOptions& o = options_;
  SP_CHECK(o.decay_rate > 0 && o.decay_rate <= 1, "[adafactor] decay_rate must be in (0, 1], got ",
           o.decay_rate);
  SP_CHECK(!o.beta1 || (*o.beta1 >= 0 && *o.beta1 < 1), "[adafactor] beta1 must be in [0, 1), got ",
           o.beta1.value_or(0));
  SP_CHECK(o.step_offset >= 0, "[adafactor] step_offset must be >= 0, got ", o.step_offset);
  SP_CHECK(!o.clipping_threshold || *o.clipping_threshold > 0,
           "[adafactor] clipping_threshold must be > 0, got ", o.clipping_threshold.value_or(0));
  SP_CHECK(!o.weight_decay_rate || (*o.weight_decay_rate >= 0 && *o.weight_decay_rate < 1),
           "[adafactor] weight_decay_rate must be in [0, 1), got ",
           o.weight_decay_rate.value_or(0));
  SP_CHECK(o.min_dim_size_to_factor >= 1, "[adafactor] min_dim_size_to_factor must be >= 1, got ",
           o.min_dim_size_to_factor);
  SP_CHECK(o.epsilon1 > 0, "[adafactor] epsilon1 must be > 0, got ", o.epsilon1);
  SP_CHECK(o.epsilon2 >= 0, "[adafactor] epsilon2 must be >= 0, got ", o.epsilon2);
}

std::optional<std::pair<int, int>> Adafactor::factored_axes(const Shape& shape,
                                                            const AdafactorOptions& options) {
  if (!options.factored || shape.size() < 2) return std::nullopt;
  // A stable argsort: equal sizes keep axis order, as numpy's argsort does on a shape.
  std::vector<int> order(static_cast<size_t>(shape.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return shape[a] < shape[b]; });
  const int a0 = order[order.size() - 1], a1 = order[order.size() - 2];
  if (shape[a1] < options.min_dim_size_to_factor) return std::nullopt;
  return std::make_pair(a0, a1);
}

std::vector<StateSlot> Adafactor::state_slots(const Shape& shape) const {
  std::vector<StateSlot> slots;
  if (auto axes = factored_axes(shape, options_)) {
    slots.push_back({"v_row", without_axis(shape, axes->first)});
    slots.push_back({"v_col", without_axis(shape, axes->second)});
  } else {
    slots.push_back({"v", shape});
  }
  if (options_.beta1) slots.push_back({"m", shape});
  return slots;
}

void Adafactor::check_step(int64_t step) const {
  SP_CHECK(step >= options_.step_offset, "[adafactor] step ", step, " is below step_offset ",
           options_.step_offset, ": the second-moment decay needs step - step_offset >= 0");
}

double Adafactor::decay_at(int64_t step) const {
  // In float32, as T5X and optax evaluate it whatever the parameter dtype.
  const float t = static_cast<float>(step - options_.step_offset) + 1.0f;
  return 1.0f - std::pow(t, -static_cast<float>(options_.decay_rate));
}

void Adafactor::update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                       double lr, int64_t step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const double decay = decay_at(step);
  const auto axes = factored_axes(param.shape(), options_);
  SP_DISPATCH_FLOAT(param.dtype(), "adafactor", [&]<typename P>() {
    using C = update_t<P>;
    AdafactorStep<P> s{options_, param.data<P>(), grad.data<P>(), n, decay, 1.0 - decay, scratch_};
    C* m = options_.beta1 ? state.back().template data<C>() : nullptr;
    if (axes)
      s.factored(geometry(param.shape(), axes->first, axes->second), state[0].template data<C>(),
                 state[1].template data<C>(), m, lr);
    else
      s.unfactored(state[0].template data<C>(), m, lr);
  });
}

}  // namespace sp::optim
