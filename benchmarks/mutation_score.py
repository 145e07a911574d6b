"""Mutation score of pixfind's core modules, one module at a time, with mutmut 3.

    python benchmarks/mutation_score.py                      # every module in MODULES
    python benchmarks/mutation_score.py fingerprint query    # some of them (keys of MODULES)
    python benchmarks/mutation_score.py --list               # the modules and their tests
    python benchmarks/mutation_score.py query --timeout 900  # a hard limit per module (seconds)

For each module: a scratch copy of the repository (desktop_app, model_training, tests,
pyproject.toml; git's tracked and unignored files, so work in progress is included) gets a
[tool.mutmut] section that mutates that module only and runs only the fast tests that cover
it (MODULES below), then `mutmut run` mutates it, and the script prints per module the
mutation score (killed / (killed + survived); timeouts and segfaults count as killed, mutants
no test reaches as survived) and every surviving mutant as a diff. Not in CI: it takes
minutes per module on two cores. The scratch copies live under --work (default
$TMPDIR/pixfind-mutation) and are reused: mutmut only re-runs mutants whose code changed.

Tests that run pixfind in a subprocess (`pixfind index` processes) cannot see mutants (the
subprocess imports the original code), so the map lists in-process tests only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# module key -> (file, pytest arguments selecting the fast tests that cover it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "fingerprint": ("desktop_app/library/fingerprint.py",
                    ["tests/unit/test_regressions_core.py", "tests/unit/test_properties.py", "-k", "fingerprint"]),
    "query": ("desktop_app/library/query.py", ["tests/unit/test_query_language.py", "tests/unit/test_mutation_kills.py"]),
    "losses": ("model_training/losses.py",
               ["tests/unit/test_losses.py", "tests/unit/test_regressions_core.py", "tests/unit/test_mutation_kills_more.py", "-k", "arcface or mcip or loss or caption or clip or siglip or positives"]),
    "metrics": ("model_training/evaluation/metrics.py",
                ["tests/unit/test_eval_metrics.py", "tests/unit/test_mutation_kills.py"]),
    "encoder": ("desktop_app/encoder.py", ["tests/integration/test_encoder.py", "tests/unit/test_regressions_core.py", "-k", "provider or cuda or encoder or pack or graph"]),
    "preprocess": ("desktop_app/preprocess.py", ["tests/unit/test_preprocess_parity.py", "tests/unit/test_properties.py",
                                                 "tests/unit/test_regressions_core.py", "tests/unit/test_mutation_kills_more.py", "-k", "not tokenizer and not fingerprint and not date"]),
    "text_tokenizer": ("desktop_app/text_tokenizer.py", ["tests/unit/test_tokenizer_parity.py", "tests/unit/test_properties.py", "-k", "not preprocessing and not date and not fingerprint"]),
    "search": ("desktop_app/library/search.py", ["tests/integration/test_library_search.py", "tests/unit/test_properties.py", "-k", "not watch and not preprocessing and not tokenizer"]),
    "vector_index": ("desktop_app/library/vector_index.py", ["tests/integration/test_library_vector_index.py"]),
    "duplicates": ("desktop_app/library/duplicates.py", ["tests/integration/test_library_search.py", "tests/integration/test_services.py", "-k", "duplicate"]),
    "indexer": ("desktop_app/library/indexer.py", ["tests/integration/test_library_index.py", "tests/integration/test_library_faults.py", "-k", "not sigkill and not ctrl_c"]),
}



def _files_to_copy() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z",
                          "desktop_app", "model_training", "tests", "pyproject.toml"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and (REPO / p).is_file()]


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare(key: str, work: Path) -> Path:
    path, tests = MODULES[key]
    root = work / key
    root.mkdir(parents=True, exist_ok=True)
    for rel in _files_to_copy():
        src, dst = REPO / rel, root / rel
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
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
    return root


def _meta(root: Path, path: str) -> dict:
    meta = root / "mutants" / (path + ".meta")
    return json.loads(meta.read_text()) if meta.exists() else {}


def _diff(root: Path, name: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=root, capture_output=True, text=True)
    lines = [line for line in shown.stdout.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    return " | ".join(line.strip() for line in lines) or shown.stdout.strip()[:300]


def run(key: str, work: Path, timeout: float, jobs: int) -> dict:
    path, _ = MODULES[key]
    root = prepare(key, work)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)], cwd=root, env=env,
                              capture_output=True, text=True, timeout=timeout)
        note = "" if proc.returncode == 0 else f"mutmut exited {proc.returncode}: {(proc.stderr or proc.stdout)[-400:]}"
    except subprocess.TimeoutExpired:
        note = f"stopped after {timeout:.0f} s: the score covers the mutants tested so far"
    from mutmut.stats import status_by_exit_code  # mutmut's own reading of its exit codes

    def verdicts_now() -> dict[str, str]:
        codes = _meta(root, path).get("exit_code_by_key", {})
        return {name: "not run" if code is None else status_by_exit_code[code] for name, code in codes.items()}

    # mutmut caches verdicts per mutant and does not notice new tests: check the survivors again by name
    alive = [n for n, v in verdicts_now().items() if v in ("survived", "no tests")]
    left = timeout - (time.monotonic() - start)
    if alive and not note and left > 30:
        try:
            subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *alive], cwd=root, env=env,
                           capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            note = f"stopped after {timeout:.0f} s while re-checking survivors"
    seconds = time.monotonic() - start
    verdicts = verdicts_now()
    killed = sum(v in ("killed", "timeout", "segfault") for v in verdicts.values())
    survived = [n for n, v in verdicts.items() if v in ("survived", "no tests")]
    score = killed / (killed + len(survived)) if killed + len(survived) else float("nan")
    return {"module": key, "file": path, "mutants": len(verdicts), "killed": killed, "survived": survived,
            "not_run": sum(v == "not run" for v in verdicts.values()), "score": score, "seconds": seconds,
            "note": note, "root": root}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"keys of MODULES (default: all): {', '.join(MODULES)}")
    parser.add_argument("--timeout", type=float, default=3600, help="hard limit per module, seconds")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="mutants tested at once")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pixfind-mutation")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    args = parser.parse_args(argv)
    if args.list:
        for key, (path, tests) in MODULES.items():
            print(f"{key:15} {path:42} {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    results = []
    for key in args.modules or list(MODULES):
        r = run(key, args.work, args.timeout, args.jobs)
        results.append(r)
        print(f"\n== {r['file']}: score {r['score']:.1%} ({r['killed']} killed of {r['killed'] + len(r['survived'])}"
              f"; {r['not_run']} not run) in {r['seconds']:.0f} s {r['note']}")
        for name in r["survived"]:
            print(f"   survived {name}: {_diff(r['root'], name)}")
        sys.stdout.flush()
    print("\nmodule           score   killed/tested")
    for r in results:
        print(f"{r['module']:15} {r['score']:7.1%}   {r['killed']}/{r['killed'] + len(r['survived'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
