// T5's metrics (experiments/tasks/metrics.h) against values worked out by hand with the
// formulas of sklearn and t5.evaluation.metrics.
#include "experiments/tasks/metrics.h"

#include <gtest/gtest.h>

#include <sstream>

#include "experiments/tasks/predictions.h"
#include "experiments/tasks/task.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(TaskMetrics, LabelIndexIsExact) {
  const std::vector<std::string> labels = {"False", "True"};
  EXPECT_EQ(label_index(labels, "True"), 1);
  EXPECT_EQ(label_index(labels, "False"), 0);
  EXPECT_EQ(label_index(labels, "true"), -1);
  EXPECT_EQ(label_index(labels, " True"), -1);
  EXPECT_EQ(label_index(labels, ""), -1);
}

TEST(TaskMetrics, AccuracyCountsInvalidAsWrong) {
  EXPECT_DOUBLE_EQ(accuracy_score({0, 1, 1, 0}, {0, 1, 0, -1}), 50.0);
  EXPECT_DOUBLE_EQ(accuracy_score({2}, {2}), 100.0);
  EXPECT_THROW_MSG(accuracy_score({0, 1}, {0}), "2 targets but 1 predictions");
  EXPECT_THROW_MSG(accuracy_score({}, {}), "no examples");
}

TEST(TaskMetrics, BinaryF1TurnsInvalidIntoTheWrongClass) {
  // tp = 1 (0); fp = 2 (2, and 3: invalid on a negative); fn = 2 (1, and 4: invalid on a
  // positive). F1 = 2tp / (2tp + fp + fn) = 2 / 6.
  EXPECT_NEAR(binary_f1({1, 1, 0, 0, 1}, {1, 0, 1, -1, -1}), 100.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(binary_f1({1, 0}, {1, 0}), 100.0);
  EXPECT_DOUBLE_EQ(binary_f1({0, 0}, {0, 0}), 0.0);  // no positives at all: sklearn's 0
}

TEST(TaskMetrics, MacroF1AveragesOverEveryClassIncludingAbsentOnes) {
  // Class 0: tp 1, fn 1 -> 2/3. Class 1: tp 1, fp 1, fn 1 (the invalid one) -> 1/2.
  // Class 2 never occurs: 0. Macro: (2/3 + 1/2 + 0) / 3.
  EXPECT_NEAR(macro_f1({0, 0, 1, 1}, {0, 1, 1, -1}, 3), 100.0 * (2.0 / 3 + 0.5) / 3, 1e-9);
  EXPECT_NEAR(macro_f1({0, 1, 2}, {0, 1, 2}, 3), 100.0, 1e-9);
  // CB-like: class 2 present in targets, never predicted.
  EXPECT_NEAR(macro_f1({0, 2, 1, 0}, {0, 0, 1, 0}, 3), 100.0 * (0.8 + 1.0 + 0.0) / 3, 1e-9);
  EXPECT_THROW_MSG(macro_f1({3}, {0}, 3), "target 0 is class 3");
}

TEST(TaskMetrics, GroupExactMatchNeedsEveryAnswerOfAQuestion) {
  EXPECT_NEAR(group_exact_match({1, 0, 1, 1, 0}, {1, 0, 1, 0, 0}, {"a", "a", "b", "b", "c"}),
              200.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(group_exact_match({1, 0}, {1, -1}, {"q", "q"}), 0.0);
}

TEST(TaskMetrics, SquadNormalisation) {
  EXPECT_EQ(normalize_squad("The  Cat's hat!"), "cats hat");
  EXPECT_EQ(normalize_squad("An apple, a day"), "apple day");
  EXPECT_EQ(normalize_squad("theater and anthem"), "theater and anthem");  // not whole words
  EXPECT_EQ(normalize_squad("A"), "");
  EXPECT_EQ(normalize_squad("  ...  "), "");
  EXPECT_EQ(normalize_squad("the-end"), "theend");  // punctuation goes first, as in T5
  EXPECT_EQ(normalize_squad("a\tb\nc  "), "b c");
  EXPECT_EQ(normalize_squad("Zoë's (café)"), "zoës café");  // non-ASCII kept, ASCII lowered
}

// Python's str.lower(), \b and str.split() in T5's normalize_squad are Unicode-aware (values
// worked out with Python 3): a no-break or thin space separates words and ends an article,
// a dash or curly quote is not part of a word, non-ASCII capitals are lowered; non-ASCII
// punctuation itself is kept (string.punctuation is ASCII).
TEST(TaskMetrics, SquadNormalisationFollowsPythonsUnicodeRules) {
  EXPECT_EQ(normalize_squad("The\u00a0Cat"), "cat");
  EXPECT_EQ(normalize_squad("the\u2009end"), "end");
  EXPECT_EQ(normalize_squad("\u00c9MILE Zola"), "\u00e9mile zola");
  EXPECT_EQ(normalize_squad("\u0141\u00d3D\u0179 \u0178"), "\u0142\u00f3d\u017a \u00ff");
  EXPECT_EQ(normalize_squad("war\u2014the end"), "war\u2014 end");
  EXPECT_EQ(normalize_squad("\u2019the cat\u2019"), "\u2019 cat\u2019");
  EXPECT_EQ(normalize_squad("1\u00d7the 2"), "1\u00d7 2");
  EXPECT_EQ(normalize_squad("\u00e9the"), "\u00e9the");  // a letter: still one word
  // A gold answer with a no-break space matches the decoded prediction with a plain one.
  const SquadScore s = squad_max_over_answers({"Manchester\u00a0United"}, "Manchester United");
  EXPECT_DOUBLE_EQ(s.em, 1.0);
  EXPECT_DOUBLE_EQ(s.f1, 1.0);
}

// Beyond Latin: the full str.lower() mapping, its Final_Sigma rule, and \w as
// ch.isalnum() or "_". Every expected value is the output of Python 3.11 (Unicode 14) str.lower()
// and re.sub(r"\b(a|an|the)\b", " ", s) in T5's normalize_squad / wsc_simple.
TEST(TaskMetrics, SquadNormalisationCoversAllOfUnicode) {
  // Greek: a capital sigma ends a word as ς, after a cased letter (skipping case-ignorable
  // marks such as ' . U+0301) and before none; lowering comes before dropping punctuation.
  EXPECT_EQ(normalize_squad("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3."),
            "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2");
  EXPECT_EQ(
      normalize_squad("\u03a3\u039f\u03a6\u0399\u0391\u03a3 \u03a3\u039f\u03a6\u0399\u0391\u03a3"),
      "\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2 \u03c3\u03bf\u03c6\u03b9\u03b1\u03c2");
  EXPECT_EQ(normalize_squad("\u03a3"), "\u03c3");
  EXPECT_EQ(normalize_squad("\u0391\u03a3'"), "\u03b1\u03c2");
  EXPECT_EQ(normalize_squad("\u0391\u03a3.\u0391"), "\u03b1\u03c3\u03b1");
  EXPECT_EQ(normalize_squad("\u0391\u03a3-\u0391"), "\u03b1\u03c2\u03b1");
  EXPECT_EQ(normalize_squad("\u0391\u03a3\u0301\u0391"), "\u03b1\u03c3\u0301\u03b1");
  EXPECT_EQ(normalize_squad("\u0391\u03a3\u0301"), "\u03b1\u03c2\u0301");
  // Cyrillic, fullwidth Latin and Roman numerals lower, and are \w.
  EXPECT_EQ(normalize_squad(
                "\u041c\u041e\u0421\u041a\u0412\u0410 the \u041f\u0420\u0410\u0412\u0414\u0410"),
            "\u043c\u043e\u0441\u043a\u0432\u0430 \u043f\u0440\u0430\u0432\u0434\u0430");
  EXPECT_EQ(normalize_squad("\uff21\uff22\uff23 the \uff24\uff25\uff26"),
            "\uff41\uff42\uff43 \uff44\uff45\uff46");
  EXPECT_EQ(normalize_squad("\u216b the \u2168"), "\u217b \u2178");
  // İ lowers to i + U+0307, and the combining dot is not \w, so "the" after it is a word.
  EXPECT_EQ(normalize_squad("\u0130stanbul"), "i\u0307stanbul");
  EXPECT_EQ(normalize_squad("\u0130the"), "i\u0307");
  // Symbols and CJK punctuation are not \w: \b falls between them and an article.
  EXPECT_EQ(normalize_squad("the\u2665"), "\u2665");
  EXPECT_EQ(normalize_squad("\u2122the"), "\u2122");
  EXPECT_EQ(normalize_squad("x the\u3002"), "x \u3002");
  const SquadScore s = squad_max_over_answers({"\u2665"}, "the\u2665");
  EXPECT_DOUBLE_EQ(s.em, 1.0);
  EXPECT_DOUBLE_EQ(s.f1, 1.0);
}

TEST(TaskMetrics, SquadTakesTheBestAnswer) {
  // "president obama" vs "barack obama": 1 common token, P = R = 1/2 -> 0.5; vs "obama":
  // P = 1/2, R = 1 -> 2/3.
  SquadScore s = squad_max_over_answers({"Barack Obama", "Obama"}, "president obama");
  EXPECT_DOUBLE_EQ(s.em, 0.0);
  EXPECT_NEAR(s.f1, 2.0 / 3, 1e-12);
  s = squad_max_over_answers({"Barack Obama", "Obama"}, "the Obama.");
  EXPECT_DOUBLE_EQ(s.em, 1.0);
  EXPECT_DOUBLE_EQ(s.f1, 1.0);
  // Token F1 counts repeated tokens at most as often as the gold has them: "a a b" style.
  s = squad_max_over_answers({"dog dog cat"}, "dog dog dog");
  EXPECT_NEAR(s.f1, 2 * (2.0 / 3) * (2.0 / 3) / (4.0 / 3), 1e-12);
  // Both empty after normalising: an exact match, but no common token for F1 (T5's rule).
  s = squad_max_over_answers({"the"}, "a");
  EXPECT_DOUBLE_EQ(s.em, 1.0);
  EXPECT_DOUBLE_EQ(s.f1, 0.0);
  EXPECT_THROW_MSG(squad_max_over_answers({}, "x"), "no gold answers");
}

TEST(TaskMetrics, WscMatching) {
  EXPECT_EQ(wsc_simple_class("the fuzzy bunny", "bunny"), 1);
  EXPECT_EQ(wsc_simple_class("bunny", "The fuzzy bunny"), 1);
  EXPECT_EQ(wsc_simple_class(" Tom ", "tom"), 1);
  EXPECT_EQ(wsc_simple_class("his hat", "hat"), 1);
  EXPECT_EQ(wsc_simple_class("Bob", "Bob's hat"), 0);
  EXPECT_EQ(wsc_simple_class("the dog", "The cat"), 0);
  EXPECT_EQ(wsc_simple_class("\u00c9mile", "\u00e9mile"), 1);  // str.lower() is Unicode
  // Python's str.lower() (values from Python 3.11): final sigma, Cyrillic, fullwidth, and
  // İ -> i + U+0307, which is not a plain "i".
  EXPECT_EQ(wsc_simple_class("\u03a3\u039f\u03a6\u0399\u0391\u03a3",
                             "\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2"),
            1);
  EXPECT_EQ(wsc_simple_class("\u041c\u041e\u0421\u041a\u0412\u0410",
                             "\u043c\u043e\u0441\u043a\u0432\u0430"),
            1);
  EXPECT_EQ(wsc_simple_class("\uff21\uff22\uff23", "\uff41\uff42\uff43"), 1);
  EXPECT_EQ(wsc_simple_class("\u0130stanbul", "i\u0307stanbul"), 1);
  EXPECT_EQ(wsc_simple_class("\u0130stanbul", "istanbul"), 0);
}

// T5's wsc_simple returns -1 for a prediction that is empty once cleaned ("We don't want an
// empty prediction to accidentally return 0 and spuriously match the label"), so it is wrong
// whatever the label. A referent that cleans to nothing is the set {""}, which contains no
// real prediction's words and is no subset of them.
TEST(TaskMetrics, WscEmptyPredictionIsNeitherClass) {
  EXPECT_EQ(wsc_simple_class("", "Tom"), -1);
  EXPECT_EQ(wsc_simple_class("  ", "Tom"), -1);
  EXPECT_EQ(wsc_simple_class("the", "Tom"), -1);
  EXPECT_EQ(wsc_simple_class("The  the", "Tom"), -1);  // kept words [""], joined ""
  EXPECT_EQ(wsc_simple_class("dog", "that"), 0);
  EXPECT_EQ(wsc_simple_class("a  dog", "that"), 1);  // {"", "dog"} contains {""}
}

TEST(TaskMetrics, SuperGlueAverageAveragesInsideTasksFirst) {
  const Metrics cb = {{"accuracy", 80}, {"mean_3class_f1", 60}};
  const Metrics rte = {{"accuracy", 90}};
  EXPECT_DOUBLE_EQ(task_score(cb), 70.0);
  EXPECT_DOUBLE_EQ(benchmark_average({{"cb", cb}, {"rte", rte}}), 80.0);
  EXPECT_THROW_MSG(benchmark_average({}), "no tasks");
}

std::vector<TaskExample> two_examples() {
  TaskExample a, b;
  a.id = "t-validation-0";
  b.id = "t-validation-1";
  return {a, b};
}

TEST(TaskMetrics, PredictionsAreMatchedById) {
  std::istringstream in(
      "{\"id\": \"t-validation-1\", \"prediction\": \"B\"}\n\n"
      "{\"id\": \"t-validation-0\", \"prediction\": \"A\"}\n");
  const std::vector<std::string> p = read_predictions(in, "p.jsonl", two_examples());
  EXPECT_EQ(p, (std::vector<std::string>{"A", "B"}));
}

TEST(TaskMetrics, PredictionErrorsNameTheLine) {
  std::istringstream unknown(
      "{\"id\": \"t-validation-0\", \"prediction\": \"A\"}\n"
      "{\"id\": \"t-validation-7\", \"prediction\": \"B\"}\n");
  EXPECT_THROW_MSG(read_predictions(unknown, "p.jsonl", two_examples()),
                   "p.jsonl:2: unknown id \"t-validation-7\"");
  std::istringstream twice(
      "{\"id\": \"t-validation-0\", \"prediction\": \"A\"}\n"
      "{\"id\": \"t-validation-0\", \"prediction\": \"B\"}\n");
  EXPECT_THROW_MSG(read_predictions(twice, "p.jsonl", two_examples()),
                   "p.jsonl:2: id \"t-validation-0\" was already given on line 1");
  std::istringstream missing("{\"id\": \"t-validation-0\", \"prediction\": \"A\"}\n");
  EXPECT_THROW_MSG(read_predictions(missing, "p.jsonl", two_examples()),
                   "no prediction for 1 of 2 examples (\"t-validation-1\")");
  std::istringstream no_text("{\"id\": \"t-validation-0\"}\n");
  EXPECT_THROW_MSG(read_predictions(no_text, "p.jsonl", two_examples()),
                   "p.jsonl:1: expected \"prediction\"");
}

TEST(TaskMetrics, RepeatedExampleIdsAreNamedBeforeReading) {
  std::vector<TaskExample> examples = two_examples();
  examples[1].id = examples[0].id;
  std::istringstream in(
      "{\"id\": \"t-validation-0\", \"prediction\": \"A\"}\n"
      "{\"id\": \"t-validation-0\", \"prediction\": \"B\"}\n");
  EXPECT_THROW_MSG(read_predictions(in, "p.jsonl", examples),
                   "[metrics] the split has two examples with id \"t-validation-0\" (examples 1 "
                   "and 2)");
}

TEST(TaskMetrics, MetricsJsonIsOneObject) {
  EXPECT_EQ(metrics_json({{"f1", 50.0}, {"accuracy", 75.0}}), "{\"accuracy\":75.0,\"f1\":50.0}");
}

}  // namespace
}  // namespace sp
