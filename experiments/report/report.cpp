#include "experiments/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>
#include <tuple>

#include "experiments/report/task_average.h"
#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// An image's caption, as Markdown link text: brackets escaped, one line.
std::string md_caption(const std::string& s) {
  std::string out;
  for (char c : md_cell(s)) {
    if (c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// A fenced code block that text cannot close: its fence is longer than any run of
// backticks inside (CommonMark).
std::string md_code_block(const std::string& text, const std::string& language) {
  size_t longest = 0, run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(std::max<size_t>(3, longest + 1), '`');
  return fence + language + "\n" + text + (text.empty() || text.back() == '\n' ? "" : "\n") +
         fence + "\n";
}

// The distinct values of key over rows, in the spec's order when it lists them, else sorted.
std::vector<nlohmann::json> ordered_values(const std::vector<SummaryRow>& rows,
                                           const std::string& key, const ReportContext& c) {
  std::vector<nlohmann::json> seen;
  for (const SummaryRow& r : rows) {
    auto it = r.point.find(key);
    if (it == r.point.end()) continue;
    if (std::find(seen.begin(), seen.end(), *it) == seen.end()) seen.push_back(*it);
  }
  std::vector<nlohmann::json> out;
  if (auto it = c.sweep_values.find(key); it != c.sweep_values.end())
    for (const nlohmann::json& v : it->second)
      if (std::find(seen.begin(), seen.end(), v) != seen.end() &&
          std::find(out.begin(), out.end(), v) == out.end())
        out.push_back(v);
  std::vector<nlohmann::json> rest;
  for (const nlohmann::json& v : seen)
    if (std::find(out.begin(), out.end(), v) == out.end()) rest.push_back(v);
  std::sort(rest.begin(), rest.end(), point_value_less);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

bool all_numbers(const std::vector<nlohmann::json>& values) {
  return !values.empty() && std::all_of(values.begin(), values.end(),
                                        [](const nlohmann::json& v) { return v.is_number(); });
}

std::string point_text(const nlohmann::json& point, const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) {
    auto it = point.find(k);
    if (it == point.end()) continue;
    if (!out.empty()) out += ", ";
    out += k + "=" + cell_text(*it);
  }
  return out.empty() ? "(all)" : out;
}

// The keys swept in a group with a key that member() accepts, those keys included.
std::set<std::string> keys_swept_with(const std::vector<std::vector<std::string>>& groups,
                                      const std::function<bool(const std::string&)>& member) {
  std::set<std::string> out;
  for (const std::vector<std::string>& group : groups)
    if (std::any_of(group.begin(), group.end(), member)) out.insert(group.begin(), group.end());
  return out;
}

}  // namespace

std::string file_safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

std::string choose_x_key(const std::vector<SummaryRow>& rows, const std::vector<std::string>& keys,
                         const std::string& preferred) {
  ReportContext none;
  std::vector<std::string> varying;
  for (const std::string& k : keys)
    if (ordered_values(rows, k, none).size() > 1) varying.push_back(k);
  if (!preferred.empty() && std::find(varying.begin(), varying.end(), preferred) != varying.end())
    return preferred;
  for (const std::string& k : varying)
    if (all_numbers(ordered_values(rows, k, none))) return k;
  return varying.empty() ? "" : varying.front();
}

std::vector<SummaryPlot> summary_plots(const std::vector<SummaryRow>& rows,
                                       const std::vector<std::string>& keys,
                                       const ReportContext& context) {
  const std::string x_key = choose_x_key(rows, keys, context.preferred_x);
  if (x_key.empty()) return {};
  const std::vector<nlohmann::json> x_values = ordered_values(rows, x_key, context);
  const bool numeric = all_numbers(x_values);
  bool log_x = false;
  if (numeric) {
    double lo = x_values.front().get<double>(), hi = lo;
    for (const nlohmann::json& v : x_values) {
      lo = std::min(lo, v.get<double>());
      hi = std::max(hi, v.get<double>());
    }
    log_x = lo > 0 && hi / lo >= 10;  // prompt lengths 1..150, model sizes in parameters
  }
  // Series: the other keys that vary, except those swept with x (a key zipped with it; with
  // total_params, the model's size): each of those would be a line of one point.
  const std::set<std::string> with_x =
      keys_swept_with(context.sweep_groups, [&](const std::string& k) {
        return x_key == kTotalParamsAxis ? k.starts_with("model.") : k == x_key;
      });
  std::vector<std::string> series_keys;
  for (const std::string& k : keys)
    if (k != x_key && !with_x.count(k) && ordered_values(rows, k, context).size() > 1)
      series_keys.push_back(k);

  // Group rows by (stage, task, split, metric), keeping the summary's order.
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> groups;
  for (const SummaryRow& r : rows) {
    auto g = std::make_tuple(r.stage, r.task, r.split, r.metric);
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  std::vector<SummaryPlot> plots;
  for (const auto& [stage, task, split, metric] : groups) {
    SummaryPlot plot;
    plot.file = file_safe_name(stage + "-" + (task.empty() ? "" : task + "-") +
                               (split.empty() ? "" : split + "-") + metric) +
                ".svg";
    plot.options.title = metric + (task.empty() ? "" : " on " + task) +
                         (split.empty() ? "" : " (" + split + ")") + ", " + stage;
    plot.options.x_label = x_key;
    plot.options.y_label = metric + " (mean \u00b1 std over seeds)";
    plot.options.log_x = log_x;
    if (!numeric)
      for (const nlohmann::json& v : x_values) plot.options.x_categories.push_back(cell_text(v));
    plot.caption = plot.options.title + ": " + metric + " against " + x_key +
                   (series_keys.empty() ? "" : ", one line per " + [&] {
                     std::string s;
                     for (const std::string& k : series_keys) s += (s.empty() ? "" : " x ") + k;
                     return s;
                   }());

    // Series = combinations of the other swept keys, in the spec's value order.
    std::vector<nlohmann::json> combos;  // objects over series_keys
    for (const SummaryRow& r : rows) {
      if (std::make_tuple(r.stage, r.task, r.split, r.metric) !=
          std::make_tuple(stage, task, split, metric))
        continue;
      nlohmann::json combo = nlohmann::json::object();
      for (const std::string& k : series_keys)
        if (auto it = r.point.find(k); it != r.point.end()) combo[k] = *it;
      if (std::find(combos.begin(), combos.end(), combo) == combos.end()) combos.push_back(combo);
    }
    std::vector<std::vector<nlohmann::json>> orders;
    for (const std::string& k : series_keys) orders.push_back(ordered_values(rows, k, context));
    auto rank = [&](const nlohmann::json& combo) {
      std::vector<size_t> r;
      for (size_t i = 0; i < series_keys.size(); ++i) {
        auto it = combo.find(series_keys[i]);
        r.push_back(it == combo.end()
                        ? orders[i].size()
                        : static_cast<size_t>(std::find(orders[i].begin(), orders[i].end(), *it) -
                                              orders[i].begin()));
      }
      return r;
    };
    std::stable_sort(
        combos.begin(), combos.end(),
        [&](const nlohmann::json& a, const nlohmann::json& b) { return rank(a) < rank(b); });

    for (const nlohmann::json& combo : combos) {
      PlotSeries s;
      s.name = series_keys.empty() ? "" : point_text(combo, series_keys);
      for (const nlohmann::json& xv : x_values) {
        for (const SummaryRow& r : rows) {
          if (std::make_tuple(r.stage, r.task, r.split, r.metric) !=
              std::make_tuple(stage, task, split, metric))
            continue;
          auto xi = r.point.find(x_key);
          if (xi == r.point.end() || *xi != xv) continue;
          bool match = true;
          for (const std::string& k : series_keys) {
            auto a = r.point.find(k);
            auto b = combo.find(k);
            if ((a == r.point.end()) != (b == combo.end()) || (a != r.point.end() && *a != *b))
              match = false;
          }
          if (!match) continue;
          s.x.push_back(numeric
                            ? xv.get<double>()
                            : static_cast<double>(std::find(x_values.begin(), x_values.end(), xv) -
                                                  x_values.begin()));
          s.y.push_back(r.mean);
          s.err.push_back(r.std);
        }
      }
      plot.series.push_back(std::move(s));
    }
    // Rows without the x key (a task average when the task is on x) have nothing to draw.
    const bool drawn = std::any_of(plot.series.begin(), plot.series.end(),
                                   [](const PlotSeries& s) { return !s.x.empty(); });
    if (drawn) plots.push_back(std::move(plot));
  }
  return plots;
}

SpecResults spec_results(const std::vector<ResultRecord>& results, const ReportContext& context) {
  if (context.trials.empty()) return {results, 0};
  const std::set<std::string> trials(context.trials.begin(), context.trials.end());
  SpecResults out;
  std::set<std::string> others;
  for (const ResultRecord& r : results) {
    if (!trials.count(r.trial)) {
      others.insert(r.trial);
      continue;
    }
    const auto finished = context.trial_finished.find(r.trial);
    if (finished != context.trial_finished.end() && finished->second == r.finished)
      out.records.push_back(r);
    else
      ++out.stale_records;
  }
  out.other_trials = others.size();
  return out;
}

std::string report_markdown(const SpecResults& spec, const std::vector<SummaryRow>& rows,
                            const std::vector<std::string>& keys,
                            const std::vector<SummaryPlot>& plots, const ReportContext& c,
                            const std::vector<SummaryPlot>& curves) {
  const std::vector<ResultRecord>& results = spec.records;
  std::set<std::string> finished_trials;
  for (const ResultRecord& r : results) finished_trials.insert(r.trial);
  const size_t other_trials = spec.other_trials;
  std::string md = "# " + (c.name.empty() ? std::string("Experiment") : c.name) + "\n\n";
  if (!c.description.empty()) md += c.description + "\n\n";
  md += "Generated " + utc_timestamp() + " from `results.jsonl` (" +
        std::to_string(results.size()) + " records; " + std::to_string(finished_trials.size()) +
        " of " + std::to_string(c.trials_total) + " trials with results" +
        (c.failures.empty() ? "" : ", " + std::to_string(c.failures.size()) + " failed") +
        (other_trials == 0 ? ""
                           : "; the records of " + std::to_string(other_trials) + " trial" +
                                 (other_trials == 1 ? "" : "s") +
                                 " not in this spec are left out of the report") +
        (spec.stale_records == 0
             ? ""
             : "; " + std::to_string(spec.stale_records) + " record" +
                   (spec.stale_records == 1 ? "" : "s") +
                   " of earlier runs of its trials, with other settings or code, are left out") +
        "). Numbers are mean \u00b1 sample standard deviation over seeds (n seeds); "
        "the same numbers are in `summary.csv`.\n\n";

  md += "## Results\n\n";
  const bool averaged = std::any_of(rows.begin(), rows.end(), [](const SummaryRow& r) {
    return r.task == kSuperGlueTask || r.task == kTaskAverageTask;
  });
  if (averaged)
    md +=
        "Task `superglue` (`task_average` for another set of tasks) is the benchmark score: "
        "per seed, the mean over the tasks of each task's mean metric (CB, MultiRC and "
        "ReCoRD average their two), then mean \u00b1 std over seeds; a seed that lacks a "
        "task has none.\n\n";
  if (rows.empty()) {
    md += "No results yet.\n\n";
  } else {
    md += "| stage | task | split |";
    for (const std::string& k : keys) md += " " + md_cell(k) + " |";
    md += " metric | mean \u00b1 std | n |\n|---|---|---|";
    for (size_t i = 0; i < keys.size(); ++i) md += "---|";
    md += "---|---|---|\n";
    for (const SummaryRow& r : rows) {
      md += "| " + md_cell(r.stage) + " | " + md_cell(r.task) + " | " + md_cell(r.split) + " |";
      for (const std::string& k : keys) {
        auto it = r.point.find(k);
        md += str_cat(" ", it == r.point.end() ? std::string() : md_cell(cell_text(*it)), " |");
      }
      md += " " + md_cell(r.metric) + " | " + fixed(r.mean, 2) + " \u00b1 " + fixed(r.std, 2) +
            " | " + std::to_string(r.n) + " |\n";
    }
    md += "\n";
  }

  md += "## Plots\n\n";
  if (plots.empty()) md += "No plots: nothing is swept, or there are no results yet.\n\n";
  for (const SummaryPlot& p : plots) md += "![" + md_caption(p.caption) + "](" + p.file + ")\n\n";

  if (!curves.empty()) {
    md +=
        "## Training curves\n\nThe training loss each stage logged (`metrics.jsonl` in its "
        "directory) against the step.\n\n";
    for (const SummaryPlot& p : curves)
      md += "![" + md_caption(p.caption) + "](" + p.file + ")\n\n";
  }

  md += "## Trainable parameters\n\n";
  {
    // One line per (method, point): the count does not depend on the seed.
    std::vector<std::tuple<std::string, std::string, int64_t, int64_t, double>> lines;
    for (const ResultRecord& r : results) {
      if (r.trainable_params <= 0) continue;
      auto line = std::make_tuple(r.method, point_text(r.point, keys), r.trainable_params,
                                  r.total_params, r.trainable_share);
      if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
    }
    if (lines.empty()) {
      md += "Not recorded.\n\n";
    } else {
      md += "| method | sweep point | trainable | total | share |\n|---|---|---|---|---|\n";
      for (const auto& [method, point, trainable, total, share] : lines) {
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.4g%%", 100 * share);
        md += "| " + md_cell(method) + " | " + md_cell(point) + " | " + std::to_string(trainable) +
              " | " + std::to_string(total) + " | " + pct + " |\n";
      }
      md += "\n";
    }
  }

  md += "## Timings\n\n";
  if (!c.shared_stages.empty()) {
    md += "Shared stages (run once, reused by every trial that needs them):\n\n";
    md += "| stage | kind | directory | seconds | state |\n|---|---|---|---|---|\n";
    for (const SharedStageInfo& s : c.shared_stages)
      md += "| " + md_cell(s.name) + " | " + md_cell(s.kind) + " | `" + s.dir + "` | " +
            fixed(s.seconds, 1) + " | " + (s.done ? "done" : "not finished") + " |\n";
    md += "\n";
  }
  {
    std::vector<std::string> stage_names;
    for (const ResultRecord& r : results)
      for (const auto& [stage, s] : r.seconds)
        if (std::find(stage_names.begin(), stage_names.end(), stage) == stage_names.end())
          stage_names.push_back(stage);
    // Pipeline order first, anything else after.
    const std::vector<std::string> pipeline = {"pretrain", "lm_adapt", "tune", "eval"};
    auto rank = [&](const std::string& s) {
      return std::find(pipeline.begin(), pipeline.end(), s) - pipeline.begin();
    };
    std::stable_sort(stage_names.begin(), stage_names.end(),
                     [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
    if (stage_names.empty()) {
      md += "No trial timings recorded.\n\n";
    } else {
      md += "Per trial (wall seconds):\n\n| trial | sweep point | seed |";
      for (const std::string& s : stage_names) md += " " + md_cell(s) + " |";
      md += "\n|---|---|---|";
      for (size_t i = 0; i < stage_names.size(); ++i) md += "---|";
      md += "\n";
      std::set<std::string> done;
      double total = 0;
      for (const ResultRecord& r : results) {
        if (!done.insert(r.trial).second) continue;
        // A trial's later records carry the timings of all its stages so far.
        const ResultRecord* last = &r;
        for (const ResultRecord& q : results)
          if (q.trial == r.trial) last = &q;
        md += "| " + md_cell(r.trial) + " | " + md_cell(point_text(r.point, keys)) + " | " +
              std::to_string(r.seed) + " |";
        for (const std::string& s : stage_names) {
          auto it = last->seconds.find(s);
          md += " " + (it == last->seconds.end() ? std::string() : fixed(it->second, 1)) + " |";
          if (it != last->seconds.end()) total += it->second;
        }
        md += "\n";
      }
      md += "\nTotal trial time " + fixed(total, 1) + " s.\n\n";
    }
  }

  if (!c.failures.empty()) {
    md += "## Failures\n\n";
    for (const std::string& f : c.failures) md += "- " + md_cell(f) + "\n";
    md += "\n";
  }

  md += "## Configuration\n\n";
  md += c.config_text.empty() ? std::string("Not recorded.\n\n")
                              : md_code_block(c.config_text, "json") + "\n";
  md +=
      "## Files\n\n- `results.jsonl`: one line per finished trial and evaluation\n"
      "- `summary.csv`: the Results table\n"
      "- `trials/<trial>/`: each trial's evaluation predictions (`eval/`) and its `DONE` record\n"
      "- `stages/<kind>-<hash>/`: every stage (pretrain, lm_adapt, tune), keyed by the hash "
      "of its configuration: its model, checkpoints and per-step `metrics.jsonl`\n";
  return md;
}

ReportFiles write_reports(const std::string& dir, const ReportContext& context) {
  SpecResults spec =
      spec_results(read_results((fs::path(dir) / "results.jsonl").string()), context);
  if (context.preferred_x == kTotalParamsAxis)
    spec.records = with_total_params_axis(std::move(spec.records));
  const std::vector<ResultRecord>& results = spec.records;
  std::vector<ResultRecord> with_averages = results;
  const std::set<std::string> with_task = keys_swept_with(
      context.sweep_groups,
      [](const std::string& k) { return k == kTaskSweepKey || k == kTaskConfigSweepKey; });
  for (ResultRecord& r : task_average_records(results, with_task))
    with_averages.push_back(std::move(r));
  const std::vector<SummaryRow> rows = summarize(with_averages);
  const std::vector<std::string> keys = swept_keys(results);
  const std::vector<SummaryPlot> plots = summary_plots(rows, keys, context);
  const std::vector<SummaryPlot> curves = training_curve_plots(dir, context.curves);
  ReportFiles files;
  files.summary_csv = (fs::path(dir) / "summary.csv").string();
  write_file_atomic(files.summary_csv, summary_csv(rows, keys), "[report]");
  for (const std::vector<SummaryPlot>* list : {&plots, &curves})
    for (const SummaryPlot& p : *list) {
      files.plots.push_back((fs::path(dir) / p.file).string());
      write_line_plot(files.plots.back(), p.series, p.options);
    }
  remove_stale_curve_files(dir, context.curves, curves);
  files.report_md = (fs::path(dir) / "report.md").string();
  write_file_atomic(files.report_md, report_markdown(spec, rows, keys, plots, context, curves),
                    "[report]");
  return files;
}

}  // namespace sp
