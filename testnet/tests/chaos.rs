//! Short versions of every chaos scenario on a local 4-validator network: two faults each,
//! with a client submitting throughout and a light background load; `acta-testnet chaos
//! --cycles N --rate R` runs longer and heavier ones.
//!
//! Needs `actad` built beside the test binary (`cargo test --workspace` builds it).

#![allow(clippy::unwrap_used)]

use acta_testnet::chaos::{run, Scenario};

#[test]
fn every_scenario_keeps_what_was_acknowledged_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // One after another: four validators each already share the machine's cores.
    for scenario in Scenario::ALL {
        let report = run(&dir.path().join(scenario.name()), scenario, 2, 100)
            .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.name()));
        assert!(
            report.acknowledged > 0,
            "{}: the client got nothing committed",
            scenario.name()
        );
        assert!(
            report.load_sent > 0 && report.load_admitted > 0,
            "{}: the load got nothing admitted: {report:?}",
            scenario.name()
        );
    }
}
