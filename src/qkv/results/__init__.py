"""Reference results as evidence in the repository: ``results/<recipe>/`` folders and the page made from them.

- :mod:`qkv.results.collect` scores a finished run and writes its folder (resolved config, metrics log,
  sample outputs, every output of the headline decoding, ``result.json``);
- :mod:`qkv.results.paired` tests two folders against each other on the same examples (paired bootstrap);
- :mod:`qkv.results.seeds` summarises folders that are one recipe under several seeds (mean, spread, and
  where the published number lies among them);
- :mod:`qkv.results.anchors` holds the published numbers each recipe is compared with, and their sources;
- :mod:`qkv.results.page` turns the folders into ``docs/results.md`` (so the table cannot drift from the
  evidence; a test checks the page equals what it generates).
"""

from qkv.results.collect import RESULT_FILE, ResultRecord, collect_run, load_results, results_root

__all__ = ["RESULT_FILE", "ResultRecord", "collect_run", "load_results", "results_root"]
