//! A short `acta-testnet bench` run on a local 4-validator network: the city is set up, a
//! few seconds of pre-signed ballots, DID updates and attestation batches are sent, and the
//! results are written as JSON and SVG. Measures nothing: it checks that the bench works
//! and that what it reports holds together.
//!
//! Needs `actad` built beside the test binary (`cargo test --workspace` builds it).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use acta_testnet::bench::{run, Load, Options};

#[test]
fn a_short_run_commits_every_kind_and_writes_its_json_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        dir: dir.path().join("net"),
        load: Load::Hold {
            rate: 300,
            duration: Duration::from_secs(4),
        },
        mix: "ballot=1,did=1,attest=1".parse().unwrap(),
        residents: 16,
        devices: 4,
        json: dir.path().join("bench.json"),
        chart: dir.path().join("bench.svg"),
        storage: Some(acta_node::config::StorageConfig {
            mode: acta_node::config::StorageMode::Pruned,
            retain_heights: acta_node::config::RETAIN_HEIGHTS_MIN,
            ..Default::default()
        }),
        // The API on the thread of the node's loop (the default, 1, is what the other
        // network tests run).
        api_threads: Some(0),
        min_height_ms: None,
        state_sync: true,
        block_max_txs: acta_ledger::block::BLOCK_TXS_MAX,
    };
    let report = run(&opts, "test").unwrap();
    let step = &report.steps[0];
    assert_eq!(step.target_rate, 300);
    // 1,200 transactions were sent; every one that the mempools took is committed.
    assert!(step.sent_per_s > 150.0, "{step:?}");
    assert!(step.committed_per_s > 0.0, "{step:?}");
    assert_eq!(step.uncommitted, 0, "{step:?}");
    assert!(
        report.refusals.is_empty(),
        "nothing is refused at this rate: {:?}",
        report.refusals
    );
    assert!(step.latency.p50_ms > 0.0 && step.latency.p50_ms <= step.latency.max_ms);
    assert_eq!(step.cpu_per_node.len(), 4);
    assert!(
        step.cpu_us_per_tx.is_finite() && step.cpu_us_per_tx > 0.0,
        "{step:?}"
    );
    assert!(step.rss_mib_max_per_node.iter().all(|m| *m > 1.0));
    let committed: f64 = report.samples.iter().map(|s| s.committed_per_s).sum();
    assert!(committed >= 1000.0, "{committed} committed in all");
    assert_eq!(report.committed_txs as f64, committed);
    assert_eq!(report.store_bytes_per_node.len(), 4);
    assert!(report.store_bytes_per_node.iter().all(|b| *b > 0));
    assert!(report.store_bytes_per_million_txs > 0.0);
    assert_eq!(json_storage(&report), "pruned");
    assert_eq!(report.node_config["rpc_threads"], 0);
    // The last validator, wiped after the load, joined again from a snapshot of the
    // loaded chain and caught up.
    let sync = report.state_sync.as_ref().unwrap();
    assert!(
        sync.height >= 10 && sync.height.is_multiple_of(10),
        "{sync:?}"
    );
    assert!(sync.entries > 100, "{sync:?}");
    assert!(sync.caught_up_seconds >= sync.restore_seconds, "{sync:?}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&opts.json).unwrap()).unwrap();
    assert_eq!(json["steps"][0]["target_rate"], 300);
    assert!(json["samples"].as_array().unwrap().len() >= 4);
    let svg = std::fs::read_to_string(&opts.chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<polyline"));
}

fn json_storage(report: &acta_testnet::bench::Report) -> String {
    report.node_config["storage"]["mode"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
