//! `acta-testnet idle`: what an idle network costs. Four validators with the production
//! settings start, make their first block, and then get nothing to do for a while; the
//! command reports the blocks they made meanwhile, how much each node's data folder (store
//! and WAL) grew, and the CPU all four used, as a share of one core.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use acta_ledger::{testing, Keypair};
use acta_node::devnet::{actad_beside_me, LocalNet};
use anyhow::{Context, Result};
use serde::Serialize;

use crate::bench::{clock_ticks, proc_usage};

/// What an idle network did over a while.
#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub seconds: f64,
    pub empty_block_interval_ms: u64,
    /// Blocks made while idle, by node 0.
    pub blocks: u64,
    /// Growth of each node's data folder (store and WAL), in bytes.
    pub data_growth_bytes: Vec<i64>,
    /// CPU of all validators together, as a share of one core.
    pub cpu_share_of_one_core: f64,
}

/// The bytes of every file under `dir`.
pub(crate) fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => size_of(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs four idle validators in `dir` for `duration` after their first block.
pub fn run(dir: &Path, duration: Duration, empty_block_interval_ms: u64) -> Result<IdleReport> {
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let mut net = LocalNet::init(&actad_beside_me()?, dir, 4, "acta-idle", &council, 2)?;
    for i in 0..net.nodes.len() {
        net.edit_config(i, |c| {
            c.consensus.empty_block_interval_ms = empty_block_interval_ms;
        })?;
    }
    net.start_all()?;
    let result = measure(&net, duration, empty_block_interval_ms);
    if result.is_err() {
        net.dump_logs();
    }
    net.stop_all()?;
    result
}

fn measure(net: &LocalNet, duration: Duration, interval_ms: u64) -> Result<IdleReport> {
    let first = Duration::from_millis(interval_ms) + Duration::from_secs(60);
    net.wait_height(1, first)?;
    let data: Vec<PathBuf> = net.nodes.iter().map(|n| n.home.join("data")).collect();
    let pids: Vec<u32> = net
        .nodes
        .iter()
        .map(|n| n.child.as_ref().map(std::process::Child::id))
        .collect::<Option<_>>()
        .context("a validator is not running")?;
    let cpu = |pids: &[u32]| -> Result<u64> {
        pids.iter()
            .map(|p| proc_usage(*p).map(|u| u.0))
            .sum::<Option<u64>>()
            .context("a validator stopped")
    };
    let (size0, cpu0, height0, at) = (
        data.iter().map(|d| size_of(d)).collect::<Vec<_>>(),
        cpu(&pids)?,
        net.height(0),
        Instant::now(),
    );
    acta_node::outln!(
        "== idle: 4 validators at height {height0}, empty blocks every {interval_ms} ms; watching for {} s",
        duration.as_secs()
    );
    std::thread::sleep(duration);
    let seconds = at.elapsed().as_secs_f64();
    let cpu1 = cpu(&pids)?;
    let report = IdleReport {
        seconds,
        empty_block_interval_ms: interval_ms,
        blocks: net.height(0).saturating_sub(height0),
        data_growth_bytes: data
            .iter()
            .zip(size0)
            .map(|(d, s0)| {
                i64::try_from(size_of(d)).unwrap_or(i64::MAX)
                    - i64::try_from(s0).unwrap_or(i64::MAX)
            })
            .collect(),
        #[allow(clippy::cast_precision_loss)]
        cpu_share_of_one_core: (cpu1 - cpu0) as f64 / clock_ticks() / seconds,
    };
    Ok(report)
}
