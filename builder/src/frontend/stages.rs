//! References between stages and their checks. `FROM name` uses an earlier stage of that
//! name (else it is an image); `COPY --from` and `RUN --mount=from=` take a stage name
//! (any stage, case-insensitive), a stage index, or else an image. Cycles among these are
//! errors, and so is an index past the last stage.

use std::collections::BTreeMap;

use super::error::ParseError;
use super::instruction::{Dockerfile, Instruction, Located};
use super::scope::GlobalArgs;

/// What a FROM, `COPY --from` or `--mount=from=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRef {
    Stage(usize),
    Image(String),
}

/// Resolves the (expanded) base of stage `index`'s FROM.
pub fn resolve_from(df: &Dockerfile, index: usize, base: &str) -> StageRef {
    let lower = base.to_ascii_lowercase();
    df.stages
        .iter()
        .take(index)
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map_or_else(
            || StageRef::Image(base.to_string()),
            |s| StageRef::Stage(s.index),
        )
}

/// Resolves a `--from` value: a stage index, a stage name, or an image.
pub fn resolve_copy_from(df: &Dockerfile, from: &str) -> Result<StageRef, String> {
    if let Ok(n) = from.parse::<i64>() {
        return usize::try_from(n)
            .ok()
            .filter(|&i| i < df.stages.len())
            .map(StageRef::Stage)
            .ok_or_else(|| {
                format!(
                    "invalid stage index {n}: the Dockerfile has {} stage(s), numbered from 0",
                    df.stages.len()
                )
            });
    }
    Ok(df.stage_by_name(from).map_or_else(
        || StageRef::Image(from.to_string()),
        |s| StageRef::Stage(s.index),
    ))
}

/// The `--from` values an instruction reads from.
fn from_values(inst: &Instruction) -> Vec<&str> {
    match inst {
        Instruction::Copy(c) => c.from.as_deref().into_iter().collect(),
        Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
        _ => Vec::new(),
    }
}

struct Edge<'a> {
    to: usize,
    at: &'a Located<Instruction>,
}

/// Checks stage references: `--from` indexes must exist and no stage may depend on itself
/// through FROM, `COPY --from` or `RUN --mount=from=`. FROM bases are expanded with the
/// global ARGs' defaults.
pub fn check_stages(df: &Dockerfile) -> Result<(), ParseError> {
    let err = |at: &Located<Instruction>, message: String| ParseError {
        file: df.file.clone(),
        line: at.span.start_line,
        column: at.span.column,
        message,
        source_line: at.display_line(),
    };
    let globals = GlobalArgs::host(df, &BTreeMap::new()).ok();
    let froms: Vec<Located<Instruction>> = df
        .stages
        .iter()
        .map(|s| s.from.clone().map(Instruction::From))
        .collect();
    let mut edges: Vec<Vec<Edge>> = Vec::with_capacity(df.stages.len());
    for (stage, from_inst) in df.stages.iter().zip(&froms) {
        let mut out = Vec::new();
        let base = globals
            .as_ref()
            .and_then(|g| g.expand_from(&stage.from, df.escape()).ok())
            .map_or_else(|| stage.from.base.clone(), |(b, _)| b);
        if let StageRef::Stage(to) = resolve_from(df, stage.index, &base) {
            out.push(Edge { to, at: from_inst });
        }
        for inst in &stage.instructions {
            for from in from_values(inst) {
                match resolve_copy_from(df, from) {
                    Err(e) => return Err(err(inst, e)),
                    Ok(StageRef::Stage(to)) => out.push(Edge { to, at: inst }),
                    Ok(StageRef::Image(_)) => {}
                }
            }
        }
        edges.push(out);
    }
    // Depth-first search; 1 = on the current path, 2 = done.
    let mut state = vec![0u8; df.stages.len()];
    let mut path: Vec<usize> = Vec::new();
    fn visit<'a>(
        node: usize,
        edges: &'a [Vec<Edge<'a>>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<(Vec<usize>, &'a Located<Instruction>)> {
        state[node] = 1;
        path.push(node);
        for e in &edges[node] {
            match state[e.to] {
                1 => {
                    let start = path.iter().position(|&n| n == e.to).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(e.to);
                    return Some((cycle, e.at));
                }
                0 => {
                    if let Some(found) = visit(e.to, edges, state, path) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state[node] = 2;
        None
    }
    for start in 0..df.stages.len() {
        if state[start] != 0 {
            continue;
        }
        if let Some((cycle, at)) = visit(start, &edges, &mut state, &mut path) {
            let name = |i: usize| {
                df.stages[i]
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage {i}"))
            };
            let chain: Vec<String> = cycle.iter().map(|&i| name(i)).collect();
            return Err(err(
                at,
                format!(
                    "circular dependency detected on stage: {} ({})",
                    name(cycle[0]),
                    chain.join(" -> ")
                ),
            ));
        }
    }
    Ok(())
}
