//! Every WGSL file in `shaders/` parses and validates with naga, and every entry point translates
//! with naga's back ends to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12), so that a construct one
//! platform would refuse fails `cargo test` here (no adapter needed), not on a user's machine.

use std::path::Path;

fn validate(name: &str, src: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse error\n{}", e.emit_to_string(src)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| format!("{name}: validation error\n{}", e.emit_to_string(src)))?;
    Ok((module, info))
}

fn shader_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shader_parses_and_validates() {
    let files = shader_files();
    let expected = [
        "adam",
        "bias_grad",
        "density",
        "gather",
        "mask",
        "matmul",
        "matmul_vec4",
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
        if let Err(e) = validate(&f.display().to_string(), &src).map(|_| ()) {
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for &shader in SHADERS {
        let on_disk = std::fs::read_to_string(dir.join(shader.file)).expect("the file exists");
        assert_eq!(
            shader.src, on_disk,
            "{} differs from the file on disk",
            shader.file
        );
        validate(shader.file, shader.src).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// One entry point through one back end; the error names the back end.
fn translate(
    backend: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry: &str,
) -> Result<(), String> {
    use naga::back::{hlsl, msl, spv};
    let stage = naga::ShaderStage::Compute;
    let result = match backend {
        "SPIR-V" => spv::write_vec(
            module,
            info,
            &spv::Options::default(),
            Some(&spv::PipelineOptions {
                shader_stage: stage,
                entry_point: entry.to_string(),
            }),
        )
        .map(|_| ())
        .map_err(|e| e.to_string()),
        "MSL" => msl::write_string(
            module,
            info,
            &msl::Options {
                lang_version: (2, 0),
                ..Default::default()
            },
            &msl::PipelineOptions {
                entry_point: Some((stage, entry.to_string())),
                ..Default::default()
            },
        )
        .map(|_| ())
        .map_err(|e| e.to_string()),
        "HLSL" => {
            let mut out = String::new();
            let options = hlsl::Options::default();
            let pipeline = hlsl::PipelineOptions {
                entry_point: Some((stage, entry.to_string())),
            };
            hlsl::Writer::new(&mut out, &options, &pipeline)
                .write(module, info, None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        other => unreachable!("no back end {other}"),
    };
    result
}

/// Every compute entry point of every shader translates to SPIR-V, MSL and HLSL.
#[test]
fn every_entry_point_translates_to_spirv_msl_and_hlsl() {
    let mut failures = Vec::new();
    let mut translated = 0;
    for f in shader_files() {
        let src = std::fs::read_to_string(&f).expect("readable shader");
        let name = f.file_name().unwrap_or_default().to_string_lossy().to_string();
        let (module, info) = validate(&name, &src).unwrap_or_else(|e| panic!("{e}"));
        let entries: Vec<&str> = module
            .entry_points
            .iter()
            .filter(|e| e.stage == naga::ShaderStage::Compute)
            .map(|e| e.name.as_str())
            .collect();
        assert!(!entries.is_empty(), "{name} has no compute entry point");
        for entry in entries {
            for backend in ["SPIR-V", "MSL", "HLSL"] {
                match translate(backend, &module, &info, entry) {
                    Ok(()) => translated += 1,
                    Err(e) => failures.push(format!("{name}, entry point {entry}, {backend}: {e}")),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} translation(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 11 shaders, 19 entry points, 3 back ends: a shader or entry point dropped silently shows here.
    assert_eq!(translated, 19 * 3, "translations");
}

/// The text between the `shared` markers (uniform block, bindings other than a and b, the
/// epilogue) is the same in matmul.wgsl and matmul_vec4.wgsl, so the two cannot drift apart; and
/// both declare a and b at the same bindings with the same access (one bind group layout serves
/// both files' pipelines).
#[test]
fn matmul_files_share_their_epilogue_and_layout() {
    use spatial_gpu::gpu::matmul::{SHADER, SHADER_VEC4};
    let shared = |src: &str| -> String {
        let begin = "// ---- shared by matmul.wgsl and matmul_vec4.wgsl: begin ----";
        let end = "// ---- shared by matmul.wgsl and matmul_vec4.wgsl: end ----";
        let b = src.find(begin).expect("begin marker");
        let e = src.find(end).expect("end marker");
        assert!(b < e, "markers in order");
        src[b..e].to_string()
    };
    let (scalar, vec4) = (shared(SHADER.src), shared(SHADER_VEC4.src));
    assert!(scalar.contains("fn store("), "the shared part holds the epilogue");
    assert_eq!(scalar, vec4, "the shared parts differ");
    let (si, vi) = (SHADER.interface().unwrap(), SHADER_VEC4.interface().unwrap());
    assert_eq!(si.bindings, vi.bindings);
    assert_eq!(si.uniform, vi.uniform);
}
