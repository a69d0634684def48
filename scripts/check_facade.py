#!/usr/bin/env python3
"""Checks that a facade crate's public API holds its boundary (issue 12, docs/ARCHITECTURE.md).

Reads rustdoc's JSON output (`--output-format json`, format version 57 with Rust 1.95) of the
facade and of the crates it re-exports from, walks every item a user of the facade can reach
(the crate root's public items and re-exports, public modules, struct fields, enum variants,
function signatures and generic bounds, inherent methods, trait implementations with their
generic arguments and associated types), and reports each type the walk meets that is

- from a backend crate (burn*, cubecl*, wgpu*, hnsw_rs, rocksdb, librocksdb*): never allowed;
- from a sub-crate (glimpse_*) and not re-exported by the facade: a user could not name it
  without a version-matched dependency on that crate (type aliases are looked through);
- from any other crate than std/core/alloc and the allowed ones (serde, for the `Serialize`
  implementations of plain settings): a dependency that became part of the API.

A re-exported sub-crate item is walked in its own crate's JSON, so its fields, methods and
trait implementations are checked too. In a trait implementation, a sub-crate type that is only
an argument of the implemented trait need not be re-exported (`impl From<glimpse_kernels::Error>
for EncoderError` offers a conversion nobody has to use); in an associated type (`type Err`,
`type Target`), which hands values out, it must be. Backend and other third-party types are leaks
anywhere.

    check_facade.py --doc-dir target/doc glimpse            # exit 1 and list the leaks, if any
    check_facade.py --doc-dir DIR --expect FILE glimpse     # exit 0 iff exactly FILE's leaks

Each leak is reported as `<where>: <type>  (<why>)`; `--expect` compares the `<where>: <type>`
parts with the lines of FILE (blank lines and `#` comments ignored). An item or type kind this
script does not know fails the check rather than being skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

BACKEND = re.compile(r"^(burn|cubecl|wgpu|hnsw_rs|rocksdb|librocksdb)")
SUB_CRATE = re.compile(r"^glimpse_")
STD = {"std", "core", "alloc"}
ALLOWED = {"serde", "serde_core"}
SUPPORTED_FORMATS = range(57, 58)


class Crate:
    """One crate's rustdoc JSON."""

    def __init__(self, path: Path):
        data = json.loads(path.read_text())
        self.format = data["format_version"]
        if self.format not in SUPPORTED_FORMATS:
            raise SystemExit(
                f"{path}: rustdoc JSON format {self.format}, this script reads "
                f"{SUPPORTED_FORMATS.start}..{SUPPORTED_FORMATS.stop - 1}: update it"
            )
        self.index = data["index"]
        self.paths = data["paths"]
        self.external = data["external_crates"]
        self.root = data["root"]
        self.name = self.index[str(self.root)]["name"]
        self._by_path: dict[tuple, str] | None = None

    def origin(self, id_) -> tuple[str, tuple, str] | None:
        """(crate name, definition path, kind) of an item, or None if rustdoc recorded none."""
        entry = self.paths.get(str(id_))
        if entry is None:
            return None
        crate_id = entry["crate_id"]
        crate = self.name if crate_id == 0 else self.external[str(crate_id)]["name"]
        return crate, tuple(entry["path"]), entry["kind"]

    def is_local(self, id_) -> bool:
        item = self.index.get(str(id_))
        return item is not None and item["crate_id"] == 0

    def local_id(self, path: tuple) -> str | None:
        """The id of this crate's own item at `path`."""
        if self._by_path is None:
            self._by_path = {
                tuple(e["path"]): k for k, e in self.paths.items() if e["crate_id"] == 0
            }
        return self._by_path.get(path)


class Checker:
    def __init__(self, doc_dir: Path, facade: str):
        self.doc_dir = doc_dir
        self.crates: dict[str, Crate | None] = {}
        self.facade = self.crate(facade)
        if self.facade is None:
            raise SystemExit(f"no {doc_dir / (facade + '.json')}: run rustdoc with JSON output")
        self.reexported: set[tuple[str, tuple]] = set()
        self.public_name: dict[str, str] = {}  # facade item id -> path a user writes
        self.visited: set[tuple[str, str]] = set()
        self.leaks: dict[tuple[str, str], str] = {}
        self.trait_arguments = False  # inside an implemented trait's generic arguments
        self.items_seen = 0

    def crate(self, name: str) -> Crate | None:
        if name not in self.crates:
            path = self.doc_dir / f"{name}.json"
            self.crates[name] = Crate(path) if path.exists() else None
        return self.crates[name]

    def leak(self, where: str, what: str, why: str):
        self.leaks.setdefault((where, what), why)

    # -- the walk ----------------------------------------------------------------------------

    def run(self):
        root = self.facade.root
        # First every re-export (whatever its depth), so that a use that comes later in the
        # module than a signature naming the type still counts.
        self.collect_reexports(self.facade, root, set(), self.facade.name)
        self.walk_module(self.facade, root, self.facade.name)

    def collect_reexports(self, crate: Crate, module_id, seen: set, where: str):
        """Records the facade's re-exports of sub-crate items, and the public path of each of
        its own items."""
        if module_id in seen:
            return
        seen.add(module_id)
        for child in crate.index[str(module_id)]["inner"]["module"]["items"]:
            item = crate.index.get(str(child))
            if item is None:
                continue
            inner = item["inner"]
            if "use" not in inner:
                self.public_name.setdefault(str(child), f"{where}::{item['name']}")
                if "module" in inner:
                    self.collect_reexports(crate, child, seen, f"{where}::{item['name']}")
            elif inner["use"]["id"] is not None:
                target = inner["use"]["id"]
                if crate.is_local(target):
                    here = where if inner["use"]["is_glob"] else f"{where}::{inner['use']['name']}"
                    self.public_name.setdefault(str(target), here)
                    if "module" in crate.index[str(target)]["inner"]:
                        self.collect_reexports(crate, target, seen, here)
                    continue
                origin = crate.origin(target)
                if origin is None:
                    continue
                name, path, kind = origin
                if SUB_CRATE.match(name):
                    if inner["use"]["is_glob"] or kind == "module":
                        sub = self.crate(name)
                        sub_id = sub.local_id(path) if sub else None
                        if sub_id is not None:
                            for e in self.public_items(sub, sub_id):
                                o = sub.origin(e)
                                if o is not None:
                                    self.reexported.add((o[0], o[1]))
                    else:
                        self.reexported.add((name, path))

    def public_items(self, crate: Crate, module_id):
        for child in crate.index[str(module_id)]["inner"]["module"]["items"]:
            item = crate.index.get(str(child))
            if item is None:
                continue
            if "use" in item["inner"]:
                if item["inner"]["use"]["id"] is not None:
                    yield item["inner"]["use"]["id"]
            else:
                yield child

    def walk_module(self, crate: Crate, module_id, where: str):
        for child in crate.index[str(module_id)]["inner"]["module"]["items"]:
            item = crate.index.get(str(child))
            if item is None:
                continue
            if "use" in item["inner"]:
                self.walk_use(crate, item["inner"]["use"], where)
            else:
                self.walk_item(crate, child, f"{where}::{item['name']}")

    def walk_use(self, crate: Crate, use: dict, where: str):
        target = use["id"]
        here = where if use["is_glob"] else f"{where}::{use['name']}"
        if target is None:  # a primitive or something rustdoc could not resolve
            return
        if crate.is_local(target):
            if use["is_glob"]:
                self.walk_module(crate, target, where)
            else:
                self.walk_item(crate, target, here)
            return
        origin = crate.origin(target)
        if origin is None:
            self.leak(here, use["source"], "re-export of an item rustdoc cannot place")
            return
        name, path, kind = origin
        shown = "::".join(path)
        if name in STD:
            return
        if BACKEND.match(name):
            self.leak(here, shown, f"re-exports an item of backend crate {name}")
        elif SUB_CRATE.match(name):
            sub = self.crate(name)
            sub_id = sub.local_id(path) if sub else None
            if sub_id is None:
                self.leak(here, shown, f"no rustdoc JSON of {name} to check it in")
            elif use["is_glob"] or kind == "module":
                self.walk_module(sub, sub_id, where if use["is_glob"] else here)
            else:
                self.walk_item(sub, sub_id, here)
        elif name not in ALLOWED:
            self.leak(here, shown, f"re-exports an item of dependency {name}")

    def walk_item(self, crate: Crate, id_, where: str):
        key = (crate.name, str(id_))
        if key in self.visited:
            return
        self.visited.add(key)
        item = crate.index.get(str(id_))
        if item is None:
            return
        self.items_seen += 1
        ((kind, inner),) = item["inner"].items()
        if kind == "module":
            self.walk_module(crate, id_, where)
        elif kind in ("struct", "union"):
            self.generics(crate, inner["generics"], where)
            fields = inner.get("fields") or []
            shape = inner.get("kind", {})
            if isinstance(shape, dict):
                if "plain" in shape:
                    fields = shape["plain"]["fields"]
                elif "tuple" in shape:
                    fields = [f for f in shape["tuple"] if f is not None]
            self.fields(crate, fields, where)
            self.impls(crate, inner["impls"], where)
        elif kind == "enum":
            self.generics(crate, inner["generics"], where)
            for v in inner["variants"]:
                variant = crate.index[str(v)]
                shape = variant["inner"]["variant"]["kind"]
                fields = []
                if isinstance(shape, dict) and "plain" in shape:
                    fields = shape["plain"]["fields"]
                elif isinstance(shape, dict) and "tuple" in shape:
                    fields = [f for f in shape["tuple"] if f is not None]
                self.fields(crate, fields, f"{where}::{variant['name']}")
            self.impls(crate, inner["impls"], where)
        elif kind == "function":
            self.function(crate, inner, where)
        elif kind == "trait":
            self.generics(crate, inner["generics"], where)
            self.bounds(crate, inner["bounds"], where)
            for i in inner["items"]:
                sub = crate.index.get(str(i))
                if sub is not None:
                    self.walk_item(crate, i, f"{where}::{sub['name']}")
        elif kind == "type_alias":
            self.generics(crate, inner["generics"], where)
            self.type_(crate, inner["type"], where)
        elif kind in ("constant", "static"):
            self.type_(crate, inner["type"], where)
        elif kind == "assoc_const":
            self.type_(crate, inner["type"], where)
        elif kind == "assoc_type":
            self.generics(crate, inner["generics"], where)
            self.bounds(crate, inner["bounds"], where)
            if inner.get("type") is not None:
                self.type_(crate, inner["type"], where)
        elif kind in ("macro", "proc_macro", "primitive"):
            pass
        else:
            self.leak(where, kind, "item kind unknown to check_facade.py: update it")

    def fields(self, crate: Crate, ids, where: str):
        for f in ids:
            field = crate.index.get(str(f))
            if field is not None:
                self.type_(crate, field["inner"]["struct_field"], f"{where}::{field['name']}")

    def impls(self, crate: Crate, ids, owner: str):
        for i in ids:
            item = crate.index.get(str(i))
            if item is None:
                continue
            imp = item["inner"]["impl"]
            if imp["is_synthetic"] or imp["blanket_impl"] is not None:
                continue  # auto traits, and std's `impl<T> From<T> for T` and the like
            if imp["trait"] is None:
                for m in imp["items"]:
                    method = crate.index.get(str(m))
                    if method is not None and method["visibility"] == "public":
                        self.walk_item(crate, m, f"{owner}::{method['name']}")
                continue
            where = f"{owner} (impl {imp['trait']['path']})"
            self.generics(crate, imp["generics"], where)
            self.named(crate, imp["trait"]["id"], imp["trait"]["path"], where)
            self.trait_arguments = True
            try:
                self.args(crate, imp["trait"].get("args"), where)
            finally:
                self.trait_arguments = False
            self.type_(crate, imp["for"], where)
            # A trait method's signature is the trait's; what the impl chooses is in the
            # trait's arguments (above) and its associated types and constants.
            for m in imp["items"]:
                sub = crate.index.get(str(m))
                if sub is not None and sub["inner"].keys() & {"assoc_type", "assoc_const"}:
                    self.walk_item(crate, m, f"{where}::{sub['name']}")

    def function(self, crate: Crate, f: dict, where: str):
        self.generics(crate, f["generics"], where)
        for _, ty in f["sig"]["inputs"]:
            self.type_(crate, ty, where)
        if f["sig"]["output"] is not None:
            self.type_(crate, f["sig"]["output"], where)

    def generics(self, crate: Crate, g: dict, where: str):
        for p in g["params"]:
            kind = p["kind"]
            if "type" in kind:
                self.bounds(crate, kind["type"]["bounds"], where)
                if kind["type"]["default"] is not None:
                    self.type_(crate, kind["type"]["default"], where)
            elif "const" in kind:
                self.type_(crate, kind["const"]["type"], where)
        for w in g["where_predicates"]:
            if "bound_predicate" in w:
                self.type_(crate, w["bound_predicate"]["type"], where)
                self.bounds(crate, w["bound_predicate"]["bounds"], where)
                self.generics(crate, {"params": w["bound_predicate"]["generic_params"],
                                      "where_predicates": []}, where)
            elif "eq_predicate" in w:
                self.type_(crate, w["eq_predicate"]["lhs"], where)
                rhs = w["eq_predicate"]["rhs"]
                if isinstance(rhs, dict) and "type" in rhs:
                    self.type_(crate, rhs["type"], where)

    def bounds(self, crate: Crate, bounds, where: str):
        for b in bounds:
            if "trait_bound" in b:
                self.path(crate, b["trait_bound"]["trait"], where)
                self.generics(crate, {"params": b["trait_bound"]["generic_params"],
                                      "where_predicates": []}, where)

    def args(self, crate: Crate, args, where: str):
        if not args:
            return
        if "angle_bracketed" in args:
            for a in args["angle_bracketed"]["args"]:
                if isinstance(a, dict) and "type" in a:
                    self.type_(crate, a["type"], where)
            for c in args["angle_bracketed"]["constraints"]:
                self.args(crate, c.get("args"), where)
                binding = c["binding"]
                if "equality" in binding and "type" in binding["equality"]:
                    self.type_(crate, binding["equality"]["type"], where)
                elif "constraint" in binding:
                    self.bounds(crate, binding["constraint"], where)
        elif "parenthesized" in args:
            for t in args["parenthesized"]["inputs"]:
                self.type_(crate, t, where)
            if args["parenthesized"]["output"] is not None:
                self.type_(crate, args["parenthesized"]["output"], where)

    def path(self, crate: Crate, p: dict, where: str):
        """A type or trait path: judge the item it names, then its generic arguments."""
        self.named(crate, p["id"], p["path"], where)
        self.args(crate, p.get("args"), where)

    def named(self, crate: Crate, id_, written: str, where: str):
        if crate.is_local(id_):
            if crate is self.facade:
                # The facade's own type: part of the API wherever it is declared.
                origin = crate.origin(id_)
                fallback = "::".join(origin[1]) if origin else crate.index[str(id_)]["name"]
                self.walk_item(crate, id_, self.public_name.get(str(id_), fallback))
                return
            origin = crate.origin(id_)  # a sub-crate's own item, seen from inside it
        else:
            origin = crate.origin(id_)
        if origin is None:
            self.leak(where, written, "a type rustdoc cannot place")
            return
        name, path, kind = origin
        shown = "::".join(path)
        if name in STD or name in ALLOWED or name == self.facade.name:
            return
        if BACKEND.match(name):
            self.leak(where, shown, f"a type of backend crate {name}")
        elif SUB_CRATE.match(name):
            if kind == "type_alias":
                sub = self.crate(name)
                sub_id = sub.local_id(path) if sub else None
                if sub_id is None:
                    self.leak(where, shown, f"an alias in {name}, whose rustdoc JSON is missing")
                else:
                    alias = sub.index[str(sub_id)]["inner"]["type_alias"]
                    self.type_(sub, alias["type"], where)
            elif (name, path) not in self.reexported and not self.trait_arguments:
                self.leak(where, shown, f"a {name} type that {self.facade.name} does not re-export")
        else:
            self.leak(where, shown, f"a type of dependency {name}")

    def type_(self, crate: Crate, ty, where: str):
        if ty is None:
            return
        ((kind, inner),) = ty.items()
        if kind == "resolved_path":
            self.path(crate, inner, where)
        elif kind == "dyn_trait":
            for t in inner["traits"]:
                self.path(crate, t["trait"], where)
        elif kind in ("generic", "primitive", "infer"):
            pass
        elif kind == "function_pointer":
            for _, t in inner["sig"]["inputs"]:
                self.type_(crate, t, where)
            self.type_(crate, inner["sig"]["output"], where)
        elif kind == "tuple":
            for t in inner:
                self.type_(crate, t, where)
        elif kind == "slice":
            self.type_(crate, inner, where)
        elif kind in ("array", "raw_pointer", "borrowed_ref", "pat"):
            self.type_(crate, inner["type"], where)
        elif kind == "impl_trait":
            self.bounds(crate, inner, where)
        elif kind == "qualified_path":
            self.type_(crate, inner["self_type"], where)
            if inner["trait"] is not None:
                self.path(crate, inner["trait"], where)
            self.args(crate, inner.get("args"), where)
        else:
            self.leak(where, kind, "type kind unknown to check_facade.py: update it")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("crate", help="the facade crate's name (its JSON is <doc-dir>/<crate>.json)")
    ap.add_argument("--doc-dir", type=Path, required=True)
    ap.add_argument("--expect", type=Path, help="exactly these leaks must be found")
    args = ap.parse_args()

    checker = Checker(args.doc_dir, args.crate)
    checker.run()
    found = sorted(checker.leaks.items())
    name = checker.facade.name

    if args.expect:
        expected = {
            line.strip()
            for line in args.expect.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        }
        got = {f"{w}: {t}" for (w, t), _ in found}
        missing, extra = sorted(expected - got), sorted(got - expected)
        for line in missing:
            print(f"self-test: leak not found: {line}", file=sys.stderr)
        for line in extra:
            print(f"self-test: unexpected report: {line}", file=sys.stderr)
        if missing or extra:
            return 1
        print(f"check_facade self-test: the {len(got)} planted leaks of {name} found, nothing else")
        return 0

    if checker.items_seen < 5:
        print(f"check_facade: only {checker.items_seen} items reached from {name}: "
              "is the JSON complete?", file=sys.stderr)
        return 1
    if found:
        print(f"check_facade: {len(found)} leak(s) in {name}'s public API:", file=sys.stderr)
        for (where, what), why in found:
            print(f"  {where}: {what}  ({why})", file=sys.stderr)
        return 1
    print(f"check_facade: {name}'s public API holds ({checker.items_seen} items, "
          f"{len(checker.reexported)} sub-crate re-exports checked in their own crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
