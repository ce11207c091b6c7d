//! Each GPU op's `#[repr(C)]` uniform block against naga's reflection of its shader: the struct
//! behind the shader's `var<uniform>` must have the Rust struct's name, size, and every member's
//! name and byte offset, so that a field added, removed or reordered on one side only fails here
//! (no adapter needed). Also checks that every shader binds buffers under distinct names.

use spatial_gpu::gpu::shader::{uniform_mismatches, Access, Shader, Uniform};
use spatial_gpu::gpu::*;
use std::path::Path;

/// The mismatches of `U` against `shader`'s uniform, each prefixed with the file.
fn check<U: Uniform>(shader: Shader) -> Vec<String> {
    let interface = match shader.interface() {
        Ok(i) => i,
        Err(e) => return vec![format!("{e:#}")],
    };
    uniform_mismatches::<U>(&interface.uniform)
        .into_iter()
        .map(|m| format!("{}: {m}", shader.file))
        .collect()
}

#[test]
fn every_uniform_block_matches_its_wgsl_struct() {
    let checked: Vec<(Shader, Vec<String>)> = vec![
        (matmul::SHADER, check::<matmul::Params>(matmul::SHADER)),
        (matmul::SHADER_VEC4, check::<matmul::Params>(matmul::SHADER_VEC4)),
        (bias_grad::SHADER, check::<bias_grad::Params>(bias_grad::SHADER)),
        (mask::SHADER, check::<mask::Params>(mask::SHADER)),
        (
            softmax_xent::SHADER,
            check::<softmax_xent::Params>(softmax_xent::SHADER),
        ),
        (transport::SHADER, check::<transport::Params>(transport::SHADER)),
        (density::SHADER, check::<density::Params>(density::SHADER)),
        (reduce::SHADER, check::<reduce::Params>(reduce::SHADER)),
        (adam::SHADER, check::<adam::Params>(adam::SHADER)),
        (gather::SHADER, check::<gather::Params>(gather::SHADER)),
        (accuracy::SHADER, check::<accuracy::Params>(accuracy::SHADER)),
    ];
    // Every shader on disk has its block checked here.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let file = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            assert!(
                checked.iter().any(|(s, _)| s.file == file),
                "shaders/{file} has no uniform layout check: add its op's Params here"
            );
        }
    }
    let mismatches: Vec<String> = checked.into_iter().flat_map(|(_, m)| m).collect();
    assert!(
        mismatches.is_empty(),
        "uniform blocks differ from their WGSL structs:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn a_swapped_field_is_reported() {
    // The check itself: matmul's block against a copy of matmul.wgsl with `m` and `n` swapped.
    let swapped = matmul::SHADER
        .src
        .replacen("    m: u32,\n    n: u32,", "    n: u32,\n    m: u32,", 1);
    assert_ne!(swapped, matmul::SHADER.src, "the edit applies");
    let shader = Shader {
        file: "matmul.wgsl (m, n swapped)",
        src: Box::leak(swapped.into_boxed_str()),
    };
    let found = check::<matmul::Params>(shader);
    assert!(
        found
            .iter()
            .any(|m| m.contains("member 0") && m.contains("`n`") && m.contains("`m`")),
        "{found:?}"
    );
}

#[test]
fn bindings_are_named_and_distinct() {
    for &shader in SHADERS {
        let i = shader.interface().unwrap_or_else(|e| panic!("{e:#}"));
        let uniforms = i.bindings.iter().filter(|b| b.access == Access::Uniform).count();
        assert_eq!(uniforms, 1, "{}: one uniform block", shader.file);
        for (k, b) in i.bindings.iter().enumerate() {
            assert!(
                !b.name.is_empty(),
                "{}: binding {} has no name",
                shader.file,
                b.index
            );
            assert!(
                i.bindings[..k]
                    .iter()
                    .all(|o| o.name != b.name && o.index != b.index),
                "{}: `{}` (binding {}) is bound twice",
                shader.file,
                b.name,
                b.index
            );
        }
    }
}

/// The activation is a field of matmul's block (`act`, after `aux_off`): a shader whose `act`
/// sits elsewhere is reported, and each activation's code is its constant's value in `matmul.wgsl`.
#[test]
fn the_matmul_activation_field_and_codes_match_the_shader() {
    let moved = matmul::SHADER.src.replacen(
        "    aux_off: u32,\n    act: u32,",
        "    act: u32,\n    aux_off: u32,",
        1,
    );
    assert_ne!(moved, matmul::SHADER.src, "the edit applies");
    let shader = Shader {
        file: "matmul.wgsl (act moved)",
        src: Box::leak(moved.into_boxed_str()),
    };
    let found = check::<matmul::Params>(shader);
    assert!(
        found
            .iter()
            .any(|m| m.contains("member 12") && m.contains("`aux_off`") && m.contains("`act`")),
        "{found:?}"
    );
    use spatial_gpu::config::Activation;
    for (act, name) in [
        (Activation::Sigmoid, "SIGMOID"),
        (Activation::Relu, "RELU"),
        (Activation::Tanh, "TANH"),
    ] {
        let decl = format!("const {name}: u32 = {}u;", matmul::activation_code(act));
        assert!(
            matmul::SHADER.src.contains(&decl),
            "matmul.wgsl lacks `{decl}` for {act}"
        );
    }
    // A zeroed block (every field the default) means the sigmoid.
    assert_eq!(matmul::activation_code(Activation::default()), 0);
}

/// The step table's record (`gpu::step_table::StepRecord`) against each shader that binds the
/// table: the struct's size, and every member's name and byte offset, must be the Rust struct's.
/// The four shaders that read the table (the gather, the loss, the loss reduction and Adam) must
/// all bind it, so that none falls back to a shared batch size or Adam step.
#[test]
fn every_copy_of_the_step_record_matches_its_rust_struct() {
    use spatial_gpu::gpu::step_table::{self, StepRecord, FIELDS};
    let mut binding = Vec::new();
    for &shader in SHADERS {
        let i = shader.interface().unwrap_or_else(|e| panic!("{e:#}"));
        if !i.bindings.iter().any(|b| b.name == step_table::BINDING) {
            continue;
        }
        binding.push(shader.file);
        let module = shader.parse().unwrap_or_else(|e| panic!("{e:#}"));
        let found = module.types.iter().find_map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { members, span }
                if t.name.as_deref() == Some(step_table::WGSL_STRUCT) =>
            {
                Some((members.clone(), *span))
            }
            _ => None,
        });
        let Some((members, span)) = found else {
            panic!(
                "{}: binds `steps` but declares no struct {}",
                shader.file,
                step_table::WGSL_STRUCT
            );
        };
        assert_eq!(
            span as usize,
            std::mem::size_of::<StepRecord>(),
            "{}: size",
            shader.file
        );
        let wgsl: Vec<(String, usize)> = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let rust: Vec<(String, usize)> = FIELDS.iter().map(|&(n, o)| (n.to_string(), o)).collect();
        assert_eq!(wgsl, rust, "{}: StepRecord members", shader.file);
    }
    binding.sort();
    assert_eq!(
        binding,
        ["adam.wgsl", "gather.wgsl", "reduce.wgsl", "softmax_xent.wgsl"],
        "the shaders that read the step table"
    );
}
