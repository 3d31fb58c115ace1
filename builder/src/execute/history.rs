//! History entries of the image config: one per step, with the step's time (from the
//! cache for a cached step), settled for config-only steps when the build ends.

use skiff_specs::History;

use super::{Executor, StageState};
use crate::frontend::{Instruction, Located};

impl Executor<'_> {
    /// A history entry for a step that changes only the config: its time is settled when
    /// the build ends ([`settle_times`]).
    pub(super) fn history(&self, state: &mut StageState, inst: &Located<Instruction>, empty: bool) {
        self.history_at(state, inst, empty, None);
    }

    pub(super) fn history_at(
        &self,
        state: &mut StageState,
        inst: &Located<Instruction>,
        empty: bool,
        created: Option<String>,
    ) {
        let suffix = match inst.value {
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => " # buildkit",
            _ => "",
        };
        state.history.push(History {
            created,
            created_by: Some(format!("{}{suffix}", inst.source)),
            comment: Some("buildkit.dockerfile.v0".to_owned()),
            empty_layer: empty.then_some(true),
            ..History::default()
        });
    }
}

/// Gives the history entries of config-only steps (no time yet) one, as BuildKit does:
/// those before the build's first timed step get that step's time, later ones the time of
/// the timed step before them; `fallback` when no entry has a time. The times of steps come
/// from the cache when they were cached, so a rebuild settles on the same times.
pub(super) fn settle_times(history: &mut [History], fallback: &str) {
    let mut gap = false;
    let mut current = None;
    for h in history.iter() {
        match &h.created {
            Some(t) => {
                current = Some(t.clone());
                if gap {
                    break;
                }
            }
            None => gap = true,
        }
    }
    let mut current = current.unwrap_or_else(|| fallback.to_owned());
    let mut gap = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(t) if gap => current = t.clone(),
            Some(_) => {}
            None => {
                gap = true;
                h.created = Some(current.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn history(times: &[Option<&str>]) -> Vec<History> {
        times
            .iter()
            .map(|t| History {
                created: t.map(str::to_owned),
                ..History::default()
            })
            .collect()
    }

    fn times(h: &[History]) -> Vec<&str> {
        h.iter().filter_map(|h| h.created.as_deref()).collect()
    }

    #[test]
    fn config_only_steps_take_the_times_of_their_neighbours() {
        // Base entry, ENV, COPY, CMD, RUN, LABEL.
        let mut h = history(&[Some("t0"), None, Some("t1"), None, Some("t2"), None]);
        settle_times(&mut h, "now");
        assert_eq!(times(&h), ["t0", "t1", "t1", "t1", "t2", "t2"]);

        // Nothing new with a time: after the base, the base's last time.
        let mut h = history(&[Some("t0"), None]);
        settle_times(&mut h, "now");
        assert_eq!(times(&h), ["t0", "t0"]);

        // No time anywhere: the build's.
        let mut h = history(&[None, None]);
        settle_times(&mut h, "now");
        assert_eq!(times(&h), ["now", "now"]);
    }
}
