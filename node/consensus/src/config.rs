//! Timeouts and limits of the consensus core.

/// How long the core waits at each step, and how much it buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Wait for a proposal in round 0; each later round waits `timeout_delta_ms` longer.
    pub timeout_propose_ms: u64,
    /// Wait after seeing prevotes of a quorum that do not agree (paper L34).
    pub timeout_prevote_ms: u64,
    /// Wait after seeing precommits of a quorum that do not agree (paper L47).
    pub timeout_precommit_ms: u64,
    /// Added to every timeout per round, so timeouts grow until they exceed the network's
    /// real delay (partial synchrony).
    pub timeout_delta_ms: u64,
    /// Messages for rounds at most this far ahead of the current one are kept; later ones
    /// are dropped (they come back through gossip once the core gets closer).
    pub future_rounds_max: u32,
    /// Messages for the next height kept while this one finishes.
    pub next_height_messages_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_propose_ms: 3000,
            timeout_prevote_ms: 1000,
            timeout_precommit_ms: 1000,
            timeout_delta_ms: 500,
            future_rounds_max: 64,
            next_height_messages_max: 4096,
        }
    }
}

impl Config {
    /// The timeout of `step` in `round`: its base plus `round` deltas.
    pub fn timeout_ms(&self, step: crate::TimeoutStep, round: u32) -> u64 {
        let base = match step {
            crate::TimeoutStep::Propose => self.timeout_propose_ms,
            crate::TimeoutStep::Prevote => self.timeout_prevote_ms,
            crate::TimeoutStep::Precommit => self.timeout_precommit_ms,
        };
        base.saturating_add(self.timeout_delta_ms.saturating_mul(u64::from(round)))
    }
}
