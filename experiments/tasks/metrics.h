#pragma once
// T5's evaluation metrics (t5.evaluation.metrics) over class ids or answer strings, all
// x100. A prediction that is not a legal label is class -1 and always counts as wrong.
#include <string>
#include <vector>

namespace sp {

// The index of text in labels (exact match, as T5's string_label_to_class_id); -1 when the
// text is not a legal label.
int label_index(const std::vector<std::string>& labels, const std::string& text);

// Percentage of positions where prediction == target. Throws on a size mismatch or no items.
double accuracy_score(const std::vector<int>& targets, const std::vector<int>& predictions);

// Binary F1 of class 1, as T5's f1_score_with_invalid: an invalid prediction (-1) is
// replaced by the wrong class (1 - target), so it is a false positive or a false negative.
// 0 when there are no true positives.
double binary_f1(const std::vector<int>& targets, const std::vector<int>& predictions);

// sklearn's fbeta_score(beta=1, labels=range(num_classes), average="macro"): per-class F1
// averaged over all num_classes classes; a class with no true positives scores 0, even one
// absent from both targets and predictions. Invalid predictions (-1) belong to no class:
// they only add a false negative to the target's class.
double macro_f1(const std::vector<int>& targets, const std::vector<int>& predictions,
                int num_classes);

// T5's mean_group_metric(all_match): the percentage of groups in which every prediction
// equals its target (MultiRC's per-question exact match).
double group_exact_match(const std::vector<int>& targets, const std::vector<int>& predictions,
                         const std::vector<std::string>& groups);

// SQuAD answer normalisation (T5's normalize_squad): lowercase, drop ASCII punctuation,
// drop the words a / an / the, collapse whitespace to single spaces, trim.
std::string normalize_squad(const std::string& text);

struct SquadScore {
  double em = 0;  // 0 or 1
  double f1 = 0;  // in [0, 1]
};
// The best exact match and token F1 of prediction against any of the answers, both
// normalised first (T5's squad metric per example; x1, not x100). Throws when answers is
// empty.
SquadScore squad_max_over_answers(const std::vector<std::string>& answers,
                                  const std::string& prediction);

// T5's wsc_simple postprocessor: 1 when prediction names the referent, ignoring case and
// determiners (either word set may contain the other: "fuzzy bunny" vs "bunny", but a
// possessive on one side only, "Bob" vs "Bob's hat", is no match), 0 when it does not, and
// -1 when the prediction is empty once determiners are dropped, so that it never equals an
// example's 0/1 label.
int wsc_simple_class(const std::string& prediction, const std::string& referent);

}  // namespace sp
