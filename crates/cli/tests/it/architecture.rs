//! The map in `ARCHITECTURE.md` holds: no file of the workspace imports, directly or through
//! others, a file that imports it, except the loops `ARCHITECTURE.md` names (with its reasons);
//! `ferry-node` names no HTTP server type; no federation door reaches into the REST API.
//!
//! Imports are read from the source text: `crate::a::b` paths (in `use` lines and inline),
//! `use crate::{a, b::c}` groups, `super::` paths, and `child::` paths to a module's own
//! children. A path names the deepest module file it reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A crate's module files: module path (`sync::links`) to file.
fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(path: String, file: &Path, out: &mut BTreeMap<String, PathBuf>) {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for line in text.lines() {
            let line = line.trim();
            let declared = line
                .split_once("mod ")
                .filter(|(before, _)| before.is_empty() || before.starts_with("pub"))
                .and_then(|(_, rest)| rest.strip_suffix(';'));
            let Some(name) = declared else { continue };
            for candidate in [
                dir.join(format!("{name}.rs")),
                dir.join(name).join("mod.rs"),
            ] {
                if candidate.exists() {
                    let child = if path.is_empty() {
                        name.to_string()
                    } else {
                        format!("{path}::{name}")
                    };
                    walk(child, &candidate, out);
                    break;
                }
            }
        }
        out.insert(path, file.to_path_buf());
    }
    let mut out = BTreeMap::new();
    walk(String::new(), root, &mut out);
    out
}

/// The source a file's imports are read from: without its test module and comments.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte ranges of inline modules (`mod raw { ... }`): `super::` inside one means the file's own
/// module.
fn inline_modules(code: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("mod ") {
        let at = search + found;
        search = at + 4;
        let rest = &code[at + 4..];
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(0);
        if name_len == 0 || !rest[name_len..].trim_start().starts_with('{') {
            continue;
        }
        let open = at + 4 + name_len + rest[name_len..].find('{').unwrap();
        let mut depth = 0;
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        ranges.push((open, open + i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    ranges
}

/// Path segments after `prefix` at each of its occurrences, with where they start.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<(usize, Vec<&'a str>)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inside = &group[..group.find('}').unwrap_or(0)];
            for item in inside.split(',') {
                let segments: Vec<&str> = item.trim().split("::").map(str::trim).collect();
                found.push((at, segments));
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        found.push((at, rest[..end].split("::").collect()));
    }
    found
}

/// What a module re-exports (`pub use links::{Link, all_links};`): name to the module that
/// defines it; `*` for a glob.
type Exports = BTreeMap<String, BTreeMap<String, String>>;

fn exports(modules: &BTreeMap<String, PathBuf>) -> Exports {
    let mut all = Exports::new();
    for (path, file) in modules {
        let code = code_of(file);
        let own: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut names = BTreeMap::new();
        for statement in code.split(';') {
            let statement = statement.trim();
            let Some(used) = ["pub use ", "pub(crate) use "]
                .iter()
                .find_map(|p| statement.strip_prefix(p))
            else {
                continue;
            };
            let (prefix, items) = match used.split_once("::{") {
                Some((prefix, group)) => (prefix, group.trim_end_matches('}').split(',').collect()),
                None => match used.rsplit_once("::") {
                    Some((prefix, item)) => (prefix, vec![item]),
                    None => continue,
                },
            };
            for item in items {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (item_path, name) = match item.split_once(" as ") {
                    Some((item_path, alias)) => (item_path, alias.trim()),
                    None => (item, item.rsplit("::").next().unwrap_or(item)),
                };
                let full: Vec<&str> = prefix.split("::").chain(item_path.split("::")).collect();
                let target = match full.first() {
                    Some(&"crate") => reached(modules, &Exports::new(), &[], &full[1..]),
                    Some(&"super") => reached(
                        modules,
                        &Exports::new(),
                        &own[..own.len().saturating_sub(1)],
                        &full[1..],
                    ),
                    Some(&"self") => reached(modules, &Exports::new(), &own, &full[1..]),
                    Some(first) if modules.contains_key(&join(&own, first)) => {
                        reached(modules, &Exports::new(), &own, &full)
                    }
                    _ => continue,
                };
                names.insert(name.to_string(), target);
            }
        }
        all.insert(path.clone(), names);
    }
    all
}

fn join(base: &[&str], name: &str) -> String {
    let mut all = base.to_vec();
    all.push(name);
    all.join("::")
}

/// The module that `segments` (from `base`) reach: the deepest module file on the path, or,
/// where the path goes on to a name that module re-exports, the module that defines it.
fn reached(
    modules: &BTreeMap<String, PathBuf>,
    exports: &Exports,
    base: &[&str],
    segments: &[&str],
) -> String {
    let mut all: Vec<&str> = base.to_vec();
    all.extend(segments.iter().filter(|s| !s.is_empty()));
    let depth = (0..=all.len())
        .rev()
        .find(|n| modules.contains_key(&all[..*n].join("::")))
        .unwrap_or(0);
    let module = all[..depth].join("::");
    let forwarded = all.get(depth).and_then(|name| {
        let names = exports.get(&module)?;
        names.get(*name).or_else(|| names.get("*"))
    });
    match forwarded {
        Some(target) if *target != module => target.clone(),
        _ => module,
    }
}

/// Which module files each module file imports.
fn imports(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let exports = exports(modules);
    let mut edges = BTreeMap::new();
    for (path, file) in modules {
        let code = code_of(file);
        let inline = inline_modules(&code);
        let own: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let parent = &own[..own.len().saturating_sub(1)];
        let mut targets = BTreeSet::new();
        for (_, segments) in paths_after(&code, "crate::") {
            targets.insert(reached(modules, &exports, &[], &segments));
        }
        for (at, segments) in paths_after(&code, "super::") {
            let inside_inline = inline
                .iter()
                .any(|(start, end)| (*start..*end).contains(&at));
            let base = if inside_inline { &own[..] } else { parent };
            let mut segments = segments;
            let mut base = base.to_vec();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            targets.insert(reached(modules, &exports, &base, &segments));
        }
        for child in modules.keys() {
            let name = match path.is_empty() {
                true => Some(child.as_str()),
                false => child.strip_prefix(&format!("{path}::")),
            };
            let Some(name) = name.filter(|n| !n.is_empty() && !n.contains("::")) else {
                continue;
            };
            // `name::` at the start of a path (not `other::name::`) is this module's child.
            if paths_after(&code, &format!("{name}::"))
                .iter()
                .any(|(at, _)| !code[..*at].ends_with("::"))
            {
                targets.insert(child.clone());
            }
        }
        targets.remove(path);
        edges.insert(path.clone(), targets);
    }
    edges
}

/// The loops: sets of two or more files that reach each other (Tarjan's strongly connected
/// components).
fn loops(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The loops `ARCHITECTURE.md` names: lines `- loop in CRATE: a, b, c` in its section
/// "Import loops".
fn named_loops() -> BTreeSet<(String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- loop in `"))
        .filter_map(|rest| rest.split_once("`: "))
        .map(|(krate, files)| {
            let files = files
                .split(" — ")
                .next()
                .unwrap_or_default()
                .split(", ")
                .map(|f| f.trim_matches('`').to_string())
                .collect();
            (krate.to_string(), files)
        })
        .collect()
}

fn crate_roots() -> Vec<(String, PathBuf)> {
    let crates = workspace().join("crates");
    let mut roots = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        for root in ["src/lib.rs", "src/main.rs"] {
            if dir.join(root).exists() {
                let name = dir.file_name().unwrap().to_string_lossy().to_string();
                roots.push((name, dir.join(root)));
            }
        }
    }
    roots.sort();
    roots
}

#[test]
fn no_file_imports_a_file_that_imports_it_unless_architecture_md_says_why() {
    let named = named_loops();
    let mut found = BTreeSet::new();
    let mut files = 0;
    for (krate, root) in crate_roots() {
        let modules = modules(&root);
        files += modules.len();
        for component in loops(&imports(&modules)) {
            let component = component
                .into_iter()
                .map(|m| if m.is_empty() { "lib".to_string() } else { m })
                .collect();
            found.insert((krate.clone(), component));
        }
    }
    assert!(files > 80, "the walk found only {files} files");
    let unnamed: Vec<_> = found.difference(&named).collect();
    let stale: Vec<_> = named.difference(&found).collect();
    assert!(
        unnamed.is_empty() && stale.is_empty(),
        "import loops not named in ARCHITECTURE.md: {unnamed:?}\nloops named there that no longer exist: {stale:?}"
    );
}

#[test]
fn the_node_names_no_http_server_type_and_federation_never_reaches_the_rest_api() {
    let node = workspace().join("crates/node");
    let manifest = std::fs::read_to_string(node.join("Cargo.toml")).unwrap();
    // Every dependency table counts, tests' included: the node stays free of doors.
    let mut section = "";
    for line in manifest.lines() {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if !section.contains("dependencies") {
            continue;
        }
        for server_crate in ["axum", "hyper", "tower", "utoipa", "ferry-server"] {
            assert!(
                !(line.starts_with(&format!("{server_crate}."))
                    || line.starts_with(&format!("{server_crate} "))),
                "ferry-node's {section} names {server_crate}"
            );
        }
    }
    let server = modules(&workspace().join("crates/server/src/lib.rs"));
    let edges = imports(&server);
    for (module, targets) in &edges {
        if module.starts_with("federation") {
            let into_api: Vec<_> = targets.iter().filter(|t| t.starts_with("api")).collect();
            assert!(into_api.is_empty(), "{module} imports {into_api:?}");
        }
    }
}

#[test]
fn the_import_reader_sees_loops() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("lib.rs", "mod a;\nmod b;\nmod c;\n");
    write("a.rs", "use crate::b::thing;\n");
    write("b.rs", "fn f() { crate::a::other(); }\n");
    write(
        "c.rs",
        "// crate::a::only_in_a_comment\nmod inner { use super::x; }\n",
    );
    let modules = modules(&dir.path().join("lib.rs"));
    let found = loops(&imports(&modules));
    assert_eq!(
        found,
        [BTreeSet::from(["a".to_string(), "b".to_string()])],
        "{:?}",
        imports(&modules)
    );
}

/// The node's layers as `ARCHITECTURE.md` lists them ("The modules, lowest first"): module to
/// its line's index.
fn documented_layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("The modules, lowest first")
        .expect("ARCHITECTURE.md lists the node's modules");
    let block = text[start..].split("```").nth(1).unwrap_or_default();
    let mut layers: Vec<String> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let modules = line.trim_start().split("   ").next().unwrap_or_default();
        match (line.starts_with(' '), layers.last_mut()) {
            (true, Some(last)) => last.push_str(modules),
            _ => layers.push(modules.to_string()),
        }
    }
    let mut found = BTreeMap::new();
    for (layer, modules) in layers.iter().enumerate() {
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in modules.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                _ => {}
            }
            if !(c == ',' && depth == 0) {
                item.push(c);
            }
        }
        items.push(item);
        for item in items {
            let item = item.trim();
            match item.split_once("::{") {
                Some((parent, children)) => {
                    for child in children.trim_end_matches('}').split(',') {
                        let module = match child.trim() {
                            "mod" => parent.to_string(),
                            child => format!("{parent}::{child}"),
                        };
                        found.insert(module, layer);
                    }
                }
                None => {
                    found.insert(item.to_string(), layer);
                }
            }
        }
    }
    found
}

/// Inside the node a module imports only modules on its own line of the documented layers or
/// above, and every module has its line.
#[test]
fn the_nodes_modules_import_only_their_layer_or_lower_ones() {
    let layers = documented_layers();
    let modules = modules(&workspace().join("crates/node/src/lib.rs"));
    let unplaced: Vec<&String> = modules
        .keys()
        .filter(|m| !m.is_empty() && m.as_str() != "tests" && !layers.contains_key(*m))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules ARCHITECTURE.md does not place in a layer: {unplaced:?}"
    );
    let mut upward = Vec::new();
    for (module, targets) in imports(&modules) {
        let Some(&from) = layers.get(&module) else {
            continue;
        };
        for target in targets {
            if let Some(&to) = layers.get(&target)
                && to > from
            {
                upward.push(format!("{module} → {target}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports of a higher layer: {upward:?}");
}
