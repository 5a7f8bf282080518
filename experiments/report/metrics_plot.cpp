#include "experiments/report/metrics_plot.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "experiments/inference/jsonl.h"
#include "tensor/error.h"

namespace sp {
namespace {

// The number at key (literal first, then as a dotted path), if any.
std::optional<double> lookup(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json* v = nullptr;
  if (auto it = j.find(key); it != j.end()) {
    v = &*it;
  } else {
    const nlohmann::json* cur = &j;
    size_t start = 0;
    while (cur) {
      if (!cur->is_object()) {  // the path goes on past a non-object: no such field
        cur = nullptr;
        break;
      }
      const size_t dot = key.find('.', start);
      auto it2 = cur->find(key.substr(start, dot == std::string::npos ? dot : dot - start));
      if (it2 == cur->end()) {
        cur = nullptr;
        break;
      }
      cur = &*it2;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    v = cur;
  }
  if (!v || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

}  // namespace

std::vector<PlotSeries> series_from_jsonl(const std::vector<std::string>& files,
                                          const std::string& x,
                                          const std::vector<std::string>& ys) {
  SP_CHECK(!files.empty(), "[plot] no metrics file given");
  SP_CHECK(!ys.empty(), "[plot] no y key given");
  std::vector<PlotSeries> out;
  for (const std::string& file : files) {
    std::ifstream in(file);
    SP_CHECK(in, "[plot] cannot open ", file);
    const std::vector<JsonlRecord> records = read_jsonl(in, file);
    const std::string stem = std::filesystem::path(file).stem().string();
    for (const std::string& y : ys) {
      PlotSeries s;
      s.name = files.size() == 1 ? y : ys.size() == 1 ? stem : stem + ": " + y;
      for (const JsonlRecord& r : records) {
        auto xv = lookup(r.value, x);
        auto yv = lookup(r.value, y);
        if (!xv || !yv) continue;
        s.x.push_back(*xv);
        s.y.push_back(*yv);
      }
      SP_CHECK(!s.x.empty(), "[plot] ", file, ": no line has both '", x, "' and '", y,
               "' as numbers");
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace sp
