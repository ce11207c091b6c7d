//! The layering rules, checked on the source text (`tests/support/module_graph.rs` reads it):
//! - the library core (every top-level module but `cli`, `commands` and `main`) has no import cycle;
//! - no core module names the command layer;
//! - no Rust file of the project is over 800 lines;
//! - only the command layer uses clap (the core takes plain structs such as `config::Overrides`).
//!
//! `cargo run --example module_graph` prints the same graph as a Mermaid flowchart.

#[path = "support/module_graph.rs"]
mod module_graph;

use module_graph::{find_cycle, module_graph, root_references, rust_files, Graph, COMMAND_LAYER};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn graph() -> Graph {
    module_graph(&root().join("src"))
}

fn is_core(m: &str) -> bool {
    !COMMAND_LAYER.contains(&m)
}

fn set(names: &[&str]) -> std::collections::BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_parser_sees_paths_groups_super_and_macros_but_not_comments_or_strings() {
    let module = |p: &str| module_graph::module_path(Path::new(p));
    let src = r##"
        use crate::alpha::Thing;
        use crate::{beta, gamma::{x, y as z}, delta::*};
        // use crate::in_a_comment;
        /* crate::in_a_block /* nested crate::deeper */ crate::still_comment */
        const S: &str = "crate::in_a_string";
        const R: &str = r#"crate::in_a_raw_string"#;
        const C: char = '"';
        fn f<'a>(x: &'a str) -> Option<crate::epsilon::E> { None }
        use super::zeta;
        mod tests {
            use super::*;
            use super::eta;
            use super::super::theta;
        }
        #[macro_export]
        macro_rules! helper { () => { $crate::iota::f() } }
        pub(super) fn g() {}
    "##;
    let (refs, macros) = root_references(src, &module("kappa.rs"), false);
    assert_eq!(
        refs,
        set(&["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota"]),
        "`super` in kappa.rs is the crate root, `super` in its inline `mod tests` is kappa"
    );
    assert_eq!(macros, vec!["helper".to_string()]);
    // One level deeper, `super` stays inside the top-level module.
    let (refs, _) = root_references(
        "use super::sibling; use crate::far;",
        &module("cpu/linear.rs"),
        false,
    );
    assert_eq!(refs, set(&["far"]));
    let (refs, _) = root_references("use super::sibling;", &module("cpu/mod.rs"), false);
    assert_eq!(refs, set(&["sibling"]));
    // main.rs reaches the library by the crate's name.
    let (refs, _) = root_references("spatial_gpu::cli::run()", &module("main.rs"), true);
    assert_eq!(refs, set(&["cli"]));
}

#[test]
fn a_cycle_is_found_and_printed_in_order() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    }
    assert_eq!(
        find_cycle(&g, &|_| true),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(find_cycle(&g, &|m| m != "b"), None);
}

#[test]
fn the_graph_of_this_crate_has_the_edges_its_sources_show() {
    let g = graph();
    // A few edges that must be there, so an empty or broken parse cannot pass the rules below.
    for (from, to) in [
        ("main", "cli"),
        ("cli", "commands"),
        ("train", "backend"),
        ("cpu", "guard"),
        ("train", "guard"),
        ("data", "simd"),
        ("commands", "grid"),
    ] {
        assert!(
            g.get(from).is_some_and(|t| t.contains(to)),
            "expected {from} -> {to} in the module graph: {g:#?}"
        );
    }
}

#[test]
fn the_core_has_no_import_cycle() {
    let g = graph();
    if let Some(cycle) = find_cycle(&g, &is_core) {
        panic!("import cycle in the library core: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_core_module_names_the_command_layer() {
    let g = graph();
    let bad: Vec<String> = g
        .iter()
        .filter(|(from, _)| is_core(from))
        .flat_map(|(from, tos)| {
            tos.iter()
                .filter(|to| !is_core(to))
                .map(move |to| format!("{from} -> {to}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "core modules that import the command layer: {}",
        bad.join(", ")
    );
}

#[test]
fn no_rust_file_is_over_800_lines() {
    let mut long = Vec::new();
    let mut seen = 0;
    for dir in ["src", "tests", "benches", "examples"] {
        for f in rust_files(&root().join(dir)) {
            seen += 1;
            let lines = std::fs::read_to_string(&f).expect("readable").lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines} lines)",
                    f.strip_prefix(root()).unwrap_or(&f).display()
                ));
            }
        }
    }
    assert!(
        seen > 20,
        "only {seen} Rust files found under {}",
        root().display()
    );
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

/// Whether Rust source names the clap crate (comments aside: `module_graph`'s tokens skip them).
fn names_clap(src: &str) -> bool {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .any(|code| code.contains("clap::") || code.contains("use clap"))
}

#[test]
fn only_the_command_layer_knows_clap() {
    assert!(names_clap("use clap::Args;"), "the check must see a clap import");
    assert!(!names_clap("// about clap:: in a comment"));
    let src = root().join("src");
    let mut bad = Vec::new();
    for f in rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap_or(&f).to_path_buf();
        let top = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if is_core(&top) && names_clap(&std::fs::read_to_string(&f).expect("readable")) {
            bad.push(rel.display().to_string());
        }
    }
    assert!(bad.is_empty(), "core files that use clap: {}", bad.join(", "));
}
