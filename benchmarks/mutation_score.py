"""Mutation score of pixfind's core modules, one module at a time, with mutmut 3.

    python benchmarks/mutation_score.py                      # every module in MODULES
    python benchmarks/mutation_score.py fingerprint query    # some of them (keys of MODULES)
    python benchmarks/mutation_score.py --list               # the modules and their tests
    python benchmarks/mutation_score.py query --timeout 900  # a hard limit per module (seconds)
    python benchmarks/mutation_score.py indexer --sample 120 # a seeded random sample of its mutants

For each module: a scratch copy of the repository (desktop_app, model_training, tests,
resources, pyproject.toml; git's tracked and unignored files, so work in progress is included) gets a
[tool.mutmut] section that mutates that module only and runs only the fast tests that cover
it (MODULES below), then `mutmut run` mutates it, and the script prints per module the
mutation score (killed / (killed + survived); timeouts and segfaults count as killed, mutants
no test reaches as survived) and every surviving mutant as a diff. Not in CI: it takes
minutes per module on two cores. The scratch copies live under --work (default
$TMPDIR/pixfind-mutation) and are reused: mutmut only re-runs mutants whose code changed.

Big modules whose covering tests take seconds (indexer, vector index, duplicates: a real library
per test) have hundreds of mutants, hours of testing on two cores: ``--sample N`` tests a seeded
random sample of N of them instead (mutant sampling; the score then comes with its 95% Wilson
interval: about +-7 points for 120 mutants near 85%).

Tests that run pixfind in a subprocess (`pixfind index` processes) cannot see mutants (the
subprocess imports the original code), so the map lists in-process tests only.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# module key -> (file, pytest arguments selecting the fast tests that cover it, mutant name patterns).
# The patterns (fnmatch, as `mutmut run` takes them; empty: every mutant) keep a module to the part
# the issue asks about (the encoder's provider choice). Tests of a module's own kill list go first.
MODULES: dict[str, tuple[str, list[str], list[str]]] = {
    "fingerprint": ("desktop_app/library/fingerprint.py",
                    ["tests/unit/test_regressions_core.py", "tests/unit/test_properties.py", "-k", "fingerprint"], []),
    "query": ("desktop_app/library/query.py", ["tests/unit/test_query_language.py", "tests/unit/test_mutation_kills.py"], []),
    "losses": ("model_training/losses.py",
               ["tests/unit/test_losses.py", "tests/unit/test_regressions_core.py", "tests/unit/test_mutation_kills_more.py",
                "-k", "arcface or mcip or loss or caption or clip or siglip or positives"], []),
    "metrics": ("model_training/evaluation/metrics.py",
                ["tests/unit/test_eval_metrics.py", "tests/unit/test_mutation_kills.py"], []),
    "encoder": ("desktop_app/encoder.py",
                ["tests/unit/test_encoder_mutants.py", "tests/unit/test_regressions_core.py", "tests/integration/test_encoder.py",
                 "-k", "mutants or provider or cuda"],
                ["desktop_app.encoder.x_default_providers*", "desktop_app.encoder.x__cuda_device_present*",
                 "desktop_app.encoder.xǁEncoderǁproviders*", "desktop_app.encoder.xǁEncoderǁactive_provider*"]),
    "preprocess": ("desktop_app/preprocess.py",
                   ["tests/unit/test_preprocess_mutants.py", "tests/unit/test_preprocess_parity.py", "tests/unit/test_properties.py",
                    "tests/unit/test_regressions_core.py", "tests/unit/test_mutation_kills_more.py",
                    "-k", "not tokenizer and not fingerprint and not date"], []),
    "text_tokenizer": ("desktop_app/text_tokenizer.py",
                       ["tests/unit/test_tokenizer_mutants.py", "tests/unit/test_tokenizer_parity.py", "tests/unit/test_properties.py",
                        "tests/unit/test_pack_format2.py",
                        "-k", "not preprocessing and not date and not fingerprint"], []),
    "search": ("desktop_app/library/search.py",
               ["tests/unit/test_search_mutants.py", "tests/integration/test_library_search.py",
                "tests/integration/test_regressions_library.py", "tests/integration/test_ocr_text_search.py",
                "tests/integration/test_services.py", "tests/integration/test_search_rows.py",
                "tests/integration/test_relevance_cutoff.py", "tests/unit/test_properties.py",
                "-k", "not watch and not preprocessing and not tokenizer and not window and not sigkill and not second_indexer"
                      " and not starter and not cancel and not remove_folder and not model_service"], []),
    "vector_index": ("desktop_app/library/vector_index.py",
                     ["tests/unit/test_vector_index_mutants.py", "tests/unit/test_index_recall.py",
                      "tests/integration/test_library_vector_index.py"], []),
    "duplicates": ("desktop_app/library/duplicates.py",
                   ["tests/unit/test_duplicates_mutants.py", "tests/integration/test_duplicates_honest.py", "tests/integration/test_library_search.py",
                    "tests/integration/test_services.py",
                    "-k", "duplicate or textures or best_copy or chain or hnswlib_path or cli_shows"], []),
    # -k filters the kill files too: their test names avoid the words these selections leave out.
    "indexer": ("desktop_app/library/indexer.py",
                ["tests/unit/test_indexer_mutants.py", "tests/integration/test_library_index.py",
                 "tests/integration/test_library_faults.py", "tests/integration/test_regressions_library.py",
                 "-k", "not sigkill and not ctrl_c and not second_indexer and not window and not after_ and not before_"
                       " and not camera and not switching_model"], []),
}


def _files_to_copy() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z",
                          "desktop_app", "model_training", "tests", "resources", "pyproject.toml"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and (REPO / p).is_file()]


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare(key: str, work: Path) -> Path:
    path, tests, _ = MODULES[key]
    tests = [t for t in tests if not t.endswith(".py") or (REPO / t).is_file()]  # a kill list not written yet
    root = work / key
    root.mkdir(parents=True, exist_ok=True)
    tests_changed = False
    for rel in _files_to_copy():
        src, dst = REPO / rel, root / rel
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            before = dst.read_bytes().replace(_CACHED_FIXTURES.encode(), b"") if dst.exists() else None
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            tests_changed = tests_changed or (rel.startswith("tests/") and before != src.read_bytes())
    if tests_changed:
        # mutmut maps each function to the tests that ran it once, and keeps that map: a test
        # changed since then to reach another function would never be run against its mutants.
        (root / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    text = (REPO / "pyproject.toml").read_text()
    text = re.split(r"(?m)^\[tool\.mutmut\]", text)[0].rstrip() + "\n\n"
    text += "\n".join([
        "[tool.mutmut]",
        'source_paths = ["desktop_app", "model_training"]',
        f"only_mutate = {_toml_list([path])}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-p", "no:randomly"]',
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
        'process_isolation = "forkserver"',
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
        "timeout_constant = 10.0",
        "",
    ])
    (root / "pyproject.toml").write_text(text)
    _reuse_tiny_pack(root)
    return root


# Appended to the scratch copy's tests/conftest.py: every mutant's pytest session would otherwise
# export the tiny pack again with torch (tens of seconds each); it is built once per scratch copy,
# from the unmutated code, and each session gets a fresh copy of it.
_CACHED_FIXTURES = """

# ---- added by benchmarks/mutation_score.py (scratch copy only) ----
@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    return Path(os.environ["PIXFIND_MUTATION_CACHE"]) / "tiny.pth"


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("packs") / "tiny"
    shutil.copytree(Path(os.environ["PIXFIND_MUTATION_CACHE"]) / "tiny", out)
    return out
"""

_BUILD_CACHE = """
import sys
from pathlib import Path
from tests.conftest import TINY_CONFIG, save_tiny_checkpoint
from model_training.export import export_pack
cache = Path(sys.argv[1])
cache.mkdir(parents=True, exist_ok=True)
export_pack(str(TINY_CONFIG), cache / "tiny", checkpoint=save_tiny_checkpoint(cache / "tiny.pth"), name="tiny")
"""


def _reuse_tiny_pack(root: Path) -> None:
    conftest = root / "tests" / "conftest.py"
    text = conftest.read_text()
    if "def tiny_pack(" in text and _CACHED_FIXTURES not in text:
        conftest.write_text(text + _CACHED_FIXTURES)
    cache = root / ".tiny-pack-cache"
    if not (cache / "tiny" / "pack.json").exists():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run([sys.executable, "-c", _BUILD_CACHE, str(cache)], cwd=root, check=True, capture_output=True)


def _meta(root: Path, path: str) -> dict:
    meta = root / "mutants" / (path + ".meta")
    return json.loads(meta.read_text()) if meta.exists() else {}


def _diff(root: Path, name: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=root, capture_output=True, text=True)
    lines = [line for line in shown.stdout.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    return " | ".join(line.strip() for line in lines) or shown.stdout.strip()[:300]


def _wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a score measured on a random sample of ``n`` mutants."""
    if n == 0:
        return float("nan"), float("nan")
    p = killed / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def run(key: str, work: Path, timeout: float, jobs: int, sample: int = 0, seed: int = 0) -> dict:
    path, _, patterns = MODULES[key]
    root = prepare(key, work)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PIXFIND_MUTATION_CACHE=str(root / ".tiny-pack-cache"))
    start = time.monotonic()

    def mutmut_run(names: list[str]) -> subprocess.CompletedProcess:
        left = timeout - (time.monotonic() - start)
        return subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names], cwd=root, env=env,
                              capture_output=True, text=True, timeout=max(1.0, left))

    def matching(codes: dict) -> dict:
        return {n: c for n, c in codes.items() if not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)}

    from mutmut.stats import status_by_exit_code  # mutmut's own reading of its exit codes

    note, selected = "", list(patterns)
    try:
        if sample:
            # Generate the mutants (and mutmut's test map) without testing any: no mutant has this name.
            mutmut_run(["pixfind-generate-only"])
            codes = matching(_meta(root, path).get("exit_code_by_key", {}))
            selected = sorted(random.Random(seed).sample(sorted(codes), min(sample, len(codes))))
            # mutmut forgets a verdict when the mutated function changes; a kill stands while the tests stay
            to_test = [n for n in selected if codes[n] is None or status_by_exit_code[codes[n]] in ("survived", "no tests")]
        else:
            to_test = selected
        proc = mutmut_run(to_test) if to_test or not sample else None
        note = "" if proc is None or proc.returncode == 0 else f"mutmut exited {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}"
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:.0f} s: the score covers the mutants tested so far"

    def verdicts_now() -> dict[str, str]:
        codes = matching(_meta(root, path).get("exit_code_by_key", {}))
        if sample:
            codes = {n: c for n, c in codes.items() if n in set(selected)}
        return {name: "not run" if code is None else status_by_exit_code[code] for name, code in codes.items()}

    # mutmut caches verdicts per mutant and does not notice new tests: check the survivors again by name
    # (a sample's survivors were just tested by name)
    alive = [n for n, v in verdicts_now().items() if v in ("survived", "no tests")]
    if alive and not sample and not note and timeout - (time.monotonic() - start) > 30:
        try:
            mutmut_run(alive)
        except subprocess.TimeoutExpired:
            note = f"stopped after {timeout:.0f} s while re-checking survivors"
    seconds = time.monotonic() - start
    verdicts = verdicts_now()
    killed = sum(v in ("killed", "timeout", "segfault") for v in verdicts.values())
    survived = [n for n, v in verdicts.items() if v in ("survived", "no tests")]
    score = killed / (killed + len(survived)) if killed + len(survived) else float("nan")
    return {"module": key, "file": path, "mutants": len(verdicts), "killed": killed, "survived": survived,
            "not_run": sum(v == "not run" for v in verdicts.values()), "score": score, "seconds": seconds,
            "note": note, "root": root, "sampled": bool(sample), "interval": _wilson(killed, killed + len(survived))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"keys of MODULES (default: all): {', '.join(MODULES)}")
    parser.add_argument("--timeout", type=float, default=3600, help="hard limit per module, seconds")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="mutants tested at once")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pixfind-mutation")
    parser.add_argument("--sample", type=int, default=0,
                        help="test a random sample of this many mutants per module (0: all); the score then comes with"
                             " its 95%% interval")
    parser.add_argument("--seed", type=int, default=0, help="the sample's random seed")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    args = parser.parse_args(argv)
    if args.list:
        for key, (path, tests, patterns) in MODULES.items():
            print(f"{key:15} {path:42} {' '.join(tests)}" + (f"  mutants: {' '.join(patterns)}" if patterns else ""))
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    results = []
    for key in args.modules or list(MODULES):
        r = run(key, args.work, args.timeout, args.jobs, args.sample, args.seed)
        results.append(r)
        what = f"a random sample of {r['mutants']} mutants (seed {args.seed})" if r["sampled"] else f"{r['mutants']} mutants"
        print(f"\n== {r['file']}: score {r['score']:.1%} ({r['killed']} killed of {r['killed'] + len(r['survived'])} tested"
              f" of {what}; {r['not_run']} not run) in {r['seconds']:.0f} s {r['note']}")
        for name in r["survived"]:
            print(f"   survived {name}: {_diff(r['root'], name)}")
        sys.stdout.flush()
    print("\nmodule           score   killed/tested   95% interval (sampled modules)")
    for r in results:
        low, high = r["interval"]
        spread = f"{low:.1%} - {high:.1%}" if r["sampled"] else ""
        print(f"{r['module']:15} {r['score']:7.1%}   {r['killed']:>4}/{r['killed'] + len(r['survived']):<4}     {spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
