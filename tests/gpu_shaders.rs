//! Every WGSL file in `shaders/` parses and validates with naga (no adapter needed), so a shader
//! error shows up in `cargo test` on any machine.

use std::path::Path;

fn validate(name: &str, src: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse error\n{}", e.emit_to_string(src)))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| format!("{name}: validation error\n{}", e.emit_to_string(src)))?;
    Ok(())
}

#[test]
fn every_shader_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    let expected = [
        "adam",
        "bias_sigmoid",
        "density",
        "matmul",
        "reduce",
        "softmax_xent",
        "transport",
    ];
    for name in expected {
        assert!(
            files.iter().any(|f| f.file_stem().is_some_and(|s| s == name)),
            "shaders/{name}.wgsl is missing"
        );
    }
    let mut errors = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("readable shader");
        if let Err(e) = validate(&f.display().to_string(), &src) {
            errors.push(e);
        }
    }
    assert!(
        errors.is_empty(),
        "{} shader(s) failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// The sources the engine embeds are the files on disk (nothing stale compiled in).
#[test]
fn embedded_sources_are_the_files() {
    use spatial_gpu::gpu::*;
    for (file, src) in [
        (matmul::FILE, matmul::SRC),
        (bias_sigmoid::FILE, bias_sigmoid::SRC),
        (softmax_xent::FILE, softmax_xent::SRC),
        (transport::FILE, transport::SRC),
        (density::FILE, density::SRC),
        (adam::FILE, adam::SRC),
        (reduce::FILE, reduce::SRC),
    ] {
        validate(file, src).unwrap_or_else(|e| panic!("{e}"));
    }
}
