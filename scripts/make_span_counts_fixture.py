#!/usr/bin/env python3
"""Writes tests/fixtures/span_counts.json: T5's span-corruption counting formulas.

A direct NumPy transcription of google-research/text-to-text-transfer-transformer
t5/data/preprocessors.py:
  * random_spans_noise_mask: num_noise_tokens and num_noise_spans, computed as TensorFlow
    does there (to_float = float32, tf.round = round half to even, then the clamps);
  * random_spans_helper: tokens_length and targets_length for an inputs_length (Python
    float64 and round(), no clamps, the noise_density == 0.5 adjustment).
tests/unit/span_corruption_test.cpp checks sp::noise_span_counts and
sp::random_spans_helper against every entry.

Usage: python3 scripts/make_span_counts_fixture.py [output path]
"""
import json
import os
import sys

import numpy as np

# (noise_density, mean_noise_span_length, max mask length, max inputs_length)
CONFIGS = [(0.15, 3.0, 2000, 1100), (0.5, 3.0, 400, 300), (0.3, 8.0, 400, 300)]


def mask_counts(length, noise_density, mean_noise_span_length):
  length = max(length, 2)
  num_noise = int(np.round(np.float32(length) * np.float32(noise_density)))
  num_noise = min(max(num_noise, 1), length - 1)
  num_spans = int(np.round(np.float32(num_noise) / np.float32(mean_noise_span_length)))
  return num_noise, max(num_spans, 1)


def random_spans_helper(inputs_length, noise_density, mean_noise_span_length):
  def lengths(tokens_length):
    num_noise = int(round(tokens_length * noise_density))
    num_nonnoise = tokens_length - num_noise
    num_spans = int(round(num_noise / mean_noise_span_length))
    return num_nonnoise + num_spans + 1, num_noise + num_spans + 1

  tokens_length = inputs_length - 1
  while lengths(tokens_length + 1)[0] <= inputs_length:
    tokens_length += 1
  _, targets_length = lengths(tokens_length)
  if noise_density == 0.5 and targets_length > inputs_length:
    tokens_length -= 1
    targets_length -= 1
  return tokens_length, targets_length


def main():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
      root, 'tests', 'fixtures', 'span_counts.json')
  configs = []
  for density, mean, max_length, max_inputs in CONFIGS:
    counts = [mask_counts(n, density, mean) for n in range(max_length + 1)]
    helper = [random_spans_helper(n, density, mean) for n in range(2, max_inputs + 1)]
    configs.append({
        'noise_density': density,
        'mean_noise_span_length': mean,
        'first_length': 0,
        'num_noise': [c[0] for c in counts],
        'num_spans': [c[1] for c in counts],
        'first_inputs_length': 2,
        'tokens_length': [h[0] for h in helper],
        'targets_length': [h[1] for h in helper],
    })
  with open(out, 'w') as f:
    f.write('{"generator": "scripts/make_span_counts_fixture.py",\n "configs": [\n')
    for i, c in enumerate(configs):
      f.write('  {')
      f.write(',\n   '.join('"%s": %s' % (k, json.dumps(v, separators=(',', ':')))
                            for k, v in c.items()))
      f.write('}' + (',\n' if i + 1 < len(configs) else '\n'))
    f.write(' ]}\n')


if __name__ == '__main__':
  main()
