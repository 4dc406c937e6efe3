//! The README's main command: `acta-testnet demo` on four `actad` processes.

#![allow(clippy::unwrap_used)]

#[test]
fn the_demo_city_runs_on_a_local_network_and_every_node_agrees() {
    let dir = tempfile::tempdir().unwrap();
    // demo::run fails unless every step is accepted and every node holds the same chain.
    acta_testnet::demo::run(&dir.path().join("net"), 8, false).unwrap();
}
