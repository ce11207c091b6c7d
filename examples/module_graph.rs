//! Prints the dependency graph of the crate's top-level modules as a Mermaid flowchart, read from
//! the sources as `tests/architecture.rs` reads them: `cargo run --example module_graph`.

#[path = "../tests/support/module_graph.rs"]
mod module_graph;

fn main() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    print!("{}", module_graph::mermaid(&module_graph::module_graph(&src)));
}
