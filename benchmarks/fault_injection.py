"""Seeded fault injection (issue 12): kill -9 at random moments, then damaged libraries and photos.

Drives the real `pixfind` console script in a temporary PIXFIND_HOME with a tiny random-weight
model pack and generated photos. Kill cases SIGKILL `pixfind index` (new library, or a folder with
added / deleted / modified / moved / copied photos), `pixfind models import` and `pixfind search`
after a random delay spread over the run's measured duration (start-up's first half skipped), then check that the library is
consistent, that the next run completes it, and that every photo is indexed exactly once. Damage
cases break a copy of an indexed library (or one of its photos) and run `status`, `search` and
`index`: each must succeed or end in one `pixfind: error:` line, and after `library repair` (when
the error points at it) and `index`, everything indexed that still exists is indexed again.

    python benchmarks/fault_injection.py --seed 1 --kills 20 --photos 60
    python benchmarks/fault_injection.py --quick

Prints a table (case, tries, survived, first failure) and `fault injection (seed S): N tried, M
survived`; exits 1 when anything did not survive. Deterministic for a seed, except kill timing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_cases import (
    LIBRARY_DAMAGE,
    PHOTO_DAMAGE,
    Failure,
    Pixfind,
    build_pack,
    check,
    check_complete,
    check_consistent,
    files_in,
    fingerprint,
    make_photo,
    make_photos,
)

KINDS = ["index", "import", "index", "search", "index", "index"]


class Run:
    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.px = Pixfind(work / "home")
        self.rows: dict[str, dict] = {}

    def attempt(self, case: str, fn, *a) -> None:
        row = self.rows.setdefault(case, {"tries": 0, "survived": 0, "failures": [], "notes": {}})
        row["tries"] += 1
        started = time.monotonic()
        try:
            note = fn(*a)
            row["survived"] += 1
            if note:
                row["notes"][note] = row["notes"].get(note, 0) + 1
            verdict = "survived" + (f" ({note})" if note else "")
        except Failure as e:
            verdict = str(e).splitlines()[0]
            row["failures"].append(verdict)
        except Exception as e:  # noqa: BLE001  (a bug in this script, not in pixfind: still not survived)
            verdict = f"harness error: {type(e).__name__}: {e}"
            row["failures"].append(verdict)
            traceback.print_exc()
        print(f"  {case}: {verdict} [{time.monotonic() - started:.1f} s]", file=sys.stderr, flush=True)

    def timed(self, *args) -> float:
        started = time.monotonic()
        self.px.ok(*args)
        return time.monotonic() - started

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        self.pack = Path(self.args.pack) if self.args.pack else build_pack(self.work / "pack")
        self.t_import = self.timed("models", "import", self.pack)
        self.t_start = self.timed("status", "--library", self.work / "probe")
        self.photos = self.work / "photos"
        make_photos(self.photos, self.args.photos, self.args.seed)
        self.base = self.work / "base-lib"
        self.t_fresh = self.timed("index", self.photos, "--library", self.base)
        check_complete(self.px, self.base, files_in(self.photos))
        self.t_search = self.timed("search", "x", "--library", self.base)
        shutil.copytree(self.photos, self.work / "kill-photos")
        self.pristine = shutil.copytree(self.photos, self.work / "photos-pristine")
        shutil.copytree(self.base, self.work / "search-lib")
        print(f"measured: startup {self.t_start:.2f} s, index of {self.args.photos} photos {self.t_fresh:.2f} s, "
              f"models import {self.t_import:.2f} s, search {self.t_search:.2f} s", flush=True)

    # ------------------------------------------------------------------ kill -9

    def moment(self, rng: random.Random, duration: float) -> float:
        """A kill delay spread over a run's measured duration; the first half of the interpreter's
        start-up (measured with `status`) is skipped: nothing can have touched a file by then."""
        return rng.uniform(self.t_start / 2, max(duration, self.t_start))

    def kill_after(self, delay: float, *args) -> str:
        proc = self.px.popen(*args)
        time.sleep(delay)
        landed = proc.poll() is None
        if landed:
            proc.kill()
        _, err = proc.communicate()
        if not landed:
            check(proc.returncode == 0 and b"Traceback" not in err,
                  f"exit {proc.returncode} before the kill: {err.decode(errors='replace').strip()[-300:]}")
        print(f"    delay {delay:.2f} s: {'killed' if landed else 'finished first'}", file=sys.stderr)
        return "killed mid-run" if landed else "finished before the kill"

    def mutate(self, folder: Path, rng: random.Random) -> int:
        """Add, delete, modify, move and copy a few photos; returns how many changed."""
        changes = rng.randint(1, max(1, self.args.photos // 4))
        for _ in range(changes):
            files = sorted(folder.iterdir())
            victim, new = rng.choice(files), folder / f"n{rng.randrange(10**8)}.jpg"
            op = rng.choice(["add", "delete", "modify", "move", "copy"])
            if op == "delete" and len(files) > self.args.photos // 2:
                victim.unlink()
            elif op == "modify":
                make_photo(victim.with_suffix(".jpg"), np.random.default_rng(rng.randrange(2**32)))
                if victim.suffix != ".jpg":
                    victim.unlink()
            elif op == "move":
                victim.rename(new)
            elif op == "copy":
                shutil.copy2(victim, new)
            else:
                make_photo(new, np.random.default_rng(rng.randrange(2**32)))
        return changes

    def kill_index(self, rng: random.Random, fresh: bool) -> str:
        lib, folder = self.work / "kill-lib", self.work / "kill-photos"
        expected = self.t_fresh
        if fresh:
            shutil.rmtree(lib, ignore_errors=True)
        else:
            share = self.mutate(folder, rng) / self.args.photos
            expected = self.t_start + (self.t_fresh - self.t_start) * max(share, 0.1)
        try:
            note = self.kill_after(self.moment(rng, expected), "index", folder, "--library", lib)
            check_consistent(self.px, lib)
            self.px.ok("index", folder, "--library", lib)
            check_complete(self.px, lib, files_in(folder))
        except Exception:
            shutil.rmtree(lib, ignore_errors=True)  # the next try starts from a new library
            raise
        return note

    def kill_import(self, rng: random.Random, name: str) -> str:
        note = self.kill_after(self.moment(rng, self.t_import), "models", "import", self.pack, "--name", name)
        models = self.work / "home" / "data" / "models"
        listing = self.px.ok("models", "list").out
        if (models / name).exists() or re.search(rf"\s{name}\s", listing):
            res = self.px.run("models", "verify", name)
            check(res.code == 0, f"half-installed pack listed: {res.show()}")
        self.px.ok("models", "import", self.pack, "--name", name, "--replace")
        left = [p.name for p in models.glob(".install-*")]
        check(not left, f"{left[:1]} left after the next import")
        self.px.ok("models", "verify", name)
        self.px.ok("models", "remove", name)
        return note

    def kill_search(self, rng: random.Random) -> str:
        lib = self.work / "search-lib"
        photo = rng.choice(sorted(self.photos.iterdir()))
        query = rng.choice([("x",), ("a red square",), ("beach not people",), ("--image", photo), ("sea", "--add", photo)])
        before = fingerprint(lib)
        note = self.kill_after(self.moment(rng, self.t_search), "search", *query, "--library", lib)
        check(fingerprint(lib) == before, f"search {query} killed mid-run changed the library")
        check(self.px.json("search", "x", "--library", lib), "no search results after the kill")
        return note

    def kills(self) -> None:
        for i in range(self.args.kills):
            rng = random.Random(f"{self.args.seed}-kill-{i}")
            kind = KINDS[i % len(KINDS)]
            if kind == "index":
                fresh = not (self.work / "kill-lib").exists() or rng.random() < 0.3
                case = "kill -9 index (new library)" if fresh else "kill -9 index (changed folder)"
                self.attempt(case, self.kill_index, rng, fresh)
            elif kind == "import":
                self.attempt("kill -9 models import", self.kill_import, rng, f"k{i}")
            else:
                self.attempt("kill -9 search", self.kill_search, rng)

    # ------------------------------------------------------------------ damage

    def damage(self, kind: str, fn, readd: bool, rng: random.Random, lib: Path) -> str:
        """Break a copy of the indexed library, or one of its photos (the folder is restored after)."""
        shutil.copytree(self.base, lib)
        before, gone, new, survived = files_in(self.photos), set(), set(), False
        try:
            if kind == "photo":
                photo = rng.choice(sorted(self.photos.glob("p*.jpg")))
                gone, renamed = {os.fsencode(photo)}, fn(photo, rng)
                new = {renamed} if isinstance(renamed, bytes) else set()
            else:
                fn(lib, rng)
            runs = [self.px.ok(*c, "--library", lib, allow_error=True) for c in (("status",), ("search", "x"), ("index",))]
            errors = [r.err.strip() for r in runs if r.code]
            if any("library repair" in e for e in errors):
                self.px.ok("library", "repair", "--library", lib)
            if errors or readd:  # else the `index` above was the complete run
                self.px.ok("index", *([self.photos] if readd else []), "--library", lib)
            expected = ({p for p in before if os.path.lexists(p)} - gone) | new
            check_complete(self.px, lib, expected, human=kind == "photo")
            survived = True
        finally:
            if survived or not self.args.keep:  # --keep keeps a failed case's library
                shutil.rmtree(lib, ignore_errors=True)
            if kind == "photo":
                shutil.rmtree(self.photos)
                shutil.copytree(self.pristine, self.photos)
        if readd and not errors:
            return "damage not reported; folder re-added by hand"
        return "one-line error, recovered" if errors else "transparent"

    def damages(self) -> None:
        cases = [("library", *c) for c in LIBRARY_DAMAGE] + [("photo", *c) for c in PHOTO_DAMAGE]
        if self.args.quick:
            cases = random.Random(f"{self.args.seed}-quick").sample(cases, 5)
        for n, (kind, name, fn, readd) in enumerate(cases):
            rng = random.Random(f"{self.args.seed}-damage-{name}")
            self.attempt(name, self.damage, kind, fn, readd, rng, self.work / f"damage-{n}")

    # ------------------------------------------------------------------ report

    def report(self) -> int:
        print(f"\n{'case':<40} {'tries':>5} {'survived':>8}  notes / first failure")
        for case, row in self.rows.items():
            notes = "; ".join(f"{k} x{v}" if v > 1 else k for k, v in row["notes"].items())
            first = f"FAIL: {row['failures'][0]}" if row["failures"] else notes
            print(f"{case:<40} {row['tries']:>5} {row['survived']:>8}  {first}")
            for more in row["failures"][1:]:
                print(f"{'':<57}FAIL: {more}")
        tried = sum(r["tries"] for r in self.rows.values())
        survived = sum(r["survived"] for r in self.rows.values())
        print(f"fault injection (seed {self.args.seed}): {tried} tried, {survived} survived")
        return 0 if tried == survived else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=None, help="kill -9 tries (default 20, --quick 4)")
    parser.add_argument("--photos", type=int, default=None, help="photos in the folders (default 60, --quick 16)")
    parser.add_argument("--quick", action="store_true", help="a ~1 minute run: fewer kills, photos and damage cases")
    parser.add_argument("--pack", help="an exported model pack to use instead of building the tiny one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (to reproduce a failure)")
    args = parser.parse_args()
    args.kills = args.kills if args.kills is not None else (4 if args.quick else 20)
    args.photos = args.photos if args.photos is not None else (16 if args.quick else 60)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="pixfind-faults-")).resolve()
    try:
        run = Run(args, work)
        run.setup()
        run.kills()
        run.damages()
        code = run.report()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"took {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
