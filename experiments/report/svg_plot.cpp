#include "experiments/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {
namespace {

// Matplotlib's "tab10": distinguishable, and familiar to readers of the paper's figures.
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Full precision for data attributes, so values read back equal the values plotted.
std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double px0 = 0, px1 = 1;  // pixel positions of lo and hi
  double map(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return px0 + t * (px1 - px0);
  }
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// Pads a data range: linear axes get 5% on each side (and a unit span when flat), log
// axes a factor of 1.25.
void pad_range(double& lo, double& hi, bool log) {
  if (log) {
    if (lo == hi) {
      lo /= 2;
      hi *= 2;
    } else {
      lo /= 1.25;
      hi *= 1.25;
    }
    return;
  }
  if (lo == hi) {
    const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
    return;
  }
  const double d = (hi - lo) * 0.05;
  lo -= d;
  hi += d;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  SP_CHECK(std::isfinite(lo) && std::isfinite(hi) && hi > lo && target > 0,
           "[plot] nice_ticks needs a finite range lo < hi, got [", lo, ", ", hi, "]");
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0;; ++i) {
    const double t = (first + i) * step;
    if (t > hi + step * 1e-9) break;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  SP_CHECK(lo > 0 && hi > lo, "[plot] log_ticks needs 0 < lo < hi, got [", lo, ", ", hi, "]");
  const int e0 = static_cast<int>(std::floor(std::log10(lo)));
  const int e1 = static_cast<int>(std::ceil(std::log10(hi)));
  auto multiples = [&](const std::vector<double>& mantissas) {
    std::vector<double> ticks;
    for (int e = e0; e <= e1; ++e) {
      for (double m : mantissas) {
        const double t = m * std::pow(10.0, e);
        if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
      }
    }
    return ticks;
  };
  const bool dense = std::log10(hi) - std::log10(lo) < 2;
  std::vector<double> ticks =
      multiples(dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1});
  // A range inside one decade may hold no 1, 2 or 5 multiple (a loss between 2.6 and 4.7):
  // every integer multiple then, else linear ticks (all positive, as lo is).
  if (ticks.size() < 2) ticks = multiples({1, 2, 3, 4, 5, 6, 7, 8, 9});
  if (ticks.size() < 2) ticks = nice_ticks(lo, hi, 4);
  return ticks;
}

std::string tick_text(double v) {
  char buf[32];
  const double a = std::abs(v);
  if (v != 0 && (a >= 1e5 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  const bool categorical = !o.x_categories.empty();
  SP_CHECK(!(categorical && o.log_x), "[plot] a categorical x axis cannot be logarithmic");
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo;
  double ylo = xlo, yhi = -xlo;
  std::set<double> xs;
  for (const PlotSeries& s : series) {
    SP_CHECK(s.x.size() == s.y.size(), "[plot] series '", s.name, "' has ", s.x.size(),
             " x values but ", s.y.size(), " y values");
    SP_CHECK(s.err.empty() || s.err.size() == s.y.size(), "[plot] series '", s.name, "' has ",
             s.err.size(), " error values for ", s.y.size(), " points");
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double x = s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      SP_CHECK(!o.log_x || x > 0, "[plot] series '", s.name, "' has x = ", x,
               " on a logarithmic x axis");
      SP_CHECK(!o.log_y || y > 0, "[plot] series '", s.name, "' has y = ", y,
               " on a logarithmic y axis");
      if (categorical)
        SP_CHECK(x >= 0 && x < static_cast<double>(o.x_categories.size()) && x == std::floor(x),
                 "[plot] series '", s.name, "' has x = ", x, " outside the ",
                 o.x_categories.size(), " categories");
      const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0.0 : std::abs(s.err[i]);
      xlo = std::min(xlo, x);
      xhi = std::max(xhi, x);
      xs.insert(x);
      const double lo_y = o.log_y && y - e <= 0 ? y : y - e;
      ylo = std::min(ylo, lo_y);
      yhi = std::max(yhi, y + e);
    }
  }
  const bool empty = xs.empty();
  if (empty) {
    xlo = o.log_x ? 1 : 0;
    xhi = o.log_x ? 10 : 1;
    ylo = o.log_y ? 1 : 0;
    yhi = o.log_y ? 10 : 1;
  }
  if (categorical) {
    xlo = -0.5;
    xhi = static_cast<double>(o.x_categories.size()) - 0.5;
  } else {
    pad_range(xlo, xhi, o.log_x);
  }
  pad_range(ylo, yhi, o.log_y);

  // Layout: plot area in the middle, the legend to its right.
  size_t longest = 0;
  for (const PlotSeries& s : series) longest = std::max(longest, s.name.size());
  const bool legend = series.size() > 1 || (series.size() == 1 && !series[0].name.empty());
  const double legend_w = legend ? std::min(260.0, 40.0 + 7.0 * static_cast<double>(longest)) : 0;
  const double left = 72, right = 20 + legend_w, top = o.title.empty() ? 20 : 42, bottom = 58;
  const double W = o.width, H = o.height;
  Axis ax{xlo, xhi, o.log_x, left, W - right};
  Axis ay{ylo, yhi, o.log_y, H - bottom, top};

  std::vector<double> xticks;
  if (categorical) {
    for (size_t i = 0; i < o.x_categories.size(); ++i) xticks.push_back(static_cast<double>(i));
  } else if (o.log_x && !empty && xs.size() <= 12) {
    xticks.assign(xs.begin(), xs.end());  // prompt lengths 1, 5, 20, 100, 150 read best as is
  } else {
    xticks = o.log_x ? log_ticks(xlo, xhi) : nice_ticks(xlo, xhi, 6);
  }
  const std::vector<double> yticks = o.log_y ? log_ticks(ylo, yhi) : nice_ticks(ylo, yhi, 6);

  std::string svg;
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(o.width) +
         "\" height=\"" + std::to_string(o.height) + "\" viewBox=\"0 0 " +
         std::to_string(o.width) + " " + std::to_string(o.height) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!o.title.empty())
    svg += "<text class=\"title\" x=\"" + num(W / 2) +
           "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" + xml_escape(o.title) +
           "</text>\n";

  // Grid, ticks and tick labels.
  svg += "<g class=\"x-axis\" stroke=\"#000\">\n";
  for (double t : xticks) {
    const double px = ax.map(t);
    const std::string label =
        categorical ? o.x_categories[static_cast<size_t>(t)] : tick_text(t);
    svg += "<line x1=\"" + num(px) + "\" y1=\"" + num(top) + "\" x2=\"" + num(px) + "\" y2=\"" +
           num(H - bottom) + "\" stroke=\"#e5e5e5\"/>";
    svg += "<line x1=\"" + num(px) + "\" y1=\"" + num(H - bottom) + "\" x2=\"" + num(px) +
           "\" y2=\"" + num(H - bottom + 5) + "\"/>";
    svg += "<text class=\"tick\" x=\"" + num(px) + "\" y=\"" + num(H - bottom + 18) +
           "\" text-anchor=\"middle\" stroke=\"none\">" + xml_escape(label) + "</text>\n";
  }
  svg += "</g>\n<g class=\"y-axis\" stroke=\"#000\">\n";
  for (double t : yticks) {
    const double py = ay.map(t);
    svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(py) + "\" x2=\"" + num(W - right) +
           "\" y2=\"" + num(py) + "\" stroke=\"#e5e5e5\"/>";
    svg += "<line x1=\"" + num(left - 5) + "\" y1=\"" + num(py) + "\" x2=\"" + num(left) +
           "\" y2=\"" + num(py) + "\"/>";
    svg += "<text class=\"tick\" x=\"" + num(left - 8) + "\" y=\"" + num(py + 4) +
           "\" text-anchor=\"end\" stroke=\"none\">" + xml_escape(tick_text(t)) + "</text>\n";
  }
  svg += "</g>\n";
  svg += "<rect class=\"frame\" x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" +
         num(W - right - left) + "\" height=\"" + num(H - bottom - top) +
         "\" fill=\"none\" stroke=\"#000\"/>\n";
  svg += "<text class=\"x-label\" x=\"" + num((left + W - right) / 2) + "\" y=\"" +
         num(H - 14) + "\" text-anchor=\"middle\">" +
         xml_escape(o.x_label + (o.log_x ? " (log scale)" : "")) + "</text>\n";
  svg += "<text class=\"y-label\" transform=\"translate(16," + num((top + H - bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" +
         xml_escape(o.y_label + (o.log_y ? " (log scale)" : "")) + "</text>\n";

  // Series: polylines broken at unusable points, error bars with caps, markers.
  for (size_t k = 0; k < series.size(); ++k) {
    const PlotSeries& s = series[k];
    const std::string color = kColors[k % std::size(kColors)];
    svg += "<g class=\"series\" data-series=\"" + xml_escape(s.name) + "\" stroke=\"" + color +
           "\" fill=\"" + color + "\">\n";
    std::vector<size_t> order(s.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        svg += "<polyline fill=\"none\" stroke-width=\"1.8\" points=\"" + points + "\"/>\n";
      points.clear();
    };
    for (size_t i : order) {
      if (!usable(s.x[i], o.log_x) || !usable(s.y[i], o.log_y)) {
        flush();
        continue;
      }
      if (!points.empty()) points += ' ';
      points += num(ax.map(s.x[i])) + "," + num(ay.map(s.y[i]));
    }
    flush();
    for (size_t i : order) {
      if (!usable(s.x[i], o.log_x) || !usable(s.y[i], o.log_y)) continue;
      const double px = ax.map(s.x[i]), py = ay.map(s.y[i]);
      const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0.0 : std::abs(s.err[i]);
      if (e > 0) {
        const double lo = o.log_y && s.y[i] - e <= 0 ? s.y[i] : s.y[i] - e;
        const double p0 = ay.map(lo), p1 = ay.map(s.y[i] + e);
        svg += "<path class=\"errorbar\" fill=\"none\" d=\"M" + num(px) + "," + num(p0) + "V" +
               num(p1) + "M" + num(px - 4) + "," + num(p0) + "h8M" + num(px - 4) + "," +
               num(p1) + "h8\"/>\n";
      }
      const std::string x_text = categorical ? o.x_categories[static_cast<size_t>(s.x[i])]
                                             : tick_text(s.x[i]);
      svg += "<circle class=\"point\" cx=\"" + num(px) + "\" cy=\"" + num(py) + "\" r=\"" +
             (o.markers ? "3.2" : "0") + "\" data-series=\"" + xml_escape(s.name) +
             "\" data-x=\"" + exact(s.x[i]) + "\" data-y=\"" + exact(s.y[i]) + "\"" +
             (s.err.empty() ? std::string() : " data-err=\"" + exact(e) + "\"") + "><title>" +
             xml_escape(s.name + (s.name.empty() ? "" : ": ") + x_text + " -> " +
                        tick_text(s.y[i]) + (e > 0 ? " \u00b1 " + tick_text(e) : "")) +
             "</title></circle>\n";
    }
    svg += "</g>\n";
  }

  if (legend) {
    svg += "<g class=\"legend\">\n";
    const double lx = W - right + 14;
    for (size_t k = 0; k < series.size(); ++k) {
      const double ly = top + 10 + 18 * static_cast<double>(k);
      const std::string color = kColors[k % std::size(kColors)];
      svg += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 20) +
             "\" y2=\"" + num(ly) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>";
      // Names longer than the legend column are cut (at a UTF-8 boundary) with an ellipsis,
      // at about 7 px per character; the tooltip keeps the whole name.
      const std::string& name = series[k].name;
      const size_t fits = static_cast<size_t>(std::max(4.0, (legend_w - 24) / 7.0));
      std::string shown = name;
      if (name.size() > fits) {
        size_t cut = fits - 1;
        while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
        shown = name.substr(0, cut) + "\u2026";
      }
      svg += "<text class=\"legend-entry\" x=\"" + num(lx + 26) + "\" y=\"" + num(ly + 4) + "\">" +
             xml_escape(shown) +
             (shown == name ? std::string() : "<title>" + xml_escape(name) + "</title>") +
             "</text>\n";
    }
    svg += "</g>\n";
  }
  if (empty)
    svg += "<text x=\"" + num((left + W - right) / 2) + "\" y=\"" + num((top + H - bottom) / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  svg += "</svg>\n";
  return svg;
}

void write_line_plot(const std::string& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options) {
  write_file_atomic(path, render_line_plot(series, options), "[plot]");
}

}  // namespace sp
