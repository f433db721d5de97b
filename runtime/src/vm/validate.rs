//! Deploy-time validation: a module that could not run, or that uses what Altan does not allow,
//! is refused when it is deployed rather than failing on every call.

use wasmparser::{
    ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures,
};

use super::engine::HOST_MODULE;
use super::host::HOST_FUNCTIONS;
use crate::gas;

/// The name of the custom section by which a contract accepts being re-entered.
pub const REENTRANT_SECTION: &str = "altan.reentrant";

/// Why code was refused. Each is a deploy-time failure with the `InvalidCode` receipt status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code is larger than [`gas::MAX_CODE_SIZE`].
    #[error("code is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid Wasm, or it uses a disabled feature (SIMD, threads, multi-memory...).
    #[error("invalid module: {0}")]
    Invalid(String),
    /// An import that is not a host function of the ABI.
    #[error("unknown import {module}::{name}")]
    UnknownImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// Imported memories, tables, globals or tags are not allowed.
    #[error("import {0} is not a function")]
    NonFunctionImport(String),
    /// A required export is missing or has the wrong type.
    #[error("export `{0}` must be a function taking and returning nothing")]
    BadEntryPoint(&'static str),
    /// The module must define exactly one memory, exported as `memory`.
    #[error("the module must define one memory exported as `memory`")]
    BadMemory,
    /// The initial memory is over the limit.
    #[error("initial memory of {pages} pages exceeds {max}")]
    MemoryTooLarge {
        /// Pages asked for.
        pages: u64,
        /// The limit.
        max: u64,
    },
    /// A start function would run on every instantiation, outside any entry point.
    #[error("start functions are not allowed")]
    StartFunction,
    /// A count is over its limit.
    #[error("{what}: {found} exceeds the limit of {max}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// How many there are.
        found: u64,
        /// The limit.
        max: u64,
    },
}

/// What validation learnt about a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The module exports a `deploy` constructor.
    pub has_constructor: bool,
    /// The module accepts reentrant calls.
    pub reentrant: bool,
}

/// The Wasm features contracts may use; the engine enables the same set.
pub fn features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::FLOATS
        | WasmFeatures::EXTENDED_CONST
}

fn limit(
    what: &'static str,
    found: impl TryInto<u64>,
    max: impl TryInto<u64>,
) -> Result<(), CodeError> {
    let found = found.try_into().unwrap_or(u64::MAX);
    let max = max.try_into().unwrap_or(u64::MAX);
    if found > max { Err(CodeError::Limit { what, found, max }) } else { Ok(()) }
}

fn invalid(error: wasmparser::BinaryReaderError) -> CodeError {
    CodeError::Invalid(error.message().to_string())
}

fn is_unit(ty: &FuncType) -> bool {
    ty.params().is_empty() && ty.results().is_empty()
}

/// Validates `code` as an Altan contract.
pub fn validate(code: &[u8]) -> Result<CodeInfo, CodeError> {
    if code.len() > gas::MAX_CODE_SIZE {
        return Err(CodeError::TooLarge { size: code.len(), max: gas::MAX_CODE_SIZE });
    }
    Validator::new_with_features(features()).validate_all(code).map_err(invalid)?;

    let mut types: Vec<FuncType> = Vec::new();
    let mut functions: Vec<u32> = Vec::new();
    let mut memories = 0u32;
    let mut memory_exported = false;
    let mut entry_points: Vec<(String, u32)> = Vec::new();
    let mut reentrant = false;

    for payload in Parser::new(0).parse_all(code) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                limit("types", reader.count(), gas::MAX_ITEMS)?;
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty.map_err(invalid)?;
                    limit("parameters", ty.params().len(), gas::MAX_PARAMS)?;
                    limit("results", ty.results().len(), gas::MAX_PARAMS)?;
                    types.push(ty);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    if import.module != HOST_MODULE || !HOST_FUNCTIONS.contains(&import.name) {
                        return Err(CodeError::UnknownImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    match import.ty {
                        TypeRef::Func(index) => functions.push(index),
                        _ => return Err(CodeError::NonFunctionImport(import.name.to_string())),
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    functions.push(index.map_err(invalid)?);
                }
                limit("functions", functions.len(), gas::MAX_FUNCTIONS)?;
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(invalid)?;
                    limit("table elements", table.ty.initial, gas::MAX_TABLE_ELEMENTS)?;
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    memories = memories.saturating_add(1);
                    let max_pages = (gas::MAX_MEMORY_BYTES / 65_536) as u64;
                    if memory.initial > max_pages {
                        return Err(CodeError::MemoryTooLarge {
                            pages: memory.initial,
                            max: max_pages,
                        });
                    }
                }
            }
            Payload::GlobalSection(reader) => limit("globals", reader.count(), gas::MAX_GLOBALS)?,
            Payload::ExportSection(reader) => {
                limit("exports", reader.count(), gas::MAX_ITEMS)?;
                for export in reader {
                    let export = export.map_err(invalid)?;
                    match (export.kind, export.name) {
                        (ExternalKind::Memory, "memory") => memory_exported = true,
                        (ExternalKind::Func, name @ ("call" | "deploy")) => {
                            entry_points.push((name.to_string(), export.index));
                        }
                        _ => {}
                    }
                }
            }
            Payload::StartSection { .. } => return Err(CodeError::StartFunction),
            Payload::ElementSection(reader) => {
                limit("element segments", reader.count(), gas::MAX_ITEMS)?
            }
            Payload::DataSection(reader) => limit("data segments", reader.count(), gas::MAX_ITEMS)?,
            Payload::CodeSectionEntry(body) => {
                let mut locals = 0u32;
                for group in body.get_locals_reader().map_err(invalid)? {
                    let (count, _ty): (u32, ValType) = group.map_err(invalid)?;
                    locals = locals.saturating_add(count);
                }
                limit("locals in a function", locals, gas::MAX_LOCALS)?;
            }
            Payload::CustomSection(section) if section.name() == REENTRANT_SECTION => {
                reentrant = true;
            }
            _ => {}
        }
    }

    if memories != 1 || !memory_exported {
        return Err(CodeError::BadMemory);
    }
    let entry_type = |name: &str| -> Option<&FuncType> {
        let (_, index) = entry_points.iter().find(|(n, _)| n == name)?;
        let type_index = functions.get(usize::try_from(*index).ok()?)?;
        types.get(usize::try_from(*type_index).ok()?)
    };
    if !entry_type("call").is_some_and(is_unit) {
        return Err(CodeError::BadEntryPoint("call"));
    }
    let has_constructor = entry_points.iter().any(|(n, _)| n == "deploy");
    if has_constructor && !entry_type("deploy").is_some_and(is_unit) {
        return Err(CodeError::BadEntryPoint("deploy"));
    }
    Ok(CodeInfo { has_constructor, reentrant })
}
