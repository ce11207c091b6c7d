//! The dependency graph of the crate's top-level modules, read from the source text: which module
//! names which other through `crate::…`, `$crate::…`, `super::…` reaching the crate root, or (in
//! `main.rs`) `spatial_gpu::…`. Shared by `tests/architecture.rs` (the layering rules) and
//! `examples/module_graph.rs` (the picture), so both see the same graph.
//!
//! The parser is deliberately small: comments and string/char literals are skipped, the rest is cut
//! into identifiers and punctuation, and inline `mod name { … }` blocks are tracked so that `super`
//! inside them resolves to the right module. A `#[macro_export]` macro counts as part of the module
//! that defines it, since `crate::name!` reaches it from the crate root.

#![allow(dead_code)] // each includer uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that form the command layer; everything else in `src/` is the library core.
pub const COMMAND_LAYER: [&str; 3] = ["cli", "commands", "main"];

/// Edges `from -> {to}` between top-level modules (self-references left out).
pub type Graph = BTreeMap<String, BTreeSet<String>>;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Identifiers and punctuation of Rust source, without comments, strings, chars and lifetimes.
fn tokens(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == 'r' && (next == Some('"') || (next == Some('#') && raw_string_at(&c, i))) {
            // r"…", r#"…"#: ends at a quote followed by as many hashes as it opened with.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\''), or a lifetime ('a), which is skipped the same way.
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            // A decimal point only when a digit follows (`0..n` and `1.max(x)` are not numbers).
            while i < c.len()
                && (c[i].is_alphanumeric()
                    || c[i] == '_'
                    || (c[i] == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                i += 1;
            }
        } else if ch == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !ch.is_whitespace() {
                out.push(Token::Punct(ch));
            }
            i += 1;
        }
    }
    out
}

/// Whether `r#…` at `i` opens a raw string (and is not a raw identifier such as `r#type`).
fn raw_string_at(c: &[char], i: usize) -> bool {
    let mut j = i + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

/// The module path of a file under `src/`: `cpu/mod.rs` -> `[cpu]`, `cpu/linear.rs` ->
/// `[cpu, linear]`, `lib.rs` and `main.rs` -> `[]` (the crate root).
pub fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod")) {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The names a path that starts at the crate root reaches at its first segment: `x` of `x::…`, or
/// each name of a group `{x::…, y, z as w}`. `k` is the index just after the `::` after the root.
fn first_segments(t: &[Token], k: usize) -> Vec<String> {
    match t.get(k) {
        Some(Token::Ident(name)) => vec![name.clone()],
        Some(Token::Punct('{')) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect_name = true;
            for tok in &t[k..] {
                match tok {
                    Token::Punct('{') => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    Token::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Punct(',') if depth == 1 => expect_name = true,
                    Token::Ident(name) if depth == 1 && expect_name => {
                        names.push(name.clone());
                        expect_name = false;
                    }
                    _ => {
                        if depth == 1 {
                            expect_name = false;
                        }
                    }
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// What one file's source names at the crate root, and the macros it exports.
pub fn root_references(src: &str, file_module: &[String], is_main: bool) -> (BTreeSet<String>, Vec<String>) {
    let t = tokens(src);
    let mut refs = BTreeSet::new();
    let mut exported = Vec::new();
    // Inline `mod name {` blocks: (name, brace depth at which the block closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<String> = None;
    let mut macro_export = false;
    let mut i = 0;
    while i < t.len() {
        match &t[i] {
            Token::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Punct(';') => pending_mod = None,
            Token::Ident(kw) if kw == "mod" => {
                if let Some(Token::Ident(name)) = t.get(i + 1) {
                    pending_mod = Some(name.clone());
                    i += 1;
                }
            }
            Token::Ident(kw) if kw == "macro_export" => macro_export = true,
            Token::Ident(kw) if kw == "macro_rules" && macro_export => {
                // macro_rules ! name
                if let Some(Token::Ident(name)) = t.get(i + 2) {
                    exported.push(name.clone());
                }
                macro_export = false;
            }
            Token::Ident(root)
                if (root == "crate" || (is_main && root == "spatial_gpu"))
                    && t.get(i + 1) == Some(&Token::PathSep)
                    && !matches!(t.get(i.wrapping_sub(1)), Some(Token::PathSep)) =>
            {
                refs.extend(first_segments(&t, i + 2));
            }
            Token::Ident(s) if s == "super" && !matches!(t.get(i.wrapping_sub(1)), Some(Token::PathSep)) => {
                // The module this `super` chain starts from: the file's, plus the inline blocks.
                let mut path: Vec<String> = file_module.to_vec();
                path.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut k = i;
                while matches!(&t.get(k), Some(Token::Ident(s)) if s == "super")
                    && t.get(k + 1) == Some(&Token::PathSep)
                {
                    path.pop();
                    k += 2;
                }
                if path.is_empty() {
                    refs.extend(first_segments(&t, k));
                }
                i = k.max(i + 1) - 1;
            }
            _ => {}
        }
        i += 1;
    }
    (refs, exported)
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The graph of the top-level modules of the crate whose sources are in `src`. `lib.rs` only
/// declares the modules and is left out; `main.rs` is the module `main`.
pub fn module_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let top = |rel: &Path| -> String {
        let first = rel.iter().next().expect("a file").to_string_lossy().to_string();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top(f.strip_prefix(src).expect("under src")))
        .filter(|m| m != "lib")
        .collect();
    let mut refs: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut macros: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src).expect("under src");
        let from = top(rel);
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let (r, exported) = root_references(&text, &module_path(rel), from == "main");
        for m in exported {
            macros.insert(m, from.clone());
        }
        refs.push((from, r));
    }
    let mut graph: Graph = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (from, names) in refs {
        for name in names {
            let to = macros.get(&name).cloned().unwrap_or(name);
            if to != from && modules.contains(&to) {
                graph.get_mut(&from).expect("a module").insert(to);
            }
        }
    }
    graph
}

/// A cycle of the graph restricted to `keep`, as `[a, b, …, a]`, or `None`.
pub fn find_cycle(graph: &Graph, keep: &dyn Fn(&str) -> bool) -> Option<Vec<String>> {
    // Depth-first search with the path on a stack: an edge back into the path closes a cycle.
    fn visit(
        g: &Graph,
        keep: &dyn Fn(&str) -> bool,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        path.push(node.to_string());
        for next in g.get(node).into_iter().flatten().filter(|n| keep(n)) {
            if let Some(k) = path.iter().position(|p| p == next) {
                let mut cycle = path[k..].to_vec();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if !done.contains(next) {
                if let Some(c) = visit(g, keep, next, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys().filter(|n| keep(n)) {
        if !done.contains(node) {
            if let Some(c) = visit(graph, keep, node, &mut Vec::new(), &mut done) {
                return Some(c);
            }
        }
    }
    None
}

/// The graph as a Mermaid flowchart, the command layer in its own subgraph.
pub fn mermaid(graph: &Graph) -> String {
    let mut s = String::from("graph TD\n  subgraph commands_layer [command layer]\n");
    for m in graph.keys().filter(|m| COMMAND_LAYER.contains(&m.as_str())) {
        s.push_str(&format!("    {m}\n"));
    }
    s.push_str("  end\n");
    for (from, tos) in graph {
        for to in tos {
            s.push_str(&format!("  {from} --> {to}\n"));
        }
    }
    s
}
