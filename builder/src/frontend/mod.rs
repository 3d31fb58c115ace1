//! The Dockerfile frontend: parser directives, line continuations, heredocs, every
//! instruction with its flags, variable expansion with BuildKit's semantics, per-stage
//! ARG/ENV scoping, stage reference checks and .dockerignore matching.
//!
//! ```
//! use skiff_builder::frontend::{check_stages, parse, Instruction};
//! # fn main() -> Result<(), skiff_builder::frontend::ParseError> {
//! let df = parse("Dockerfile", "FROM busybox AS base\nRUN echo hi\n")?;
//! check_stages(&df)?;
//! assert_eq!(df.stages[0].name.as_deref(), Some("base"));
//! assert!(matches!(df.stages[0].instructions[0].value, Instruction::Run(_)));
//! # Ok(())
//! # }
//! ```
//!
//! `parse` reports everything it can decide from one instruction (and a stage reading from
//! itself); `check_stages` adds the checks that need all stages: stage indexes and cycles.

mod directives;
mod dockerignore;
mod duration;
mod error;
mod expand;
mod flags;
mod heredoc;
mod instruction;
mod lexer;
mod mount;
mod parser;
mod scope;
mod stages;
mod substitute;
mod suggest;
mod words;

pub use directives::{CheckDirective, Directives};
pub use dockerignore::{find_dockerignore, DockerIgnore};
pub use duration::parse_go_duration;
pub use error::{ExpandError, IgnoreError, ParseError};
pub use expand::{expand, expand_words, Expander, Expansion, Lookup, NoVars};
pub use heredoc::{parse_marker, Heredoc};
pub use instruction::*;
pub use mount::{Mount, MountType, Sharing};
pub use parser::parse;
pub use scope::{platform_args, GlobalArgs, Platform, StageVars};
pub use stages::{check_stages, resolve_copy_from, resolve_from, StageRef};
