"""Beam programs run unchanged with `import millstream as beam`, and give exactly what Apache Beam gives.

Each program in `programs/` imports only `millstream` under Beam's module paths. The tests load it twice: as
written, and with `millstream` replaced by `apache_beam` (then run on Beam's DirectRunner); both runs must
produce the same multiset of outputs, and that must be the expected result. Running the rewritten text on real
Beam proves the program is Beam code, not merely Beam-looking code.
"""

from __future__ import annotations

import ast
import collections
import importlib
import math
import re
from typing import Any

import pytest

pytest.importorskip("apache_beam")

import support.beam_harness as h  # noqa: E402

LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "The dog's bark; the fox's den -- and the 2 foxes' dens!",
    "   ",
    "über naïve café, the end",
]

#: The raw (uncanonicalised) captures of the last run on each engine.
RAW: dict[str, dict[str, list]] = {}


def run_program(
    name: str, engine: str, *args: Any, flags: tuple[str, ...] = ()
) -> tuple[dict[str, list], Any]:
    """Run `programs/<name>.py` on one engine; returns (captured multisets, what its run() returned)."""
    module = h.load_program(name, engine)
    h.STORE.clear()

    def capture(pcoll: Any, label: str) -> Any:
        return h.capture(module.beam, pcoll, label)

    returned = module.run(*args, argv=["--runner=DirectRunner", *flags], capture=capture)
    RAW[engine] = {k: list(v) for k, v in h.STORE.items()}
    outputs = {k: h.multiset(v) for k, v in h.STORE.items()}
    h.STORE.clear()
    return outputs, returned


def run_both(
    name: str, *args: Any, flags: tuple[str, ...] = (), random_outputs: tuple[str, ...] = ()
) -> tuple[dict[str, list], Any, Any]:
    """Run a program on millstream and on Beam; their outputs must agree (except the `random_outputs`, which
    are sampled). Returns (millstream's outputs, what run() returned on millstream, what it returned on Beam)."""
    ms_out, ms_ret = run_program(name, "millstream", *args, flags=flags)
    beam_out, beam_ret = run_program(name, "beam", *args, flags=flags)
    assert sorted(ms_out) == sorted(beam_out), "the two engines captured different outputs"
    for label in set(beam_out) - set(random_outputs):
        assert ms_out[label] == beam_out[label], f"output {label!r} differs from Beam's"
    return ms_out, ms_ret, beam_ret


def test_programs_import_only_millstream_under_beams_module_paths():
    for path in sorted(h.PROGRAMS.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.module is not None
                imported.append(node.module)
        ours = [m for m in imported if m.split(".")[0] == "millstream"]
        assert ours, f"{path.name} does not import millstream"
        for module_path in ours:
            importlib.import_module(module_path)
            importlib.import_module(module_path.replace("millstream", "apache_beam", 1))
        # Outside the docstring and the imports the text never names millstream: the rewrite touches imports only.
        docstring_end = tree.body[0].end_lineno if ast.get_docstring(tree) else 0
        lines = path.read_text().splitlines()[docstring_end or 0 :]
        body = [ln for ln in lines if not ln.startswith(("import ", "from "))]
        assert not any("millstream" in ln for ln in body), f"{path.name} names millstream outside imports"


def expected_word_counts(pattern: str) -> collections.Counter[str]:
    """The oracle: word counts computed directly in Python."""
    return collections.Counter(w for line in LINES for w in re.findall(pattern, line))


def test_wordcount():
    out, _, _ = run_both("wordcount", LINES)
    counts = expected_word_counts(r"[\w\']+")
    assert out["wordcount"] == h.multiset(f"{w}: {n}" for w, n in counts.items())
    assert {"the: 4", "The: 2", "dog's: 1", "2: 1", "über: 1", "naïve: 1"} <= set(out["wordcount"])
    minimal = expected_word_counts(r"[A-Za-z\']+")
    assert out["minimal"] == h.multiset(f"{w}: {n}" for w, n in minimal.items())
    assert "ber: 1" in out["minimal"]


def test_wordcount_reading_and_writing_files(tmp_path, monkeypatch):
    """Beam's wordcount.py itself: its own argparse flags, ReadFromText and WriteToText on real files."""
    monkeypatch.chdir(tmp_path)  # millstream keeps a file pipeline's checkpoints under ./.millstream
    source = tmp_path / "input.txt"
    source.write_text("\n".join(LINES) + "\n")
    written = {}
    for engine in ("millstream", "beam"):
        module = h.load_program("wordcount_files", engine)
        prefix = tmp_path / engine / "counts"
        prefix.parent.mkdir()
        module.run(["--input", str(source), "--output", str(prefix), "--runner=DirectRunner"])
        files = sorted(p for p in prefix.parent.iterdir() if p.name.startswith("counts") and p.is_file())
        assert files, f"{engine} wrote no output file"
        written[engine] = sorted(line for f in files for line in f.read_text().splitlines())
    counts = expected_word_counts(r"[\w\']+")
    assert written["millstream"] == written["beam"] == sorted(f"{w}: {n}" for w, n in counts.items())


def test_cogroupbykey_join():
    out, _, _ = run_both("cogroupbykey_join")
    module = h.load_program("cogroupbykey_join", "millstream")
    assert out["contact_lines"] == h.multiset(module.EXPECTED)
    assert out["counts"] == h.multiset([("amy", 1, 2), ("carl", 2, 1), ("james", 0, 1), ("julia", 1, 0)])
    assert len(out["joined"]) == 4


def test_average_combinefn():
    out, _, _ = run_both("average_fn")
    assert out["average"] == [277.75]
    assert out["per_key"] == h.multiset([("cat", 4.0), ("dog", 5.0)])
    assert out["combine_values"] == out["per_key"]
    assert out["sums"] == h.multiset([("cat", 16), ("dog", 15)])
    assert out["empty_average"] == ["NaN"]
    assert out["empty_sum"] == []


def test_side_inputs():
    out, _, _ = run_both("side_inputs")
    assert out["multiplied"] == h.multiset([10, 20, 30, 40])
    assert out["small_words"] == h.multiset(["a", "bb", "ccc"])
    assert out["larger_than_average"] == h.multiset(["dddd", "eeeee", "ffffff", "ggggggg"])
    assert out["looked_up"] == h.multiset([("a", 1), ("b", 2), ("a", 1)])
    assert out["scaled"] == h.multiset([10, 20, 30, 40, 110, 120, 130, 140])
    assert len(out["with_all"]) == 4


def test_multiple_outputs():
    out, _, _ = run_both("multiple_outputs")
    assert out["below"] == h.multiset(["a", "xb", "e", "xf"])
    assert out["above"] == [3, 5]
    assert out["marked"] == h.multiset(["xb", "xdddd", "xf"])
    assert out["unpacked"] == h.multiset(["a", "xb", "e", "xf", 3, 5, "xb", "xdddd", "xf"])
    assert out["evens"] == h.multiset([2, 10, 20]) and out["odds"] == h.multiset([1, 3, 25])
    assert out["tens"] == h.multiset([10, 20])


def test_custom_options_with_value_providers():
    lines = ["a bb ccc", "dddd e"]
    flags = ("--compat_min_length=2", "--compat_label", "kept", "--compat_prefix=>", "--compat_repeat=2")
    out, ms_settings, beam_settings = run_both("custom_options", lines, flags=flags)
    assert out == {"kept": h.multiset([">>bb", ">>ccc", ">>dddd"])}
    assert (
        ms_settings
        == beam_settings
        == {
            "min_length": 2,
            "label": "kept",
            "streaming": False,
            "save_main_session": True,
        }
    )
    out, ms_settings, beam_settings = run_both("custom_options", lines)
    assert out == {"words": h.multiset(["w:a", "w:bb", "w:ccc", "w:dddd", "w:e"])}
    assert ms_settings == beam_settings


def test_partition():
    out, _, _ = run_both("partition")
    assert out["decile0"] == [("ann", 3), ("gus", 0)]
    assert out["decile4"] == [("bob", 47), ("cid", 45), ("eve", 40)]
    assert out["decile9"] == [("dee", 99)]
    assert out["annuals"] == ["Tomato"] and out["biennials"] == ["Carrot"]
    assert out["perennials"] == ["Eggplant", "Potato", "Strawberry"]
    assert (out["short"], out["middle"], out["long"]) == (["a", "bb"], [], ["ccc", "dddd"])
    assert len(out["everyone"]) == 7


def test_combiners_library():
    out, _, _ = run_both("combiners_library", random_outputs=("sample", "sample_per_key"))
    assert out["count_globally"] == [7] and out["beam_combiners_count"] == [5]
    assert out["count_per_key"] == h.multiset([("a", 3), ("b", 2), ("c", 1)])
    assert out["count_per_element"] == h.multiset([("pear", 1), ("fig", 2), ("banana", 1), ("kiwis", 1)])
    assert math.isclose(out["mean_globally"][0], 36 / 7)
    assert out["mean_per_key"] == h.multiset([("a", 11 / 3), ("b", 7.0), ("c", 5.0)])
    assert out["top_largest"] == h.multiset([[9, 9]])
    assert out["top_reverse"] == out["top_smallest"] == h.multiset([[1, 2]])
    assert out["top_by_len"] == h.multiset([["banana", "kiwis"]])
    assert out["largest_per_key"] == h.multiset([("a", [7]), ("b", [10]), ("c", [5])])
    assert out["smallest_per_key"] == h.multiset([("a", [1]), ("b", [4]), ("c", [5])])
    assert out["to_list"] == h.multiset([[5, 1, 9, 3, 7, 9, 2]])
    assert out["to_dict"] == h.multiset([{"fr": "Paris", "it": "Rome", "jp": "Tokyo"}])
    assert out["to_set"] == h.multiset([{"pear", "fig", "banana", "kiwis"}])
    # Samples are random: check each engine's is a sub-multiset of the input, of the right size.
    numbers = h.load_program("combiners_library", "millstream").NUMBERS
    for engine, raw in RAW.items():
        (sample,) = raw["sample"]
        assert len(sample) == 3 and all(sample.count(x) <= numbers.count(x) for x in sample), engine
        per_key = dict(raw["sample_per_key"])
        assert sorted(per_key) == ["a", "b", "c"] and [len(per_key[k]) for k in "abc"] == [2, 2, 1], engine
        assert set(per_key["a"]) <= {3, 1, 7} and sorted(per_key["b"]) == [4, 10], engine


def test_distinct_flatten_and_keyed_helpers():
    out, _, _ = run_both("distinct_flatten")
    assert out["merged"] == h.multiset([1, 2, 2, 3, 3, 4]) and out["merged_list"] == out["merged"]
    assert out["distinct"] == h.multiset([1, 2, 3, 4])
    assert out["distinct_tuples"] == h.multiset([("x", 1), ("y", 2), ("x", 2)])
    assert out["keys"] == h.multiset(["x", "x", "y", "x"]) and out["values"] == [1, 1, 2, 2]
    assert out["swapped"] == h.multiset([(1, "x"), (1, "x"), (2, "y"), (2, "x")])
    assert out["keyed"] == h.multiset([(1, 1), (0, 2), (0, 2), (1, 3)])


def test_user_metrics():
    out, ms_report, beam_report = run_both("user_metrics", LINES)
    assert out["counts"] == h.multiset(expected_word_counts(r"[\w\']+").items())
    for report, engine in ((ms_report, "millstream"), (beam_report, "beam")):
        namespace = f"_compat_{engine}_user_metrics.WordExtractingDoFn"
        assert report["words"] == [("Split", namespace, 25)], engine
        assert report["empty_lines"] == [("Split", namespace, 2)], engine
        assert report["groups"] == [("Count", "wordcount", len(out["counts"]))], engine
        assert report["in_namespace"] == ["empty_lines", "word_lengths", "words"], engine
        assert report["in_step_count"] == ["groups"], engine
    assert ms_report["word_lengths"][0][2] == beam_report["word_lengths"][0][2]
    assert ms_report["word_len_dist"] == beam_report["word_len_dist"]
    (_, count, total, low, high, mean) = ms_report["word_len_dist"][0]
    assert (count, total, low, high) == (
        25,
        sum(len(w) for w in re.findall(r"[\w\']+", " ".join(LINES))),
        1,
        6,
    )
    assert mean == total / count
