//! A WGSL file and what the engine reads from it with naga: the buffers it binds (by name, with
//! their binding index and access) and the layout of the struct behind its `var<uniform>`.
//!
//! Bind group layouts are built from this reflection, and a dispatch names its buffers, so the
//! Rust side never restates binding numbers. Each op's uniform block is a `#[repr(C)]` struct
//! implementing [`Uniform`]; `tests/gpu_uniform_layout.rs` checks it against [`Interface::uniform`].

use anyhow::{anyhow, bail, Result};

/// One WGSL file of `shaders/`, embedded at build time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shader {
    /// The file name (`matmul.wgsl`), for errors and caches.
    pub file: &'static str,
    pub src: &'static str,
}

/// How a buffer is bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Uniform,
    Read,
    ReadWrite,
}

/// One `@group(0) @binding(n) var<...> name` of a shader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub index: u32,
    pub access: Access,
}

/// A member of a WGSL struct: name and byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub offset: u32,
}

/// The struct behind a shader's `var<uniform>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniformStruct {
    /// The WGSL struct's name (`Params`).
    pub name: String,
    /// Its size in bytes.
    pub size: u32,
    pub members: Vec<Member>,
}

/// What a shader binds, in binding order, and its uniform block.
#[derive(Clone, Debug)]
pub struct Interface {
    pub bindings: Vec<Binding>,
    pub uniform: UniformStruct,
    /// Compute entry points, in source order.
    pub entry_points: Vec<String>,
}

impl Shader {
    /// The naga module of the source; an error names the file and shows naga's diagnostic.
    pub fn parse(&self) -> Result<naga::Module> {
        naga::front::wgsl::parse_str(self.src)
            .map_err(|e| anyhow!("shader {}: {}", self.file, e.emit_to_string(self.src)))
    }

    /// The shader's bindings and uniform block (group 0 only: the engine uses no other group).
    pub fn interface(&self) -> Result<Interface> {
        let module = self.parse()?;
        let mut bindings = Vec::new();
        let mut uniform = None;
        for (_, var) in module.global_variables.iter() {
            let Some(rb) = &var.binding else { continue };
            let name = var.name.clone().unwrap_or_default();
            if rb.group != 0 {
                bail!(
                    "shader {}: `{name}` is in group {}, the engine binds group 0 only",
                    self.file,
                    rb.group
                );
            }
            let access = match var.space {
                naga::AddressSpace::Uniform => Access::Uniform,
                naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                    Access::ReadWrite
                }
                naga::AddressSpace::Storage { .. } => Access::Read,
                other => bail!(
                    "shader {}: `{name}` is bound in {other:?}, not a buffer",
                    self.file
                ),
            };
            if access == Access::Uniform {
                if uniform.is_some() {
                    bail!("shader {}: more than one var<uniform>", self.file);
                }
                uniform =
                    Some(struct_of(&module, var.ty).ok_or_else(|| {
                        anyhow!("shader {}: the uniform `{name}` is not a struct", self.file)
                    })?);
            }
            bindings.push(Binding {
                name,
                index: rb.binding,
                access,
            });
        }
        bindings.sort_by_key(|b| b.index);
        let uniform = uniform.ok_or_else(|| anyhow!("shader {}: no var<uniform>", self.file))?;
        let entry_points = module
            .entry_points
            .iter()
            .filter(|e| e.stage == naga::ShaderStage::Compute)
            .map(|e| e.name.clone())
            .collect();
        Ok(Interface {
            bindings,
            uniform,
            entry_points,
        })
    }
}

fn struct_of(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<UniformStruct> {
    let t = &module.types[ty];
    match &t.inner {
        naga::TypeInner::Struct { members, span } => Some(UniformStruct {
            name: t.name.clone().unwrap_or_default(),
            size: *span,
            members: members
                .iter()
                .map(|m| Member {
                    name: m.name.clone().unwrap_or_default(),
                    offset: m.offset,
                })
                .collect(),
        }),
        _ => None,
    }
}

/// A `#[repr(C)]` uniform block mirroring a WGSL struct: same member names, same offsets, same
/// size. Implement it with [`uniform!`](crate::uniform), which lists the fields once.
pub trait Uniform: bytemuck::Pod {
    /// The name of the WGSL struct it mirrors.
    const WGSL_STRUCT: &'static str;
    /// Every field's name and byte offset, in declaration order.
    const FIELDS: &'static [(&'static str, usize)];
}

/// Differences between a Rust uniform block `U` and the WGSL struct `wgsl`; empty when they agree.
pub fn uniform_mismatches<U: Uniform>(wgsl: &UniformStruct) -> Vec<String> {
    let mut out = Vec::new();
    let rust = std::any::type_name::<U>();
    if wgsl.name != U::WGSL_STRUCT {
        out.push(format!(
            "{rust} mirrors struct {}, the shader's uniform is struct {}",
            U::WGSL_STRUCT,
            wgsl.name
        ));
    }
    if std::mem::size_of::<U>() != wgsl.size as usize {
        out.push(format!(
            "{rust} is {} bytes, WGSL struct {} is {}",
            std::mem::size_of::<U>(),
            wgsl.name,
            wgsl.size
        ));
    }
    if U::FIELDS.len() != wgsl.members.len() {
        out.push(format!(
            "{rust} has {} fields, WGSL struct {} has {}",
            U::FIELDS.len(),
            wgsl.name,
            wgsl.members.len()
        ));
    }
    for (i, m) in wgsl.members.iter().enumerate() {
        match U::FIELDS.get(i) {
            Some(&(name, offset)) if name == m.name && offset == m.offset as usize => {}
            Some(&(name, offset)) => out.push(format!(
                "member {i}: WGSL `{}` at byte {}, Rust `{name}` at byte {offset}",
                m.name, m.offset
            )),
            None => out.push(format!(
                "member {i}: WGSL `{}` at byte {} has no Rust field",
                m.name, m.offset
            )),
        }
    }
    out
}

/// Implements [`Uniform`] for a struct: `uniform!(Params = "Params" { n, lr, ... });` with every
/// field, in order (a field left out makes the layout test fail on the count).
#[macro_export]
macro_rules! uniform {
    ($t:ty = $wgsl:literal { $($f:ident),* $(,)? }) => {
        impl $crate::gpu::shader::Uniform for $t {
            const WGSL_STRUCT: &'static str = $wgsl;
            const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($f), std::mem::offset_of!($t, $f))),*];
        }
    };
}
