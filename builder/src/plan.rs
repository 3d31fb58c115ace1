//! Which stages a build runs and in what order: the stages the target needs (through FROM
//! and `COPY --from`), dependencies first, each with its base resolved.

use std::collections::BTreeMap;

use crate::error::{BuildError, Result};
use crate::frontend::{
    check_stages, resolve_copy_from, resolve_from, Dockerfile, Expander, GlobalArgs, Instruction,
    StageRef,
};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier stage's result.
    Stage(usize),
    /// An image: a named build context or a name in the store.
    Image(String),
}

/// The stages to run, in an order where every stage comes after those it reads.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: usize,
    pub order: Vec<usize>,
    /// Per stage (by index): its base.
    pub bases: Vec<Base>,
    /// Per stage (by index): the stages it reads (FROM, COPY --from, RUN --mount from=).
    pub deps: Vec<Vec<usize>>,
    pub globals: GlobalArgs,
}

impl Plan {
    pub fn new(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Plan> {
        check_stages(df)?;
        if df.stages.is_empty() {
            return Err(BuildError::Option {
                option: "--file",
                reason: format!("{}: no FROM instruction, nothing to build", df.file),
            });
        }
        let globals = GlobalArgs::host(df, build_args).map_err(|e| BuildError::Option {
            option: "--build-arg",
            reason: format!("expanding the global ARGs: {}", e.message),
        })?;
        let mut bases = Vec::with_capacity(df.stages.len());
        for stage in &df.stages {
            let (base, _platform) = globals
                .expand_from(&stage.from, df.escape())
                .map_err(|e| BuildError::step(&stage.from.source, e.message))?;
            bases.push(match resolve_from(df, stage.index, &base) {
                StageRef::Stage(i) => Base::Stage(i),
                StageRef::Image(name) if name.eq_ignore_ascii_case("scratch") => Base::Scratch,
                StageRef::Image(name) => Base::Image(name),
            });
        }
        let target = match target {
            None => df.stages.len() - 1,
            Some(name) => {
                df.stage_by_name(name)
                    .map(|s| s.index)
                    .ok_or_else(|| BuildError::Option {
                        option: "--target",
                        reason: format!("no stage named {name:?} in {}", df.file),
                    })?
            }
        };
        let mut plan = Plan {
            target,
            order: Vec::new(),
            deps: vec![Vec::new(); df.stages.len()],
            bases,
            globals,
        };
        let mut seen = vec![false; df.stages.len()];
        plan.visit(df, target, &mut seen)?;
        Ok(plan)
    }

    /// Depth-first, dependencies first; check_stages already ruled out cycles.
    fn visit(&mut self, df: &Dockerfile, index: usize, seen: &mut [bool]) -> Result<()> {
        if seen[index] {
            return Ok(());
        }
        seen[index] = true;
        if let Base::Stage(dep) = self.bases[index] {
            self.depend(df, index, dep, seen)?;
        }
        for inst in &df.stages[index].instructions {
            if let Some(StageRef::Stage(dep)) = self.copy_from(df, inst)? {
                self.depend(df, index, dep, seen)?;
            }
            if let Instruction::Run(run) = &inst.value {
                for from in run.mounts.iter().filter_map(|m| m.from.as_deref()) {
                    if let StageRef::Stage(dep) = self.resolve_from_value(df, inst, from)? {
                        self.depend(df, index, dep, seen)?;
                    }
                }
            }
        }
        self.order.push(index);
        Ok(())
    }

    fn depend(
        &mut self,
        df: &Dockerfile,
        index: usize,
        dep: usize,
        seen: &mut [bool],
    ) -> Result<()> {
        if !self.deps[index].contains(&dep) {
            self.deps[index].push(dep);
        }
        self.visit(df, dep, seen)
    }

    /// The source of a `COPY --from`, its value expanded with the global ARGs.
    pub fn copy_from(
        &self,
        df: &Dockerfile,
        inst: &crate::frontend::Located<Instruction>,
    ) -> Result<Option<StageRef>> {
        let Instruction::Copy(copy) = &inst.value else {
            return Ok(None);
        };
        let Some(from) = &copy.from else {
            return Ok(None);
        };
        self.resolve_from_value(df, inst, from).map(Some)
    }

    /// A `--from` value (of COPY or RUN --mount) expanded with the global ARGs and resolved.
    fn resolve_from_value(
        &self,
        df: &Dockerfile,
        inst: &crate::frontend::Located<Instruction>,
        from: &str,
    ) -> Result<StageRef> {
        let from = Expander::new(df.escape())
            .word(from, &self.globals)
            .map_err(|e| BuildError::step(&inst.source, e.message))?;
        resolve_copy_from(df, &from).map_err(|e| BuildError::step(&inst.source, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse;

    #[test]
    fn target_needs_only_its_stages() -> Result<()> {
        let df = parse(
            "Dockerfile",
            "FROM scratch AS a\nFROM busybox AS unused\nFROM a AS b\nCOPY --from=tools /x /x\n\
             RUN --mount=from=mnt,target=/m true\nFROM scratch AS tools\nFROM scratch AS mnt\n",
        )?;
        let plan = Plan::new(&df, &BTreeMap::new(), Some("b"))?;
        assert_eq!(plan.target, 2);
        assert_eq!(plan.order, vec![0, 3, 4, 2]);
        assert_eq!(plan.bases[0], Base::Scratch);
        assert_eq!(plan.bases[1], Base::Image("busybox".into()));
        assert_eq!(plan.bases[2], Base::Stage(0));
        assert_eq!(plan.deps[2], vec![0, 3, 4]);
        assert!(plan.deps[0].is_empty());
        assert!(Plan::new(&df, &BTreeMap::new(), Some("nope")).is_err());
        Ok(())
    }
}
